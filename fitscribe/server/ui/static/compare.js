// The compare page: "only differences" for params, one overlaid chart per metric (x axis, log y,
// smoothing), parallel coordinates of params against a metric, and a scatter of two fields.

import { el, showMessage } from "./common.js";
import {
  AxisControls, barLayout, buildBars, buildTraces, chartLayout, colorOf, draw, fetchSeries, finiteOf, isSingleValue, paintSwatches,
  plotlyReady, plotlyText, pointsFor, readData,
} from "./charts.js";

const data = readData("compare-data");
const runs = data.runs;
const runIds = runs.map((r) => r.run_id);
const summary = data.summary;
const message = document.getElementById("message");
const controls = new AxisControls();
const answers = new Map(); // metric key -> last series answer (smoothing and log y redraw from it)
const CONCURRENT = 3;
window.__timings = { start: performance.now() };

// -- params: only differences ---------------------------------------------------------------------
function applyOnlyDifferences() {
  const only = document.getElementById("only-diff").checked;
  for (const row of document.querySelectorAll("#params-table .param-row")) {
    row.hidden = only && row.dataset.differs !== "1";
  }
}

// -- metric charts -----------------------------------------------------------------------------------
const FIRST_CHARTS = 24; // SVG charts stay quick in this number; more are drawn on request
const nodes = new Map(); // metric key -> chart node, for every chart on the page

function addCharts(keys) {
  const grid = document.getElementById("charts");
  const added = new Map();
  for (const key of keys) {
    const link = `/metric?${new URLSearchParams({ run_ids: runIds.join(","), key })}`;
    const node = el("div", { class: "chart", dataset: { key } });
    grid.append(el("figure", { class: "chart-card" },
      el("figcaption", {}, el("a", { href: link, class: "mono", text: key })), node));
    added.set(key, node);
    nodes.set(key, node);
  }
  return added;
}

function firstCharts() {
  const keys = data.metric_keys;
  if (!keys.length) {
    document.getElementById("charts").append(el("p", { class: "empty", text: "These runs have no metrics to plot." }));
  }
  if (keys.length > FIRST_CHARTS) {
    const more = el("button", { type: "button", id: "more-charts", text: `Show all ${keys.length} metric charts` });
    more.addEventListener("click", () => {
      more.remove();
      drawCharts(addCharts(keys.slice(FIRST_CHARTS)), true);
    });
    document.getElementById("charts").after(more);
  }
  return addCharts(keys.slice(0, FIRST_CHARTS));
}

async function drawChart(key, node, refetch) {
  const opts = controls.options();
  let answer = answers.get(key);
  if (refetch || !answer) {
    answer = await fetchSeries(runIds, key, { axis: opts.axis, points: pointsFor(node) });
    answers.set(key, answer);
  }
  if (isSingleValue(answer)) {  // a final score per run: bars, not lone markers on a step axis
    node.dataset.kind = "bars";
    await draw(node, buildBars(answer, runs), barLayout(key, opts));
  } else {
    node.dataset.kind = "lines";
    await draw(node, buildTraces(answer, runs, opts), chartLayout(key, { ...opts, xRange: null }));
  }
}

async function drawCharts(charts, refetch) {
  const queue = [...charts.entries()];
  const worker = async () => {
    while (queue.length) {
      const [key, node] = queue.shift();
      try {
        await drawChart(key, node, refetch);
      } catch (error) {
        node.dataset.ready = "error";
        showMessage(message, `Chart of ${key}: ${error.message}`);
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENT }, worker));
}

// -- parallel coordinates --------------------------------------------------------------------------
const MAX_DIMENSIONS = 12;

function isNumeric(text) { return text !== "" && text !== null && Number.isFinite(Number(text)); }

/** Params that at least two of `rows` have and that differ among the rows: numeric ones first. */
function differingParams(rows) {
  const keys = summary.param_keys.filter((k) => {
    const present = rows.map((r) => r.params[k]).filter((v) => v !== undefined);
    return present.length >= 2 && new Set(rows.map((r) => r.params[k])).size > 1;
  });
  const numeric = (k) => rows.every((r) => r.params[k] === undefined || isNumeric(r.params[k]));
  return [...keys.filter(numeric), ...keys.filter((k) => !numeric(k))];
}

function paramDimension(key, rows) {
  const values = rows.map((r) => r.params[key]);
  if (values.every((v) => v !== undefined && isNumeric(v))) {
    return { label: plotlyText(key), values: values.map(Number) };
  }
  const shown = values.map((v) => (v === undefined ? "—" : v));
  const categories = [...new Set(shown)].sort();
  return {
    label: plotlyText(key), values: shown.map((v) => categories.indexOf(v)),
    tickvals: categories.map((_, i) => i), ticktext: categories.map((c) => plotlyText(c.length > 24 ? `${c.slice(0, 23)}…` : c)),
  };
}

function drawParcoords() {
  const select = document.getElementById("parcoords-metric");
  const node = document.getElementById("parcoords");
  const note = document.getElementById("parcoords-note");
  const metric = select.value;
  if (!metric) {
    node.replaceChildren(el("p", { class: "empty", text: "No metric to plot." }));
    node.dataset.ready = "1";
    return Promise.resolve();
  }
  const rows = summary.runs.filter((r) => r.metrics[metric] && finiteOf(r.metrics[metric].last) !== null);
  const differing = differingParams(rows);
  const notes = [];
  if (rows.length < summary.runs.length) notes.push(`${summary.runs.length - rows.length} run(s) without a finite ${metric} are left out.`);
  if (differing.length > MAX_DIMENSIONS) notes.push(`Showing ${MAX_DIMENSIONS} of ${differing.length} differing parameters.`);
  if (!differing.length) notes.push("No parameter differs between these runs.");
  note.textContent = notes.join(" ");
  note.hidden = !notes.length;
  const values = rows.map((r) => r.metrics[metric].last);
  const dimensions = differing.slice(0, MAX_DIMENSIONS).map((k) => paramDimension(k, rows));
  dimensions.push({ label: plotlyText(metric), values });
  const trace = { type: "parcoords", dimensions, line: { color: values, colorscale: "Viridis", showscale: true } };
  return draw(node, [trace], { height: 360, margin: { l: 70, r: 70, t: 50, b: 30 } });
}

