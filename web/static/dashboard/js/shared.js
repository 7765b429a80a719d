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
 * The backtest's verdict against the naive forecast on the same windows. Theil's U2 (RMSE / naive
 * RMSE) says which came closer and the Diebold-Mariano p-value whether the difference is more than
 * noise. MASE alone cannot say it: it is scaled by the one-step in-sample naive error, so even the
 * naive forecast scores well above 1 over five steps.
 */
function verdict(skill) {
  if (!skill || typeof skill.theil_u2 !== "number") return null;
  const significant = typeof skill.dm_p_value === "number" && skill.dm_p_value < 0.05;
  if (!significant) return "ties";
  return skill.theil_u2 < 1 ? "beats" : "worse";
}

const VERDICTS = {
  beats: ["beats naive", "good"],
  worse: ["worse than naive", "bad"],
  ties: ["no better than naive", "neutral"],
};

export function skillBadge(skill) {
  const [text, tone] = VERDICTS[verdict(skill)] ?? ["skill unknown", "neutral"];
  return badge(text, tone);
}

export const skillText = (skill) => `MASE ${formatRatio(skill?.mase)} · U2 ${formatRatio(skill?.theil_u2)}`;

export function modelLabel(model) {
  if (!model) return "naive baseline";
  return model.model_name ? `${model.model_name} (v${model.id})` : `${model.kind} v${model.id}`;
}
