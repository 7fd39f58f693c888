// An editor's and an owner's part of the reader: upload files to the collection with progress, see
// each document's state, and (an owner) grant and revoke rights. Loaded only for them; every name
// shown is set as text. The server checks each right again: hiding a form is not a permission.
import { $, JSON_HEADERS, call, detail, format, make as element, t, data } from "./render.js";

const make = (tag, text) => element(tag, "", text);

// -- documents and their states --------------------------------------------------------------
const documents = $("documents");

async function showDocuments() {
  const status = await call("status", { collection: data.collection });
  const rows = documents.querySelector("tbody");
  rows.replaceChildren();
  for (const file of (status && status.files) || []) {
    const row = make("tr");
    const path = (file.path && file.path.$path) || "";
    row.append(make("td", path.split(/[\\/]/).pop()), make("td", t["state_" + file.status] || file.status),
               make("td", file.reason || ""));
    row.cells[0].title = path;
    rows.append(row);
  }
}

// -- upload ------------------------------------------------------------------------------------
const uploadForm = $("upload-form"), files = $("files"), uploads = $("uploads"), uploadStatus = $("upload-status");

function send(file, progress) {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest(); // fetch reports no upload progress
    const where = new URLSearchParams({ collection: data.collection, path: "/browser/" + file.name });
    request.open("PUT", "/v1/upload?" + where);
    request.upload.onprogress = (event) => { if (event.lengthComputable) progress.value = event.loaded / event.total; };
    request.onload = () => (request.status === 200 ? resolve("/browser/" + file.name)
                                                   : reject(new Error(JSON.parse(request.responseText || "{}").detail || request.statusText)));
    request.onerror = () => reject(new Error(request.statusText || "network"));
    request.send(file);
  });
}

uploadForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const chosen = Array.from(files.files);
  if (!chosen.length) return;
  uploadForm.querySelector("button").disabled = true;
  uploads.replaceChildren();
  const sent = [];
  try {
    for (const file of chosen) {
      const item = make("li"), bar = make("progress");
      bar.max = 1;
      bar.value = 0;
      bar.setAttribute("aria-label", file.name);
      item.append(make("span", file.name + " "), bar);
      uploads.append(item);
      sent.push(await send(file, bar));
      bar.value = 1;
    }
    uploadStatus.textContent = t.indexing;
    await call("ingest", { paths: sent.map((p) => ({ $path: p })), collection: data.collection }, (progress) => {
      if (progress.$type === "IngestProgress") {
        uploadStatus.textContent = format(t.indexed_of, { done: progress.files_done, total: progress.files_total });
      }
    });
    uploadStatus.textContent = t.uploaded;
    files.value = "";
  } catch (error) {
    uploadStatus.textContent = format(t.failed, { reason: error.message });
  } finally {
    uploadForm.querySelector("button").disabled = false;
    showDocuments().catch(() => undefined);
  }
});

// -- grants (owners) ---------------------------------------------------------------------------
const grants = $("grants"), grantForm = $("grant-form"), grantStatus = $("grant-status");

async function showGrants() {
  const response = await fetch("/v1/grants?" + new URLSearchParams({ collection: data.collection }),
                               { credentials: "same-origin" });
  if (!response.ok) throw new Error(await detail(response));
  const rows = grants.querySelector("tbody");
  rows.replaceChildren();
  for (const [subject, role] of await response.json()) {
    const row = make("tr"), cell = make("td"), revoke = make("button", t.revoke);
    revoke.type = "button";
    revoke.setAttribute("aria-label", `${t.revoke}: ${subject}`);
    revoke.addEventListener("click", () => change(subject, null));
    cell.append(revoke);
    row.append(make("td", subject), make("td", t["role_" + role] || role), cell);
    rows.append(row);
  }
}

async function change(subject, role) {
  const response = await fetch("/v1/grant", { method: "POST", headers: JSON_HEADERS, credentials: "same-origin",
                                              body: JSON.stringify({ name: subject, collection: data.collection, role }) });
  grantStatus.textContent = response.ok ? t.saved : format(t.failed, { reason: await detail(response) });
  await showGrants();
}

if (grantForm) {
  grantForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const subject = $("grant-name").value.trim();
    if (subject) change(subject, $("grant-role").value).then(() => { $("grant-name").value = ""; });
  });
  showGrants().catch((error) => { grantStatus.textContent = format(t.failed, { reason: error.message }); });
}
showDocuments().catch(() => undefined);
