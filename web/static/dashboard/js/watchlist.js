"use strict";
/**
 * The watchlist page: one request (/ui/data/watchlist) fills the table; every relevant event
 * from /events refetches it, so rows change in place without a reload.
 */

import { ApiError, getJSON, symbolPath } from "./api.js";
import { announce, emptyRow, fill, h, labelCells, setStatus } from "./dom.js";
import { formatAge, formatDay, formatInterval, formatMoment, formatPrice, MISSING } from "./format.js";
import { sendChange, setupKeyButton } from "./keys.js";
import { eventTypes, flashUpdate, followEvents } from "./live.js";
import { badge, jobBadge, modelLabel, skillBadge, skillText } from "./shared.js";

const COLUMNS = 7;
const AGE_REFRESH_MS = 30_000;
// Events arriving together (a forecast, its job, the evaluation) cause one refetch.
const REFRESH_DELAY_MS = 250;
const REFRESHING_EVENTS = new Set([
  "symbol.added",
  "symbol.updated",
  "symbol.removed",
  "prices.ingested",
  "forecast.ready",
  "model.promoted",
  "model.rejected",
  "job.queued",
  "job.succeeded",
  "job.failed",
]);

const table = document.getElementById("watchlist");
let rendered = false;
let refreshTimer = null;
let loading = null;
const highlight = new Set();

// Cells get their phone-width labels from the column headers (labelCells).
function cell(attributes, ...children) {
  return h("td", attributes, ...children);
}

function ageElement(iso) {
  return h("time", { datetime: iso, title: formatMoment(iso), "data-age": iso }, formatAge(iso));
}

function forecastCells(entry) {
  const forecast = entry.forecast;
  if (!forecast) {
    return [cell({ class: "num" }, h("span", { class: "sub" }, "no forecast yet")), cell({}, MISSING)];
  }
  const next = forecast.next;
  return [
    cell(
      { class: "num", "data-field": "forecast" },
      h("strong", { "data-field": "point" }, formatPrice(next.point)),
      h("span", { class: "sub" }, `80%: ${formatInterval(next.lower_80, next.upper_80)}`),
      h("span", { class: "sub" }, `for ${formatDay(next.target_date)}`),
    ),
    cell({ "data-field": "age" }, ageElement(forecast.issued_at)),
  ];
}

function modelCell(entry) {
  const champion = entry.champion;
  if (!champion) {
    return cell(
      { "data-field": "model" },
      badge("naive baseline"),
      h("span", { class: "sub" }, "no champion model yet"),
    );
  }
  return cell(
    { "data-field": "model" },
    h("span", {}, modelLabel(champion)),
    " ",
    skillBadge(champion.skill),
    h("span", { class: "sub" }, skillText(champion.skill)),
  );
}

function jobCell(entry) {
  const job = entry.last_job;
  if (!job) return cell({}, MISSING);
  return cell(
    { "data-field": "job", title: job.error || null },
    h("span", {}, `${job.kind} `),
    jobBadge(job.status),
    h("span", { class: "sub" }, ageElement(job.finished_at || job.started_at || job.created_at)),
  );
}

function row(entry) {
  const close = entry.last_close;
  return h(
    "tr",
    { "data-symbol": entry.symbol, class: highlight.has(entry.symbol) && "updated" },
    h(
      "th",
      { scope: "row" },
      h("a", { class: "symbol-link", href: `/ui/symbols/${encodeURIComponent(entry.symbol)}` }, entry.symbol),
      h("span", { class: "sub" }, `${entry.horizon}-day horizon`),
    ),
    cell(
      { class: "num", "data-field": "close" },
      close ? formatPrice(close.close) : MISSING,
      close && h("span", { class: "sub" }, formatDay(close.date)),
    ),
    ...forecastCells(entry),
    modelCell(entry),
    jobCell(entry),
    cell(
      { class: "actions" },
      h(
        "button",
        {
          type: "button",
          class: "button button-quiet button-small",
          "data-remove": entry.symbol,
          "aria-label": `Stop watching ${entry.symbol}`,
        },
        "Remove",
      ),
    ),
  );
}

