"""Browser pages on other origins: the CORS headers of /api for listed and unlisted origins,
and tus-js-client and Uppy uploading from such a page in a real Chromium."""

from __future__ import annotations

import functools
import threading
import uuid
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from playwright.sync_api import Browser, Page, Request

from app import create_app
from app.config import ConfigError, load_config
from tests.support import npm, tus
from tests.support.browser import ConsoleErrors, Site, new_context
from tests.support.client import Auth
from tests.support.config import app_config
from tests.support.pipeline import text_bytes
from tests.support.processes import RedisServer
from tests.support.waiting import wait_for

KiB = 1024
API_MD = Path(__file__).resolve().parent.parent / "docs" / "API.md"
# The request headers tus-js-client and Uppy send, as a preflight names them.
TUS_REQUEST_HEADERS = (
    "authorization",
    "content-type",
    "tus-resumable",
    "upload-length",
    "upload-metadata",
    "upload-offset",
    "x-http-method-override",
)
# The answer headers the contract has a listed origin's scripts read.
EXPOSED = (
    "Location",
    "Upload-Offset",
    "Upload-Length",
    "Upload-Expires",
    "Tus-Resumable",
    "Tus-Version",
    "Tus-Extension",
    "Tus-Max-Size",
    "ETag",
    "Content-Disposition",
)
PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Another origin</title>
<script src="tus.min.js"></script><script src="uppy.min.js"></script>
</head><body><p>A page of another origin.</p></body></html>
"""
TUS_UPLOAD = """async ({endpoint, token, text, chunkSize, override}) => {
  const file = new Blob([text], {type: "text/plain"});
  return await new Promise((resolve) => {
    const upload = new tus.Upload(file, {
      endpoint,
      chunkSize,
      retryDelays: null,
      overridePatchMethod: override,
      headers: {Authorization: `Bearer ${token}`},
      metadata: {filename: "from-tus.txt", filetype: "text/plain"},
      onSuccess: () => resolve({ok: true, url: upload.url}),
      onError: (error) => resolve({ok: false, error: String(error)}),
    });
    upload.start();
  });
}"""
UPPY_UPLOAD = """async ({endpoint, token, text, chunkSize}) => {
  const uppy = new Uppy.Uppy();
  uppy.use(Uppy.Tus, {
    endpoint,
    chunkSize,
    retryDelays: null,
    headers: {Authorization: `Bearer ${token}`},
  });
  const errors = [];
  uppy.on("upload-error", (file, error) => errors.push(String(error)));
  uppy.addFile({name: "from-uppy.txt", type: "text/plain", data: new Blob([text])});
  const result = await uppy.upload();
  return {
    ok: result.successful.length === 1 && result.failed.length === 0,
    url: result.successful.map((file) => file.tus.uploadUrl)[0] ?? null,
    errors,
  };
}"""


# Runs a snippet of API.md with `file` and `token` given, and `console` standing in for the
# page's so that its onSuccess/onError lines settle the promise.
DOCUMENTED_UPLOAD = """async ({snippet, token, text}) => await new Promise((resolve) => {
  const file = new File([text], "notes.txt", {type: "text/plain"});
  const console = {
    log: (...said) => resolve({ok: true, said: said.join(" ")}),
    error: (error) => resolve({ok: false, said: String(error)}),
  };
  eval(snippet);
})"""


def documented_tus_example() -> str:
    """API.md's tus-js-client example, as written there."""
    text = API_MD.read_text()
    start = text.index("```js\n", text.index("With tus-js-client")) + len("```js\n")
    return text[start : text.index("```", start)]


class PageServer:
    """Static files over HTTP on a port of their own: another origin than Coffer's."""

    def __init__(self, directory: Path) -> None:
        handler = functools.partial(QuietHandler, directory=str(directory))
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> PageServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


class QuietHandler(SimpleHTTPRequestHandler):
    """The standard file handler, without a log line per request."""

    def log_message(self, format: str, *args: Any) -> None:
        """Say nothing."""


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder both page servers serve (the browser builds are added by `bundles`)."""
    directory = tmp_path_factory.mktemp("pages")
    (directory / "index.html").write_text(PAGE)
    return directory


@pytest.fixture(scope="module")
def listed(pages: Path) -> Iterator[PageServer]:
    """The origin CORS_ORIGINS lists."""
    with PageServer(pages) as server:
        yield server


@pytest.fixture(scope="module")
def unlisted(pages: Path) -> Iterator[PageServer]:
    """An origin CORS_ORIGINS does not list."""
    with PageServer(pages) as server:
        yield server


@pytest.fixture(scope="module")
def bundles(pages: Path) -> Path:
    """tus-js-client's and Uppy's browser builds beside the page, from npm."""
    npm.bundles(pages)
    return pages


@pytest.fixture
def app_overrides(listed: PageServer) -> dict[str, Any]:
    """Only the listed page server's origin may call the API."""
    return {"CORS_ORIGINS": listed.origin}


