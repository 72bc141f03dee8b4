"""The trash and versions in a real Chromium: a delete undone from its notice, a file found in
the Trash and restored, one removed for good, a file replaced by a second version and its
first version restored and downloaded byte for byte, and all of it on a phone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import requests
from playwright.sync_api import Browser, Page, expect

from tests.support.browser import ConsoleErrors, Site, new_context, screenshot, sign_up
from tests.support.pipeline import text_bytes

# Long enough for an upload and its validation on a busy machine.
SLOW = 30_000


def row(page: Page, name: str) -> Any:
    """The files table's row of one file or folder."""
    return page.locator("#file-rows tr").filter(has=page.get_by_text(name, exact=True))


def trash_row(page: Page, name: str) -> Any:
    """The Trash page's row of one item."""
    return page.locator("#trash-rows tr").filter(has=page.get_by_text(name, exact=True))


def cookies(page: Page) -> dict[str, str]:
    """The browser's cookies, for calling the API as that browser."""
    return {c["name"]: c["value"] for c in page.context.cookies()}


def api(page: Page, site: Site, path: str) -> Any:
    """GET an API path as the page's user."""
    answer = requests.get(f"{site.url}{path}", cookies=cookies(page), timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()


def upload(page: Page, files: dict[str, bytes]) -> None:
    """Choose files for the folder shown and wait until each is ready."""
    page.wait_for_load_state()
    page.locator("#file-input").set_input_files(
        [{"name": n, "mimeType": "text/plain", "buffer": data} for n, data in files.items()]
    )
    for name in files:
        expect(row(page, name).get_by_text("Ready", exact=True)).to_be_visible(timeout=SLOW)


def delete(page: Page, name: str) -> None:
    """Delete a row with its Delete button, saying yes to the question."""
    page.once("dialog", lambda dialog: dialog.accept())
    row(page, name).get_by_role("button", name="Delete").click()
    expect(row(page, name)).to_have_count(0)
    page.wait_for_load_state()


def open_trash(page: Page) -> None:
    """Go to the Trash page by the main navigation."""
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Trash").click()
    expect(page.get_by_role("heading", name="Trash", exact=True)).to_be_visible()
    page.wait_for_load_state()


def test_a_delete_is_undone_from_its_notice(site: Site, page: Page) -> None:
    """Delete moves a file to the trash and says so with Undo; Undo puts it back, and it is
    listed, downloadable and counted again."""
    sign_up(page, site, "ada@acme.test", "Acme")
    data = text_bytes(5000, seed=1)
    upload(page, {"budget.txt": data, "other.txt": b"other\n" * 30})
    delete(page, "budget.txt")
    notice = page.get_by_role("status").filter(has_text="moved to the trash")
    expect(notice).to_contain_text("“budget.txt” was moved to the trash.")
    assert api(page, site, "/api/org")["trash_bytes"] == len(data)
    screenshot(page, "undo")
    notice.get_by_role("button", name="Undo").click()
    expect(row(page, "budget.txt").get_by_text("Ready")).to_be_visible()
    expect(page.get_by_role("button", name="Undo")).to_have_count(0)
    assert api(page, site, "/api/org")["trash_bytes"] == 0
    with page.expect_download() as download:
        row(page, "budget.txt").get_by_role("link", name="Download").click()
    assert Path(download.value.path()).read_bytes() == data


def test_a_deleted_file_and_folder_are_found_in_the_trash_and_restored(
    site: Site, page: Page
) -> None:
    """The Trash lists what was deleted, by whom and when it goes for good; Restore puts a
    folder back with its files, and a file back into it; Delete forever and Empty trash
    remove for good."""
    sign_up(page, site, "ada@acme.test", "Acme")
    page.get_by_label("Folder name").fill("Reports")
    page.get_by_role("button", name="New folder").click()
    expect(row(page, "Reports")).to_have_count(1)
    with page.expect_navigation():
        row(page, "Reports").get_by_role("link", name="Reports", exact=True).click()
    inner = text_bytes(3000, seed=2)
    upload(page, {"q1.txt": inner, "q2.txt": b"second\n" * 40})
    delete(page, "q1.txt")
    page.get_by_role("navigation", name="Folder path").get_by_role("link", name="All files").click()
    page.wait_for_load_state()
    upload(page, {"draft.txt": b"draft\n" * 50, "scrap.txt": b"scrap\n" * 50})
    delete(page, "Reports")
    delete(page, "draft.txt")

    open_trash(page)
    expect(page.locator("#trash-rows tr")).to_have_count(3)
    reports = trash_row(page, "Reports")
    expect(reports).to_contain_text("was /Reports")
    expect(reports).to_contain_text("ada@acme.test")
    expect(reports.locator("td.purge time")).to_have_count(1)  # in 30 days
    expect(trash_row(page, "q1.txt")).to_contain_text("was /Reports/q1.txt")
    screenshot(page, "trash")

    reports.get_by_role("button", name="Restore Reports").click()
    expect(page.get_by_role("status")).to_contain_text("Folder restored to /Reports")
    trash_row(page, "q1.txt").get_by_role("button", name="Restore q1.txt").click()
    expect(page.get_by_role("status")).to_contain_text("File restored to /Reports/q1.txt")
    page.get_by_role("link", name="Show it").click()
    expect(row(page, "q1.txt").get_by_text("Ready")).to_be_visible()
    expect(row(page, "q2.txt")).to_have_count(1)
    with page.expect_download() as download:
        row(page, "q1.txt").get_by_role("link", name="Download").click()
    assert Path(download.value.path()).read_bytes() == inner

    open_trash(page)
    page.once("dialog", lambda dialog: dialog.accept())
    trash_row(page, "draft.txt").get_by_role("button", name="Delete draft.txt forever").click()
    expect(page.get_by_role("status")).to_contain_text("1 item was removed for good.")
    expect(page.get_by_text("The trash is empty")).to_be_visible()

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Files").click()
    delete(page, "scrap.txt")
    open_trash(page)
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Empty trash").click()
    expect(page.get_by_text("The trash is empty")).to_be_visible()
    org = api(page, site, "/api/org")
    assert org["trash_bytes"] == 0
    assert sorted(f["filename"] for f in api(page, site, "/api/files")["files"]) == [
        "q1.txt",
        "q2.txt",
    ]


def test_replace_adds_version_2_and_restoring_version_1_brings_its_bytes_back(
    site: Site, page: Page
) -> None:
    """A file of a taken name asks Replace or Keep both; Replace makes version 2 under the
    same id; its Versions page restores version 1 as version 3, which downloads byte for
    byte. Keep both numbers the name instead."""
    sign_up(page, site, "ada@acme.test", "Acme")
    first = text_bytes(4000, seed=3)
    second = text_bytes(6000, seed=4)
    upload(page, {"report.txt": first})
    file_id = row(page, "report.txt").get_attribute("data-file-id")

    page.locator("#file-input").set_input_files(
        [{"name": "report.txt", "mimeType": "text/plain", "buffer": second}]
    )
    choice = page.locator("#uploads li").filter(has_text="already exists here")
    expect(choice).to_contain_text("“report.txt” already exists here.")
    screenshot(page, "replace")
    choice.get_by_role("button", name="Replace: report.txt").click()
    version_2 = row(page, "report.txt").get_by_role("link", name="Version 2 of report.txt")
    expect(version_2).to_be_visible(timeout=SLOW)
    expect(row(page, "report.txt")).to_have_attribute("data-file-id", file_id or "")
    assert api(page, site, f"/api/files/{file_id}")["size"] == len(second)

    row(page, "report.txt").get_by_role("link", name="Versions of report.txt").click()
    expect(page.get_by_role("heading", name="Versions of “report.txt”")).to_be_visible()
    versions = page.locator("#version-rows tr")
    expect(versions).to_have_count(2)
    expect(versions.first).to_contain_text("Version 2")
    expect(versions.first).to_contain_text("Current")
    screenshot(page, "versions")
    page.get_by_role("button", name="Restore version 1").click()
    expect(page.get_by_role("status")).to_contain_text("Version 1 restored as version 3.")
    expect(versions).to_have_count(3)
    expect(versions.first).to_contain_text("Version 3")
    expect(versions.first).to_contain_text("Current")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download version 3").click()
    assert Path(download.value.path()).read_bytes() == first
    with page.expect_download() as download:
        page.get_by_role("link", name="Download version 2").click()
    assert Path(download.value.path()).read_bytes() == second
    page.get_by_role("link", name="← Files").click()
    page.wait_for_load_state()
    with page.expect_download() as download:
        row(page, "report.txt").get_by_role("link", name="Download").click()
    assert Path(download.value.path()).read_bytes() == first

    # Keep both: the new file takes a numbered name beside the first.
    page.locator("#file-input").set_input_files(
        [{"name": "report.txt", "mimeType": "text/plain", "buffer": b"third\n" * 20}]
    )
    page.get_by_role("button", name="Keep both: report.txt").click()
    expect(row(page, "report (2).txt").get_by_text("Ready")).to_be_visible(timeout=SLOW)
    assert len(api(page, site, "/api/files")["files"]) == 2

    # A folder's name cannot be replaced by a file: the line says so and leaves Keep both.
    page.get_by_label("Folder name").fill("Plans")
    page.get_by_role("button", name="New folder").click()
    expect(row(page, "Plans")).to_have_count(1)
    page.wait_for_load_state()
    page.locator("#file-input").set_input_files(
        [{"name": "Plans", "mimeType": "text/plain", "buffer": b"plans\n" * 20}]
    )
    page.get_by_role("button", name="Replace: Plans").click()
    expect(page.get_by_text("Not replaced:")).to_be_visible()
    expect(page.get_by_role("button", name="Replace: Plans")).to_have_count(0)
    page.get_by_role("button", name="Keep both: Plans").click()
    expect(row(page, "Plans (2)").get_by_text("Ready")).to_be_visible(timeout=SLOW)


def test_on_a_phone_the_trash_and_versions_fit(
    site: Site, browser: Browser, errors: ConsoleErrors
) -> None:
    """At 390 px wide the Trash and a file's Versions scroll only downwards, every button
    on screen."""
    phone = new_context(browser, errors, viewport={"width": 390, "height": 800})
    try:
        tab = phone.new_page()
        sign_up(tab, site, "ada@acme.test", "Acme")
        upload(tab, {"a rather long name for a small phone screen.txt": b"x\n" * 300})
        upload(tab, {"kept.txt": b"kept\n" * 40})
        delete(tab, "a rather long name for a small phone screen.txt")
        expect(tab.get_by_role("button", name="Undo")).to_be_visible()
        assert tab.evaluate("document.documentElement.scrollWidth") <= 390
        open_trash(tab)
        fits(tab, "#trash-rows")
        screenshot(tab, "trash-phone")
        tab.get_by_role("navigation", name="Main").get_by_role("link", name="Files").click()
        row(tab, "kept.txt").get_by_role("link", name="Versions of kept.txt").click()
        expect(tab.locator("#version-rows tr")).to_have_count(1)
        fits(tab, "#version-rows")
    finally:
        phone.close()


def fits(page: Page, rows: str) -> None:
    """Nothing of the page scrolls sideways, and each action of the rows is on screen."""
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    buttons = page.locator(f"{rows} .row-actions").locator("a, button")
    assert buttons.count() >= 1
    for n in range(buttons.count()):
        button = buttons.nth(n)
        box = button.bounding_box()
        on_screen = box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
        assert on_screen, button.inner_text()