function render(overview) {
  const entries = overview.symbols;
  const body = table.tBodies[0];
  if (entries.length === 0) fill(body, emptyRow(COLUMNS, "No symbols are watched yet. Add one above."));
  else fill(body, entries.map(row));
  labelCells(table);
  highlight.clear();
  document.getElementById("symbol-count").textContent = `(${entries.length})`;
  table.setAttribute("aria-busy", "false");
  setStatus("watchlist-status", "");
  if (!rendered) {
    rendered = true;
    // Read by the browser test: how long the first load took to show the watchlist.
    performance.mark("watchlist-rendered");
  }
}

let again = false;

async function load() {
  // One request at a time; events that arrive meanwhile cause one more request after it, so
  // the table never settles on data older than the last event.
  if (loading) {
    again = true;
    return loading;
  }
  loading = (async () => {
    try {
      render(await getJSON("/ui/data/watchlist"));
    } catch (error) {
      const hint =
        error instanceof ApiError && error.status === 401 ? " Set it with the API key button." : "";
      setStatus("watchlist-status", `The watchlist could not be loaded: ${error.message}${hint}`, "error");
    } finally {
      loading = null;
      if (again) {
        again = false;
        load();
      }
    }
  })();
  return loading;
}

function scheduleRefresh() {
  window.clearTimeout(refreshTimer);
  refreshTimer = window.setTimeout(load, REFRESH_DELAY_MS);
}

function describe(event) {
  const who = event.symbol ?? "the service";
  switch (event.type) {
    case "forecast.ready":
      return `New forecast for ${who}`;
    case "symbol.added":
      return `${who} added to the watchlist`;
    case "symbol.removed":
      return `${who} removed from the watchlist`;
    case "model.promoted":
      return `New champion model for ${who}`;
    case "model.rejected":
      return `A challenger model for ${who} was rejected`;
    case "job.failed":
      return `A ${event.payload?.kind ?? ""} job for ${who} failed`;
    default:
      return null;
  }
}

function onEvent(event) {
  if (!REFRESHING_EVENTS.has(event.type)) return;
  if (event.symbol) highlight.add(event.symbol);
  const message = describe(event);
  if (message) {
    announce(message);
    flashUpdate(`${message} · ${new Date().toLocaleTimeString()}`);
  }
  scheduleRefresh();
}

async function addSymbol(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const input = form.elements.symbol;
  if (!form.reportValidity()) return;
  const symbol = input.value.trim().toUpperCase();
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  setStatus("add-status", `Adding ${symbol}…`);
  try {
    const { data } = await sendChange("POST", "/symbols", { symbol });
    const added = data.symbol.symbol;
    setStatus("add-status", `Watching ${added}: its price backfill and first training are queued.`, "ok");
    input.value = "";
    highlight.add(added);
    await load();
  } catch (error) {
    setStatus("add-status", `${symbol} was not added: ${error.message}`, "error");
  } finally {
    button.disabled = false;
  }
}

async function removeSymbol(symbol, button) {
  if (!window.confirm(`Stop watching ${symbol}? Its prices, models and forecasts are kept.`)) return;
  button.disabled = true;
  try {
    await sendChange("DELETE", symbolPath(symbol));
    setStatus("add-status", `Stopped watching ${symbol}.`, "ok");
    await load();
  } catch (error) {
    setStatus("add-status", `${symbol} is still watched: ${error.message}`, "error");
    button.disabled = false;
  }
}

function refreshAges() {
  for (const element of table.querySelectorAll("time[data-age]")) {
    element.textContent = formatAge(element.dataset.age);
  }
}

setupKeyButton(load);
document.getElementById("add-form").addEventListener("submit", addSymbol);
table.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-remove]");
  if (button) removeSymbol(button.dataset.remove, button);
});
load();
followEvents({ onEvent, onOffline: load, types: eventTypes() });
window.setInterval(refreshAges, AGE_REFRESH_MS);
