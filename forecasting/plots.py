"""The backtest chart logged with every training run: actual closes against the LSTM and the naive
forecast, with the served candidate's 80% and 95% interval bands, one panel for the first and one
for the last horizon step. Rendered with the Agg canvas (no display, no pyplot global state).
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from forecasting.backtest import BacktestReport


def _band_name(report: BacktestReport) -> str:
    """The served candidate, or (the champion staying) the LSTM's own best intervals."""
    if report.selected in report.series.lower:
        return report.selected
    scale = report.decision.lstm_scale
    return f"lstm+{scale}" if scale else "lstm+fixed"


def backtest_png(report: BacktestReport, *, title: str | None = None) -> bytes:
    """The chart as PNG bytes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    series = report.series
    steps = sorted({0, report.horizon - 1})
    figure = Figure(figsize=(11, 3.6 * len(steps)), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(len(steps), 1, squeeze=False)[:, 0]
    band = _band_name(report)
    served = report.candidate(band)
    for ax, step in zip(axes, steps, strict=True):
        dates = series.target_dates[:, step]
        # The wider band first, so the narrower one is drawn over it.
        for level, alpha in ((0.95, 0.12), (0.8, 0.25)):
            ax.fill_between(
                dates,
                series.lower[band][level][:, step],
                series.upper[band][level][:, step],
                color="tab:blue",
                alpha=alpha,
                linewidth=0,
                label=f"{band} {level:.0%} interval",
            )
        ax.plot(dates, series.actual[:, step], color="black", linewidth=1.2, label="actual close")
        ax.plot(
            dates, series.predicted["lstm"][:, step], color="tab:blue", linewidth=1.0, label="LSTM"
        )
        ax.plot(
            dates,
            series.predicted["naive"][:, step],
            color="tab:orange",
            linewidth=1.0,
            linestyle="--",
            label="naive (last close)",
        )
        for fold in report.folds[1:]:
            ax.axvline(
                dates[series.fold_of_origin == fold.index][0],
                color="grey",
                linestyle=":",
                linewidth=1,
            )
        ax.set_title(f"{step + 1} trading day(s) ahead", fontsize=10, loc="left")
        ax.set_ylabel("price")
        ax.grid(alpha=0.3)
    axes[0].legend(loc="upper left", fontsize=8, ncols=3)
    lstm, naive = report.scores["lstm"].summary, report.scores["naive"].summary
    figure.suptitle(
        (title + ": " if title else "")
        + f"walk-forward backtest, {report.windows} origins, {len(report.folds)} fold(s); "
        f"serves {report.selected}; MASE LSTM {lstm['mase']:.3f} vs naive {naive['mase']:.3f}; "
        f"{band} coverage 80% {served['coverage_80']:.2f}, 95% {served['coverage_95']:.2f}",
        fontsize=10,
    )
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