def access_control(response: Any) -> dict[str, str]:
    """The answer's Access-Control-* headers, by lower-case name."""
    return {
        name.lower(): value
        for name, value in response.headers.items()
        if name.lower().startswith("access-control-")
    }


def listing(value: str) -> set[str]:
    """A comma-separated header value as a set of lower-case items."""
    return {item.strip().lower() for item in value.split(",") if item.strip()}


def preflight(client: FlaskClient, path: str, origin: str, method: str) -> Any:
    """The OPTIONS request a browser sends before a cross-origin call."""
    return client.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": ",".join(TUS_REQUEST_HEADERS),
        },
    )


@pytest.mark.parametrize(
    ("path", "method"),
    [
        ("/api/uploads", "POST"),
        ("/api/uploads/UPLOAD", "PATCH"),
        ("/api/uploads/UPLOAD", "POST"),
        ("/api/uploads/UPLOAD", "DELETE"),
        ("/api/files", "GET"),
        ("/api/files/upload", "POST"),
        ("/api/auth/me", "GET"),
        ("/api/auth/login", "POST"),
        ("/api/no-such-endpoint", "PUT"),
        ("/api", "GET"),
    ],
)
def test_a_listed_origins_preflight_to_any_api_path_is_allowed_without_authentication(
    client: FlaskClient, listed: PageServer, path: str, method: str
) -> None:
    """2xx with the origin, the method and every tus header, and never credentials."""
    path = path.replace("UPLOAD", str(uuid.uuid4()))
    response = preflight(client, path, listed.origin, method)
    assert response.status_code in (200, 204), response.get_data(as_text=True)
    headers = access_control(response)
    assert headers["access-control-allow-origin"] == listed.origin
    assert method.lower() in listing(headers["access-control-allow-methods"])
    assert set(TUS_REQUEST_HEADERS) <= listing(headers["access-control-allow-headers"])
    assert "access-control-allow-credentials" not in headers
    assert "origin" in listing(response.headers.get("Vary", ""))


def test_only_a_listed_origin_may_read_answers_and_their_tus_headers(
    app: Flask, client: FlaskClient, auth: Auth, listed: PageServer, unlisted: PageServer
) -> None:
    """A listed origin reads the answer (errors too) and the tus and download headers; an
    unlisted one, one differing only in scheme, and a request without Origin get no
    Access-Control-* header at all."""
    auth.register()
    token = auth.token()
    bearer = {"Authorization": f"Bearer {token}", **tus.TUS}

    def create(origin: str | None) -> Any:
        headers = {**bearer, **({"Origin": origin} if origin else {})}
        return tus.create(client, headers, 10, "notes.txt")

    created = create(listed.origin)
    assert created.status_code == 201
    headers = access_control(created)
    assert headers["access-control-allow-origin"] == listed.origin
    assert {name.lower() for name in EXPOSED} <= listing(headers["access-control-expose-headers"])
    assert "access-control-allow-credentials" not in headers
    assert "Set-Cookie" not in created.headers

    # A browser's cross-origin call carries no cookie: without the token, a 401 it may read.
    refused = app.test_client().post("/api/uploads", headers={"Origin": listed.origin, **tus.TUS})
    assert refused.status_code == 401
    assert access_control(refused)["access-control-allow-origin"] == listed.origin

    others = [unlisted.origin, listed.origin.replace("http://", "https://"), "null", None]
    for origin in others:
        answer = create(origin)
        assert answer.status_code == 201
        assert access_control(answer) == {}, origin
        if origin is not None:
            asked = preflight(client, "/api/uploads", origin, "POST")
            assert access_control(asked) == {}, origin
            assert "origin" in listing(asked.headers.get("Vary", ""))


