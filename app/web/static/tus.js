// A small tus 1.0.0 client (creation, termination): the resumable uploads of the files page.
// Written here rather than taken from tus-js-client because the project ships no build step
// and loads nothing from elsewhere; it needs only what Coffer's endpoint offers.
// As tus-js-client does, it keeps each unfinished upload's URL in localStorage by a
// fingerprint of the file, so the same file picked again after a reload (or a crash)
// carries on from the server's offset instead of starting over.

const TUS = "1.0.0";
// Waits between tries after a dropped connection or a busy upload, in seconds; the last
// one repeats until the upload goes through or is cancelled.
const RETRY_DELAYS = [1, 2, 4, 8, 15];

// Answers worth trying again: a busy upload, a rate limit, a server that is restarting or
// away for a moment. Any other answer (4xx, and 507: the quota is full) will not change by
// itself, so the upload stops and says what the server said.
const TRANSIENT = new Set([409, 423, 429, 500, 502, 503, 504]);
// A creation's 409 is a taken name (`on_conflict=fail`), which waiting does not change.
const CREATION_TRANSIENT = new Set([...TRANSIENT].filter((status) => status !== 409));

// An upload that cannot go on; `status` is the server's answer (0 when there was none).
// `code` is the API's error code, when the answer had one.
export class UploadError extends Error {
  constructor(message, status = 0, code = "") {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// The API's error code of an answered request ("" when it has none).
export function errorCode(xhr) {
  try {
    const body = JSON.parse(xhr.responseText);
    if (body && typeof body.code === "string") return body.code;
  } catch { /* not JSON */ }
  return "";
}

function sleep(seconds, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, seconds * 1000);
    signal.addEventListener("abort", () => { clearTimeout(timer); resolve(); }, { once: true });
  });
}

// localStorage keys of unfinished uploads: this prefix, then the file's fingerprint.
const STORE = "coffer-tus::";
// An entry older than this is dropped unasked (the server expires an idle upload after a
// day by default; a week leaves room for a longer setting).
const FORGET_AFTER_MS = 7 * 24 * 3600 * 1000;

// What says "the same file, going to the same place": its name, type, size and modification
// time (tus-js-client's fingerprint), the endpoint, and the upload's own metadata (its
// folder and what to do on a taken name).
function fingerprint(file, endpoint, extra) {
  return STORE + JSON.stringify([file.name, file.type, file.size, file.lastModified, endpoint, extra]);
}

// localStorage may be off (a private window, a policy): then nothing is remembered.
const remembered = {
  get(key) {
    try {
      const entry = JSON.parse(localStorage.getItem(key));
      return entry && typeof entry.url === "string" ? entry : null;
    } catch { return null; }
  },
  set(key, entry) {
    try { localStorage.setItem(key, JSON.stringify({ ...entry, at: Date.now() })); } catch { /* not kept */ }
  },
  drop(key) {
    try { localStorage.removeItem(key); } catch { /* nothing kept */ }
  },
};

// The unfinished uploads this browser remembers for an endpoint, each {key, url, name, size,
// metadata};
// stale entries are dropped on the way.
export function rememberedUploads(endpoint) {
  const found = [];
  let keys = [];
  try {
    keys = Object.keys(localStorage).filter((key) => key.startsWith(STORE));
  } catch { return found; }
  for (const key of keys) {
    const entry = remembered.get(key);
    if (!entry || Date.now() - (entry.at || 0) > FORGET_AFTER_MS) {
      remembered.drop(key);
    } else if (entry.url.startsWith(`${endpoint}/`)) {
      found.push({ key, url: entry.url, name: entry.name, size: entry.size, metadata: entry.metadata || {} });
    }
  }
  return found;
}

