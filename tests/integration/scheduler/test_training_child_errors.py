"""Every exception of the training child reaches the worker with its own type and message.

The children are real worker processes of ``anyio.to_process`` (the pool the retrain job uses):
the exception is built and raised in the child, pickled by anyio and rebuilt in this process.
Before ``PortableError`` an ``InsufficientDataError`` arrived as ``TypeError: __init__() takes 1
positional argument but 2 were given``.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import pkgutil
from datetime import date, datetime
from pathlib import Path
from typing import Any

import anyio.to_process
import pytest

import forecasting
from forecasting.artifacts import InvalidArtifactError
from forecasting.bars import read_bars_csv
from forecasting.calendar import (
    CalendarUnavailableError,
    DateOutsideCalendarError,
    NaiveDatetimeError,
    NotASessionError,
)
from forecasting.config import BacktestConfig, InvalidConfigError, ModelConfig, TrainConfig
from forecasting.conformal import InvalidCalibrationStateError
from forecasting.errors import PortableError
from forecasting.exchanges import (
    ExchangeInferenceError,
    UnknownExchangeError,
    UnknownIndexError,
    UnknownSuffixError,
)
from forecasting.forecast import NotFittedError
from forecasting.hardware import InvalidIntervalError, MonitorStateError
from forecasting.metrics import MetricInputError
from forecasting.plan import PlanError
from forecasting.promotion import PromotionPolicy, UnknownPolicyError
from forecasting.replay import NoReplayDataError
from forecasting.sources import SAMPLE_DIRECTORY
from forecasting.sources.availability import SymbolUnavailableError
from forecasting.sources.base import InvalidDateRangeError
from forecasting.sources.batch import DuplicateRequestError
from forecasting.sources.csv_directory import SourceDirectoryError
from forecasting.sources.errors import (
    CorruptSourceDataError,
    NoDataError,
    RateLimitedError,
    SourceError,
    SourceTimeoutError,
    SourceUnavailableError,
    UnknownSymbolError,
)
from forecasting.sources.yahoo import InvalidTimeoutError
from forecasting.symbols import InvalidSymbolError
from forecasting.tracking import TrackingError
from forecasting.validation import (
    BarProblem,
    BarsSchemaError,
    InvalidBarProblemError,
    InvalidBarsError,
    ValidationReport,
)
from forecasting.volatility import UnknownScaleError
from forecasting.windowing import InsufficientDataError
from scheduler.training_process import (
    TrainingChildError,
    TrainingRequest,
    run_portably,
    train_in_child,
)

pytestmark = pytest.mark.anyio

#: One constructor call per named error of ``forecasting``: (class, positional, keyword arguments).
CONSTRUCTIONS: list[tuple[type[Exception], tuple[Any, ...], dict[str, Any]]] = [
    (InvalidArtifactError, ("no weights.safetensors",), {}),
    (PlanError, ("no candidate passed the backtest",), {}),
    (NoReplayDataError, ("sample", 1), {}),
    (
        SymbolUnavailableError,
        ("PEP",),
        {"source": "sample", "reason": "unknown symbol", "known": ["SPY", "AAPL"]},
    ),
    (
        DateOutsideCalendarError,
        (date(1900, 1, 2), "XNYS", date(1990, 1, 2), date(2030, 12, 31)),
        {},
    ),
    (CalendarUnavailableError, ("ASEX", "Orthodox Easter"), {}),
    (NotASessionError, (date(2024, 12, 25), "XNYS"), {}),
    (NaiveDatetimeError, (datetime(2024, 1, 2, 16, 0),), {}),
    (InvalidConfigError, ("ModelConfig", "horizon", "must be >= 1, got 0"), {}),
    (InvalidCalibrationStateError, ("no residuals",), {}),
    (UnknownExchangeError, ("XXXX",), {}),
    (ExchangeInferenceError, ("cannot tell",), {}),
    (UnknownSuffixError, ("ABC.QQ", ".QQ"), {}),
    (UnknownIndexError, ("^ZZZ",), {}),
    (NotFittedError, ("LSTMForecaster",), {"action": "save"}),
    (InvalidIntervalError, (-1.0,), {}),
    (MonitorStateError, ("started twice",), {}),
    (MetricInputError, ("mase", "empty array"), {}),
    (UnknownPolicyError, ("sometimes",), {}),
    (InvalidDateRangeError, (date(2024, 2, 1), date(2024, 1, 1)), {}),
    (DuplicateRequestError, ("KO",), {}),
    (SourceDirectoryError, (Path("/nowhere/prices"),), {}),
    (SourceError, ("broken",), {"source": "csv"}),
    (UnknownSymbolError, ("ZZZZ",), {"source": "yfinance"}),
    (NoDataError, ("KO",), {"source": "csv", "start": date(2024, 1, 1), "end": None}),
    (CorruptSourceDataError, ("KO",), {"source": "csv", "detail": "no close column"}),
    (RateLimitedError, (), {"source": "yfinance"}),
    (SourceTimeoutError, (), {"source": "yfinance", "timeout": 2.5}),
    (SourceUnavailableError, (), {"source": "yfinance", "detail": "HTTP 502"}),
    (InvalidTimeoutError, (0.0,), {}),
    (InvalidSymbolError, ("ZZZ\n",), {}),
    (TrackingError, ("start a run", "sqlite:///x.db", OSError("disk I/O error")), {}),
    (BarsSchemaError, (("close", "volume"),), {}),
    (InvalidBarProblemError, ("row must be >= 0",), {}),
    (
        InvalidBarsError,
        (ValidationReport(rows=3, problems=(BarProblem(row=1, date=None, reason="low > high"),)),),
        {},
    ),
    (UnknownScaleError, ("garch_z",), {}),
    (InsufficientDataError, (), {"needed": 70, "got": 12, "purpose": "a fold"}),
]


def _named_errors() -> set[type[BaseException]]:
    """Every public exception class defined in ``forecasting`` (the code the child runs)."""
    found: set[type[BaseException]] = set()
    for module_info in pkgutil.walk_packages(forecasting.__path__, "forecasting."):
        module = importlib.import_module(module_info.name)
        for name, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__ == module.__name__
                and not name.startswith("_")
                and value is not PortableError
            ):
                found.add(value)
    return found


def test_every_named_error_of_forecasting_is_constructed_here() -> None:
    # A new error class must join CONSTRUCTIONS, so that it is proved to cross the boundary.
    assert _named_errors() == {cls for cls, _, _ in CONSTRUCTIONS}


def _attributes(error: BaseException) -> dict[str, str]:
    return {key: repr(value) for key, value in vars(error).items() if key != "__notes__"}


@pytest.mark.parametrize(
    ("cls", "args", "kwargs"), CONSTRUCTIONS, ids=[cls.__name__ for cls, _, _ in CONSTRUCTIONS]
)
async def test_error_raised_in_a_child_arrives_with_its_type_message_and_fields(
    cls: type[Exception], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    expected = cls(*args, **kwargs)
    # exec is a builtin, so it pickles by name: the child builds and raises the error itself.
    with pytest.raises(cls) as caught:
        await anyio.to_process.run_sync(
            run_portably,
            exec,
            "raise cls(*args, **kwargs)",
            {"cls": cls, "args": args, "kwargs": kwargs},
        )
    arrived = caught.value
    assert type(arrived) is cls
    assert str(arrived) == str(expected)
    assert _attributes(arrived) == _attributes(expected)
    assert any("raised in the training child" in note for note in arrived.__notes__)


async def test_a_foreign_error_arrives_as_a_structured_error_naming_it() -> None:
    # The test module is not importable in the child (pytest's importlib mode), so the foreign
    # class is defined and raised in the child through exec as well.
    source = (
        "class ThirdPartyError(Exception):\n"
        "    def __init__(self, *, code):\n"
        "        super().__init__(f'library failed with code {code}')\n"
        "raise ThirdPartyError(code=7)\n"
    )
    with pytest.raises(TrainingChildError) as caught:
        await anyio.to_process.run_sync(run_portably, exec, source, {"__name__": "thirdparty"})
    error = caught.value
    assert error.error_type == "thirdparty.ThirdPartyError"
    assert str(error) == "thirdparty.ThirdPartyError: library failed with code 7"
    assert 'File "<string>", line 4' in error.child_traceback


def _request(rows: int, *, tracking_uri: str | None) -> TrainingRequest:
    bars = read_bars_csv(str(SAMPLE_DIRECTORY / "GOOG.csv")).tail(rows).reset_index(drop=True)
    return TrainingRequest(
        symbol="GOOG",
        bars=bars,
        model_config=ModelConfig(horizon=3, lookback=10, hidden_size=8, num_layers=1),
        train_config=TrainConfig(epochs=1, batch_size=64, accelerator="cpu", num_threads=1),
        backtest_config=BacktestConfig(folds=1, test_size=20),
        policy=PromotionPolicy.ALWAYS,
        champion=None,
        tracking_uri=tracking_uri,
        model_name=None,
        artifact_root=None,
        log_level=logging.WARNING,
    )


@pytest.mark.slow
async def test_a_training_on_too_few_bars_reports_insufficient_data() -> None:
    with pytest.raises(InsufficientDataError) as caught:
        await anyio.to_process.run_sync(train_in_child, _request(20, tracking_uri=None))
    assert caught.value.got > 0
    assert "needs at least" in str(caught.value)
