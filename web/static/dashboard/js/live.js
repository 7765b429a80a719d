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

/**
 * Briefly show what was just updated next to the indicator. Visual only: screen readers hear it
 * from the page's announcer, and the indicator's own (status) text is left to the stream state.
 */
export function flashUpdate(text) {
  const indicator = document.getElementById("live-status");
  if (!indicator) return;
  let note = indicator.querySelector(".live-update");
  if (!note) {
    note = document.createElement("span");
    note.className = "live-update";
    note.setAttribute("aria-hidden", "true");
    indicator.append(note);
  }
  note.textContent = `· ${text}`;
  window.clearTimeout(flashUpdate.timer);
  flashUpdate.timer = window.setTimeout(() => {
    note.textContent = "";
  }, 4000);
}

/**
 * Subscribe to the event stream. `onEvent` receives each event once ({id, type, symbol,
 * payload, created_at}); `symbol` narrows the stream server-side. `onOffline` is called each
 * time the stream is refused or lost for good (reads need a key an EventSource cannot send, or
 * the server is down), so the page can refetch instead of going stale.
 */
export function followEvents({ onEvent, onOffline = () => {}, symbol = null, types = [] }) {
  let source = null;
  let lastId = null;

  const handle = (message) => {
    let event;
    try {
      event = JSON.parse(message.data);
    } catch {
      return; // not one of ours
    }
    // The server delivers in id order, replays included, so anything not newer was seen.
    if (lastId !== null && event.id <= lastId) return;
    lastId = event.id;
    onEvent(event);
  };

  const open = () => {
    // The browser resumes a dropped stream with Last-Event-ID itself; a stream opened anew
    // after it gave up resumes from the last event seen with ?after=.
    const query = new URLSearchParams();
    if (symbol) query.set("symbol", symbol);
    if (lastId !== null) query.set("after", String(lastId));
    setState("connecting");
    const search = query.toString();
    source = new EventSource(search ? `/events?${search}` : "/events");
    source.addEventListener("open", () => setState("live"));
    source.addEventListener("error", () => {
      if (source.readyState === EventSource.CLOSED) {
        setState("offline");
        onOffline();
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

/**
 * The market replay's date in the header (rendered by the server) moves one session every few
 * seconds: keep it current from `GET /replay` until the replay reaches the end of its data.
 */
const REPLAY_REFRESH_MS = 3_000;
const replayBadge = document.getElementById("replay-status");
if (replayBadge && replayBadge.dataset.finished !== "true") {
  const timer = window.setInterval(async () => {
    try {
      const response = await fetch("/replay", { headers: { Accept: "application/json" } });
      if (!response.ok) return;
      const replay = await response.json();
      if (replay.label) replayBadge.textContent = replay.label;
      if (replay.finished) {
        replayBadge.dataset.finished = "true";
        window.clearInterval(timer);
      }
    } catch {
      // Offline for a moment: the next tick tries again.
    }
  }, REPLAY_REFRESH_MS);
}
