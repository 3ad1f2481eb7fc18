// Runs table: server-side filter, sort and paging through /ui/api/runs; column chooser remembered per
// experiment in localStorage; nested runs as a tree (children fetched on expand); live refresh of
// running runs; select runs to compare. Every value is put in the DOM as text.
import { el, getJSON, showMessage, formatTime, formatDuration, formatNumber } from "./common.js";

const config = JSON.parse(document.getElementById("runs-config").textContent);
const table = document.getElementById("runs-table");
const message = document.getElementById("runs-message");
const filterInput = document.getElementById("filter-input");
const metricMode = document.getElementById("metric-mode");
const nestedBox = document.getElementById("nested");
const liveBox = document.getElementById("live");
const moreButton = document.getElementById("more-button");
const compareButton = document.getElementById("compare-button");
const countLabel = document.getElementById("runs-count");
const storageKey = `fitscribe.runs.columns.${config.experiment_ids.join(",")}`;
const MODES = ["last", "min", "max"];

// Fixed columns: label, how to read the value, and the order_by field (null: not sortable).
const FIXED = [
  { id: "run_name", label: "Name", order: "attributes.run_name" },
  { id: "status", label: "Status", order: "attributes.status" },
  { id: "start_time", label: "Started", order: "attributes.start_time" },
  { id: "duration", label: "Duration", order: null },
  { id: "user_id", label: "User", order: "attributes.user_id" },
  { id: "source", label: "Source", order: "tags.`mlflow.source.name`" },
  { id: "git_commit", label: "Git commit", order: "tags.`mlflow.source.git.commit`" },
];

const state = {
  filter: config.filter || "",
  orderBy: config.order_by || "",
  loaded: false,         // a first answer (rows or an error) has been shown
  loading: 0,            // page requests in flight: the table is not "ready" meanwhile
  rows: [],              // top-level rows in display order
  children: new Map(),   // run id -> child rows (loaded on expand)
  expanded: new Set(),
  hasChildren: new Set(),
  nextToken: null,
  selected: new Set(),
  seen: { param: new Set(), metric: new Set(), tag: new Set() },
  columns: loadColumns(),
};

function loadColumns() {
  try {
    const saved = JSON.parse(localStorage.getItem(storageKey));
    if (Array.isArray(saved)) return saved.filter((c) => c && typeof c.kind === "string" && typeof c.key === "string");
  } catch (e) { /* a damaged entry: start afresh */ }
  return null; // nothing chosen yet: defaults once the first page is known
}

function saveColumns() {
  localStorage.setItem(storageKey, JSON.stringify(state.columns));
}

function quoteKey(key) {
  return "`" + key + "`";
}

function orderField(column) {
  if (column.kind === "metric") {
    const mode = Number(metricMode.value);
    return mode === 0 ? `metrics.${quoteKey(column.key)}` : `${MODES[mode]}(metrics.${quoteKey(column.key)})`;
  }
  return `${column.kind === "param" ? "params" : "tags"}.${quoteKey(column.key)}`;
}

// -- loading ---------------------------------------------------------------------------------------
function query(extra = {}) {
  const params = new URLSearchParams({ experiment_ids: config.experiment_ids.join(","), max_results: config.page_size, ...extra });
  if (state.filter) params.set("filter", state.filter);
  if (state.orderBy) params.set("order_by", state.orderBy);
  if (nestedBox.checked) params.set("nested", "1");
  return `/ui/api/runs?${params}`;
}

// Load the first page (or the next one) and show it.
async function load(append = false) {
  delete table.dataset.ready;
  moreButton.disabled = true;
  state.loading += 1;
  try {
    const data = await getJSON(query(append && state.nextToken ? { page_token: state.nextToken } : {}));
    showMessage(message, "");
    if (!append) {
      state.rows = [];
      state.children.clear();
      state.expanded.clear();
      state.hasChildren.clear();
    }
    state.rows.push(...data.runs);
    state.loaded = true;
    state.nextToken = data.next_page_token || null;
    noteKeys(data.runs);
    state.loading -= 1;
    render();
    if (nestedBox.checked) findChildren(data.runs);
    return;
  } catch (error) {
    showMessage(message, error.message);  // the rows of the last good search stay
    state.loaded = true;
    state.nextToken = null;
    state.loading -= 1;
  }
  render();
}

