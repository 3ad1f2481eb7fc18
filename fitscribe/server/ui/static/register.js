// Run page: register one of the run's models as a new version of a registered model (created when
// new) through the REST API; the server's authentication decides, a refusal is shown.
import { postREST, showMessage } from "./common.js";

const form = document.getElementById("register-model");
const message = document.getElementById("register-message");

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const runId = form.dataset.runId;
  const name = form.elements.name.value.trim();
  const source = `runs:/${runId}/${form.elements.path.value}`;
  try {
    try {
      await postREST("registered-models/create", { name });
    } catch (error) {
      if (!/already exists/i.test(error.message)) throw error;
    }
    const created = await postREST("model-versions/create", { name, source, run_id: runId });
    showMessage(message, `Registered as ${name} version ${created.model_version.version}.`, "info");
    window.location.reload();
  } catch (error) {
    showMessage(message, error.status === 403 || error.status === 401 ? `Not allowed: ${error.message}` : error.message);
  }
});
