"use strict";
/**
 * A symbol's page: its closes and latest forecast (chart and table), how past forecasts turned
 * out, its model versions and its jobs, each read from the public API. Events for this symbol
 * refetch only the parts they change, so the page stays current without a reload.
 */

import { ApiError, getJSON, symbolPath } from "./api.js";
import { createForecastChart } from "./chart.js";
import { announce, emptyRow, fill, h, labelCells, setStatus } from "./dom.js";
import {
  formatAge,
  formatDay,
  formatDuration,
  formatInterval,
  formatMoment,
  formatPercent,
  formatPrice,
  formatRatio,
  formatSigned,
  MISSING,
} from "./format.js";
import { sendChange, setupKeyButton } from "./keys.js";
import { eventTypes, flashUpdate, followEvents } from "./live.js";
import { badge, jobBadge, modelBadge, modelLabel, skillBadge, skillText } from "./shared.js";

const symbol = document.body.dataset.symbol;
const encoded = encodeURIComponent(symbol);
const base = symbolPath(symbol);
const CLOSES_SHOWN = 120;
const HISTORY_ROWS = 15;

const state = {
  watched: null,
  closes: [],
  forecast: null,
  forecastNote: "",
  history: [],
  accuracy: null,
  models: [],
  jobs: [],
};
const chart = createForecastChart(document.getElementById("chart"));

/** A read that may legitimately be missing (404): resolves to `fallback` then. */
async function optional(url, fallback) {
  try {
    return await getJSON(url);
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) return fallback(error);
    throw error;
  }
}

const loaders = {
  async watched() {
    state.watched = await optional(base, () => null);
  },
  async closes() {
    state.closes = (
      await optional(`/ui/data/symbols/${encoded}/closes?count=${CLOSES_SHOWN}`, () => ({ closes: [] }))
    ).closes;
  },
  async forecast() {
    state.forecast = await optional(`${base}/forecast`, (error) => {
      state.forecastNote = error.message;
      return null;
    });
  },
  async history() {
    // Next-day forecasts with their outcome only: the full history (every step) is much larger.
    const url = `/ui/data/symbols/${encoded}/next-day-outcomes?count=${CLOSES_SHOWN}`;
    state.history = (await optional(url, () => ({ forecasts: [] }))).forecasts;
  },
  async accuracy() {
    state.accuracy = await optional(`${base}/accuracy`, () => null);
  },
  async models() {
    state.models = await getJSON(`/models?symbol=${encoded}&limit=25`);
  },
  async jobs() {
    state.jobs = await getJSON(`/jobs?symbol=${encoded}&limit=10`);
  },
};

// ------------------------------------------------------------------ rendering

function renderStatus() {
  const known = state.watched || state.closes.length || state.forecast || state.models.length;
  if (!known) {
    setStatus("symbol-status", state.forecastNote || `Nothing is known about ${symbol} yet.`, "error");
  } else if (state.watched && !state.watched.active) {
    setStatus("symbol-status", `${symbol} is no longer on the watchlist; its history is still shown.`);
  } else if (!state.watched) {
    setStatus("symbol-status", `${symbol} is not on the watchlist; what was stored for it is shown.`);
  } else if (!state.forecast) {
    setStatus("symbol-status", state.forecastNote);
  } else {
    setStatus("symbol-status", "");
  }
}

/** The ISO 4217 code every price on the page is in, from the forecast or the watchlist entry. */
function currency() {
  return state.forecast?.currency ?? state.watched?.currency ?? null;
}

function renderSummary() {
  const last = state.closes.at(-1);
  const forecast = state.forecast;
  fill(
    "summary-close",
    last ? formatPrice(last.close, currency()) : MISSING,
    last && h("span", { class: "sub" }, formatDay(last.date)),
  );
  if (!forecast) {
    fill("summary-next", MISSING);
    fill("summary-issued", MISSING);
    fill("summary-model", MISSING);
    return;
  }
  const next = forecast.steps[0];
  fill(
    "summary-next",
    h("span", { "data-field": "next-point" }, formatPrice(next.point)),
    currency() && h("span", { class: "currency" }, ` ${currency()}`),
    h("span", { class: "sub" }, `80%: ${formatInterval(next.lower_80, next.upper_80, currency())}`),
    h("span", { class: "sub" }, `for ${formatDay(next.target_date)}`),
  );
  fill(
    "summary-issued",
    h(
      "time",
      {
        datetime: forecast.issued_at,
        title: formatMoment(forecast.issued_at),
        "data-age": forecast.issued_at,
      },
      formatAge(forecast.issued_at),
    ),
    h("span", { class: "sub" }, `from the close of ${formatDay(forecast.last_observed_date)}`),
  );
  const model = forecast.model;
  fill(
    "summary-model",
    model.version_id === null
      ? "naive baseline"
      : modelLabel({ id: model.version_id, kind: model.kind, model_name: model.model_name }),
    model.version_id !== null && h("span", { class: "sub" }, skillText(model.skill)),
    model.version_id !== null && skillBadge(model.skill),
  );
}

