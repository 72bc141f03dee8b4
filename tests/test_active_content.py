"""Uploaded bytes never run in Coffer's origin: a script, a stylesheet or a document someone
uploaded, named by a page of Coffer's own, is refused by the browser."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from playwright.sync_api import Browser

from tests.support.browser import Site
from tests.support.client import bearer
from tests.support.waiting import wait_for

PASSWORD = "a long enough passphrase"


def ready_share(site: Site, token: str, filename: str, data: bytes) -> tuple[str, str]:
    """Upload a file by token, wait until it is ready; its id and a share link's path."""
    uploaded = requests.post(
        f"{site.url}/api/files/upload",
        headers=bearer(token),
        files={"file": (filename, data)},
        timeout=30,
    )
    assert uploaded.status_code == 201, uploaded.text
    file_id = uploaded.json()["file_id"]

    def status() -> Any:
        details = requests.get(f"{site.url}/api/files/{file_id}", headers=bearer(token), timeout=10)
        return details.json()["status"] in ("ready", "failed") and details.json()

    details = wait_for(status, 30, f"{filename} validated")
    assert details["status"] == "ready", details
    link = requests.post(
        f"{site.url}/api/files/{file_id}/links", headers=bearer(token), json={}, timeout=10
    )
    assert link.status_code == 201, link.text
    return file_id, "/s/" + link.json()["url"].rsplit("/s/", 1)[1]


@pytest.fixture
def token(site: Site) -> str:
    """An API token of a new organization's admin on the served app."""
    with requests.Session() as http:
        registered = http.post(
            f"{site.url}/api/auth/register",
            json={"email": "ada@acme.test", "password": PASSWORD, "organization_name": "Acme"},
            timeout=10,
        )
        assert registered.status_code == 201, registered.text
        made = http.post(
            f"{site.url}/api/tokens",
            json={"name": "script"},
            headers={"X-CSRF-Token": registered.json()["csrf_token"]},
            timeout=10,
        )
        assert made.status_code == 201, made.text
        return str(made.json()["token"])


def test_an_uploaded_script_or_stylesheet_does_not_run_in_a_page_of_coffers_origin(
    site: Site, browser: Browser, token: str
) -> None:
    """A .js and a .css fetched by share link from a Coffer page: neither applies."""
    file_id, script = ready_share(site, token, "evil.js", b"window.pwned = 'script ran';\n")
    details = requests.get(f"{site.url}/api/files/{file_id}", headers=bearer(token), timeout=10)
    assert details.json()["mime_type"] == "application/javascript"  # the validated type
    _, style = ready_share(site, token, "evil.css", b"body { color: rgb(1, 2, 3) }\n")

    served = requests.get(f"{site.url}{script}", timeout=10)
    assert served.status_code == 200
    assert served.content == b"window.pwned = 'script ran';\n"
    assert served.headers["Content-Type"] == "application/octet-stream"
    assert served.headers["X-Content-Type-Options"] == "nosniff"

    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"{site.url}/login")
        outcome = page.evaluate(
            """async ([script, style]) => {
                const loaded = (element) => new Promise((resolve) => {
                    element.onload = () => resolve("load");
                    element.onerror = () => resolve("error");
                });
                const tag = document.createElement("script");
                tag.src = script;
                const scriptDone = loaded(tag);
                document.head.appendChild(tag);
                const link = document.createElement("link");
                link.rel = "stylesheet";
                link.href = style;
                const styleDone = loaded(link);
                document.head.appendChild(link);
                return {
                    script: await scriptDone,
                    style: await styleDone,
                    pwned: window.pwned ?? null,
                    color: getComputedStyle(document.body).color,
                };
            }""",
            [script, style],
        )
    finally:
        context.close()
    assert outcome["pwned"] is None
    assert outcome["script"] == "error"
    assert outcome["color"] != "rgb(1, 2, 3)"