// Which shown runs have children: asked after the rows are on screen (it scans the experiment's tags).
async function findChildren(rows) {
  if (!rows.length) return;
  const params = new URLSearchParams({ experiment_ids: config.experiment_ids.join(","), run_ids: rows.map((r) => r.run_id).join(",") });
  try {
    const data = await getJSON(`/ui/api/runs/has-children?${params}`);
    if (!data.has_children.length) return;
    for (const id of data.has_children) state.hasChildren.add(id);
    render();
  } catch (error) {
    showMessage(message, `Could not look for child runs: ${error.message}`);
  }
}

function noteKeys(rows) {
  for (const row of rows) {
    for (const key of Object.keys(row.params)) state.seen.param.add(key);
    for (const key of Object.keys(row.metrics)) state.seen.metric.add(key);
    for (const key of Object.keys(row.tags)) if (!key.startsWith("mlflow.")) state.seen.tag.add(key);
  }
}

// The columns shown: those chosen (remembered per experiment), else the defaults.
function currentColumns() {
  return state.columns ?? defaultColumns();
}

// Columns of a first visit (nothing remembered): the first 6 metrics and 6 params seen, alphabetically;
// the keys of the experiment's newest runs are asked once the first page is shown, and join them.
function defaultColumns() {
  const metrics = [...state.seen.metric].sort().slice(0, 6).map((key) => ({ kind: "metric", key }));
  const params = [...state.seen.param].sort().slice(0, 6).map((key) => ({ kind: "param", key }));
  return [...metrics, ...params];
}

// -- rendering -------------------------------------------------------------------------------------
function headerCell(label, order, kind) {
  const th = el("th", { class: order ? "sortable" : null, dataset: order ? { order } : {} });
  if (kind) th.append(el("span", { class: "kind", text: kind }));
  th.append(label);
  if (order && state.orderBy.startsWith(order + " ")) th.classList.add(state.orderBy.endsWith("ASC") ? "sorted-asc" : "sorted-desc");
  if (order) th.addEventListener("click", () => sortBy(order));
  return th;
}

function renderHead() {
  const allBox = el("input", { type: "checkbox", "aria-label": "select all", id: "select-all" });
  allBox.addEventListener("change", () => {
    for (const row of visibleRows()) allBox.checked ? state.selected.add(row.run_id) : state.selected.delete(row.run_id);
    render();
  });
  const cells = [el("th", {}, allBox)];
  for (const column of FIXED) cells.push(headerCell(column.label, column.order));
  for (const column of currentColumns()) {
    const kind = column.kind === "metric" ? `${MODES[Number(metricMode.value)]} ·` : column.kind === "param" ? "param ·" : "tag ·";
    cells.push(headerCell(column.key, orderField(column), kind));
  }
  table.tHead.replaceChildren(el("tr", {}, cells));
}

function* visibleRows() {
  function* walk(rows, depth) {
    for (const row of rows) {
      yield Object.assign(row, { depth });
      if (state.expanded.has(row.run_id)) yield* walk(state.children.get(row.run_id) || [], depth + 1);
    }
  }
  yield* walk(state.rows, 0);
}

function cellValue(row, column) {
  if (column.kind === "metric") {
    const values = row.metrics[column.key];
    return values ? formatNumber(values[Number(metricMode.value)]) : "";
  }
  const source = column.kind === "param" ? row.params : row.tags;
  return source[column.key] ?? "";
}

function nameCell(row) {
  const cell = el("td", { class: "name-cell" });
  if (state.hasChildren.has(row.run_id)) {
    const open = state.expanded.has(row.run_id);
    cell.append(el("button", { type: "button", class: "expander", "aria-expanded": String(open), title: open ? "collapse" : "expand",
      text: open ? "▾" : "▸", onclick: () => toggle(row) }));
  } else {
    cell.append(el("span", { class: "expander-space" }));
  }
  cell.append(el("a", { href: `/runs/${encodeURIComponent(row.run_id)}`, class: "run-link", text: row.run_name || row.run_id }));
  return cell;
}

