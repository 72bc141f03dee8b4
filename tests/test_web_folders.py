"""The files page as a place to work in folders, in a real Chromium: folders made, dropped and
chosen with their structure, renamed, moved by dialog and by drag, searched, downloaded as a
zip, and every action within reach on a phone."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import requests
from playwright.sync_api import Browser, Page, expect

from tests.support.browser import ConsoleErrors, Site, new_context, screenshot, sign_up
from tests.support.pipeline import text_bytes
from tests.support.waiting import wait_for

# Long enough for an upload and its validation on a busy machine.
SLOW = 30_000


def row(page: Page, name: str) -> Any:
    """The table's row of one file or folder."""
    return page.locator("#file-rows tr").filter(has=page.get_by_text(name, exact=True))


def open_folder(page: Page, name: str) -> None:
    """Open a folder of the table by its name, and wait for its page."""
    with page.expect_navigation():
        row(page, name).get_by_role("link", name=name, exact=True).click()
    page.wait_for_load_state()
    expect(page.get_by_role("heading", level=2, name=name, exact=True)).to_be_visible()


def cookies(page: Page) -> dict[str, str]:
    """The browser's cookies, for calling the API as that browser."""
    return {c["name"]: c["value"] for c in page.context.cookies()}


def api(page: Page, site: Site, path: str) -> Any:
    """GET an API path as the page's user."""
    answer = requests.get(f"{site.url}{path}", cookies=cookies(page), timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()


def new_folder(page: Page, name: str) -> None:
    """Make a folder in the place shown with the New folder form."""
    page.get_by_label("Folder name").fill(name)
    page.get_by_role("button", name="New folder").click()
    expect(row(page, name)).to_have_count(1)


def upload(page: Page, files: dict[str, bytes]) -> None:
    """Choose files for the folder shown and wait until each is ready."""
    # The page a click led to, scripts and all: a file chosen earlier goes to the page
    # being left, or to an input no script listens to yet.
    page.wait_for_load_state()
    page.locator("#file-input").set_input_files(
        [{"name": n, "mimeType": "text/plain", "buffer": data} for n, data in files.items()]
    )
    for name in files:
        expect(row(page, name).get_by_text("Ready", exact=True)).to_be_visible(timeout=SLOW)


def paths(page: Page, site: Site) -> dict[str, str]:
    """Every file of the organization by its path, each to its status."""
    listed = api(page, site, "/api/files?limit=100")["files"]
    return {api(page, site, f"/api/files/{f['id']}")["path"]: f["status"] for f in listed}


def tree(root: Path) -> dict[str, bytes]:
    """A folder of files on disk for the page to upload: Trip/, Trip/Day 1/, Trip/Day 2/Evening/."""
    files = {
        "Trip/plan.txt": b"the plan\n" * 40,
        "Trip/Day 1/morning.txt": text_bytes(3000, seed=1),
        "Trip/Day 2/Evening/dinner.txt": text_bytes(5000, seed=2),
    }
    for relative, data in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return files


def test_a_new_folder_opens_with_breadcrumbs_and_takes_uploads(site: Site, page: Page) -> None:
    """New folder makes a folder listed first; opening it shows its breadcrumbs; a file
    chosen there lands in it and not at the top level."""
    sign_up(page, site, "ada@acme.test", "Acme")
    upload(page, {"top.txt": b"at the top\n" * 20})
    new_folder(page, "Reports")
    expect(page.locator("#file-rows tr").first).to_contain_text("Reports")
    open_folder(page, "Reports")
    crumbs = page.get_by_role("navigation", name="Folder path")
    expect(crumbs.get_by_role("link")).to_have_text(["All files", "Reports"])
    expect(page.get_by_text("This folder is empty")).to_be_visible()
    upload(page, {"q1.txt": b"first quarter\n" * 50})
    expect(row(page, "top.txt")).to_have_count(0)
    screenshot(page, "folder")
    assert paths(page, site) == {"/top.txt": "ready", "/Reports/q1.txt": "ready"}
    crumbs.get_by_role("link", name="All files").click()
    expect(row(page, "q1.txt")).to_have_count(0)
    expect(row(page, "Reports")).to_have_count(1)


def test_a_folder_chosen_or_dropped_keeps_its_structure(
    site: Site, page: Page, tmp_path: Path
) -> None:
    """The directory picker and a drop each upload a folder as it is: its folders made, every
    file in its own; a second drop of the same folder fills the folders already there."""
    sign_up(page, site, "ada@acme.test", "Acme")
    files = tree(tmp_path)
    page.locator("#folder-input").set_input_files(str(tmp_path / "Trip"))
    expect(row(page, "Trip")).to_have_count(1, timeout=SLOW)
    expected = {f"/{relative}": "ready" for relative in files}

    def all_ready() -> bool:
        return paths(page, site) == expected

    deadline_check(all_ready)

    # A drop: Chromium lets a page build a DataTransfer of files, not of folder entries, so
    # the files carry their folder paths (webkitRelativePath), as a picked folder's do.
    new_folder(page, "Inbox")
    open_folder(page, "Inbox")
    page.evaluate(
        """() => {
          const picker = document.createElement("input");
          picker.type = "file"; picker.webkitdirectory = true; picker.id = "probe";
          picker.className = "visually-hidden"; document.body.append(picker);
        }"""
    )
    page.locator("#probe").set_input_files(str(tmp_path / "Trip"))
    page.evaluate(
        """() => {
          const transfer = new DataTransfer();
          for (const file of document.getElementById("probe").files) transfer.items.add(file);
          const zone = document.getElementById("dropzone");
          for (const type of ["dragenter", "dragover", "drop"]) {
            const init = { dataTransfer: transfer, bubbles: true, cancelable: true };
            zone.dispatchEvent(new DragEvent(type, init));
          }
        }"""
    )
    expect(row(page, "Trip")).to_have_count(1, timeout=SLOW)
    expected |= {f"/Inbox/{relative}": "ready" for relative in files}
    deadline_check(all_ready)
    open_folder(page, "Trip")
    open_folder(page, "Day 2")
    open_folder(page, "Evening")
    expect(row(page, "dinner.txt").get_by_text("Ready")).to_be_visible()
    expect(page.get_by_role("navigation", name="Folder path").get_by_role("link")).to_have_text(
        ["All files", "Inbox", "Trip", "Day 2", "Evening"]
    )


def deadline_check(condition: Any) -> None:
    """Wait (at most SLOW) for the server to say what the page showed."""
    wait_for(condition, SLOW / 1000, "the files to be where the page put them")


def test_rename_in_place_and_move_by_dialog_and_by_drag(site: Site, page: Page) -> None:
    """Rename edits the name where it stands; Move opens the folder tree; dragging a row
    onto a folder row or onto a breadcrumb moves it there."""
    sign_up(page, site, "ada@acme.test", "Acme")
    upload(page, {"draft.txt": b"draft\n" * 30, "notes.txt": b"notes\n" * 30})
    new_folder(page, "Archive")
    new_folder(page, "Work")

    row(page, "draft.txt").get_by_role("button", name="Rename").click()
    field = page.get_by_label("New name for draft.txt")
    field.fill("final.txt")
    field.press("Enter")
    expect(row(page, "final.txt")).to_have_count(1)
    expect(row(page, "draft.txt")).to_have_count(0)
    row(page, "Work").get_by_role("button", name="Rename").click()
    page.get_by_label("New name for Work").fill("Projects")
    page.get_by_label("New name for Work").press("Enter")
    expect(row(page, "Projects")).to_have_count(1)

    row(page, "final.txt").get_by_role("button", name="Move").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("button", name="Archive", exact=True)).to_be_visible()
    screenshot(page, "move")
    dialog.get_by_role("button", name="Archive", exact=True).click()
    dialog.get_by_role("button", name="Move here").click()
    expect(row(page, "final.txt")).to_have_count(0)
    assert "/Archive/final.txt" in paths(page, site)

    # A folder moved by dialog into another, then dragged files.
    row(page, "Archive").get_by_role("button", name="Move").click()
    dialog.get_by_role("button", name="Projects", exact=True).click()
    dialog.get_by_role("button", name="Move here").click()
    expect(row(page, "Archive")).to_have_count(0)
    assert "/Projects/Archive/final.txt" in paths(page, site)

    row(page, "notes.txt").drag_to(row(page, "Projects"))
    expect(row(page, "notes.txt")).to_have_count(0)
    assert "/Projects/notes.txt" in paths(page, site)
    open_folder(page, "Projects")
    row(page, "notes.txt").drag_to(
        page.get_by_role("navigation", name="Folder path").get_by_role("link", name="All files")
    )
    expect(row(page, "notes.txt")).to_have_count(0)
    assert "/notes.txt" in paths(page, site)


