// The files page: uploads (files and whole folders) into the folder shown, with progress
// and cancel; live statuses; confirmed deletes; selection, rename, move (dialog and drag).
import {
  ResumableUpload, UploadError, discard, errorCode, errorMessage, forget, rememberedUploads, standing,
} from "./tus.js";

const csrf = document.querySelector('meta[name="csrf-token"]').content;
const dropzone = document.getElementById("dropzone");
const input = document.getElementById("file-input");
const folderInput = document.getElementById("folder-input");
const uploads = document.getElementById("uploads");
const limit = Number(dropzone.dataset.uploadLimit);
const resumableAbove = Number(dropzone.dataset.resumableAbove);
// The folder the page shows: uploads land there ("root": the top level).
const here = dropzone.dataset.folderId;
document.documentElement.classList.add("js");
// Parts of a resumable upload, the size docs/API.md asks clients for: whole S3 parts
// (a shorter PATCH leaves its bytes waiting in the bucket), and a drop costs little.
const CHUNK = 8 * 1024 * 1024;
const POLL_MS = 1000;
const UNFINISHED = new Set(["pending", "processing"]);

// One file being uploaded: a list item with its name, a progress bar and Cancel.
class UploadItem {
  constructor(file, folderId = here, label = file.name) {
    this.file = file;
    this.folderId = folderId;
    // What the server does when the name is taken: first `fail`, so the page can ask;
    // then the person's choice, `replace` (a new version) or `rename` (keep both).
    this.onConflict = "fail";
    this.li = document.createElement("li");
    this.li.className = "upload";
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = label;
    name.title = label;
    this.cancelButton = document.createElement("button");
    this.cancelButton.type = "button";
    this.cancelButton.textContent = "Cancel";
    this.cancelButton.setAttribute("aria-label", `Cancel ${file.name}`);
    this.progress = document.createElement("progress");
    this.progress.max = 100;
    this.progress.value = 0;
    this.progress.setAttribute("aria-label", `Uploading ${file.name}`);
    this.state = document.createElement("span");
    this.state.className = "state";
    this.state.textContent = "0%";
    this.li.append(name, this.cancelButton, this.progress, this.state);
    uploads.append(this.li);
  }

  show(sent, total) {
    const percent = total ? Math.floor((sent / total) * 100) : 100;
    this.progress.value = percent;
    this.state.textContent = `${percent}%`;
  }

  resuming(offset, total) {
    this.show(offset, total);
    this.state.textContent = `${this.progress.value}%: carrying on from where it stopped`;
  }

  retrying(reason, seconds) {
    this.state.textContent = `${this.progress.value}%: ${reason}; trying again in ${seconds} s`;
  }

  done() {
    this.show(1, 1);
    this.state.textContent = this.onConflict === "replace" ? "Uploaded as a new version; validating" : "Uploaded; validating";
    if (this.onConflict === "replace") awaitVersion(this.file.name);
    this.cancelButton.remove();
    setTimeout(() => this.li.remove(), 1500);
    refreshRows();
  }

  // The name is taken in the folder: ask whether to replace the file or keep both. A
  // replace refused in turn (the name is a folder's) says why, and leaves Keep both.
  conflict(message) {
    const replaceRefused = this.onConflict === "replace";
    this.li.classList.add("conflict");
    this.state.textContent = replaceRefused ? `Not replaced: ${message}.` : `“${this.file.name}” already exists here.`;
    const choice = (label, onConflict, kind) => {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = label;
      if (kind) button.className = kind;
      button.setAttribute("aria-label", `${label}: ${this.file.name}`);
      button.onclick = () => {
        this.li.classList.remove("conflict");
        this.choices.remove();
        this.onConflict = onConflict;
        this.state.textContent = "0%";
        this.li.insertBefore(this.cancelButton, this.progress);
        send(this);
      };
      return button;
    };
    this.choices = document.createElement("span");
    this.choices.className = "choices";
    const cancel = document.createElement("button");
    cancel.type = "button";
    cancel.textContent = "Cancel";
    cancel.setAttribute("aria-label", `Cancel ${this.file.name}`);
    cancel.onclick = () => this.li.remove();
    if (!replaceRefused) this.choices.append(choice("Replace", "replace", "primary"));
    this.choices.append(choice("Keep both", "rename"), cancel);
    this.cancelButton.remove();
    this.li.append(this.choices);
    this.choices.querySelector("button").focus();
  }

