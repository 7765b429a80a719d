"use strict";
/**
 * The watchlist page: one page of the watchlist at a time. One request (/ui/data/watchlist, with
 * the page's q/after/before/limit, as in the page's own URL) fills the table; an event from
 * /events about a symbol on this page (or one added or removed) refetches it, and only the rows
 * that changed are redrawn. Events about symbols on other pages are ignored, so a nightly run
 * over 1,000 symbols does not refetch the page 1,000 times.
 *
 * The search box and the page links work without scripts (a GET form, plain links); with them
 * the search filters as one types and the links fetch the next page without a reload, keeping
 * the address (and the back button) in step.
 */

import { ApiError, getJSON, symbolPath } from "./api.js";
import { announce, emptyRow, fill, h, labelCells, setStatus } from "./dom.js";
import { formatAge, formatDay, formatInterval, formatMoment, formatPrice, MISSING } from "./format.js";
import { sendChange, setupKeyButton } from "./keys.js";
import { eventTypes, flashUpdate, followEvents } from "./live.js";
import { badge, jobBadge, modelLabel, skillBadge, skillText } from "./shared.js";

const COLUMNS = 7;
const AGE_REFRESH_MS = 30_000;
// Typing pauses this long before the search is sent.
const SEARCH_DELAY_MS = 200;
const VIEW_PARAMS = ["q", "after", "before", "limit"];
// Events that can change which symbols are on a page, wherever the symbol falls.
const MEMBERSHIP_EVENTS = new Set(["symbol.added", "symbol.removed"]);
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
const searchInput = document.getElementById("search-symbols");
let rendered = false;
let refreshTimer = null;
let searchTimer = null;
let loading = null;
const highlight = new Set();
// The page asked for (the URL's query), and what each shown row was drawn from.
let view = viewOf(window.location.search);
const drawn = new Map();
// The symbols on the page: the server rendered them, the script keeps the set current.
const visible = new Set([...table.querySelectorAll("tbody tr[data-symbol]")].map((tr) => tr.dataset.symbol));

function viewOf(search) {
  const params = new URLSearchParams(search);
  const result = {};
  for (const name of VIEW_PARAMS) {
    const value = params.get(name);
    if (value) result[name] = value;
  }
  return result;
}

function queryOf(wanted) {
  const params = new URLSearchParams();
  for (const name of VIEW_PARAMS) if (wanted[name]) params.set(name, wanted[name]);
  return params.toString();
}

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
      entry.currency && h("span", { class: "currency" }, ` ${entry.currency}`),
      h("span", { class: "sub" }, `80%: ${formatInterval(next.lower_80, next.upper_80, entry.currency)}`),
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
    // Why it failed, in view: a badge alone says "failed" and leaves the reader guessing.
    job.error && job.status !== "succeeded" ? h("span", { class: "sub job-error" }, job.error) : null,
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
      close ? formatPrice(close.close, entry.currency) : MISSING,
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

function emptyMessage(page) {
  return page.search
    ? `No watched symbol matches “${page.search}”.`
    : "No symbols are watched yet. Add one above.";
}

/**
 * Draw the page's rows. When the same symbols are shown in the same order, only the rows whose
 * data changed (or that an event named) are replaced, so the rest keep their focus and state.
 */
function renderRows(entries, page) {
  const body = table.tBodies[0];
  const symbols = entries.map((entry) => entry.symbol);
  const current = [...body.rows].map((tr) => tr.dataset.symbol);
  const sameRows = drawn.size > 0 && symbols.length === current.length && symbols.every((s, i) => s === current[i]);
  if (entries.length === 0) {
    fill(body, emptyRow(COLUMNS, emptyMessage(page)));
  } else if (sameRows) {
    entries.forEach((entry, index) => {
      const data = JSON.stringify(entry);
      if (drawn.get(entry.symbol) !== data || highlight.has(entry.symbol)) body.rows[index].replaceWith(row(entry));
    });
  } else {
    fill(body, entries.map(row));
  }
  drawn.clear();
  visible.clear();
  for (const entry of entries) {
    drawn.set(entry.symbol, JSON.stringify(entry));
    visible.add(entry.symbol);
  }
  labelCells(table);
}