function renderChart() {
  chart.update({ symbol, closes: state.closes, forecast: state.forecast, past: state.history });
  const forecast = state.forecast;
  const body = document.querySelector("#forecast-table tbody");
  if (!forecast) {
    fill(body, emptyRow(5, "No forecast yet."));
    return;
  }
  document.getElementById("forecast-caption").textContent =
    `Forecast issued ${formatMoment(forecast.issued_at)} from the close of ${formatDay(forecast.last_observed_date)} (${formatPrice(forecast.last_close, currency())})`;
  fill(
    body,
    forecast.steps.map((step) =>
      h(
        "tr",
        {},
        h("th", { scope: "row" }, formatDay(step.target_date)),
        h("td", { class: "num" }, formatPrice(step.point, currency())),
        h("td", { class: "num" }, formatInterval(step.lower_80, step.upper_80, currency())),
        h("td", { class: "num" }, formatInterval(step.lower_95, step.upper_95, currency())),
        h("td", { class: "num" }, formatPrice(step.naive, currency())),
      ),
    ),
  );
}

function accuracyRows(groups, window) {
  return groups.map((group) =>
    h(
      "tr",
      {},
      h("th", { scope: "row" }, group.model_kind),
      h("td", {}, window),
      h("td", { class: "num" }, String(group.count)),
      h("td", { class: "num" }, formatPrice(group.mae, currency())),
      h("td", { class: "num" }, formatPrice(group.naive_mae, currency())),
      h("td", { class: "num" }, formatRatio(group.relative_mae)),
      h("td", { class: "num" }, formatRatio(group.theil_u2)),
      h("td", { class: "num" }, formatPercent(group.coverage_80)),
      h("td", { class: "num" }, formatPercent(group.coverage_95)),
    ),
  );
}

function renderAccuracy() {
  const report = state.accuracy;
  const body = document.querySelector("#accuracy-table tbody");
  if (!report || !report.evaluated) {
    fill(body, emptyRow(9, "No forecast has matured yet: accuracy appears once actual closes are known."));
  } else {
    fill(
      body,
      accuracyRows(
        report.overall,
        `all (${formatDay(report.first_target_date)} – ${formatDay(report.last_target_date)})`,
      ),
      accuracyRows(report.recent, `last ${report.recent_days} days`),
    );
  }
  const evaluated = state.history.slice(-HISTORY_ROWS).reverse();
  const history = document.querySelector("#history-table tbody");
  if (!evaluated.length) {
    fill(history, emptyRow(7, "No next-day forecast has been checked against an actual close yet."));
    return;
  }
  fill(
    history,
    evaluated.map((record) =>
      h(
        "tr",
        {},
        h(
          "th",
          { scope: "row" },
          h(
            "time",
            { datetime: record.target_date, title: formatDay(record.target_date) },
            formatDay(record.target_date, { short: true }),
          ),
        ),
        h("td", { class: "num" }, formatPrice(record.point, currency())),
        h("td", { class: "num" }, formatPrice(record.actual, currency())),
        h("td", { class: "num" }, formatSigned(record.error, currency())),
        h("td", { class: "num optional" }, formatSigned(record.naive_error, currency())),
        h(
          "td",
          {},
          record.within_80 === null
            ? MISSING
            : record.within_80
              ? badge("inside", "good")
              : badge("outside", "bad"),
        ),
        h(
          "td",
          { class: "optional" },
          record.model_version_id === null
            ? record.model_kind
            : `${record.model_kind} v${record.model_version_id}`,
        ),
      ),
    ),
  );
}