  failed(message) {
    this.li.classList.add("failed");
    this.state.textContent = `Failed: ${message}`;
    this.cancelButton.textContent = "Dismiss";
    this.cancelButton.setAttribute("aria-label", `Dismiss ${this.file.name}`);
    this.cancelButton.onclick = () => this.li.remove();
  }

  cancelled() {
    this.li.remove();
  }
}

// The session is over (signed out elsewhere, expired, or the account deactivated): say so
// once, with the way back to the sign-in page, and stop showing the user as signed in.
function sessionEnded() {
  if (document.getElementById("session-ended")) return;
  const back = `/login?next=${encodeURIComponent(location.pathname + location.search)}`;
  const notice = document.createElement("p");
  notice.id = "session-ended";
  notice.className = "alert";
  notice.setAttribute("role", "alert");
  const link = document.createElement("a");
  link.href = back;
  link.textContent = "Sign in again";
  notice.append("Your session has ended. ", link, " to keep working.");
  document.getElementById("main").prepend(notice);
  const who = document.querySelector("header .who");
  if (who) {
    const signIn = document.createElement("a");
    signIn.href = back;
    signIn.textContent = "Sign in";
    who.replaceChildren(signIn);
  }
  document.querySelector('header nav[aria-label="Main"]')?.remove();
}

const SESSION_ENDED = "your session has ended; sign in again and upload the file once more";
const UPLOADS = "/api/uploads";

// ---- unfinished uploads of an earlier visit: picking the same file carries on ---------------

// Their list items, by the upload's fingerprint key, until the file is picked again; and the
// keys of the uploads this page started (a file picked before the list is shown).
const paused = new Map();
const started = new Set();

// Each unfinished upload this browser remembers for the folder shown, with how far it got and
// what to do (choose the same file again), and Discard to give it up.
async function showPaused() {
  for (const entry of rememberedUploads(UPLOADS)) {
    if ((entry.metadata.folder_id || "root") !== here) continue;
    let where;
    try {
      where = await standing(entry.key, entry.url, { "X-CSRF-Token": csrf });
    } catch (error) {
      if (error instanceof UploadError && error.status === 401) return sessionEnded();
      continue;
    }
    if (!where) continue;
    if (where.offset >= where.length) {
      forget(entry.key); // its last byte went in: a file now, nothing to resume
      continue;
    }
    const li = document.createElement("li");
    li.className = "upload paused";
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = entry.name;
    name.title = entry.name;
    const drop = document.createElement("button");
    drop.type = "button";
    drop.textContent = "Discard";
    drop.setAttribute("aria-label", `Discard ${entry.name}`);
    drop.onclick = async () => {
      li.remove();
      paused.delete(entry.key);
      await discard(entry.key, entry.url, { "X-CSRF-Token": csrf });
    };
    const progress = document.createElement("progress");
    progress.max = 100;
    progress.value = Math.floor((where.offset / where.length) * 100);
    progress.setAttribute("aria-label", `Paused upload of ${entry.name}`);
    const state = document.createElement("span");
    state.className = "state";
    state.textContent = `Paused at ${progress.value}%: choose the same file again to carry on`;
    li.append(name, drop, progress, state);
    if (started.has(entry.key)) continue; // picked again meanwhile
    paused.set(entry.key, li);
    uploads.append(li);
  }
}

// A small file: one multipart request, as the API takes it.
function uploadWhole(item) {
  const xhr = new XMLHttpRequest();
  const form = new FormData();
  if (item.folderId !== "root") form.append("folder_id", item.folderId);
  form.append("on_conflict", item.onConflict);
  form.append("file", item.file, item.file.name);
  xhr.open("POST", "/api/files/upload");
  xhr.setRequestHeader("X-CSRF-Token", csrf);
  xhr.upload.onprogress = (event) => item.show(event.loaded, event.total);
  xhr.onload = () => {
    if (xhr.status === 201) return item.done();
    if (xhr.status === 401) {
      sessionEnded();
      return item.failed(SESSION_ENDED);
    }
    if (xhr.status === 409 && errorCode(xhr) === "name_taken") return item.conflict(errorMessage(xhr));
    return item.failed(errorMessage(xhr));
  };
  xhr.onerror = () => item.failed("connection lost; try again");
  xhr.onabort = () => item.cancelled();
  item.cancelButton.onclick = () => xhr.abort();
  xhr.send(form);
}

