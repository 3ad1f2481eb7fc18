// Experiments page: run counts filled in after load; create, rename, delete and restore through the REST API.
import { el, getJSON, postREST, showMessage, formatAgo, formatTime } from "./common.js";

const message = document.getElementById("message");
const rows = [...document.querySelectorAll("#experiments tbody tr[data-experiment-id]")];

const SUMMARY_BATCH = 10;

// Run counts and last activity, asked in batches so the first rows fill in while the rest are counted.
async function fillSummaries() {
  for (let start = 0; start < rows.length; start += SUMMARY_BATCH) {
    const batch = rows.slice(start, start + SUMMARY_BATCH);
    const ids = batch.map((row) => row.dataset.experimentId).join(",");
    try {
      const data = await getJSON(`/ui/api/experiments/summary?ids=${encodeURIComponent(ids)}`);
      for (const row of batch) fillRow(row, data.experiments[row.dataset.experimentId]);
    } catch (error) {
      showMessage(message, `Could not load run counts: ${error.message}`);
      return;
    }
  }
}

function fillRow(row, summary) {
  if (!summary) return;
  row.querySelector(".run-count").textContent = `${summary.runs}${summary.more ? "+" : ""}`;
  if (summary.last_activity) {
    const cell = row.querySelector(".last-activity");
    cell.textContent = formatAgo(summary.last_activity);
    cell.title = formatTime(summary.last_activity);
  }
}

async function act(promise) {
  try {
    await promise;
    window.location.reload();
  } catch (error) {
    showMessage(message, error.message);
  }
}

function startRename(row) {
  const link = row.querySelector(".experiment-link");
  const input = el("input", { value: row.dataset.name, class: "rename-input", "aria-label": "new name" });
  const save = el("button", { type: "button", class: "save", text: "Save" });
  const cancel = el("button", { type: "button", text: "Cancel", onclick: () => window.location.reload() });
  const submit = () => act(postREST("experiments/update", { experiment_id: row.dataset.experimentId, new_name: input.value }));
  save.addEventListener("click", submit);
  input.addEventListener("keydown", (event) => { if (event.key === "Enter") submit(); });
  link.replaceWith(el("span", { class: "rename-form" }, input, save, cancel));
  input.focus();
}

function confirmDelete(row) {
  const cell = row.querySelector(".actions");
  cell.replaceChildren(
    el("span", { text: "Delete with its runs? " }),
    el("button", { type: "button", class: "confirm-delete danger", text: "Yes, delete",
      onclick: () => act(postREST("experiments/delete", { experiment_id: row.dataset.experimentId })) }),
    el("button", { type: "button", text: "No", onclick: () => window.location.reload() }),
  );
}

for (const row of rows) {
  row.querySelector(".rename")?.addEventListener("click", () => startRename(row));
  row.querySelector(".delete")?.addEventListener("click", () => confirmDelete(row));
  row.querySelector(".restore")?.addEventListener("click",
    () => act(postREST("experiments/restore", { experiment_id: row.dataset.experimentId })));
}

const createForm = document.getElementById("create-experiment");
createForm?.addEventListener("submit", (event) => {
  event.preventDefault();
  const name = createForm.elements.name.value.trim();
  act(postREST("experiments/create", { name }));
});

const openSelected = document.getElementById("open-selected");
const boxes = [...document.querySelectorAll(".select-experiment")];
for (const box of boxes) {
  box.addEventListener("change", () => { openSelected.disabled = !boxes.some((b) => b.checked); });
}
openSelected.addEventListener("click", () => {
  const ids = boxes.filter((b) => b.checked).map((b) => b.value);
  window.location.href = ids.length === 1 ? `/experiments/${encodeURIComponent(ids[0])}` : `/runs?experiment_ids=${ids.map(encodeURIComponent).join(",")}`;
});

fillSummaries();
