// Metric charts shared by the compare and metric pages: series requests, traces, smoothing, layout.
//
// plotly.js is loaded by a classic <script> before these modules run (window.Plotly). Series
// arrive M4-downsampled from /ui/api/metrics/series; NaN and infinities arrive apart and are drawn
// as markers at the plot's top (NaN "x", +inf triangle up) and bottom (-inf triangle down) edge.
// plotly reads a subset of HTML in names and labels, so every user string goes through plotlyText.

import { formatNumber, getJSON } from "./common.js";

export const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
  "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];

/** The colour of the i-th run. */
export function colorOf(i) { return PALETTE[i % PALETTE.length]; }

/** Parse a <script type="application/json"> block. */
export function readData(id) { return JSON.parse(document.getElementById(id).textContent); }

/** Escape a user string for plotly, which interprets tags such as <b> or <a> in text. */
export function plotlyText(value) {
  return String(value).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/** Colour the .swatch of each run legend entry (data-index = run position). */
export function paintSwatches(root = document) {
  for (const swatch of root.querySelectorAll(".swatch[data-index]")) {
    swatch.style.background = colorOf(Number(swatch.dataset.index));
  }
}

/** True when plotly.js loaded; otherwise show why in `messageNode`. */
export function plotlyReady(messageNode) {
  if (window.Plotly) return true;
  messageNode.textContent = "Charts need plotly.js, which this server does not have: pip install 'fitscribe[server]'.";
  messageNode.hidden = false;
  return false;
}

/** The x-axis, log-y and smoothing controls of a chart page (ids from _charts.html axis_controls). */
export class AxisControls {
  constructor() {
    this.axis = document.getElementById("x-axis");
    this.logY = document.getElementById("log-y");
    this.smoothing = document.getElementById("smoothing");
    this.smoothingValue = document.getElementById("smoothing-value");
    this.smoothing.addEventListener("input", () => { this.smoothingValue.textContent = this.smoothing.value; });
  }

  /** The chart options they select: {axis, logY, smoothing}. */
  options() {
    return { axis: this.axis.value, logY: this.logY.checked, smoothing: Number(this.smoothing.value) };
  }
}

/** Points to ask for a chart `node`: about twice its width in pixels. */
export function pointsFor(node) {
  return Math.max(200, Math.min(20000, Math.round(2 * (node.clientWidth || 600))));
}

/** Fetch one downsampled series per run: `range` = {min_step, max_step} or {x_min, x_max}. */
export function fetchSeries(runIds, key, { axis = "step", points = 2000, range = null, signal = undefined } = {}) {
  const query = new URLSearchParams({ run_ids: runIds.join(","), key, x: axis, points: String(points) });
  for (const [name, value] of Object.entries(range || {})) {
    if (value !== null && value !== undefined) query.set(name, String(value));
  }
  const url = `/ui/api/metrics/series?${query}`;
  return signal ? fetch(url, { signal, headers: { Accept: "application/json" } }).then(answerJSON) : getJSON(url);
}

async function answerJSON(response) {
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new Error((data && data.message) || `${response.status} ${response.statusText}`);
  return data;
}

/** Exponential moving average with TensorBoard's debiasing; weight 0 returns the values. */
export function ema(values, weight) {
  if (!weight) return values;
  const out = new Array(values.length);
  let last = 0;
  let correction = 1;
  for (let i = 0; i < values.length; i++) {
    last = last * weight + (1 - weight) * values[i];
    correction *= weight;
    out[i] = last / (1 - correction);
  }
  return out;
}

const AXIS_TITLES = { step: "step", time: "wall time (UTC)", relative: "relative time (s)" };

function edgeMarkers(s, name, color, group, kind, y, symbol) {
  const xs = s[kind];
  if (!xs || !xs.length) return null;
  const label = { nan: "NaN", pos_inf: "+inf", neg_inf: "-inf" }[kind];
  return {
    type: "scatter", mode: "markers", x: xs, y: xs.map(() => y), yaxis: "y2", legendgroup: group,
    showlegend: false, name: `${name} (${label})`, cliponaxis: false,
    marker: { symbol, size: 10, color, line: { width: 1.5, color } },
    meta: { nonfinite: kind },
    hovertemplate: `${label} at %{x}<extra>%{fullData.name}</extra>`,
  };
}

/**
 * Build plotly traces for an answer of /ui/api/metrics/series.
 * runs: [{run_id, name}] in legend order; options: {smoothing, axis}.
 */
export function buildTraces(answer, runs, { smoothing = 0, axis = "step" } = {}) {
  const traces = [];
  const byId = new Map(answer.series.map((s) => [s.run_id, s]));
  runs.forEach((run, i) => {
    const s = byId.get(run.run_id);
    if (!s) return;
    const color = colorOf(i);
    const name = plotlyText(run.name);
    const group = run.run_id;
    const custom = s.steps || null;
    const hover = custom ? "%{y:.6g} · step %{customdata}<extra>%{fullData.name}</extra>"
      : "%{y:.6g} · step %{x}<extra>%{fullData.name}</extra>";
    const base = { type: "scatter", mode: s.x.length === 1 ? "markers" : "lines", x: s.x, legendgroup: group,
      customdata: custom, line: { color, width: 1.5 }, marker: { color, size: 6 } };
    if (smoothing > 0) {
      traces.push({ ...base, y: s.y, name, opacity: 0.25, showlegend: false, hoverinfo: "skip", hovertemplate: null });
      traces.push({ ...base, y: ema(s.y, smoothing), name, hovertemplate: hover });
    } else {
      traces.push({ ...base, y: s.y, name, hovertemplate: hover });
    }
    for (const [kind, y, symbol] of [["nan", 1, "x"], ["pos_inf", 1, "triangle-up"], ["neg_inf", 0, "triangle-down"]]) {
      const marker = edgeMarkers(s, name, color, group, kind, y, symbol);
      if (marker) traces.push(marker);
    }
  });
  return traces;
}

/**
 * True when every run of the answer has at most one point of the metric (and one has it): a
 * final score such as autologged training metrics, better read as bars than as lone markers.
 */
export function isSingleValue(answer) {
  return answer.series.some((s) => s.total > 0) && answer.series.every((s) => s.total <= 1);
}

/** One bar per run for single-value metrics; NaN/inf shown as a labelled empty bar. */
export function buildBars(answer, runs) {
  const byId = new Map(answer.series.map((s) => [s.run_id, s]));
  const names = [], values = [], colors = [], labels = [];
  runs.forEach((run, i) => {
    const s = byId.get(run.run_id);
    if (!s || !s.total) return;
    const kind = ["nan", "pos_inf", "neg_inf"].find((k) => s[k] && s[k].length);
    names.push(plotlyText(run.name));
    values.push(kind ? null : s.y[0]);
    colors.push(colorOf(i));
    labels.push(kind ? { nan: "NaN", pos_inf: "+inf", neg_inf: "-inf" }[kind] : formatNumber(s.y[0]));
  });
  return [{
    type: "bar", x: names, y: values, text: labels, textposition: "outside", cliponaxis: false,
    marker: { color: colors }, hovertemplate: "%{text}<extra>%{x}</extra>", showlegend: false,
  }];
}

/** The layout of a single-value (bar) chart. */
export function barLayout(key, { logY = false, height = 300 } = {}) {
  return {
    height, margin: { l: 60, r: 20, t: 36, b: 50 },
    xaxis: { type: "category", automargin: true },
    yaxis: { title: { text: plotlyText(key) }, type: logY ? "log" : "linear", automargin: true },
    showlegend: false, hovermode: "closest", uirevision: "keep",
  };
}

/** The layout of a metric chart. */
export function chartLayout(key, { axis = "step", logY = false, height = 300, xRange = null } = {}) {
  const xaxis = { title: { text: AXIS_TITLES[axis] }, type: axis === "time" ? "date" : "linear", automargin: true };
  if (xRange) xaxis.range = xRange;
  else xaxis.autorange = true;
  return {
    height, margin: { l: 60, r: 20, t: 36, b: 50 },
    xaxis, yaxis: { title: { text: plotlyText(key) }, type: logY ? "log" : "linear", automargin: true },
    yaxis2: { overlaying: "y", range: [-0.02, 1.02], visible: false, fixedrange: true },
    showlegend: true, legend: { orientation: "h", x: 0, y: 1.02, yanchor: "bottom" },
    hovermode: "closest", uirevision: "keep",
  };
}

export const PLOT_CONFIG = { responsive: true, displaylogo: false, modeBarButtonsToRemove: ["sendDataToCloud"] };

/** Draw (or redraw) a chart and mark its node ready once plotly has finished. */
export async function draw(node, traces, layout) {
  await window.Plotly.react(node, traces, layout, PLOT_CONFIG);
  node.dataset.ready = "1";
  node.dataset.nonfinite = String(traces.filter((t) => t.meta && t.meta.nonfinite).reduce((n, t) => n + t.x.length, 0));
}

/** Describe how much of each series is shown: "1,998 of 1,000,000 points". */
export function seriesSummary(s) {
  const shown = s.x.length;
  let text = s.downsampled ? `${shown.toLocaleString("en")} of ${s.total.toLocaleString("en")} points (first/min/max/last per bucket)`
    : `${s.total.toLocaleString("en")} points`;
  if (s.nonfinite) text += `, ${s.nonfinite.toLocaleString("en")} NaN/inf`;
  return text;
}

/** A metric summary value ({last, min, max}) as a number, or null when missing or not finite. */
export function finiteOf(value) {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

export { formatNumber };
