// Run page: edit the description (the mlflow.note.content tag) through the REST API.
import { el, postREST, showMessage } from "./common.js";

const runId = document.getElementById("run-data").dataset.runId;
const view = document.getElementById("note-view");
const text = document.getElementById("note-text");
const edit = document.getElementById("note-edit");
const save = document.getElementById("note-save");
const cancel = document.getElementById("note-cancel");
const message = document.getElementById("note-message");

function editing(on) {
  view.hidden = on;
  text.hidden = !on;
  edit.hidden = on;
  save.hidden = !on;
  cancel.hidden = !on;
  if (on) text.focus();
}

edit.addEventListener("click", () => editing(true));
cancel.addEventListener("click", () => {
  text.value = text.defaultValue;
  editing(false);
});
save.addEventListener("click", async () => {
  save.disabled = true;
  try {
    await postREST("runs/set-tag", { run_id: runId, key: "mlflow.note.content", value: text.value });
    text.defaultValue = text.value;
    view.replaceChildren(text.value ? text.value : el("span", { class: "muted", text: "No description." }));
    showMessage(message, "Saved.", "info");
    editing(false);
  } catch (error) {
    showMessage(message, error.message);
  } finally {
    save.disabled = false;
  }
});