def test_search_finds_names_in_every_folder_and_opens_a_results_folder(
    site: Site, page: Page
) -> None:
    """The search box finds names across the organization, each result with its folder
    path; the path opens that folder."""
    sign_up(page, site, "ada@acme.test", "Acme")
    new_folder(page, "Clients")
    open_folder(page, "Clients")
    new_folder(page, "Émile")
    open_folder(page, "Émile")
    upload(page, {"Invoice-2024.txt": b"invoice\n" * 20})
    page.get_by_role("navigation", name="Folder path").get_by_role("link", name="All files").click()
    upload(page, {"invoices-index.txt": b"index\n" * 20, "other.txt": b"other\n" * 20})
    page.get_by_label("Search names").fill("INVOICE")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_role("heading", name="Search results for “INVOICE”")).to_be_visible()
    expect(page.locator("#file-rows tr")).to_have_count(2)
    expect(row(page, "other.txt")).to_have_count(0)
    found = row(page, "Invoice-2024.txt")
    expect(found.get_by_role("link", name="Open folder /Clients/Émile")).to_be_visible()
    screenshot(page, "search")
    found.get_by_role("link", name="Open folder /Clients/Émile").click()
    expect(page.get_by_role("navigation", name="Folder path").get_by_role("link")).to_have_text(
        ["All files", "Clients", "Émile"]
    )
    expect(row(page, "Invoice-2024.txt")).to_have_count(1)


