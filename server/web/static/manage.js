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
    // A browser's upload by its path in the folder it came from; anything else by its name.
    const shown = path.startsWith("/browser/") ? path.slice("/browser/".length) : path.split(/[\\/]/).pop();
    row.append(make("td", shown), make("td", t["state_" + file.status] || file.status),
               make("td", file.reason || ""));
    row.cells[0].title = path;
    rows.append(row);
  }
}

// -- upload ------------------------------------------------------------------------------------
// Files and folders: each file is kept as /browser/<its path in the chosen folder>, so a folder's
// structure survives. A name the server could not keep (only dots, a control character) is refused
// for that file alone, here in plain words, and by the server again (server.uploads.parts_of).
const uploadForm = $("upload-form"), files = $("files"), folder = $("folder"), uploads = $("uploads");
const uploadStatus = $("upload-status"), overall = $("upload-progress");
const BAD_PART = /[\x00-\x1f\x7f]/;

const nameIn = (file) => file.webkitRelativePath || file.name;
const keepable = (name) => name.split("/").every((part) => part.replace(/[ .]/g, "") !== "" && !BAD_PART.test(part));

function send(path, file, progress) {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest(); // fetch reports no upload progress
    request.open("PUT", "/v1/upload?" + new URLSearchParams({ collection: data.collection, path }));
    request.upload.onprogress = (event) => { if (event.lengthComputable) progress(event.loaded / event.total); };
    request.onload = () => (request.status === 200 ? resolve(path)
                                                   : reject(new Error(JSON.parse(request.responseText || "{}").detail || request.statusText)));
    request.onerror = () => reject(new Error(request.statusText || "network"));
    request.send(file);
  });
}

uploadForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const chosen = [...files.files, ...folder.files];
  if (!chosen.length) return;
  uploadForm.querySelector("button").disabled = true;
  uploads.replaceChildren();
  const total = chosen.reduce((sum, file) => sum + file.size, 0) || 1;
  let done = 0;
  overall.value = 0;
  overall.hidden = false;
  const sent = [];
  try {
    for (const file of chosen) {
      const name = nameIn(file), item = make("li"), bar = make("progress");
      bar.max = 1;
      bar.value = 0;
      bar.setAttribute("aria-label", name);
      item.append(make("span", name + " "));
      uploads.append(item);
      if (!keepable(name)) {
        item.append(make("span", t.bad_name));
        item.className = "refused";
      } else {
        item.append(bar);
        try {
          sent.push(await send("/browser/" + name, file, (part) => {
            bar.value = part;
            overall.value = (done + part * file.size) / total;
          }));
          bar.value = 1;
        } catch (error) { // this file alone: the rest still go
          bar.remove();
          item.append(make("span", format(t.failed, { reason: error.message })));
          item.className = "refused";
        }
      }
      done += file.size;
      overall.value = done / total;
    }
    if (sent.length) {
      uploadStatus.textContent = t.indexing;
      await call("ingest", { paths: sent.map((p) => ({ $path: p })), collection: data.collection }, (progress) => {
        if (progress.$type === "IngestProgress") {
          uploadStatus.textContent = format(t.indexed_of, { done: progress.files_done, total: progress.files_total });
        }
      });
      uploadStatus.textContent = t.uploaded;
    } else {
      uploadStatus.textContent = "";
    }
    files.value = "";
    folder.value = "";
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