function pageLink(name, label, cursor) {
  const attributes = { class: "button button-quiet button-small", "data-page": name };
  if (name !== "first") attributes.rel = name === "next" ? "next" : "prev";
  if (cursor === null) attributes["aria-disabled"] = "true";
  else {
    const query = queryOf({ q: view.q, limit: view.limit, ...cursor });
    attributes.href = query ? `/?${query}` : "/";
  }
  return h("a", attributes, label);
}

/** The same links the server renders, from the JSON's cursors. */
function renderPager(page, shown) {
  const pager = document.getElementById("pager");
  if (page.first <= 1 && !page.next_after) {
    fill(pager);
    return;
  }
  fill(
    pager,
    pageLink("first", "First", page.first > 1 ? {} : null),
    pageLink("previous", "Previous", page.previous_before ? { before: page.previous_before } : null),
    h("span", { class: "pager-position" }, `${page.first}–${page.first + shown - 1} of ${page.matching}`),
    pageLink("next", "Next", page.next_after ? { after: page.next_after } : null),
  );
}

function render(overview) {
  const { symbols: entries, page } = overview;
  renderRows(entries, page);
  renderPager(page, entries.length);
  highlight.clear();
  document.getElementById("symbol-count").textContent = page.search
    ? `(${page.matching} of ${page.watched})`
    : `(${page.watched})`;
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
      const asked = queryOf(view);
      const overview = await getJSON(asked ? `/ui/data/watchlist?${asked}` : "/ui/data/watchlist");
      // A search typed meanwhile has asked again: its answer is drawn, not this stale one.
      if (asked === queryOf(view)) render(overview);
      else again = true;
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
      return `A ${event.payload?.kind ?? ""} job for ${who} failed${event.payload?.error ? `: ${event.payload.error}` : ""}`;
    default:
      return null;
  }
}

function onEvent(event) {
  if (!REFRESHING_EVENTS.has(event.type)) return;
  // About a symbol on another page: nothing shown here changes.
  if (event.symbol && !visible.has(event.symbol) && !MEMBERSHIP_EVENTS.has(event.type)) return;
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
    input.value = "";
    highlight.add(added);
    await load();
    const elsewhere = visible.has(added) ? "" : ` It is listed on another page: search for ${added} to see it.`;
    setStatus("add-status", `Watching ${added}: its price backfill and first training are queued.${elsewhere}`, "ok");
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

/** Show another page or search: the address follows (pushed for page links, replaced while typing). */
function show(wanted, { push }) {
  view = wanted;
  const query = queryOf(view);
  const url = query ? `/?${query}` : "/";
  if (push) window.history.pushState(null, "", url);
  else window.history.replaceState(null, "", url);
  return load();
}

function searchNow() {
  window.clearTimeout(searchTimer);
  const q = searchInput.value.trim();
  if ((view.q || "").toUpperCase() === q.toUpperCase()) return;
  show({ q, limit: view.limit }, { push: false });
}

setupKeyButton(load);
document.getElementById("search-form").addEventListener("submit", (event) => {
  event.preventDefault();
  searchNow();
});
searchInput.addEventListener("input", () => {
  window.clearTimeout(searchTimer);
  searchTimer = window.setTimeout(searchNow, SEARCH_DELAY_MS);
});
document.getElementById("pager").addEventListener("click", (event) => {
  const link = event.target.closest("a[data-page][href]");
  if (!link || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
  event.preventDefault();
  show(viewOf(new URL(link.href).search), { push: true }).then(() => {
    announce(`Symbols ${document.querySelector("#pager .pager-position")?.textContent ?? ""}`);
  });
});
window.addEventListener("popstate", () => {
  view = viewOf(window.location.search);
  searchInput.value = view.q || "";
  load();
});
document.getElementById("add-form").addEventListener("submit", addSymbol);
table.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-remove]");
  if (button) removeSymbol(button.dataset.remove, button);
});
load();
followEvents({ onEvent, onOffline: load, types: eventTypes() });
window.setInterval(refreshAges, AGE_REFRESH_MS);
