"use strict";
/**
 * Following the service live: one EventSource on /events. The server names each message after
 * its event type (`event: forecast.ready`), so a listener is added per type; the browser resumes
 * after a dropped connection with Last-Event-ID, and ids already seen are ignored.
 *
 * The header shows the state of the stream (connecting, live, reconnecting, offline) as text,
 * not colour alone.
 */

const LABELS = {
  connecting: "Connecting…",
  live: "Live",
  reconnecting: "Reconnecting…",
  offline: "Offline (not updating)",
};
// After the browser gives up (the server refused the stream), try again this much later.
const RETRY_AFTER_CLOSE_MS = 30_000;

function setState(state) {
  const indicator = document.getElementById("live-status");
  if (!indicator) return;
  indicator.dataset.state = state;
  indicator.querySelector(".live-text").textContent = LABELS[state];
  indicator.title = state === "live" ? "Updates arrive as they happen" : LABELS[state];
}

/** Briefly mark the indicator when an update was applied (and say when it was). */
export function flashUpdate(text) {
  const indicator = document.getElementById("live-status");
  if (!indicator) return;
  indicator.classList.add("flash");
  indicator.querySelector(".live-text").textContent = text;
  window.clearTimeout(flashUpdate.timer);
  flashUpdate.timer = window.setTimeout(() => {
    indicator.classList.remove("flash");
    setState(indicator.dataset.state);
  }, 4000);
}

/**
 * Subscribe to the event stream. `onEvent` receives each event once ({id, type, symbol,
 * payload, created_at}); `symbol` narrows the stream server-side.
 */
export function followEvents({ onEvent, symbol = null, types = [] }) {
  const seen = new Set();
  let source = null;

  const handle = (message) => {
    let event;
    try {
      event = JSON.parse(message.data);
    } catch {
      return; // not one of ours
    }
    if (seen.has(event.id)) return;
    seen.add(event.id);
    if (seen.size > 2000) seen.clear();
    onEvent(event);
  };

  const open = () => {
    const query = symbol ? `?symbol=${encodeURIComponent(symbol)}` : "";
    setState("connecting");
    source = new EventSource(`/events${query}`);
    source.addEventListener("open", () => setState("live"));
    source.addEventListener("error", () => {
      if (source.readyState === EventSource.CLOSED) {
        setState("offline");
        window.setTimeout(open, RETRY_AFTER_CLOSE_MS);
      } else {
        setState("reconnecting");
      }
    });
    source.addEventListener("message", handle);
    for (const type of types) source.addEventListener(type, handle);
  };

  open();
  // Close on leaving (frees the server's stream at once) and reopen if the page comes back
  // from the back/forward cache.
  window.addEventListener("pagehide", () => source?.close());
  window.addEventListener("pageshow", (event) => {
    if (event.persisted) open();
  });
  return { close: () => source?.close() };
}

/** The event types the server streams, as the page was rendered with them. */
export function eventTypes() {
  return (document.body.dataset.eventTypes || "").split(" ").filter(Boolean);
}
