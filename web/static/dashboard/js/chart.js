"use strict";
/**
 * The forecast chart: a small hand-written SVG (no charting library to download or vendor).
 *
 * Recent closes are drawn as a line, the latest forecast as a dashed line from the last close,
 * its 80% and 95% intervals as bands that fan out from that close, and past next-day forecasts
 * as rings at the days they were for (filled where the actual close fell outside their 80%
 * interval). Trading days are evenly spaced, so weekends and holidays leave no gaps.
 *
 * The SVG is an image with a title and a description; the same figures are in a table next to it.
 */

import { svg } from "./dom.js";
import { formatDay, formatInterval, formatPrice } from "./format.js";

const MARGIN = { top: 12, right: 14, bottom: 30, left: 60 };
const MIN_WIDTH = 280;
const X_LABEL_SPACING = 96;
const Y_TICKS = 5;
const FUTURE_SHARE = 0.2;

const finite = (value) => typeof value === "number" && Number.isFinite(value);
const round = (value) => Math.round(value * 10) / 10;

/** Round numbers for the price axis: steps of 1, 2 or 5 times a power of ten. */
function niceTicks(low, high, count) {
  const span = high - low || Math.abs(high) || 1;
  const raw = span / Math.max(1, count);
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((candidate) => candidate >= raw);
  const ticks = [];
  for (let value = Math.ceil(low / step) * step; value <= high + step * 1e-9; value += step) {
    ticks.push(Number(value.toFixed(10)));
  }
  return ticks;
}

function linePath(points) {
  return points.map(([x, y], index) => `${index ? "L" : "M"}${round(x)} ${round(y)}`).join(" ");
}

/** A closed band: along the upper bounds, then back along the lower ones. */
function bandPath(upper, lower) {
  return `${linePath([...upper, ...lower.slice().reverse()])} Z`;
}

function stepsWith(steps, lowerKey, upperKey) {
  return steps.filter((step) => finite(step[lowerKey]) && finite(step[upperKey]));
}

/** What the chart shows, in words: its text alternative. */
function describeChart({ symbol, closes, forecast }) {
  const currency = forecast?.currency ?? null;
  const parts = [];
  if (closes.length) {
    const first = closes[0];
    const last = closes[closes.length - 1];
    parts.push(
      `${closes.length} daily closes of ${symbol} from ${formatDay(first.date)} (${formatPrice(first.close, currency)}) ` +
        `to ${formatDay(last.date)} (${formatPrice(last.close, currency)}).`,
    );
  } else {
    parts.push(`No stored closes of ${symbol} yet.`);
  }
  if (forecast && forecast.steps.length) {
    const steps = forecast.steps;
    const end = steps[steps.length - 1];
    parts.push(
      `Forecast for the next ${steps.length} trading day${steps.length > 1 ? "s" : ""}: ` +
        `${formatPrice(steps[0].point, currency)} on ${formatDay(steps[0].target_date)}` +
        (steps.length > 1 ? `, ${formatPrice(end.point, currency)} on ${formatDay(end.target_date)}` : "") +
        `; 80% interval on the last day ${formatInterval(end.lower_80, end.upper_80, currency)}, ` +
        `95% interval ${formatInterval(end.lower_95, end.upper_95, currency)}.`,
    );
  } else {
    parts.push("No forecast has been issued yet.");
  }
  return parts.join(" ");
}

/**
 * Trading day -> x. Days are evenly spaced on each side of the forecast's origin, but the days
 * ahead get at least FUTURE_SHARE of the width: five days after 120 closes would otherwise be a
 * sliver in which the intervals cannot be seen. The origin is marked by a dotted line.
 */
