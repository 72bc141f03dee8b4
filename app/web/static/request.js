// The upload-only link's page: send the chosen files (the form for small ones, tus for
// large ones), then follow their statuses until each has its verdict. Only the files this
// browser sent are ever asked about: the server answers for no other.
import { ResumableUpload, UploadError } from "./tus.js";

const csrf = document.querySelector('meta[name="csrf-token"]').content;
const form = document.getElementById("request-form");
const list = document.getElementById("sent");
const FINAL = new Set(["ready", "failed"]);
const CHUNK = 5 * 1024 * 1024;

function row(id, name) {
  let item = id ? list.querySelector(`li[data-id="${CSS.escape(id)}"]`) : null;
  if (!item) {
    item = document.createElement("li");
    const label = document.createElement("span");
    label.className = "name";
    label.textContent = name;
    const status = document.createElement("span");
    status.className = "status";
    item.append(label, " ", status);
    list.prepend(item);
    document.getElementById("none-sent")?.remove();
  }
  if (id) item.dataset.id = id;
  return item;
}

function show(item, status, error = "") {
  item.dataset.status = status;
  item.querySelector(".status").textContent = status;
  let note = item.querySelector(".error");
  if (error) {
    if (!note) { note = document.createElement("span"); note.className = "error"; item.append(" ", note); }
    note.textContent = error;
  }
}

function sendForm(file, item) {
  return new Promise((resolve) => {
    const body = new FormData();
    body.append("file", file);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.setRequestHeader("X-CSRF-Token", csrf);
    xhr.upload.onprogress = (event) => show(item, `uploading ${Math.floor((100 * event.loaded) / file.size)}%`);
    xhr.onload = () => {
      let data = {};
      try { data = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
      if (xhr.status === 201) { item.dataset.id = data.id; show(item, data.status); }
      else show(item, "refused", data.error || `the server answered ${xhr.status}`);
      resolve();
    };
    xhr.onerror = () => { show(item, "refused", "connection lost"); resolve(); };
    xhr.send(body);
  });
}

async function sendResumable(file, item) {
  const upload = new ResumableUpload(file, {
    endpoint: form.dataset.tusUrl,
    headers: { "X-CSRF-Token": csrf },
    chunkSize: CHUNK,
    onProgress: (sent, total) => show(item, `uploading ${Math.floor((100 * sent) / total)}%`),
  });
  try {
    item.dataset.id = await upload.start();
    show(item, "pending");
  } catch (error) {
    show(item, "refused", error instanceof UploadError ? error.message : "connection lost");
  }
}

async function poll() {
  const waiting = [...list.querySelectorAll("li[data-id]")].some((li) => !FINAL.has(li.dataset.status) && li.dataset.status !== "refused");
  if (!waiting) return;
  const response = await fetch(form.dataset.filesUrl, { credentials: "same-origin" });
  if (response.ok) {
    const { files } = await response.json();
    for (const file of files) show(row(file.id, file.name), file.status, file.error || "");
  }
  setTimeout(poll, 1000);
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = document.getElementById("request-file");
  const files = [...input.files];
  input.value = "";
  for (const file of files) {
    const item = row(null, file.name);
    show(item, "uploading");
    if (file.size > Number(form.dataset.resumableAbove)) await sendResumable(file, item);
    else await sendForm(file, item);
  }
  poll();
});

poll();