// A large file: the resumable endpoint, so a dropped connection resumes where it stopped,
// and the same file picked again after a reload carries on from the server's offset.
function uploadResumable(item) {
  const upload = new ResumableUpload(item.file, {
    endpoint: UPLOADS,
    headers: { "X-CSRF-Token": csrf },
    chunkSize: CHUNK,
    metadata: {
      ...(item.folderId === "root" ? {} : { folder_id: item.folderId }),
      on_conflict: item.onConflict,
    },
    onProgress: (sent, total) => item.show(sent, total),
    onRetry: (reason, seconds) => item.retrying(reason, seconds),
    onResume: (offset, total) => item.resuming(offset, total),
  });
  started.add(upload.key);
  paused.get(upload.key)?.remove();
  paused.delete(upload.key);
  item.cancelButton.onclick = () => upload.cancel();
  upload.start().then(
    () => item.done(),
    (error) => {
      if (error.name === "AbortError") return item.cancelled();
      if (error instanceof UploadError && error.status === 401) {
        sessionEnded();
        return item.failed(SESSION_ENDED);
      }
      if (error instanceof UploadError && error.code === "name_taken") return item.conflict(error.message);
      return item.failed(error.message);
    },
  );
}

// Start uploading files; each entry is a File, or {file, folderId, label} for a file of a
// dropped folder going into its own folder.
function start(files) {
  for (const entry of files) {
    const item = entry instanceof File ? new UploadItem(entry) : new UploadItem(entry.file, entry.folderId, entry.label);
    const file = item.file;
    if (file.size === 0) {
      item.failed("the file is empty");
    } else if (file.size > limit) {
      item.failed("the file is larger than the upload limit");
    } else {
      send(item);
    }
  }
}

// Send one file the way its size asks for.
function send(item) {
  if (item.file.size > resumableAbove) uploadResumable(item);
  else uploadWhole(item);
}

input.addEventListener("change", () => {
  start([...input.files]);
  input.value = "";
});
folderInput.addEventListener("change", () => {
  // The directory picker gives each file its path below the chosen folder, itself included.
  const chosen = [...folderInput.files].map((file) => ({ file, path: file.webkitRelativePath || file.name }));
  folderInput.value = "";
  uploadTree(chosen);
});
for (const name of ["dragenter", "dragover"]) {
  dropzone.addEventListener(name, (event) => {
    event.preventDefault();
    dropzone.classList.add("over");
  });
}
for (const name of ["dragleave", "drop"]) {
  dropzone.addEventListener(name, () => dropzone.classList.remove("over"));
}
dropzone.addEventListener("drop", async (event) => {
  event.preventDefault();
  if (isMove(event)) return;
  const entries = [...event.dataTransfer.items]
    .filter((item) => item.kind === "file")
    .map((item) => item.webkitGetAsEntry?.())
    .filter(Boolean);
  const files = [...event.dataTransfer.files];
  if (!entries.some((entry) => entry.isDirectory)) {
    // Plain files (or a browser without entries): a folder path a file carries still counts.
    if (files.some((file) => file.webkitRelativePath)) {
      return uploadTree(files.map((file) => ({ file, path: file.webkitRelativePath || file.name })));
    }
    return start(files);
  }
  uploadTree(await walk(entries));
});

// ---- live statuses: poll the rows while any file is unfinished, then stop --------------

const tbody = document.getElementById("file-rows");
const rowKey = (row) => row.dataset.fileId || `folder:${row.dataset.folderId}`;
let polling = null;

// Files given a new version by this page (name -> the version shown before), watched until
// the row shows a newer one (its validation ended) or for a minute at most (a new version
// that fails leaves the current one: its Versions page says why).
const awaiting = new Map();
let awaitingUntil = 0;
const AWAIT_MS = 60_000;

function awaitVersion(name) {
  const shown = [...tbody.rows].find((row) => row.dataset.fileId && row.dataset.name === name);
  awaiting.set(name, Number(shown?.dataset.version || 0));
  awaitingUntil = Date.now() + AWAIT_MS;
}

function stillAwaited() {
  for (const [name, before] of awaiting) {
    const shown = [...tbody.rows].find((row) => row.dataset.fileId && row.dataset.name === name);
    if (shown && Number(shown.dataset.version) > before) awaiting.delete(name);
  }
  return awaiting.size > 0 && Date.now() < awaitingUntil;
}

function unfinished() {
  return [...tbody.rows].some((row) => UNFINISHED.has(row.dataset.status)) || stillAwaited();
}

