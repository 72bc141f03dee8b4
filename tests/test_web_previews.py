"""The pages of previews over HTTP: /s/<secret> answers a browser's navigation with a page and
every other client with the bytes (counted as before), `?download=1` sends the bytes, an
unusable link is a page to browsers and JSON to others, the share limit covers all of it; a
file's preview page shows text escaped and steps through its folder."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.support.client import Auth
from tests.support.storage import STORAGE_BACKEND
from tests.test_share_links import DATA, downloads_of, fetch, make_link, ready_file, secret_path

# What Chromium and Firefox send when a person opens a link.
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
# What curl, requests and most API clients send.
ANY = "*/*"


@pytest.fixture
def app_overrides() -> dict[str, Any]:
    """On an s3 run, downloads answer with presigned URLs: share links do too."""
    return {"S3_PRESIGNED_DOWNLOADS": True} if STORAGE_BACKEND == "s3" else {}


def shared(auth: Auth, worker: Callable[[], None], **body: Any) -> tuple[str, str]:
    """A ready text file and a link to it: (file id, the link's /s/<secret> path)."""
    auth.register()
    file_id = ready_file(auth, worker, "quarterly <report>.txt")
    created = make_link(auth, file_id, **body)
    assert created.status_code == 201, created.get_json()
    return file_id, secret_path(created.get_json()["url"])


def sent_bytes(client: FlaskClient, response: Any) -> bytes:
    """The file's bytes of a download answer: the body, or what the store's presigned URL
    (a 302 on s3) answers."""
    if response.status_code == 302:
        import requests

        return requests.get(response.headers["Location"], timeout=10).content
    assert response.status_code == 200, response.status_code
    return bytes(response.data)


def test_a_browser_gets_the_page_and_curl_the_bytes(
    app: Flask, auth: Auth, worker: Callable[[], None]
) -> None:
    """A browser's navigation answers the page (name escaped, size, Download) and counts
    nothing; curl's and no Accept at all answer the bytes, each counted as before."""
    file_id, path = shared(auth, worker)
    anonymous = app.test_client()

    page = fetch(anonymous, path, Accept=BROWSER)
    assert page.status_code == 200
    assert page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert "quarterly &lt;report&gt;.txt" in html and "<report>" not in html
    assert "1008 B" in html
    assert f'href="{path}?download=1"' in html
    assert "csrf-token" not in html  # no session is started for a visitor
    assert "Set-Cookie" not in page.headers
    assert page.headers["Cache-Control"] == "no-store"
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert page.headers["Referrer-Policy"] == "no-referrer"  # the secret stays in the URL bar
    assert "Accept" in page.headers.get_all("Vary")  # a cache keeps page and bytes apart
    assert downloads_of(auth, file_id) == [0]

    for accept in (ANY, None):
        headers = {"Accept": accept} if accept else {}
        answer = anonymous.get(path, headers=headers)
        assert "Accept" in answer.headers.get_all("Vary")
        assert sent_bytes(anonymous, answer) == DATA
        answer.close()
    assert downloads_of(auth, file_id) == [2]


def test_download_1_sends_the_bytes_to_a_browser_and_counts(
    app: Flask, auth: Auth, worker: Callable[[], None]
) -> None:
    """The page's Download button (`?download=1`) sends the bytes, counted, even though the
    browser prefers HTML; a link spent by it is then a page."""
    file_id, path = shared(auth, worker, max_downloads=1)
    anonymous = app.test_client()
    answer = anonymous.get(f"{path}?download=1", headers={"Accept": BROWSER})
    assert sent_bytes(anonymous, answer) == DATA
    answer.close()
    assert downloads_of(auth, file_id) == []  # its one download is spent: no longer live

    spent = fetch(anonymous, f"{path}?download=1", Accept=BROWSER)
    assert spent.status_code == 404 and spent.mimetype == "text/html"
    assert "This link does not work" in spent.get_data(as_text=True)
    visit = fetch(anonymous, path, Accept=BROWSER)
    assert visit.status_code == 404 and "This link does not work" in visit.get_data(as_text=True)


def test_an_unusable_link_is_a_page_to_browsers_and_json_to_others(
    app: Flask, client: FlaskClient
) -> None:
    """Unknown (and, the same, expired, revoked or spent) links: 404 as a page or JSON."""
    path = "/s/" + "A" * 43
    page = fetch(client, path, Accept=BROWSER)
    assert page.status_code == 404 and page.mimetype == "text/html"
    assert "Ask whoever sent it to you for a new one." in page.get_data(as_text=True)
    assert "sandbox" not in page.headers["Content-Security-Policy"]
    api = fetch(client, path, Accept=ANY)
    assert api.status_code == 404
    assert api.get_json() == {
        "error": "share link not found, expired or revoked",
        "code": "not_found",
    }
    json_first = fetch(client, path, Accept="application/json, text/html;q=0.5")
    assert json_first.status_code == 404 and json_first.get_json()["code"] == "not_found"


@pytest.mark.parametrize("app_overrides", [{"SHARE_LIMIT_PER_ADDRESS": "3 per minute"}])
def test_pages_previews_and_downloads_share_one_limit(app: Flask, client: FlaskClient) -> None:
    """Visits, previews and downloads of share links count together per address: the fourth
    of any is refused, as a page to a browser and as JSON to curl."""
    guesses = ["/s/" + "B" * 43, "/s/" + "C" * 43 + "/preview", "/s/" + "D" * 43]
    for n, path in enumerate(guesses):
        answer = fetch(client, path, Accept=BROWSER if n != 2 else ANY)
        assert answer.status_code == 404
    limited = fetch(client, "/s/" + "E" * 43, Accept=BROWSER)
    assert limited.status_code == 429 and limited.mimetype == "text/html"
    assert "Too many requests" in limited.get_data(as_text=True)
    limited = fetch(client, "/s/" + "E" * 43, Accept=ANY)
    assert limited.status_code == 429 and limited.get_json()["code"] == "rate_limited"


def test_a_file_without_a_preview_shows_none_on_its_page(
    app: Flask, auth: Auth, worker: Callable[[], None]
) -> None:
    """A text file has no preview image: the page shows no image, and the link's preview
    answers 404 without counting a download."""
    file_id, path = shared(auth, worker)
    anonymous = app.test_client()
    html = fetch(anonymous, path, Accept=BROWSER).get_data(as_text=True)
    assert "<img" not in html.split("<main", 1)[1]
    preview = fetch(anonymous, f"{path}/preview")
    assert preview.status_code == 404
    assert downloads_of(auth, file_id) == [0]


def test_the_preview_page_shows_text_escaped_and_steps_through_the_folder(
    app: Flask, auth: Auth, worker: Callable[[], None]
) -> None:
    """A text file with markup is shown as text in a <pre>, never as markup; Previous and
    Next follow the listing's order; another organization's file is 404."""
    auth.register()
    hostile = b"<script>alert(1)</script>\n<b>bold</b> & more\n"
    ids = {}
    for name, data in (("a.txt", b"first\n"), ("b.html", hostile), ("c.txt", b"third\n")):
        response = auth.upload(name, data)
        assert response.status_code == 201, response.get_json()
        ids[name] = response.get_json()["file_id"]
    worker()

    page = auth.client.get(f"/files/{ids['b.html']}?sort=name")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    shown = re.search(r'<pre class="text-preview"[^>]*>(.*?)</pre>', html, re.S)
    assert shown is not None
    assert (
        shown.group(1)
        == "&lt;script&gt;alert(1)&lt;/script&gt;\n&lt;b&gt;bold&lt;/b&gt; &amp; more\n"
    )
    assert "<script>alert" not in html
    assert f'href="/files/{ids["a.txt"]}?sort=name"' in html  # previous, A to Z
    assert f'href="/files/{ids["c.txt"]}?sort=name"' in html  # next
    assert "file.uploaded" in html  # its history

    other = auth.another()
    other.register(email="eve@evil.test", organization_name="Evil")
    assert other.client.get(f"/files/{ids['b.html']}").status_code == 404


def test_a_long_text_file_shows_its_first_64_kib(
    app: Flask, auth: Auth, worker: Callable[[], None]
) -> None:
    """Only the head of a big text file is read and shown, with a note saying so."""
    auth.register()
    data = ("é" * 40_000).encode()  # 80,000 bytes, two per character
    response = auth.upload("long.txt", data)
    file_id = response.get_json()["file_id"]
    worker()
    html = auth.client.get(f"/files/{file_id}").get_data(as_text=True)
    shown = re.search(r'<pre class="text-preview"[^>]*>(.*?)</pre>', html, re.S)
    assert shown is not None and shown.group(1) == "é" * 32_768
    assert "The first 64 KiB of 78.1 KiB" in html
