"use strict";
/** Pieces both pages render the same way: status badges, model skill, job summaries. */

import { h } from "./dom.js";
import { formatRatio } from "./format.js";

const JOB_TONES = {
  succeeded: "good",
  failed: "bad",
  abandoned: "bad",
  missed: "bad",
  running: "warn",
  queued: "neutral",
  cancelled: "neutral",
};
const MODEL_TONES = { champion: "good", rejected: "bad", challenger: "warn", retired: "neutral" };

export function badge(text, tone = "neutral") {
  return h("span", { class: ["badge", tone !== "neutral" && `badge-${tone}`] }, text);
}

export const jobBadge = (status) => badge(status, JOB_TONES[status] ?? "neutral");
export const modelBadge = (status) => badge(status, MODEL_TONES[status] ?? "neutral");

/**
 * Whether a backtest beat the naive forecast: MASE below 1 (or Theil's U2 below 1 when MASE is
 * unknown); null when neither is known.
 */
function beatsNaive(skill) {
  if (!skill) return null;
  if (typeof skill.mase === "number") return skill.mase < 1;
  if (typeof skill.theil_u2 === "number") return skill.theil_u2 < 1;
  return null;
}

export function skillBadge(skill) {
  const beats = beatsNaive(skill);
  if (beats === null) return badge("skill unknown");
  return beats ? badge("beats naive", "good") : badge("not better than naive", "bad");
}

export const skillText = (skill) => `MASE ${formatRatio(skill?.mase)} · U2 ${formatRatio(skill?.theil_u2)}`;

export function modelLabel(model) {
  if (!model) return "naive baseline";
  return model.model_name ? `${model.model_name} (v${model.id})` : `${model.kind} v${model.id}`;
}
