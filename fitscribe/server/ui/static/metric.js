// The metric page: one metric of several runs on one big chart. Zooming re-fetches the visible range
// at the chart's resolution, so zooming far enough shows every logged point.

import { showMessage } from "./common.js";
import {
  AxisControls, buildTraces, chartLayout, draw, fetchSeries, paintSwatches, plotlyReady, pointsFor, readData, seriesSummary,
} from "./charts.js";

const data = readData("metric-data");
const runs = data.runs;
const runIds = runs.map((r) => r.run_id);
const key = data.key;
const node = document.getElementById("metric-chart");
const message = document.getElementById("message");
const status = document.getElementById("chart-status");
const controls = new AxisControls();
const metricSelect = document.getElementById("metric-select");
const resetZoom = document.getElementById("reset-zoom");
const state = { answer: null, xRange: null, request: null, fetches: 0, timer: null, view: 0 };
window.__timings = { start: performance.now() };

/** A plotly x-axis value as a number: date axes report "YYYY-MM-DD HH:MM:SS.sss" strings (UTC). */
function toNumber(value, axis) {
  if (typeof value === "number") return value;
  if (axis !== "time") return Number(value);
  const [day, time = "00:00:00"] = String(value).split(" ");
  return Date.parse(`${day}T${time}Z`);
}

/** The query range for the visible x range, widened by 2% so lines run to the plot's edges. */
function rangeQuery(xRange, axis) {
  if (!xRange) return null;
  const [lo, hi] = xRange.map((v) => toNumber(v, axis));
  const pad = (hi - lo) * 0.02;
  if (axis === "step") return { min_step: Math.floor(lo - pad), max_step: Math.ceil(hi + pad) };
  return { x_min: lo - pad, x_max: hi + pad };
}

function describe(answer) {
  const byId = new Map(answer.series.map((s) => [s.run_id, s]));
  for (const item of document.querySelectorAll("#run-legend li")) {
    const s = byId.get(item.dataset.runId);
    item.querySelector(".series-info").textContent = s ? seriesSummary(s) : "";
  }
  const range = state.xRange ? "visible range" : "whole history";
  status.textContent = `Showing the ${range}; zoom in for more detail, down to every logged point.`;
}

async function load() {
  if (state.request) state.request.abort();
  const request = new AbortController();
  state.request = request;
  const opts = controls.options();
  state.fetches += 1;
  node.dataset.fetches = String(state.fetches);
  node.dataset.ready = "";
  window.__timings.request = performance.now();
  try {
    state.answer = await fetchSeries(runIds, key, {
      axis: opts.axis, points: pointsFor(node), range: rangeQuery(state.xRange, opts.axis), signal: request.signal,
    });
  } catch (error) {
    if (error.name === "AbortError") return;
    throw error;
  }
  window.__timings.received = performance.now();
  await redraw();
  window.__timings.drawn = performance.now();
  describe(state.answer);
  document.body.dataset.ready = "1";
}

async function redraw() {
  const opts = controls.options();
  const layout = chartLayout(key, { ...opts, height: 560, xRange: state.xRange });
  layout.uirevision = String(state.view); // a new view (axis change, reset) drops the user's zoom
  await draw(node, buildTraces(state.answer, runs, opts), layout);
}

function onRelayout(event) {
  let xRange = state.xRange;
  if (event["xaxis.autorange"]) xRange = null;
  else if ("xaxis.range[0]" in event) xRange = [event["xaxis.range[0]"], event["xaxis.range[1]"]];
  else if (Array.isArray(event["xaxis.range"])) xRange = event["xaxis.range"];
  else return; // y-only changes (log toggle, y zoom): nothing to fetch
  state.xRange = xRange;
  clearTimeout(state.timer);
  state.timer = setTimeout(() => load().catch((e) => showMessage(message, e.message)), 120);
}

async function main() {
  paintSwatches();
  if (!plotlyReady(message)) return;
  controls.axis.value = data.x;
  metricSelect.addEventListener("change", () => {
    const query = new URLSearchParams({ run_ids: runIds.join(","), key: metricSelect.value, x: controls.axis.value });
    window.location.assign(`/metric?${query}`);
  });
  const newView = () => {
    state.xRange = null;
    state.view += 1;
    load().catch((e) => showMessage(message, e.message));
  };
  controls.axis.addEventListener("change", newView);
  controls.logY.addEventListener("change", () => {
    window.Plotly.relayout(node, { "yaxis.type": controls.logY.checked ? "log" : "linear", "yaxis.autorange": true });
  });
  controls.smoothing.addEventListener("input", () => {
    if (state.answer) redraw().catch((e) => showMessage(message, e.message));
  });
  resetZoom.addEventListener("click", newView);
  await load();
  node.on("plotly_relayout", onRelayout);
}

main().catch((error) => showMessage(message, error.message));
