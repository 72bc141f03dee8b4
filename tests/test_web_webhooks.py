"""The Organization page's webhooks in a real Chromium: an endpoint added in the page gets
its signed deliveries, and the page lists them."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.support.browser import ConsoleErrors, Site, new_context, sign_up
from tests.support.receiver import receiver
from tests.support.waiting import wait_for

SLOW = 30_000


@pytest.fixture
def app_overrides() -> dict[str, Any]:
    """The receiver runs on 127.0.0.1, which only this named setting lets through."""
    return {"WEBHOOK_ALLOW_PRIVATE": True}


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A tab of a fresh profile; no console errors allowed."""
    errors = ConsoleErrors()
    context: BrowserContext = new_context(browser, errors)
    yield context.new_page()
    context.close()
    assert errors.seen == []


def test_an_endpoint_added_in_the_page_gets_signed_events_and_the_page_lists_them(
    site: Site, page: Page
) -> None:
    """Add an endpoint, keep its secret (shown once), upload a file: the receiver gets a
    `file.ready` signed with that secret, and the page lists the delivery as succeeded."""
    sign_up(page, site, "ada@acme.test", "Acme")
    with receiver([200]) as hook:
        page.get_by_role("link", name="Organization").click()
        page.get_by_label("Endpoint URL").fill(hook.url)
        page.get_by_label("file.deleted").uncheck()
        page.get_by_role("button", name="Add endpoint").click()
        secret = page.get_by_label("Signing secret").input_value()
        assert secret
        endpoint = page.locator("article.endpoint")
        expect(endpoint).to_contain_text(hook.url)
        expect(endpoint).to_contain_text("file.ready, file.failed")
        expect(endpoint).to_contain_text("No deliveries yet")

        page.get_by_role("link", name="Files").click()
        # The page's script listens for chosen files once it has run: wait for it, as
        # sign_up() does, or the choice can come before anyone listens.
        expect(page.get_by_role("heading", name="Files", exact=True)).to_be_visible()
        page.wait_for_load_state()
        page.locator("#file-input").set_input_files(
            [{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"hello\n" * 50}]
        )
        wait_for(lambda: hook.received, 30, "the file.ready delivery")
    delivery = hook.received[0]
    stamp = delivery.headers["Coffer-Signature"].split(",")[0].removeprefix("t=")
    expected = hmac.new(secret.encode(), f"{stamp}.".encode() + delivery.body, hashlib.sha256)
    assert delivery.headers["Coffer-Signature"] == f"t={stamp},v1={expected.hexdigest()}"

    rows = page.locator("table.deliveries tbody tr")

    def listed() -> bool:
        """The attempt is recorded just after the receiver answers: look until it is."""
        page.goto(f"{site.url}/org")
        return rows.count() == 1

    wait_for(listed, 30, "the delivery on the Organization page")
    expect(rows.first).to_contain_text("file.ready")
    expect(rows.first).to_contain_text("Succeeded 200")
    expect(page.get_by_label("Signing secret")).to_have_count(0)  # shown once
    page.get_by_role("button", name="Remove").click()
    expect(page.locator("article.endpoint")).to_have_count(0)


def test_an_internal_endpoint_is_refused_in_the_page_when_the_setting_is_off(
    site: Site, page: Page, app: Flask
) -> None:
    """With WEBHOOK_ALLOW_PRIVATE off, the page shows the API's refusal and adds nothing."""
    app.config["WEBHOOK_ALLOW_PRIVATE"] = False
    sign_up(page, site, "ada@acme.test", "Acme")
    page.get_by_role("link", name="Organization").click()
    page.get_by_label("Endpoint URL").fill("http://169.254.169.254/latest/meta-data")
    page.get_by_role("button", name="Add endpoint").click()
    expect(page.get_by_role("alert")).to_contain_text("not a public address")
    expect(page.locator("article.endpoint")).to_have_count(0)