function renderModels() {
  const body = document.querySelector("#models-table tbody");
  if (!state.models.length) {
    fill(body, emptyRow(8, "No model trained yet: the naive baseline serves the forecasts."));
    return;
  }
  fill(
    body,
    state.models.map((model) =>
      h(
        "tr",
        { "data-model": model.id },
        h("th", { scope: "row" }, modelLabel(model)),
        h("td", {}, modelBadge(model.status)),
        h("td", {}, formatMoment(model.created_at)),
        h("td", { class: "num" }, formatRatio(model.skill.mase)),
        h("td", { class: "num" }, formatRatio(model.skill.theil_u2)),
        h("td", { class: "num" }, formatPercent(model.skill.directional_accuracy)),
        h("td", { class: "num" }, formatPercent(model.skill.coverage_80)),
        h(
          "td",
          {},
          model.status_reason ||
            (model.promoted_at ? `promoted ${formatMoment(model.promoted_at)}` : MISSING),
        ),
      ),
    ),
  );
}

function renderJobs() {
  const body = document.querySelector("#jobs-table tbody");
  if (!state.jobs.length) {
    fill(body, emptyRow(5, "No jobs recorded for this symbol."));
    return;
  }
  fill(
    body,
    state.jobs.map((job) =>
      h(
        "tr",
        { "data-job": job.id },
        h("th", { scope: "row" }, job.kind),
        h("td", {}, jobBadge(job.status)),
        h("td", {}, formatMoment(job.created_at)),
        h("td", { class: "num" }, formatDuration(job.duration_seconds)),
        h("td", {}, job.error || ""),
      ),
    ),
  );
}

// ------------------------------------------------------------------ what is served, and why

/** The latest forecast's `serving` block: the candidate, the gate's reason and evidence, and
 * the calibration of its intervals. Self-contained: reads only `state.forecast.serving`. */
function renderServing() {
  const target = document.getElementById("serving-body");
  if (!target) return;
  const serving = state.forecast && state.forecast.serving;
  if (!serving) {
    fill(target, h("p", {}, "No served plan yet: this forecast comes from the naive baseline or from a model trained before plans were recorded. The next retrain records what is served, and why."));
    return;
  }
  const cal = serving.calibration;
  const alpha = (level) => (cal.aci_alpha[level] || []).map((a) => formatPercent(a)).join(", ") || MISSING;
  const coverageRow = (label, figures, alphaKey) =>
    h("tr", {},
      h("th", { scope: "row" }, label),
      h("td", { class: "num" }, formatPercent(figures.nominal)),
      h("td", { class: "num" }, formatPercent(figures.backtest)),
      h("td", { class: "num" }, figures.live === null ? MISSING : `${formatPercent(figures.live)} (${cal.live_matured})`),
      h("td", { class: "num" }, alpha(alphaKey)));
  const scoreRow = (label, own, naive) =>
    h("tr", {}, h("th", { scope: "row" }, label), h("td", { class: "num" }, formatRatio(own)), h("td", { class: "num" }, formatRatio(naive)));
  const evidence = serving.evidence.map((e) =>
    h("li", {}, `${e.test}: p = ${e.p_value === null ? MISSING : e.p_value.toPrecision(3)} (${e.sided}; H1: ${e.alternative})`));
  fill(
    target,
    h("p", {}, h("strong", {}, serving.candidate),
      serving.uses_network ? " (uses the trained network)" : " (from prices alone, no network)",
      serving.recalibrated ? "; intervals recalibrated on the backtest's out-of-sample scores" : ""),
    h("p", {}, serving.reason),
    h("div", { class: "table-wrap" },
      h("table", { class: "data-table", id: "serving-coverage" },
        h("caption", {}, "Coverage: nominal, backtest, live (matured steps), and ACI's current miscoverage per step"),
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Interval"), h("th", { scope: "col", class: "num" }, "Nominal"),
          h("th", { scope: "col", class: "num" }, "Backtest"), h("th", { scope: "col", class: "num" }, "Live"),
          h("th", { scope: "col", class: "num" }, "ACI α by step"))),
        h("tbody", {}, coverageRow("80%", cal.coverage_80, "0.8"), coverageRow("95%", cal.coverage_95, "0.95"))),
      h("table", { class: "data-table", id: "serving-scores" },
        h("caption", {}, "Interval score in the backtest (% of log return; lower is better)"),
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Interval"), h("th", { scope: "col", class: "num" }, serving.candidate),
          h("th", { scope: "col", class: "num" }, "naive ± σ60"))),
        h("tbody", {}, scoreRow("80%", cal.interval_score_80, cal.naive_interval_score_80),
          scoreRow("95%", cal.interval_score_95, cal.naive_interval_score_95)))),
    h("details", {}, h("summary", {}, `Evidence: ${serving.evidence.length} Diebold-Mariano p-values (backtest of ${serving.backtest_windows ?? MISSING} origins)`),
      h("ul", {}, ...evidence)),
  );
}