// -- scatter -----------------------------------------------------------------------------------------
function fieldValue(run, field) {
  const [kind, key] = [field.slice(0, field.indexOf(":")), field.slice(field.indexOf(":") + 1)];
  if (kind === "param") {
    const value = run.params[key];
    if (value === undefined) return null;
    return isNumeric(value) ? Number(value) : value;
  }
  const [metric, stat] = [key.slice(0, key.lastIndexOf("@")), key.slice(key.lastIndexOf("@") + 1)];
  return run.metrics[metric] ? finiteOf(run.metrics[metric][stat]) : null;
}

function fieldLabel(field) {
  const [kind, key] = [field.slice(0, field.indexOf(":")), field.slice(field.indexOf(":") + 1)];
  if (kind === "param") return `param ${key}`;
  const at = key.lastIndexOf("@");
  return `${key.slice(0, at)} (${key.slice(at + 1)})`;
}

function fillFieldSelect(select, preferred) {
  const groups = [
    ["Parameters", summary.param_keys.map((k) => [`param:${k}`, k])],
    ["Metrics", summary.metric_keys.flatMap((k) => ["last", "min", "max"].map((s) => [`metric:${k}@${s}`, `${k} (${s})`]))],
  ];
  for (const [label, items] of groups) {
    if (!items.length) continue;
    select.append(el("optgroup", { label }, items.map(([value, text]) => el("option", { value, text }))));
  }
  if (preferred) select.value = preferred;
}

function drawScatter() {
  const node = document.getElementById("scatter");
  const fx = document.getElementById("scatter-x").value;
  const fy = document.getElementById("scatter-y").value;
  if (!fx || !fy) {
    node.replaceChildren(el("p", { class: "empty", text: "Nothing to plot: these runs have no params or metrics." }));
    node.dataset.ready = "1";
    return Promise.resolve();
  }
  const points = summary.runs.map((r, i) => ({ x: fieldValue(r, fx), y: fieldValue(r, fy), name: r.name, i }))
    .filter((p) => p.x !== null && p.y !== null);
  const categorical = (axis) => points.some((p) => typeof p[axis] === "string");
  const trace = {
    type: "scatter", mode: "markers", x: points.map((p) => (typeof p.x === "string" ? plotlyText(p.x) : p.x)),
    y: points.map((p) => (typeof p.y === "string" ? plotlyText(p.y) : p.y)),
    text: points.map((p) => plotlyText(p.name)), marker: { size: 11, color: points.map((p) => colorOf(p.i)) },
    hovertemplate: "%{text}<br>x: %{x}<br>y: %{y}<extra></extra>",
  };
  const layout = {
    height: 360, margin: { l: 70, r: 20, t: 20, b: 60 }, hovermode: "closest",
    xaxis: { title: { text: plotlyText(fieldLabel(fx)) }, type: categorical("x") ? "category" : "linear", automargin: true },
    yaxis: { title: { text: plotlyText(fieldLabel(fy)) }, type: categorical("y") ? "category" : "linear", automargin: true },
  };
  return draw(node, [trace], layout);
}

// -- wiring ------------------------------------------------------------------------------------------
async function main() {
  paintSwatches();
  const only = document.getElementById("only-diff");
  only.addEventListener("change", applyOnlyDifferences);
  applyOnlyDifferences();
  if (!plotlyReady(message)) return;
  const first = firstCharts();

  const parSelect = document.getElementById("parcoords-metric");
  for (const key of summary.metric_keys) parSelect.append(el("option", { value: key, text: key }));
  const withMetric = (key) => summary.runs.filter((r) => r.metrics[key] && finiteOf(r.metrics[key].last) !== null);
  const firstMetric = summary.metric_keys.reduce(
    (best, key) => (best === undefined || withMetric(key).length > withMetric(best).length ? key : best), undefined);
  const firstParam = (firstMetric && differingParams(withMetric(firstMetric))[0]) || summary.param_keys[0];
  if (firstMetric) parSelect.value = firstMetric;
  fillFieldSelect(document.getElementById("scatter-x"), firstParam ? `param:${firstParam}` : null);
  fillFieldSelect(document.getElementById("scatter-y"), firstMetric ? `metric:${firstMetric}@last` : null);

  controls.axis.addEventListener("change", () => drawCharts(nodes, true));
  controls.logY.addEventListener("change", () => {
    for (const node of nodes.values()) {
      if (node.dataset.ready === "1") window.Plotly.relayout(node, { "yaxis.type": controls.logY.checked ? "log" : "linear" });
    }
  });
  controls.smoothing.addEventListener("input", () => drawCharts(nodes, false));
  parSelect.addEventListener("change", () => drawParcoords().catch((e) => showMessage(message, e.message)));
  for (const id of ["scatter-x", "scatter-y"]) {
    document.getElementById(id).addEventListener("change", () => drawScatter().catch((e) => showMessage(message, e.message)));
  }

  await drawCharts(first, true);
  window.__timings.charts = performance.now();
  await Promise.all([drawParcoords(), drawScatter()]).catch((e) => showMessage(message, e.message));
  window.__timings.done = performance.now();
  document.body.dataset.ready = "1";
}

main().catch((error) => showMessage(message, error.message));