def test_a_selection_downloads_as_one_zip_and_sorts_by_its_headers(site: Site, page: Page) -> None:
    """Checked files and a folder download as one zip whose entries hold the same bytes;
    the column headers sort both ways and the sort stays in the URL."""
    sign_up(page, site, "ada@acme.test", "Acme")
    contents = {
        "b-small.txt": b"s\n" * 10,
        "a-large.txt": text_bytes(40_000, seed=4),
        "c-middle.txt": text_bytes(9_000, seed=5),
    }
    upload(page, contents)
    new_folder(page, "Sub")
    open_folder(page, "Sub")
    inner = text_bytes(7_000, seed=6)
    upload(page, {"inner.txt": inner})
    page.get_by_role("navigation", name="Folder path").get_by_role("link", name="All files").click()

    page.get_by_role("link", name="Name").click()
    expect(page).to_have_url(f"{site.url}/?sort=name&order=asc")
    names = page.locator("#file-rows tr td.name .label")
    expect(names).to_have_text(["Sub", "a-large.txt", "b-small.txt", "c-middle.txt"])
    page.get_by_role("link", name="Name").click()
    expect(page).to_have_url(f"{site.url}/?sort=name&order=desc")
    expect(names).to_have_text(["Sub", "c-middle.txt", "b-small.txt", "a-large.txt"])
    page.get_by_role("link", name="Size").click()
    expect(names).to_have_text(["Sub", "a-large.txt", "c-middle.txt", "b-small.txt"])
    page.get_by_role("link", name="Size").click()
    expect(page).to_have_url(f"{site.url}/?sort=size&order=asc")
    expect(names).to_have_text(["Sub", "b-small.txt", "c-middle.txt", "a-large.txt"])

    page.get_by_label("Select a-large.txt").check()
    page.get_by_label("Select c-middle.txt").check()
    page.get_by_label("Select Sub").check()
    expect(page.get_by_text("3 selected")).to_be_visible()
    with page.expect_download() as download:
        page.get_by_role("button", name="Download as zip").click()
    archive = zipfile.ZipFile(io.BytesIO(Path(download.value.path()).read_bytes()))
    entries = {
        info.filename: archive.read(info) for info in archive.infolist() if not info.is_dir()
    }
    assert entries == {
        "a-large.txt": contents["a-large.txt"],
        "c-middle.txt": contents["c-middle.txt"],
        "Sub/inner.txt": inner,
    }

    page.get_by_label("Select b-small.txt").check()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete", exact=True).first.click()
    expect(row(page, "b-small.txt")).to_have_count(0)


def test_on_a_phone_every_action_is_within_reach_and_a_failure_reads_in_full(
    site: Site, browser: Browser, errors: ConsoleErrors
) -> None:
    """At 390 px wide nothing scrolls sideways: each file's and folder's actions are on
    screen; a failed file's reason is shown whole."""
    phone = new_context(browser, errors, viewport={"width": 390, "height": 800})
    try:
        tab = phone.new_page()
        sign_up(tab, site, "ada@acme.test", "Acme")
        png = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(600)
        tab.locator("#file-input").set_input_files(
            [
                {
                    "name": "a fairly long file name for a phone.txt",
                    "mimeType": "text/plain",
                    "buffer": b"hello\n" * 100,
                },
                {"name": "photo.txt", "mimeType": "text/plain", "buffer": png},
            ]
        )
        expect(
            row(tab, "a fairly long file name for a phone.txt").get_by_text("Ready")
        ).to_be_visible(timeout=SLOW)
        expect(row(tab, "photo.txt").get_by_text("Failed", exact=True)).to_be_visible(timeout=SLOW)
        new_folder(tab, "Phone folder")
        assert tab.evaluate("document.documentElement.scrollWidth") <= 390
        wrap = tab.locator(".table-wrap")
        assert wrap.evaluate("(el) => el.scrollWidth <= el.clientWidth")
        buttons = tab.locator("#file-rows .row-actions").locator("a, button")
        assert buttons.count() >= 8
        for n in range(buttons.count()):
            box = buttons.nth(n).bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390, (
                buttons.nth(n).inner_text()
            )
        reason = row(tab, "photo.txt").locator(".reason")
        expect(reason).not_to_be_empty()
        assert reason.evaluate("(el) => el.scrollWidth <= el.clientWidth")
        box = reason.bounding_box()
        assert box is not None and box["x"] + box["width"] <= 390
        screenshot(tab, "files-phone")
    finally:
        phone.close()
