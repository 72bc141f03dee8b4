// The files page: uploads with progress and cancel, live statuses, confirmed deletes.
import { ResumableUpload, UploadError, errorMessage } from "./tus.js";

const csrf = document.querySelector('meta[name="csrf-token"]').content;
const dropzone = document.getElementById("dropzone");
const input = document.getElementById("file-input");
const uploads = document.getElementById("uploads");
const limit = Number(dropzone.dataset.uploadLimit);
const resumableAbove = Number(dropzone.dataset.resumableAbove);
// Parts of a resumable upload, the size docs/API.md asks clients for: whole S3 parts
// (a shorter PATCH leaves its bytes waiting in the bucket), and a drop costs little.
const CHUNK = 8 * 1024 * 1024;
const POLL_MS = 1000;
const UNFINISHED = new Set(["pending", "processing"]);

// One file being uploaded: a list item with its name, a progress bar and Cancel.
class UploadItem {
  constructor(file) {
    this.file = file;
    this.li = document.createElement("li");
    this.li.className = "upload";
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = file.name;
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

  retrying(reason, seconds) {
    this.state.textContent = `${this.progress.value}%: ${reason}; trying again in ${seconds} s`;
  }

  done() {
    this.show(1, 1);
    this.state.textContent = "Uploaded; validating";
    this.cancelButton.remove();
    setTimeout(() => this.li.remove(), 1500);
    refreshRows();
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

// A small file: one multipart request, as the API takes it.
function uploadWhole(item) {
  const xhr = new XMLHttpRequest();
  const form = new FormData();
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
    return item.failed(errorMessage(xhr));
  };
  xhr.onerror = () => item.failed("connection lost; try again");
  xhr.onabort = () => item.cancelled();
  item.cancelButton.onclick = () => xhr.abort();
  xhr.send(form);
}

// A large file: the resumable endpoint, so a dropped connection resumes where it stopped.
function uploadResumable(item) {
  const upload = new ResumableUpload(item.file, {
    endpoint: "/api/uploads",
    headers: { "X-CSRF-Token": csrf },
    chunkSize: CHUNK,
    onProgress: (sent, total) => item.show(sent, total),
    onRetry: (reason, seconds) => item.retrying(reason, seconds),
  });
  item.cancelButton.onclick = () => upload.cancel();
  upload.start().then(
    () => item.done(),
    (error) => {
      if (error.name === "AbortError") return item.cancelled();
      if (error instanceof UploadError && error.status === 401) {
        sessionEnded();
        return item.failed(SESSION_ENDED);
      }
      return item.failed(error.message);
    },
  );
}

function start(files) {
  for (const file of files) {
    const item = new UploadItem(file);
    if (file.size === 0) {
      item.failed("the file is empty");
    } else if (file.size > limit) {
      item.failed("the file is larger than the upload limit");
    } else if (file.size > resumableAbove) {
      uploadResumable(item);
    } else {
      uploadWhole(item);
    }
  }
}

input.addEventListener("change", () => {
  start([...input.files]);
  input.value = "";
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
dropzone.addEventListener("drop", (event) => {
  event.preventDefault();
  start([...event.dataTransfer.files]);
});

// ---- live statuses: poll the rows while any file is unfinished, then stop --------------

const tbody = document.getElementById("file-rows");
let polling = null;

function unfinished() {
  return [...tbody.rows].some((row) => UNFINISHED.has(row.dataset.status));
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
  const ids = (body) => [...body.rows].map((row) => row.dataset.fileId).join(" ");
  if (ids(fresh) !== ids(tbody)) {
    tbody.replaceChildren(...fresh.rows);
  } else {
    // Same rows: swap only those whose status moved, so focus and scroll stay put.
    [...fresh.rows].forEach((row, index) => {
      if (row.dataset.status !== tbody.rows[index].dataset.status) tbody.rows[index].replaceWith(row);
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

// ---- deletes ask first --------------------------------------------------------------------

document.addEventListener("submit", (event) => {
  const form = event.target.closest("form.confirm-delete");
  if (form && !confirm(`Delete “${form.dataset.name}”? This cannot be undone.`)) {
    event.preventDefault();
  }
});