function renderRow(row) {
  const box = el("input", { type: "checkbox", class: "select-run", "aria-label": "select run", value: row.run_id });
  box.checked = state.selected.has(row.run_id);
  box.addEventListener("change", () => {
    box.checked ? state.selected.add(row.run_id) : state.selected.delete(row.run_id);
    updateCompare();
  });
  const tr = el("tr", { class: row.depth ? "child" : null, dataset: { runId: row.run_id, status: row.status } },
    el("td", {}, box), nameCell(row),
    el("td", {}, el("span", { class: `status ${row.status}`, text: row.status })),
    el("td", { text: formatTime(row.start_time) }),
    el("td", { class: "num", text: formatDuration(row.start_time, row.end_time ?? (row.status === "RUNNING" ? Date.now() : null)) }),
    el("td", { text: row.user_id }),
    el("td", { text: row.source.split(/[\\/]/).pop(), title: row.source }),
    el("td", { class: "mono", text: row.git_commit.slice(0, 10), title: row.git_commit }),
  );
  if (row.depth) tr.style.setProperty("--depth", row.depth);
  for (const column of currentColumns()) {
    const value = cellValue(row, column);
    tr.append(el("td", { class: column.kind === "metric" ? "num" : null, text: value, title: value }));
  }
  return tr;
}

function render() {
  renderHead();
  const rows = [...visibleRows()];
  table.tBodies[0].replaceChildren(...(rows.length ? rows.map(renderRow)
    : [el("tr", {}, el("td", { class: "empty", colspan: 8 + currentColumns().length, text: "No runs match." }))]));
  countLabel.textContent = `${state.rows.length} run${state.rows.length === 1 ? "" : "s"} loaded${state.nextToken ? ", more available" : ""}`;
  moreButton.hidden = !state.nextToken;
  moreButton.disabled = false;
  renderChooser();
  updateCompare();
  if (state.loading) return;  // a render between a request and its answer (columns, refresh)
  table.dataset.ready = "1";
  performance.mark("runs-table-ready");  // for benchmarks and browser devtools
}

function updateCompare() {
  compareButton.disabled = state.selected.size < 2;
  compareButton.textContent = state.selected.size ? `Compare (${state.selected.size})` : "Compare";
}

// -- column chooser --------------------------------------------------------------------------------
const chooserButton = document.getElementById("columns-button");
const chooserPanel = document.getElementById("columns-panel");

function renderChooser() {
  const chosen = new Set(currentColumns().map((c) => `${c.kind}\u0000${c.key}`));
  const groups = [["metric", "Metrics"], ["param", "Parameters"], ["tag", "Tags"]];
  const parts = [];
  for (const [kind, title] of groups) {
    const keys = new Set(state.seen[kind]);
    for (const c of currentColumns()) if (c.kind === kind) keys.add(c.key);
    if (!keys.size) continue;
    parts.push(el("h3", { text: title }));
    for (const key of [...keys].sort()) {
      const box = el("input", { type: "checkbox", dataset: { kind, key } });
      box.checked = chosen.has(`${kind}\u0000${key}`);
      box.addEventListener("change", () => chooseColumn(kind, key, box.checked));
      parts.push(el("label", {}, box, ` ${key}`));
    }
  }
  if (!parts.length) parts.push(el("p", { class: "muted", text: "No params, metrics or tags in the loaded runs." }));
  chooserPanel.replaceChildren(...parts);
}

function chooseColumn(kind, key, on) {
  const columns = currentColumns().filter((c) => !(c.kind === kind && c.key === key));
  if (on) columns.push({ kind, key });
  state.columns = columns;
  saveColumns();
  render();
}

let keysAsked = false;

