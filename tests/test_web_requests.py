"""Upload-only links in a real Chromium: a member asks for files on a folder, an anonymous
visitor in another browser sends two and sees only those, and the admin finds them in the
folder and the Activity page names the link."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.support.browser import ConsoleErrors, Site, new_context, sign_up
from tests.test_web_folders import new_folder, open_folder, row, upload


@pytest.fixture
def visitor(browser: Browser, errors: ConsoleErrors) -> Iterator[Page]:
    """A tab of another browser profile: someone without an account."""
    context: BrowserContext = new_context(browser, errors)
    yield context.new_page()
    context.close()


def test_an_anonymous_visitor_sends_two_files_through_an_upload_only_link(
    site: Site, page: Page, visitor: Page, tmp_path: Path
) -> None:
    sign_up(page, site, "ada@acme.test", "Acme")
    new_folder(page, "Inbox")
    open_folder(page, "Inbox")
    page.get_by_text("Request files").click()
    page.get_by_label("Message (optional)").fill("Your tax papers, please")
    page.get_by_role("button", name="Create upload link").click()
    field = page.get_by_label("Upload-only link")
    expect(field).to_have_attribute("readonly", "")
    url = field.input_value()
    assert url.startswith(f"{site.url}/r/")
    # A file of the organization the visitor must never see.
    upload(page, {"payroll.txt": b"salaries\n"})

    first, second = tmp_path / "w2.txt", tmp_path / "receipts.txt"
    first.write_text("wages\n")
    second.write_text("receipts\n")
    visitor.goto(url)
    expect(visitor.get_by_role("heading", name="Send files")).to_be_visible()
    expect(visitor.get_by_text("Your tax papers, please")).to_be_visible()
    visitor.get_by_label("Files").set_input_files([str(first), str(second)])
    visitor.get_by_role("button", name="Send").click()
    sent = visitor.locator("#sent li")
    expect(sent).to_have_count(2)
    expect(visitor.locator('#sent li[data-status="ready"]')).to_have_count(2, timeout=20_000)
    visitor.reload()
    expect(visitor.locator("#sent li")).to_have_count(2)
    expect(visitor.locator("body")).not_to_contain_text("payroll.txt")
    expect(visitor.locator("body")).not_to_contain_text("Inbox")

    page.reload()
    expect(row(page, "w2.txt")).to_have_count(1)
    expect(row(page, "receipts.txt")).to_have_count(1)
    page.get_by_role("link", name="Activity").click()
    expect(page.locator("table").first).to_contain_text("upload link #")
    page.get_by_role("link", name="Links").click()
    expect(page.locator("#request-links tbody tr")).to_have_count(1)
    expect(page.locator("#request-links")).to_contain_text("/Inbox")
    page.locator("#request-links").get_by_role("button", name="Revoke").click()
    expect(page.locator("#request-links")).to_have_count(0)
    visitor.reload()
    expect(visitor.get_by_role("heading", name="This link takes no files")).to_be_visible()
