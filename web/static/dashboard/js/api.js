"use strict";
/**
 * Talking to the stockcast API: JSON in and out, RFC 9457 problem details turned into errors
 * whose message is the server's own explanation, and the API key read from sessionStorage.
 *
 * The key lives in sessionStorage only: it is gone when the tab closes and is never written to
 * a cookie or to localStorage, so it is sent only when this page sends it.
 */

const KEY_STORAGE = "stockcast.apiKey";

/** A refused or failed request; `message` is the problem's `detail` (or its title). */
export class ApiError extends Error {
  constructor(status, problem, url) {
    const detail = problem && (problem.detail || problem.title);
    super(detail || `The server answered ${status} for ${url}`);
    this.name = "ApiError";
    this.status = status;
    this.problem = problem ?? null;
    this.url = url;
  }
}

export function storedKey() {
  try {
    return window.sessionStorage.getItem(KEY_STORAGE) || null;
  } catch {
    return null; // storage disabled: the key is asked for again
  }
}

export function storeKey(key) {
  try {
    if (key) window.sessionStorage.setItem(KEY_STORAGE, key);
    else window.sessionStorage.removeItem(KEY_STORAGE);
  } catch {
    /* storage disabled: nothing to keep */
  }
}

async function problemOf(response) {
  const type = response.headers.get("content-type") || "";
  if (!type.includes("json")) return null;
  try {
    return await response.json();
  } catch {
    return null;
  }
}

/**
 * One request. `cache: "no-cache"` makes the browser revalidate (the latest forecast is sent with
 * an ETag and a max-age): a live update must never be answered from a stale copy.
 */
export async function request(method, url, { body, signal } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const key = storedKey();
  if (key) headers["X-API-Key"] = key;
  let response;
  try {
    response = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-cache",
      credentials: "same-origin",
      signal,
    });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, { detail: "The server cannot be reached; check your connection." }, url);
  }
  if (!response.ok) throw new ApiError(response.status, await problemOf(response), url);
  const data = response.status === 204 ? null : await response.json();
  return { status: response.status, data, headers: response.headers };
}

export async function getJSON(url, options) {
  return (await request("GET", url, options)).data;
}

/** The API path of a symbol (`^GSPC` must be escaped in a URL). */
export const symbolPath = (symbol) => `/symbols/${encodeURIComponent(symbol)}`;
