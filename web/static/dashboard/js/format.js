"use strict";
/** Formatting numbers, dates and ages for people, in their own locale. Missing values read "—". */

export const MISSING = "—";

const price = new Intl.NumberFormat(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
const ratio = new Intl.NumberFormat(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
const signed = new Intl.NumberFormat(undefined, {
  minimumFractionDigits: 2,
  maximumFractionDigits: 2,
  signDisplay: "exceptZero",
});
const percent = new Intl.NumberFormat(undefined, { style: "percent", maximumFractionDigits: 0 });
// Trading days are calendar dates without a time zone: format them in UTC so they never shift.
const day = new Intl.DateTimeFormat(undefined, {
  day: "numeric",
  month: "short",
  year: "numeric",
  timeZone: "UTC",
});
const shortDay = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short", timeZone: "UTC" });
const moment = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
const relative = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });

const finite = (value) => typeof value === "number" && Number.isFinite(value);

/** A price with its ISO 4217 currency code when known ("22.68 BRL"): symbols trade in many. */
const withCurrency = (text, currency) => (currency ? `${text} ${currency}` : text);

export const formatPrice = (value, currency = null) =>
  finite(value) ? withCurrency(price.format(value), currency) : MISSING;
export const formatRatio = (value) => (finite(value) ? ratio.format(value) : MISSING);
export const formatSigned = (value, currency = null) =>
  finite(value) ? withCurrency(signed.format(value), currency) : MISSING;
export const formatPercent = (value) => (finite(value) ? percent.format(value) : MISSING);

/** "98.10 – 102.30 USD", or "—" when a bound is unknown (too few errors to calibrate it yet). */
export function formatInterval(lower, upper, currency = null) {
  return finite(lower) && finite(upper)
    ? withCurrency(`${price.format(lower)} – ${price.format(upper)}`, currency)
    : MISSING;
}

/** An ISO date ("2025-05-30") as "30 May 2025". */
export function formatDay(iso, { short = false } = {}) {
  if (!iso) return MISSING;
  const date = new Date(`${iso}T00:00:00Z`);
  return Number.isNaN(date.getTime()) ? iso : (short ? shortDay : day).format(date);
}

/** An ISO timestamp in the reader's time zone. */
export function formatMoment(iso) {
  if (!iso) return MISSING;
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : moment.format(date);
}

/** How long ago an ISO timestamp was: "5 minutes ago", "yesterday". */
export function formatAge(iso, now = Date.now()) {
  if (!iso) return MISSING;
  const then = new Date(iso).getTime();
  if (Number.isNaN(then)) return MISSING;
  const seconds = Math.round((then - now) / 1000);
  const steps = [
    [60, "second"],
    [60, "minute"],
    [24, "hour"],
    [7, "day"],
    [4.35, "week"],
    [12, "month"],
    [Number.POSITIVE_INFINITY, "year"],
  ];
  let value = seconds;
  for (const [size, unit] of steps) {
    if (Math.abs(value) < size) {
      return unit === "second" && Math.abs(value) < 45
        ? "just now"
        : relative.format(Math.round(value), unit);
    }
    value /= size;
  }
  return MISSING;
}

/** Seconds as "42 s" or "3 min 5 s". */
export function formatDuration(seconds) {
  if (!finite(seconds)) return MISSING;
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`;
  const minutes = Math.floor(seconds / 60);
  return `${minutes} min ${Math.round(seconds % 60)} s`;
}