const RENDERERS = {
  watched: [renderStatus],
  closes: [renderSummary, renderChart, renderStatus],
  forecast: [renderSummary, renderChart, renderStatus, renderServing],
  history: [renderChart, renderAccuracy],
  accuracy: [renderAccuracy],
  models: [renderModels, renderStatus],
  jobs: [renderJobs],
};

/** Fetch the named parts in parallel, then redraw what depends on them. */
async function refresh(parts) {
  const results = await Promise.allSettled(parts.map((part) => loaders[part]()));
  const failed = results.filter((result) => result.status === "rejected");
  const renderers = new Set(parts.flatMap((part) => RENDERERS[part]));
  for (const render of renderers) render();
  for (const table of document.querySelectorAll("table.stack")) labelCells(table);
  if (failed.length) {
    setStatus("symbol-status", `Some data could not be loaded: ${failed[0].reason.message}`, "error");
  }
}

// ------------------------------------------------------------------ live updates

const EVENT_PARTS = {
  "forecast.ready": ["closes", "forecast", "history"],
  "prices.ingested": ["closes"],
  "forecast.evaluated": ["history", "accuracy", "forecast"],
  "model.trained": ["models"],
  "model.promoted": ["models", "forecast"],
  "model.rejected": ["models"],
  "job.queued": ["jobs"],
  "job.succeeded": ["jobs"],
  "job.failed": ["jobs"],
  "symbol.added": ["watched"],
  "symbol.updated": ["watched"],
  "symbol.removed": ["watched"],
};
const EVENT_WORDS = {
  "forecast.ready": "New forecast",
  "forecast.evaluated": "Forecasts checked against actual closes",
  "model.promoted": "New champion model",
  "model.rejected": "Challenger model rejected",
  "job.failed": "A job failed",
  "job.succeeded": "A job finished",
};

let pending = new Set();
let timer = null;

function onEvent(event) {
  const parts = EVENT_PARTS[event.type];
  if (!parts || (event.symbol && event.symbol !== symbol)) return;
  for (const part of parts) pending.add(part);
  const words = EVENT_WORDS[event.type];
  if (words) {
    announce(`${words} for ${symbol}`);
    flashUpdate(`${words} · ${new Date().toLocaleTimeString()}`);
  }
  // Events come in bursts (a job, its forecast, its evaluation): one refetch for the burst.
  window.clearTimeout(timer);
  timer = window.setTimeout(() => {
    const batch = [...pending];
    pending = new Set();
    refresh(batch);
  }, 250);
}

// ------------------------------------------------------------------ retrain

async function retrain(event) {
  event.preventDefault();
  const button = document.getElementById("retrain-button");
  button.disabled = true;
  setStatus("retrain-status", `Queuing a retrain of ${symbol}…`);
  try {
    const { data } = await sendChange("POST", "/train", { symbol });
    setStatus(
      "retrain-status",
      `Retraining queued (job ${data.job.id}). The new model is promoted only if it passes the promotion gate.`,
      "ok",
    );
    await refresh(["jobs"]);
  } catch (error) {
    setStatus("retrain-status", `No retraining was queued: ${error.message}`, "error");
  } finally {
    button.disabled = false;
  }
}

const refreshAll = () => refresh(Object.keys(loaders));

setupKeyButton(refreshAll);
document.getElementById("retrain-form").addEventListener("submit", retrain);
refreshAll().then(() => performance.mark("symbol-rendered"));
followEvents({ onEvent, onOffline: refreshAll, symbol, types: eventTypes() });
window.setInterval(() => {
  for (const element of document.querySelectorAll("time[data-age]"))
    element.textContent = formatAge(element.dataset.age);
}, 30_000);
