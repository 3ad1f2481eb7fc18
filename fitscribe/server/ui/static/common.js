// Helpers shared by the UI's pages: DOM building without innerHTML, JSON fetches, formatting.

/** Create an element with attributes and children (strings become text nodes, never HTML). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** GET a UI JSON endpoint; throw an Error carrying the server's message on a 4xx/5xx answer. */
export async function getJSON(url) {
  const response = await fetch(url, { headers: { Accept: "application/json" } });
  return answer(response);
}

/** POST JSON to an MLflow REST endpoint (path under /api/2.0/mlflow/). */
export async function postREST(path, body) {
  const response = await fetch(`/api/2.0/mlflow/${path}`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify(body),
  });
  return answer(response);
}

async function answer(response) {
  let data = null;
  try { data = await response.json(); } catch (e) { data = null; }
  if (!response.ok) {
    const message = (data && data.message) || `${response.status} ${response.statusText}`;
    const error = new Error(message);
    error.status = response.status;
    throw error;
  }
  return data;
}

/** Show a message in an element (`kind`: "error" or "info"); an empty text hides it. */
export function showMessage(node, text, kind = "error") {
  node.textContent = text || "";
  node.hidden = !text;
  node.className = `message ${kind}`;
}

/** Format epoch milliseconds as YYYY-MM-DD HH:MM:SS (UTC). */
export function formatTime(ms) {
  if (ms === null || ms === undefined) return "";
  return new Date(ms).toISOString().replace("T", " ").slice(0, 19);
}

/** Format the time between two epoch-millisecond instants. */
export function formatDuration(start, end) {
  if (start === null || start === undefined || end === null || end === undefined) return "";
  const ms = Math.max(0, end - start);
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
  const minutes = Math.floor(ms / 60000);
  if (minutes < 60) return `${minutes} min ${Math.floor((ms % 60000) / 1000)} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

/** Format how long ago epoch milliseconds `ms` was. */
export function formatAgo(ms) {
  if (!ms) return "";
  const seconds = Math.max(0, Math.floor((Date.now() - ms) / 1000));
  for (const [unit, size] of [["d", 86400], ["h", 3600], ["min", 60]]) {
    if (seconds >= size) return `${Math.floor(seconds / size)} ${unit} ago`;
  }
  return `${seconds} s ago`;
}

/** Format a metric value with 6 significant digits (strings such as "NaN" pass through). */
export function formatNumber(value) {
  if (value === null || value === undefined) return "";
  if (typeof value === "string") return value;
  if (Number.isInteger(value) && Math.abs(value) < 1e15) return String(value);
  return String(Number(value.toPrecision(6)));
}