def test_cors_origins_is_empty_by_default_and_takes_only_plain_origins(
    migrated_database: str,
    redis_server: RedisServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Nothing is listed unless set; entries are kept as browsers send Origin; a path, a
    wildcard, a user or another scheme stops the start with the setting named."""
    monkeypatch.delenv("CORS_ORIGINS", raising=False)
    assert load_config()["CORS_ORIGINS"] == ()
    default = create_app(app_config(migrated_database, redis_server.url, tmp_path))
    answer = preflight(default.test_client(), "/api/uploads", "http://127.0.0.1:8000", "POST")
    assert access_control(answer) == {}

    monkeypatch.setenv(
        "CORS_ORIGINS", " https://App.Example.com/ ,http://127.0.0.1:8080,https://b.test:443,"
    )
    assert load_config()["CORS_ORIGINS"] == (
        "https://app.example.com",
        "http://127.0.0.1:8080",
        "https://b.test",
    )
    for bad in ("*", "https://*.example.com", "https://a.test/app", "a.test", "ftp://a.test",
                "https://user@a.test", "https://a.test:99999", "null"):  # fmt: skip
        monkeypatch.setenv("CORS_ORIGINS", f"https://ok.test,{bad}")
        with pytest.raises(ConfigError, match=r"^CORS_ORIGINS must list origins as scheme://"):
            load_config()


def test_x_http_method_override_makes_a_post_a_patch_or_delete_of_an_upload_only(
    app: Flask, client: FlaskClient, auth: Auth
) -> None:
    """tus's X-HTTP-Method-Override: a POST naming PATCH appends, one naming DELETE ends the
    upload; the header does nothing on any other URL."""
    auth.register()
    bearer = {"Authorization": f"Bearer {auth.token()}", **tus.TUS}
    location = tus.create(client, bearer, 10, "notes.txt").headers["Location"]

    appended = client.post(
        location,
        data=b"hello",
        headers={
            **bearer,
            "X-HTTP-Method-Override": "PATCH",
            "Upload-Offset": "0",
            "Content-Type": "application/offset+octet-stream",
        },
    )
    assert appended.status_code == 204, appended.get_json()
    assert appended.headers["Upload-Offset"] == "5"
    assert client.head(location, headers=bearer).headers["Upload-Offset"] == "5"

    ended = client.post(location, headers={**bearer, "X-HTTP-Method-Override": "DELETE"})
    assert ended.status_code == 204
    assert client.head(location, headers=bearer).status_code == 404

    token_id = client.get("/api/tokens", headers=bearer).get_json()["tokens"][0]["id"]
    elsewhere = client.post(
        f"/api/tokens/{token_id}", headers={**bearer, "X-HTTP-Method-Override": "DELETE"}
    )
    assert elsewhere.status_code == 405
    assert elsewhere.get_json()["code"] == "method_not_allowed"
    assert client.get("/api/auth/me", headers=bearer).status_code == 200


def upload_requests(page: Page, site: Site) -> list[str]:
    """The methods of the requests the page sends to upload URLs (preflights left out)."""
    seen: list[str] = []

    def note(request: Request) -> None:
        if request.url.startswith(f"{site.url}/api/uploads") and request.method != "OPTIONS":
            override = request.headers.get("x-http-method-override")
            seen.append(f"{request.method}:{override}" if override else request.method)

    page.on("request", note)
    return seen


def ready_bytes(client: FlaskClient, bearer: dict[str, str], upload_url: str) -> bytes:
    """The bytes of the file an upload made, once validation made it ready."""
    file_id = upload_url.rstrip("/").rsplit("/", 1)[-1]

    def status() -> str | None:
        body = client.get(f"/api/files/{file_id}", headers=bearer).get_json()
        return body["status"] if body["status"] in ("ready", "failed") else None

    assert wait_for(status, 60, "the upload's validation") == "ready"
    download = client.get(f"/api/files/{file_id}/download", headers=bearer)
    data = bytes(download.data)
    download.close()
    return data


def nothing_stored(client: FlaskClient, bearer: dict[str, str]) -> None:
    """No file and no unfinished upload holding quota."""
    assert client.get("/api/files", headers=bearer).get_json()["total"] == 0
    org = client.get("/api/org", headers=bearer).get_json()
    assert (org["used_bytes"], org["reserved_bytes"]) == (0, 0)


def run_in_page(
    browser: Browser, origin: str, site: Site, script: str, args: dict[str, Any]
) -> tuple[Any, list[str], list[str]]:
    """Open the page of `origin` in a fresh profile and run an upload script there; its
    result, the upload requests it sent and its console errors."""
    errors = ConsoleErrors()
    context = new_context(browser, errors)
    try:
        page = context.new_page()
        sent = upload_requests(page, site)
        page.goto(f"{origin}/index.html")
        result = page.evaluate(script, {"endpoint": f"{site.url}/api/uploads", **args})
    finally:
        context.close()
    return result, sent, errors.seen


@pytest.mark.parametrize("override", [False, True], ids=["patch", "override-patch-method"])
def test_tus_js_client_on_a_listed_origin_uploads_in_chunks_and_an_unlisted_one_is_refused(
    browser: Browser,
    bundles: Path,
    site: Site,
    client: FlaskClient,
    auth: Auth,
    listed: PageServer,
    unlisted: PageServer,
    override: bool,
) -> None:
    """tus-js-client 4 from another origin, with a bearer token, in 64 KiB chunks (PATCH, or
    POST with X-HTTP-Method-Override): the file ends ready with the bytes sent. From an
    unlisted origin the browser stops the upload at its preflight and nothing is stored."""
    auth.register()
    token = auth.token()
    bearer = {"Authorization": f"Bearer {token}"}
    data = text_bytes(300 * KiB, seed=32)
    args = {"token": token, "text": data.decode(), "chunkSize": 64 * KiB, "override": override}

    result, sent, errors = run_in_page(browser, listed.origin, site, TUS_UPLOAD, args)
    assert result["ok"], result
    assert errors == []
    chunk = "POST:PATCH" if override else "PATCH"
    assert sent == ["POST"] + [chunk] * 5
    assert ready_bytes(client, bearer, result["url"]) == data

    uploaded = result["url"].rsplit("/", 1)[-1]
    # Into the trash and out of it for good: nothing of it is held any more.
    client.delete(f"/api/files/{uploaded}", headers=bearer)
    client.delete(f"/api/trash/{uploaded}", headers=bearer)
    result, sent, errors = run_in_page(browser, unlisted.origin, site, TUS_UPLOAD, args)
    assert not result["ok"]
    assert "failed to create upload" in result["error"]
    assert any("blocked by CORS policy" in error for error in errors), errors
    nothing_stored(client, bearer)


def test_uppy_on_a_listed_origin_uploads_in_chunks_and_an_unlisted_one_is_refused(
    browser: Browser,
    bundles: Path,
    site: Site,
    client: FlaskClient,
    auth: Auth,
    listed: PageServer,
    unlisted: PageServer,
) -> None:
    """Uppy (@uppy/core with @uppy/tus) from another origin, with a bearer token: the file
    ends ready with its bytes; from an unlisted origin Uppy reports the upload failed and
    nothing is stored."""
    auth.register()
    token = auth.token()
    bearer = {"Authorization": f"Bearer {token}"}
    data = text_bytes(200 * KiB, seed=6)
    args = {"token": token, "text": data.decode(), "chunkSize": 64 * KiB}

    result, sent, errors = run_in_page(browser, listed.origin, site, UPPY_UPLOAD, args)
    assert result["ok"], result
    assert errors == []
    assert sent == ["POST"] + ["PATCH"] * 4
    assert ready_bytes(client, bearer, result["url"]) == data

    uploaded = result["url"].rsplit("/", 1)[-1]
    # Into the trash and out of it for good: nothing of it is held any more.
    client.delete(f"/api/files/{uploaded}", headers=bearer)
    client.delete(f"/api/trash/{uploaded}", headers=bearer)
    result, sent, errors = run_in_page(browser, unlisted.origin, site, UPPY_UPLOAD, args)
    assert not result["ok"]
    assert result["errors"], result
    assert any("blocked by CORS policy" in error for error in errors), errors
    nothing_stored(client, bearer)


def test_the_tus_js_client_example_of_api_md_runs_as_written_from_a_listed_origin(
    browser: Browser,
    bundles: Path,
    site: Site,
    client: FlaskClient,
    auth: Auth,
    listed: PageServer,
) -> None:
    """API.md's example, its host made the test server's, uploads a file that ends ready."""
    auth.register()
    token = auth.token()
    data = text_bytes(50 * KiB, seed=1)
    snippet = documented_tus_example().replace("https://coffer.example", site.url)
    args = {"snippet": snippet, "token": token, "text": data.decode()}

    result, sent, errors = run_in_page(browser, listed.origin, site, DOCUMENTED_UPLOAD, args)
    assert result["ok"], result
    assert errors == []
    assert sent == ["POST", "PATCH"]
    upload_url = result["said"].removeprefix("stored as ")
    assert upload_url.startswith(f"{site.url}/api/uploads/")
    assert ready_bytes(client, {"Authorization": f"Bearer {token}"}, upload_url) == data
