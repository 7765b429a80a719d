"use strict";
/**
 * Asking for the API key: a modal dialog, opened from the header button or when the server
 * refuses a change with 401. A refused change is retried once with the key just entered.
 */

import { ApiError, request, storedKey, storeKey } from "./api.js";

function parts() {
  return {
    dialog: document.getElementById("key-dialog"),
    input: document.getElementById("key-input"),
    reason: document.getElementById("key-dialog-reason"),
    state: document.getElementById("key-dialog-state"),
    forget: document.getElementById("key-forget"),
    button: document.getElementById("key-button"),
  };
}

function refreshButton() {
  const { button } = parts();
  if (!button) return;
  const held = Boolean(storedKey());
  button.textContent = held ? "API key ✓" : "API key";
  button.setAttribute("aria-label", held ? "API key (set for this tab)" : "API key (not set)");
}

/**
 * Open the dialog; resolves true when a key was entered (and stored), false otherwise.
 * `reason` is shown as an alert at the top (the server's message after a refusal).
 */
function askForKey(reason = "") {
  const { dialog, input, reason: reasonBox, state, forget } = parts();
  reasonBox.textContent = reason;
  reasonBox.hidden = !reason;
  const held = Boolean(storedKey());
  state.textContent = held
    ? "A key is set for this tab; enter another to replace it."
    : "No key is set for this tab.";
  forget.hidden = !held;
  input.value = "";
  return new Promise((resolve) => {
    dialog.returnValue = "cancel";
    dialog.addEventListener(
      "close",
      () => {
        // A method="dialog" form sets returnValue to the button that closed it; Escape leaves it.
        const choice = dialog.returnValue;
        const key = input.value.trim();
        input.value = "";
        if (choice === "save" && key) {
          storeKey(key);
          refreshButton();
          resolve(true);
          return;
        }
        if (choice === "forget") storeKey(null);
        refreshButton();
        resolve(false);
      },
      { once: true },
    );
    dialog.showModal();
    input.focus();
  });
}

/**
 * Wire the header's "API key" button; `onChange` runs after a key was entered or forgotten
 * there (the page refetches: reads may need the key too).
 */
export function setupKeyButton(onChange = () => {}) {
  const { button } = parts();
  refreshButton();
  button?.addEventListener("click", async () => {
    const before = storedKey();
    await askForKey();
    if (storedKey() !== before) onChange();
  });
}

/**
 * Send a change. If the server refuses it for want of a key, ask for one and try once more;
 * if the user declines, the refusal is thrown so the caller shows the server's message.
 */
export async function sendChange(method, url, body) {
  try {
    return await request(method, url, { body });
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 401) throw error;
    if (!(await askForKey(error.message))) throw error;
    return request(method, url, { body });
  }
}