// Keys of the experiment's newest runs (beyond the loaded pages): asked on a first visit, else when
// the chooser opens.
async function askKeys() {
  keysAsked = true;
  try {
    const data = await getJSON(`/ui/api/runs/columns?experiment_ids=${encodeURIComponent(config.experiment_ids.join(","))}`);
    for (const [kind, keys] of [["param", data.params], ["metric", data.metrics], ["tag", data.tags]]) {
      for (const key of keys) state.seen[kind].add(key);
    }
  } catch (error) {
    showMessage(message, `Could not list the columns: ${error.message}`);
  }
  if (state.columns === null && state.loaded) render();  // the defaults now see every key
  else renderChooser();
  chooserPanel.dataset.keys = "1";
}

chooserButton.addEventListener("click", () => {
  chooserPanel.hidden = !chooserPanel.hidden;
  chooserButton.setAttribute("aria-expanded", String(!chooserPanel.hidden));
  if (!chooserPanel.hidden && !keysAsked) askKeys();
});

// -- actions ---------------------------------------------------------------------------------------
function syncUrl() {
  const url = new URL(window.location.href);
  for (const [name, value] of [["filter", state.filter], ["order_by", state.orderBy]]) {
    if (value) url.searchParams.set(name, value); else url.searchParams.delete(name);
  }
  history.replaceState(null, "", url);
}

function sortBy(field) {
  const ascending = state.orderBy === `${field} DESC`;
  state.orderBy = `${field} ${ascending ? "ASC" : "DESC"}`;
  syncUrl();
  load();
}

async function toggle(row) {
  if (state.expanded.has(row.run_id)) {
    state.expanded.delete(row.run_id);
    render();
    return;
  }
  try {
    if (!state.children.has(row.run_id)) {
      const data = await getJSON(`/ui/api/runs/children?parent=${encodeURIComponent(row.run_id)}`);
      state.children.set(row.run_id, data.runs);
      noteKeys(data.runs);
      findChildren(data.runs);
    }
    state.expanded.add(row.run_id);
  } catch (error) {
    showMessage(message, error.message);
  }
  render();
}

async function refreshRunning() {
  if (!liveBox.checked || document.hidden) return;
  const running = [...visibleRows()].filter((r) => r.status === "RUNNING" || r.status === "SCHEDULED");
  if (!running.length) return;
  try {
    const data = await getJSON(`/ui/api/runs/refresh?run_ids=${running.map((r) => r.run_id).join(",")}`);
    const fresh = new Map(data.runs.map((r) => [r.run_id, r]));
    for (const row of running) {
      const update = fresh.get(row.run_id);
      if (update) Object.assign(row, update);
    }
    noteKeys(data.runs);
    render();
  } catch (error) {
    showMessage(message, `Live refresh failed: ${error.message}`);
  }
}

document.getElementById("filter-form").addEventListener("submit", (event) => {
  event.preventDefault();
  state.filter = filterInput.value.trim();
  syncUrl();
  load();
});
document.getElementById("filter-clear").addEventListener("click", () => {
  filterInput.value = "";
  state.filter = "";
  syncUrl();
  load();
});
metricMode.addEventListener("change", () => {
  if (state.orderBy.includes("metrics.")) {  // keep sorting by the same metric, in the new mode
    const match = state.orderBy.match(/metrics\.(`[^`]*`|[\w.]+)\)? (ASC|DESC)$/);
    if (match) {
      const mode = Number(metricMode.value);
      const field = mode === 0 ? `metrics.${match[1]}` : `${MODES[mode]}(metrics.${match[1]})`;
      state.orderBy = `${field} ${match[2]}`;
      syncUrl();
      load();
      return;
    }
  }
  render();
});
nestedBox.addEventListener("change", () => load());
moreButton.addEventListener("click", () => load(true));
compareButton.addEventListener("click", () => {
  window.location.href = `/compare?run_ids=${[...state.selected].map(encodeURIComponent).join(",")}`;
});

filterInput.value = state.filter;
load();
if (state.columns === null) askKeys();
setInterval(refreshRunning, config.refresh_ms);