async function refreshRows() {
  let response;
  try {
    response = await fetch(tbody.dataset.rowsUrl, { credentials: "same-origin" });
  } catch {
    return schedule(); // offline for a moment: try again on the next beat
  }
  if (response.redirected || response.status === 401) return sessionEnded();
  if (!response.ok) return schedule(); // a passing failure: try again on the next beat
  const fresh = document.createElement("tbody");
  fresh.innerHTML = await response.text();
  const ids = (body) => [...body.rows].map(rowKey).join(" ");
  if (ids(fresh) !== ids(tbody)) {
    tbody.replaceChildren(...fresh.rows);
  } else {
    // Same rows: swap only those whose status moved, so focus and scroll stay put.
    [...fresh.rows].forEach((row, index) => {
      const shown = tbody.rows[index];
      if (row.dataset.status !== shown.dataset.status || row.dataset.version !== shown.dataset.version) {
        shown.replaceWith(row);
      }
    });
  }
  const wrap = tbody.closest(".table-wrap");
  if (tbody.rows.length && wrap.hidden) {
    wrap.hidden = false;
    document.getElementById("empty-state")?.remove();
  }
  schedule();
}

function schedule() {
  clearTimeout(polling);
  polling = unfinished() ? setTimeout(refreshRows, POLL_MS) : null;
}

schedule();
showPaused();

// ---- deletes ask first --------------------------------------------------------------------

document.addEventListener("submit", (event) => {
  const form = event.target.closest("form.confirm-delete");
  if (form && !confirm(`Move “${form.dataset.name}” to the trash?`)) {
    event.preventDefault();
  }
  const asks = event.submitter?.dataset.confirm;
  if (asks && !confirm(asks)) event.preventDefault();
});

// ---- the JSON API, for actions -------------------------------------------------------------

// One call of the API with the session's CSRF token; resolves to {ok, status, data}, or
// throws after saying the session has ended.
async function api(method, url, body) {
  const options = { method, credentials: "same-origin", headers: { "X-CSRF-Token": csrf } };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(url, options);
  } catch {
    return { ok: false, status: 0, data: { error: "connection lost; try again" } };
  }
  if (response.status === 401) {
    sessionEnded();
    throw new Error("session ended");
  }
  let data = {};
  try {
    data = await response.json();
  } catch { /* 204, or not JSON */ }
  if (!response.ok && !data.error) data.error = `the server answered ${response.status}`;
  return { ok: response.ok, status: response.status, data };
}

// A message about an action of the page, shown above the table until the next one.
const notice = document.createElement("p");
notice.id = "action-error";
notice.className = "alert";
notice.setAttribute("role", "alert");
notice.hidden = true;
document.getElementById("selection").before(notice);

function problem(message) {
  notice.textContent = message;
  notice.hidden = !message;
}

// ---- folders dropped or chosen: their structure is kept ------------------------------------

// Every file below the dropped entries, each with its path ("Photos/2024/a.jpg").
async function walk(entries) {
  const found = [];
  async function visit(entry, prefix) {
    if (entry.isFile) {
      const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
      found.push({ file, path: `${prefix}${entry.name}` });
      return;
    }
    const reader = entry.createReader();
    // readEntries answers in batches (100 at a time in Chromium) until it gives none.
    for (;;) {
      const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
      if (!batch.length) break;
      for (const child of batch) await visit(child, `${prefix}${entry.name}/`);
    }
  }
  for (const entry of entries) await visit(entry, "");
  return found;
}

// The compared form of a name, as the server compares them (NFKC, case-folded: close enough
// to find a folder that already holds the name).
const nameKey = (name) => name.normalize("NFKC").toLowerCase();

// The id of the folder `name` in `parentId`: made, or the one already there.
async function folderIn(parentId, name) {
  const made = await api("POST", "/api/folders", { name, parent_id: parentId });
  if (made.ok) return made.data.id;
  if (made.status === 409) {
    const listed = await api("GET", `/api/folders?parent_id=${encodeURIComponent(parentId)}`);
    const same = listed.ok && listed.data.folders.find((f) => nameKey(f.name) === nameKey(name));
    if (same) return same.id;
  }
  throw new Error(`folder “${name}”: ${made.data.error}`);
}

