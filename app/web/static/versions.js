// A file's versions page: while a version is being validated, its rows refresh every second
// (the page fetched again, its table's rows swapped) until none is unfinished.
const UNFINISHED = new Set(["pending", "processing"]);
const POLL_MS = 1000;
const tbody = document.getElementById("version-rows");

function unfinished(body) {
  return [...body.rows].some((row) => UNFINISHED.has(row.dataset.status));
}

async function refresh() {
  let response;
  try {
    response = await fetch(location.pathname, { credentials: "same-origin" });
  } catch {
    return setTimeout(refresh, POLL_MS); // offline for a moment
  }
  if (response.redirected || !response.ok) return; // signed out, or the file is gone
  const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
  const rows = fresh.getElementById("version-rows");
  if (rows) tbody.replaceChildren(...rows.rows);
  if (unfinished(tbody)) setTimeout(refresh, POLL_MS);
}

if (unfinished(tbody)) setTimeout(refresh, POLL_MS);
