// A small tus 1.0.0 client (creation, termination): the resumable uploads of the files page.
// Written here rather than taken from tus-js-client because the project ships no build step
// and loads nothing from elsewhere; it needs only what Coffer's endpoint offers.

const TUS = "1.0.0";
// Waits between tries after a dropped connection or a busy upload, in seconds; the last
// one repeats until the upload goes through or is cancelled.
const RETRY_DELAYS = [1, 2, 4, 8, 15];

// Answers worth trying again: a busy upload, a rate limit, a server that is restarting or
// away for a moment. Any other answer (4xx, and 507: the quota is full) will not change by
// itself, so the upload stops and says what the server said.
const TRANSIENT = new Set([409, 423, 429, 500, 502, 503, 504]);

// An upload that cannot go on; `status` is the server's answer (0 when there was none).
export class UploadError extends Error {
  constructor(message, status = 0) {
    super(message);
    this.status = status;
  }
}

function sleep(seconds, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, seconds * 1000);
    signal.addEventListener("abort", () => { clearTimeout(timer); resolve(); }, { once: true });
  });
}

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
  constructor(file, { endpoint, headers = {}, chunkSize, onProgress, onRetry, metadata: extra = {} }) {
    this.file = file;
    this.metadata = extra;
    this.endpoint = endpoint;
    this.headers = { ...headers, "Tus-Resumable": TUS };
    this.chunkSize = chunkSize;
    this.onProgress = onProgress || (() => {});
    this.onRetry = onRetry || (() => {});
    this.controller = new AbortController();
    this.url = null;
    this.offset = 0;
  }

  // Create the upload, then send its parts until the last byte is in; resolves to the file id.
  async start() {
    const signal = this.controller.signal;
    const created = await this.retrying(async () => send("POST", this.endpoint, {
      ...this.headers,
      "Upload-Length": String(this.file.size),
      "Upload-Metadata": metadata({ ...this.metadata, filename: this.file.name }),
    }, null, null, signal), (xhr) => xhr.status === 201);
    this.url = new URL(created.getResponseHeader("Location"), location.href).pathname;
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
  async retrying(request, succeeded, moved = null) {
    for (let attempt = 0; ; attempt += 1) {
      let failure;
      try {
        const xhr = await request();
        if (succeeded(xhr)) return xhr;
        if (!TRANSIENT.has(xhr.status)) throw new UploadError(errorMessage(xhr), xhr.status);
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
    if (this.url && this.offset < this.file.size) {
      try {
        await fetch(this.url, { method: "DELETE", headers: this.headers, credentials: "same-origin" });
      } catch { /* the server expires it in time */ }
    }
  }
}