// Ask the server where a remembered upload stands: {offset, length}, or null when it is
// gone (finished and deleted, expired, cancelled elsewhere); the entry of a gone upload is
// dropped. Throws an UploadError of 401 when the session has ended.
export async function standing(key, url, headers = {}) {
  const xhr = await send("HEAD", url, { ...headers, "Tus-Resumable": TUS }, null, null, new AbortController().signal);
  if (xhr.status === 401) throw new UploadError("your session has ended", 401);
  if (xhr.status === 200 || xhr.status === 204) {
    return { offset: Number(xhr.getResponseHeader("Upload-Offset")), length: Number(xhr.getResponseHeader("Upload-Length")) };
  }
  if (xhr.status === 404 || xhr.status === 410) remembered.drop(key);
  return null;
}

// Forget a remembered upload (it finished).
export function forget(key) {
  remembered.drop(key);
}

// Forget a remembered upload and ask the server to free what it holds (tus termination).
export async function discard(key, url, headers = {}) {
  remembered.drop(key);
  try {
    await fetch(url, { method: "DELETE", headers: { ...headers, "Tus-Resumable": TUS }, credentials: "same-origin" });
  } catch { /* the server expires it in time */ }
}

// Answers after which the remembered upload is of no more use: anything but a session that
// ended (signing in again lets the same file carry on).
const KEEP_AFTER = new Set([0, 401]);

function metadata(fields) {
  const encode = (text) => {
    const bytes = new TextEncoder().encode(text);
    let binary = "";
    for (const byte of bytes) binary += String.fromCharCode(byte);
    return btoa(binary);
  };
  return Object.entries(fields).map(([key, value]) => `${key} ${encode(value)}`).join(",");
}

// The API's message of an answered request; waitress's own plain-text 413 has none.
export function errorMessage(xhr) {
  try {
    const body = JSON.parse(xhr.responseText);
    if (body && body.error) return body.error;
  } catch { /* not JSON */ }
  return xhr.status === 413 ? "the file is larger than the upload limit" : `the server answered ${xhr.status}`;
}

// One XMLHttpRequest (fetch reports no upload progress); resolves to the request once answered.
function send(method, url, headers, body, onProgress, signal) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, url);
    for (const [name, value] of Object.entries(headers)) xhr.setRequestHeader(name, value);
    if (onProgress) xhr.upload.onprogress = (event) => onProgress(event.loaded);
    xhr.onload = () => resolve(xhr);
    xhr.onerror = () => reject(new TypeError("network error"));
    xhr.onabort = () => reject(new DOMException("cancelled", "AbortError"));
    signal.addEventListener("abort", () => xhr.abort(), { once: true });
    xhr.send(body);
  });
}

export class ResumableUpload {
  constructor(file, { endpoint, headers = {}, chunkSize, onProgress, onRetry, onResume, metadata: extra = {} }) {
    this.file = file;
    this.metadata = extra;
    this.endpoint = endpoint;
    this.headers = { ...headers, "Tus-Resumable": TUS };
    this.chunkSize = chunkSize;
    this.onProgress = onProgress || (() => {});
    this.onRetry = onRetry || (() => {});
    this.onResume = onResume || (() => {});
    this.controller = new AbortController();
    this.url = null;
    this.offset = 0;
    // Where this upload carried on from when it resumed one this browser remembered.
    this.resumedFrom = null;
    this.key = fingerprint(file, endpoint, extra);
  }

  // Send the file: carry on with the upload this browser remembers for it, or create one;
  // resolves to the file id once the last byte is in.
  async start() {
    try {
      const id = await this.transfer();
      remembered.drop(this.key);
      return id;
    } catch (error) {
      const status = error instanceof UploadError ? error.status : 0;
      if (error.name !== "AbortError" && !KEEP_AFTER.has(status)) remembered.drop(this.key);
      throw error;
    }
  }

