// Model page: stage transitions, aliases, tags and the description, through the MLflow REST API
// (the server's authentication decides; a refusal is shown on the page).
import { postREST, showMessage } from "./common.js";

const root = document.getElementById("model");
const message = document.getElementById("message");
const name = root.dataset.model;

async function act(promise, done = "Saved.") {
  try {
    await promise;
    showMessage(message, done, "info");
    window.location.reload();
  } catch (error) {
    showMessage(message, error.status === 403 || error.status === 401
      ? `Not allowed: ${error.message}` : error.message);
  }
}

for (const form of document.querySelectorAll("form.transition")) {
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const row = form.closest("tr");
    const body = { name, version: row.dataset.version, stage: form.elements.stage.value,
      archive_existing_versions: form.elements.archive_existing.checked };
    const comment = form.elements.comment.value.trim();
    if (comment) body.comment = comment;
    act(postREST("model-versions/transition-stage", body));
  });
}

document.getElementById("set-alias").addEventListener("submit", (event) => {
  event.preventDefault();
  const form = event.target;
  act(postREST("registered-models/alias", { name, alias: form.elements.alias.value.trim(), version: form.elements.version.value }));
});

for (const button of document.querySelectorAll(".remove-alias")) {
  const alias = button.closest("tr").dataset.alias;
  button.addEventListener("click", () => act(deleteREST("registered-models/alias", { name, alias })));
}

document.getElementById("set-tag").addEventListener("submit", (event) => {
  event.preventDefault();
  const form = event.target;
  act(postREST("registered-models/set-tag", { name, key: form.elements.key.value.trim(), value: form.elements.value.value }));
});

for (const button of document.querySelectorAll(".remove-tag")) {
  const key = button.closest("tr").dataset.key;
  button.addEventListener("click", () => act(deleteREST("registered-models/delete-tag", { name, key })));
}

document.getElementById("edit-description").addEventListener("submit", (event) => {
  event.preventDefault();
  act(patchREST("registered-models/update", { name, description: event.target.elements.description.value }));
});

async function send(method, path, body) {
  const response = await fetch(`/api/2.0/mlflow/${path}`, {
    method, headers: { "Content-Type": "application/json", Accept: "application/json" }, body: JSON.stringify(body),
  });
  let data = null;
  try { data = await response.json(); } catch (e) { data = null; }
  if (!response.ok) {
    const error = new Error((data && data.message) || `${response.status} ${response.statusText}`);
    error.status = response.status;
    throw error;
  }
  return data;
}

function deleteREST(path, body) { return send("DELETE", path, body); }
function patchREST(path, body) { return send("PATCH", path, body); }
