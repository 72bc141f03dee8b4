"""The web app where things go wrong: a full quota, a session that ends, Redis away. Each
time the page says what happened and what to do, and does not keep trying what cannot work."""

from __future__ import annotations

import re
from typing import Any

import pytest
import requests
from playwright.sync_api import Page, Request, expect

from tests.support.browser import Site, sign_in, sign_up
from tests.support.client import Auth
from tests.support.pipeline import text_bytes
from tests.support.processes import RedisServer

MiB = 1024 * 1024
# Long enough for a page to show an answer on a busy machine.
SLOW = 30_000


@pytest.fixture
def app_overrides(own_redis: RedisServer) -> dict[str, Any]:
    """A Redis this module may stop, and a quota of 4 MiB a single file can fill."""
    return {"REDIS_URL": own_redis.url, "STORAGE_QUOTA_MB": 4}


def test_a_resumable_upload_over_the_quota_stops_at_once_and_says_what_to_do(
    site: Site, page: Page
) -> None:
    """A 507 cannot change by itself: one creation request, no retries, and a message that
    speaks in MiB and names the way out."""
    sign_up(page, site, "ada@acme.test", "Acme")
    creations: list[str] = []

    def seen(request: Request) -> None:
        if request.method == "POST" and "/api/uploads" in request.url:
            creations.append(request.url)

    page.on("request", seen)
    page.locator("#file-input").set_input_files(
        [{"name": "big.txt", "mimeType": "text/plain", "buffer": text_bytes(5 * MiB, seed=3)}]
    )
    failed = page.get_by_text(re.compile("^Failed: "))
    expect(failed).to_be_visible(timeout=SLOW)
    expect(failed).to_contain_text("5 MiB")
    expect(failed).to_contain_text("of 4 MiB used")
    expect(failed).to_contain_text("delete files or ask an admin to raise the quota")
    expect(page.get_by_text(re.compile("trying again"))).to_have_count(0)
    page.wait_for_timeout(3000)  # the first retry would have come after 1 s
    assert len(creations) == 1


def test_when_the_session_ends_an_upload_says_so_and_leads_back_to_sign_in(
    site: Site, page: Page
) -> None:
    """Signed out in another tab: the next upload is refused, the page says the session
    ended, stops showing the user as signed in, and its link signs in and comes back."""
    sign_up(page, site, "ada@acme.test", "Acme")
    other = page.context.new_page()
    other.goto(f"{site.url}/")
    other.get_by_role("button", name="Sign out").click()
    other.wait_for_load_state()
    other.close()

    page.locator("#file-input").set_input_files(
        [{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"hello\n"}]
    )
    notice = page.get_by_role("alert").filter(has_text="Your session has ended")
    expect(notice).to_be_visible(timeout=SLOW)
    expect(page.get_by_text(re.compile("^Failed: your session has ended"))).to_be_visible()
    expect(page.get_by_role("button", name="Sign out")).to_have_count(0)
    expect(page.get_by_text("ada@acme.test")).to_have_count(0)

    notice.get_by_role("link", name="Sign in again").click()
    page.wait_for_load_state()
    sign_in(page, "ada@acme.test")
    expect(page.get_by_role("heading", name="Files", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def test_with_redis_away_a_page_is_a_page_and_the_api_stays_json(
    site: Site, page: Page, own_redis: RedisServer
) -> None:
    """Browsers get an HTML page that says to try again; API clients keep their JSON 503."""
    sign_up(page, site, "ada@acme.test", "Acme")
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    own_redis.stop()
    try:
        answer = page.goto(f"{site.url}/tokens")
        assert answer is not None
        assert answer.status == 503
        assert answer.headers["content-type"].startswith("text/html")
        assert answer.headers.get("retry-after") == "15"
        expect(
            page.get_by_role("heading", name="Coffer is unavailable for a moment")
        ).to_be_visible()
        expect(page.get_by_role("alert")).to_contain_text("Try again in 15 seconds")
        expect(page.get_by_role("link", name="Try again")).to_have_attribute("href", "/tokens")
        styled = page.evaluate("getComputedStyle(document.querySelector('.card')).display")
        assert styled != "inline"  # the stylesheet loaded: static files need no Redis

        api = requests.get(f"{site.url}/api/auth/me", cookies=cookies, timeout=10)
        assert api.status_code == 503
        assert api.json()["code"] == "service_unavailable"
    finally:
        own_redis.start()
    page.get_by_role("link", name="Try again").click()
    page.wait_for_load_state()
    # Redis came back empty: the session is gone, so the page asks to sign in again.
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()


def test_quota_and_size_refusals_speak_in_binary_units(auth: Auth) -> None:
    """The API's messages name sizes as the settings and the pages do: MiB, never bytes."""
    auth.register()
    refused = auth.upload("big.bin", b"x" * (4 * MiB + 1))
    assert refused.status_code == 507, refused.get_json()
    message = refused.get_json()["error"]
    assert "(4 MiB)" in message and "0 B of 4 MiB used" in message, message
    assert "delete files or ask an admin to raise the quota" in message