// Upload files with their paths: first each folder of the paths (parents first) in the folder
// shown, then every file into its own folder.
async function uploadTree(files) {
  const ids = new Map([["", here]]);
  const folderOf = async (path) => {
    if (ids.has(path)) return ids.get(path);
    const cut = path.lastIndexOf("/");
    const parent = await folderOf(cut < 0 ? "" : path.slice(0, cut));
    const id = await folderIn(parent, path.slice(cut + 1));
    ids.set(path, id);
    return id;
  };
  const ready = [];
  for (const { file, path } of files) {
    const cut = path.lastIndexOf("/");
    try {
      ready.push({ file, label: path, folderId: await folderOf(cut < 0 ? "" : path.slice(0, cut)) });
    } catch (error) {
      if (error.message === "session ended") return;
      const item = new UploadItem(file, here, path);
      item.failed(error.message);
    }
  }
  start(ready);
  refreshRows();
}

// ---- selection ----------------------------------------------------------------------------

const selection = document.getElementById("selection");
const count = document.getElementById("selected-count");

function chosen() {
  return [...document.querySelectorAll('input[form="selection"]:checked')].map((box) => ({
    kind: box.name === "folder_ids" ? "folder" : "file",
    id: box.value,
    name: box.closest("tr").dataset.name,
  }));
}

function selectionChanged() {
  const items = chosen();
  count.textContent = items.length ? `${items.length} selected` : "None selected";
  for (const button of selection.querySelectorAll("[data-needs-selection]")) {
    button.disabled = !items.length;
  }
}

document.addEventListener("change", (event) => {
  if (event.target.matches('input[form="selection"]')) selectionChanged();
});
selectionChanged();

// ---- rename in place ----------------------------------------------------------------------

function itemOf(row) {
  return row.dataset.folderId
    ? { kind: "folder", id: row.dataset.folderId, name: row.dataset.name }
    : { kind: "file", id: row.dataset.fileId, name: row.dataset.name };
}

// Rename or move one file or folder through the API; resolves to the error, or null.
async function change(item, { name, folderId }) {
  const body = {};
  if (item.kind === "file") {
    if (name !== undefined) body.filename = name;
    if (folderId !== undefined) body.folder_id = folderId;
    const answer = await api("PATCH", `/api/files/${item.id}`, body);
    return answer.ok ? null : answer.data.error;
  }
  if (name !== undefined) body.name = name;
  if (folderId !== undefined) body.parent_id = folderId;
  const answer = await api("PATCH", `/api/folders/${item.id}`, body);
  return answer.ok ? null : answer.data.error;
}

function rename(row) {
  const item = itemOf(row);
  const label = row.querySelector(".label");
  const field = document.createElement("input");
  field.value = item.name;
  field.className = "rename";
  field.setAttribute("aria-label", `New name for ${item.name}`);
  const holder = label.closest("a") ?? label;
  holder.hidden = true;
  holder.after(field);
  field.focus();
  // Select the name without its extension, as file managers do.
  const dot = item.kind === "file" ? item.name.lastIndexOf(".") : -1;
  field.setSelectionRange(0, dot > 0 ? dot : item.name.length);
  let done = false;
  const finish = async (save) => {
    if (done) return;
    done = true;
    const name = field.value.trim();
    if (save && name && name !== item.name) {
      try {
        const error = await change(item, { name });
        if (error) {
          problem(`“${item.name}” was not renamed: ${error}`);
        } else {
          return location.reload();
        }
      } catch { return; }
    }
    field.remove();
    holder.hidden = false;
  };
  field.addEventListener("keydown", (event) => {
    if (event.key === "Enter") finish(true);
    if (event.key === "Escape") finish(false);
  });
  field.addEventListener("blur", () => finish(true));
}

// ---- move: a dialog with the folder tree, or a drag onto a folder or breadcrumb ---------------

const dialog = document.getElementById("move-dialog");
const tree = document.getElementById("folder-tree");
const moveError = document.getElementById("move-error");
let moving = [];
let target = null;

// One folder of the tree: a button to pick it and, for folders, one to open its children.
function treeItem(id, name, level) {
  const li = document.createElement("li");
  li.setAttribute("role", "treeitem");
  li.setAttribute("aria-level", String(level));
  li.dataset.folderId = id;
  const pick = document.createElement("button");
  pick.type = "button";
  pick.className = "pick";
  pick.textContent = name;
  pick.setAttribute("aria-pressed", "false");
  pick.onclick = () => {
    target = id;
    for (const other of tree.querySelectorAll(".pick")) other.setAttribute("aria-pressed", String(other === pick));
  };
  const open = document.createElement("button");
  open.type = "button";
  open.className = "open quiet";
  open.textContent = "▸";
  open.setAttribute("aria-label", `Show folders in ${name}`);
  open.setAttribute("aria-expanded", "false");
  open.onclick = () => expand(li, open, level);
  li.append(open, pick);
  return li;
}