function xScale(ordered, slot, forecast, plotWidth) {
  const last = Math.max(1, ordered.length - 1);
  const origin = forecast ? slot.get(forecast.last_observed_date) : last;
  const ahead = last - origin;
  if (!forecast || origin === 0 || ahead === 0 || ahead / last >= FUTURE_SHARE) {
    return (day) => MARGIN.left + (slot.get(day) * plotWidth) / last;
  }
  const pastWidth = plotWidth * (1 - FUTURE_SHARE);
  return (day) => {
    const index = slot.get(day);
    return index <= origin
      ? MARGIN.left + (index * pastWidth) / origin
      : MARGIN.left + pastWidth + ((index - origin) * (plotWidth - pastWidth)) / ahead;
  };
}

function draw(container, data) {
  const { symbol, closes, forecast, past } = data;
  const currency = forecast?.currency ?? null;
  const steps = forecast ? forecast.steps : [];
  const width = Math.max(MIN_WIDTH, Math.floor(container.clientWidth || 640));
  const height = width < 560 ? 240 : 320;
  const plotWidth = width - MARGIN.left - MARGIN.right;
  const plotHeight = height - MARGIN.top - MARGIN.bottom;

  // The x axis: every trading day shown, in order (closes, then the forecast's target days).
  const firstDay = closes.length ? closes[0].date : forecast?.last_observed_date;
  const days = new Set(closes.map((bar) => bar.date));
  if (forecast) days.add(forecast.last_observed_date);
  for (const step of steps) days.add(step.target_date);
  const shownPast = past.filter((record) => firstDay && record.target_date >= firstDay);
  for (const record of shownPast) days.add(record.target_date);
  const ordered = [...days].sort();
  const slot = new Map(ordered.map((day, index) => [day, index]));
  const x = xScale(ordered, slot, forecast, plotWidth);

  // The y axis: everything drawn must fit, the 95% band included.
  const values = closes.map((bar) => bar.close);
  for (const step of steps)
    values.push(step.point, step.lower_95, step.upper_95, step.lower_80, step.upper_80);
  for (const record of shownPast) values.push(record.point, record.actual);
  if (forecast) values.push(forecast.last_close);
  const known = values.filter(finite);
  let low = Math.min(...known);
  let high = Math.max(...known);
  const pad = (high - low) * 0.06 || Math.abs(high) * 0.02 || 1;
  low -= pad;
  high += pad;
  const y = (value) => MARGIN.top + ((high - value) / (high - low)) * plotHeight;

  const titleId = `${container.id}-title`;
  const descId = `${container.id}-desc`;
  const root = svg("svg", {
    viewBox: `0 0 ${width} ${height}`,
    width,
    height,
    role: "img",
    "aria-labelledby": `${titleId} ${descId}`,
    class: "forecast-chart",
  });
  root.append(
    svg("title", { id: titleId }, `${symbol}: recent closes and the latest forecast${currency ? ` (${currency})` : ""}`),
    svg("desc", { id: descId }, describeChart(data)),
  );

  const grid = svg("g", { class: "grid axis", "aria-hidden": "true" });
  for (const tick of niceTicks(low, high, Y_TICKS)) {
    const ty = round(y(tick));
    grid.append(
      svg("line", { x1: MARGIN.left, x2: width - MARGIN.right, y1: ty, y2: ty }),
      svg(
        "text",
        { x: MARGIN.left - 8, y: ty, "text-anchor": "end", "dominant-baseline": "middle" },
        formatPrice(tick),
      ),
    );
  }
  // Date labels at least X_LABEL_SPACING apart, wherever the days fall.
  let lastLabel = Number.NEGATIVE_INFINITY;
  for (const [index, day] of ordered.entries()) {
    const dx = x(day);
    if (dx - lastLabel < X_LABEL_SPACING || dx > width - MARGIN.right - X_LABEL_SPACING / 3) continue;
    lastLabel = dx;
    grid.append(
      svg(
        "text",
        { x: round(dx), y: height - 8, "text-anchor": index === 0 ? "start" : "middle" },
        formatDay(day, { short: true }),
      ),
    );
  }
  root.append(grid);

  if (forecast && steps.length) {
    const originDay = forecast.last_observed_date;
    const origin = [x(originDay), y(forecast.last_close)];
    root.append(
      svg("line", {
        class: "origin",
        x1: round(origin[0]),
        x2: round(origin[0]),
        y1: MARGIN.top,
        y2: MARGIN.top + plotHeight,
        "aria-hidden": "true",
      }),
      svg(
        "text",
        { class: "region-label", x: round(origin[0]) + 6, y: MARGIN.top + 10, "aria-hidden": "true" },
        "forecast",
      ),
    );
    for (const [level, lowerKey, upperKey] of [
      [95, "lower_95", "upper_95"],
      [80, "lower_80", "upper_80"],
    ]) {
      const bounded = stepsWith(steps, lowerKey, upperKey);
      if (!bounded.length) continue;
      const upper = [origin, ...bounded.map((step) => [x(step.target_date), y(step[upperKey])])];
      const lower = [origin, ...bounded.map((step) => [x(step.target_date), y(step[lowerKey])])];
      root.append(
        svg("path", {
          class: `band band-${level}`,
          "data-series": `band-${level}`,
          d: bandPath(upper, lower),
          "aria-hidden": "true",
        }),
      );
    }
  }

  if (closes.length) {
    root.append(
      svg("path", {
        class: "line line-actual",
        "data-series": "actual",
        d: linePath(closes.map((bar) => [x(bar.date), y(bar.close)])),
        "aria-hidden": "true",
      }),
    );
  }

  const pastGroup = svg("g", { class: "past-forecasts", "data-series": "past-forecasts" });
  for (const record of shownPast) {
    pastGroup.append(
      svg(
        "circle",
        {
          class: ["past-forecast", record.within_80 === false && "missed"],
          cx: round(x(record.target_date)),
          cy: round(y(record.point)),
          r: 3.5,
        },
        svg(
          "title",
          {},
          `${formatDay(record.target_date)}: forecast ${formatPrice(record.point, currency)}, actual ${formatPrice(record.actual, currency)}`,
        ),
      ),
    );
  }
  root.append(pastGroup);

  if (forecast && steps.length) {
    const path = [
      [x(forecast.last_observed_date), y(forecast.last_close)],
      ...steps.map((step) => [x(step.target_date), y(step.point)]),
    ];
    root.append(
      svg("path", {
        class: "line line-forecast",
        "data-series": "forecast",
        d: linePath(path),
        "aria-hidden": "true",
      }),
    );
    const points = svg("g", { class: "forecast-points", "data-series": "forecast-points" });
    for (const step of steps) {
      points.append(
        svg(
          "circle",
          { class: "forecast-point", cx: round(x(step.target_date)), cy: round(y(step.point)), r: 3 },
          svg(
            "title",
            {},
            `${formatDay(step.target_date)}: ${formatPrice(step.point, currency)} (80% ${formatInterval(step.lower_80, step.upper_80, currency)})`,
          ),
        ),
      );
    }
    root.append(points);
  }
  container.replaceChildren(root);
}

/**
 * A chart bound to `container`: call `update(data)` with {symbol, closes, forecast, past};
 * it redraws itself to the container's width when that changes (phone rotation, resize).
 */
export function createForecastChart(container) {
  let current = null;
  let lastWidth = 0;
  const redraw = () => {
    if (!current) return;
    if (!current.closes.length && !(current.forecast && current.forecast.steps.length)) {
      container.replaceChildren(
        Object.assign(document.createElement("p"), {
          className: "chart-empty",
          textContent: describeChart(current),
        }),
      );
      return;
    }
    draw(container, current);
  };
  new ResizeObserver((entries) => {
    const width = Math.floor(entries[0].contentRect.width);
    if (Math.abs(width - lastWidth) < 8) return;
    lastWidth = width;
    redraw();
  }).observe(container);
  return {
    update(data) {
      current = data;
      redraw();
    },
  };
}
