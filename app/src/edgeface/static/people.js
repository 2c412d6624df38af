// The people page: lists /api/people every few seconds; an operator may forget a person
// (DELETE api/people/<name>) and upload a photo (POST api/people/<name>/photos).
"use strict";

const OPERATOR = document.body.dataset.role === "operator";
const WRITE = { "X-Edgeface-Request": "1" };

function text(id, value) {
  const node = document.getElementById(id);
  if (node) node.textContent = value;
}

function cell(row, value) {
  const td = document.createElement("td");
  td.textContent = value;
  row.append(td);
  return td;
}

function pendingText(person) {
  if (person.forgotten) return person.forgotten.done ? "forgotten (done)" : "forget";
  if (person.pending && person.pending.photos) return `${person.pending.photos} new photo(s)`;
  return "";
}

function row(person) {
  const tr = document.createElement("tr");
  tr.dataset.name = person.name;
  cell(tr, person.name);
  cell(tr, person.photos ?? "");
  cell(tr, person.in_model ? "yes" : "no");
  cell(tr, pendingText(person)).className = "pending";
  const actions = cell(tr, "");
  if (OPERATOR && !(person.forgotten && !person.in_model && !person.photos)) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "forget";
    button.textContent = "Forget";
    button.addEventListener("click", () => forget(person.name));
    actions.append(button);
  }
  return tr;
}

async function refresh() {
  const response = await fetch("api/people", { cache: "no-store" });
  if (response.status === 401) {
    window.location.assign("login");
    return;
  }
  const body = await response.json();
  text("model-version", body.model.version || "none");
  const storeError = document.getElementById("store-error");
  storeError.hidden = !(body.store && body.store.error);
  storeError.textContent = body.store && body.store.error ? body.store.error : "";
  document.getElementById("pending").hidden = !body.pending;
  text("retrain-command", body.retrain_command);
  document.querySelector("#people-table tbody").replaceChildren(...body.people.map(row));
}

async function forget(name) {
  if (!window.confirm(`Forget ${name}? Every stored photo of ${name} is deleted now, and the next model will not know them.`)) return;
  const response = await fetch(`api/people/${encodeURIComponent(name)}`, { method: "DELETE", headers: WRITE });
  const body = await response.json().catch(() => ({}));
  text("result", response.ok ? `${name}: ${body.photos_removed} photo(s) deleted; forgotten at the next retrain.`
    : `Not forgotten: ${body.error || response.status}`);
  refresh();
}

async function upload(event) {
  event.preventDefault();
  const name = document.getElementById("upload-name").value.trim();
  const file = document.getElementById("upload-file").files[0];
  const response = await fetch(`api/people/${encodeURIComponent(name)}/photos`, {
    method: "POST", headers: { ...WRITE, "Content-Type": file.type || "application/octet-stream" }, body: file,
  });
  const body = await response.json().catch(() => ({}));
  text("result", response.ok ? `Stored a photo of ${body.name}: the next retrain learns it.`
    : `Not stored: ${body.error || response.status}`);
  if (response.ok) event.target.reset();
  refresh();
}

const form = document.getElementById("upload");
if (form) form.addEventListener("submit", upload);
setInterval(refresh, 3000);
refresh();