async function expand(li, open, level) {
  const shown = li.querySelector(":scope > ul");
  if (shown) {
    shown.remove();
    open.setAttribute("aria-expanded", "false");
    open.textContent = "▸";
    return;
  }
  let answer;
  try {
    answer = await api("GET", `/api/folders?parent_id=${encodeURIComponent(li.dataset.folderId)}`);
  } catch { return; }
  if (!answer.ok) {
    moveError.textContent = answer.data.error;
    moveError.hidden = false;
    return;
  }
  const list = document.createElement("ul");
  list.setAttribute("role", "group");
  // A folder being moved cannot go into itself or below: it is left out of the tree.
  const away = new Set(moving.filter((item) => item.kind === "folder").map((item) => item.id));
  for (const folder of answer.data.folders) {
    if (!away.has(folder.id)) list.append(treeItem(folder.id, folder.name, level + 1));
  }
  if (!list.children.length) {
    open.hidden = true;
    return;
  }
  li.append(list);
  open.setAttribute("aria-expanded", "true");
  open.textContent = "▾";
}

function openMove(items) {
  moving = items;
  target = null;
  moveError.hidden = true;
  document.getElementById("move-what").textContent =
    items.length === 1 ? `“${items[0].name}”` : `${items.length} items`;
  const top = document.createElement("ul");
  const root = treeItem("root", "All files", 1);
  top.append(root);
  tree.replaceChildren(top);
  dialog.showModal();
  expand(root, root.querySelector(".open"), 1);
}

// Move items into a folder one by one; resolves to the first refusal, or null.
async function moveAll(items, folderId) {
  for (const item of items) {
    if (item.kind === "folder" && item.id === folderId) continue;
    const error = await change(item, { folderId });
    if (error) return `“${item.name}” was not moved: ${error}`;
  }
  return null;
}

document.getElementById("move-cancel").onclick = () => dialog.close();
document.getElementById("move-confirm").onclick = async () => {
  if (!target) {
    moveError.textContent = "Choose a folder first.";
    moveError.hidden = false;
    return;
  }
  let error;
  try {
    error = await moveAll(moving, target);
  } catch { return; }
  if (error) {
    moveError.textContent = error;
    moveError.hidden = false;
    return;
  }
  dialog.close();
  location.reload();
};
document.getElementById("move-selected").onclick = () => openMove(chosen());

document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-rename], button[data-move]");
  if (!button) return;
  const row = button.closest("tr");
  if (button.hasAttribute("data-rename")) rename(row);
  else openMove([itemOf(row)]);
});

// Dragging a row: its item (or the whole selection, when it is part of it) goes onto a
// folder row or a breadcrumb.
const MOVE_TYPE = "application/x-coffer-items";

function isMove(event) {
  return [...event.dataTransfer.types].includes(MOVE_TYPE);
}

document.addEventListener("dragstart", (event) => {
  const row = event.target.closest?.("tr[draggable]");
  if (!row) return;
  const item = itemOf(row);
  const picked = chosen();
  const items = picked.some((p) => p.id === item.id) ? picked : [item];
  event.dataTransfer.setData(MOVE_TYPE, JSON.stringify(items));
  event.dataTransfer.effectAllowed = "move";
});

for (const name of ["dragenter", "dragover"]) {
  document.addEventListener(name, (event) => {
    const place = event.target.closest?.("[data-drop-folder]");
    if (!place || !isMove(event)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "move";
    place.classList.add("drop-target");
  });
}
document.addEventListener("dragleave", (event) => {
  event.target.closest?.("[data-drop-folder]")?.classList.remove("drop-target");
});
document.addEventListener("drop", async (event) => {
  const place = event.target.closest?.("[data-drop-folder]");
  if (!place || !isMove(event)) return;
  event.preventDefault();
  place.classList.remove("drop-target");
  const items = JSON.parse(event.dataTransfer.getData(MOVE_TYPE));
  let error;
  try {
    error = await moveAll(items, place.dataset.dropFolder);
  } catch { return; }
  if (error) return problem(error);
  location.reload();
});