  async transfer() {
    const signal = this.controller.signal;
    if (!(await this.resume())) {
      const created = await this.retrying(async () => send("POST", this.endpoint, {
        ...this.headers,
        "Upload-Length": String(this.file.size),
        "Upload-Metadata": metadata({ ...this.metadata, filename: this.file.name }),
      }, null, null, signal), (xhr) => xhr.status === 201, null, CREATION_TRANSIENT);
      this.url = new URL(created.getResponseHeader("Location"), location.href).pathname;
      remembered.set(this.key, { url: this.url, name: this.file.name, size: this.file.size, metadata: this.metadata });
    }
    this.onProgress(this.offset, this.file.size);
    while (this.offset < this.file.size) {
      const start = this.offset;
      const part = this.file.slice(start, start + this.chunkSize);
      const answered = await this.retrying(
        async () => send("PATCH", this.url, {
          ...this.headers,
          "Content-Type": "application/offset+octet-stream",
          "Upload-Offset": String(start),
        }, part, (loaded) => this.onProgress(start + loaded, this.file.size), signal),
        (xhr) => xhr.status === 204,
        // After a failure the server says how much it kept; carry on from there.
        async () => { await this.resync(); return this.offset !== start; },
      );
      if (answered) this.offset = Number(answered.getResponseHeader("Upload-Offset"));
      this.onProgress(this.offset, this.file.size);
    }
    return this.url.split("/").pop();
  }

  // The upload this browser remembers for the file, when the server still holds it for a
  // file of this size: take its URL and the server's offset (HEAD). Anything else (gone,
  // expired, another size) forgets it, and the caller creates a new one.
  async resume() {
    const entry = remembered.get(this.key);
    if (!entry || !entry.url.startsWith(`${this.endpoint}/`)) return false;
    const xhr = await this.retrying(
      async () => send("HEAD", entry.url, this.headers, null, null, this.controller.signal),
      (answer) => !TRANSIENT.has(answer.status),
    );
    if (xhr.status === 401) throw new UploadError(errorMessage(xhr), 401);
    const offset = Number(xhr.getResponseHeader("Upload-Offset"));
    const length = Number(xhr.getResponseHeader("Upload-Length"));
    const held = (xhr.status === 200 || xhr.status === 204) && length === this.file.size;
    if (!held || !Number.isInteger(offset) || offset < 0 || offset > length) {
      remembered.drop(this.key);
      return false;
    }
    this.url = entry.url;
    this.offset = offset;
    this.resumedFrom = offset;
    this.onResume(offset, length);
    return true;
  }

  // Ask the server for the offset it holds (HEAD), after a dropped or refused PATCH.
  async resync() {
    const xhr = await send("HEAD", this.url, this.headers, null, null, this.controller.signal);
    if (xhr.status === 200 || xhr.status === 204) {
      this.offset = Number(xhr.getResponseHeader("Upload-Offset"));
      return;
    }
    throw new UploadError(xhr.status === 404 ? "the upload expired or was removed" : errorMessage(xhr), xhr.status);
  }

  // Run one request until it succeeds: a dropped connection or a transient answer (see
  // TRANSIENT) waits and tries again; any other answer ends the upload.
  // `moved` (after a failure) says the server already holds more than this request sent.
  async retrying(request, succeeded, moved = null, transient = TRANSIENT) {
    for (let attempt = 0; ; attempt += 1) {
      let failure;
      try {
        const xhr = await request();
        if (succeeded(xhr)) return xhr;
        if (!transient.has(xhr.status)) throw new UploadError(errorMessage(xhr), xhr.status, errorCode(xhr));
        failure = errorMessage(xhr);
      } catch (error) {
        if (error instanceof UploadError || error.name === "AbortError") throw error;
        failure = "connection lost";
      }
      const delay = RETRY_DELAYS[Math.min(attempt, RETRY_DELAYS.length - 1)];
      this.onRetry(failure, delay);
      await sleep(delay, this.controller.signal);
      if (this.controller.signal.aborted) throw new DOMException("cancelled", "AbortError");
      if (moved) {
        try {
          if (await moved()) return null;
        } catch (error) {
          if (error instanceof UploadError) throw error;
          // Still unreachable: wait again before the next try.
        }
      }
    }
  }

  // Cancel: stop sending and ask the server to forget what it holds (tus termination).
  async cancel() {
    this.controller.abort();
    remembered.drop(this.key);
    if (this.url && this.offset < this.file.size) {
      try {
        await fetch(this.url, { method: "DELETE", headers: this.headers, credentials: "same-origin" });
      } catch { /* the server expires it in time */ }
    }
  }
}
