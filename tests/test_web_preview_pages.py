"""Previews in a real Chromium: thumbnails in the files table and a grid of large ones, a file's
preview page (an image, a text file with markup shown as text, a PDF's first page) with its
arrows and history, the share page seen by a stranger with no session, its Download byte for
byte, an expired link's page, and all of it at phone width."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path
from typing import Any

import requests
from flask import Flask
from PIL import Image
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import update

from app.extensions import db
from app.models import ShareLink, utcnow
from app.units import size
from tests.support.browser import ConsoleErrors, Site, new_context, screenshot, sign_up
from tests.support.waiting import wait_for

# Long enough for an upload, its validation and its previews on a busy machine.
SLOW = 30_000
PHONE = {"width": 390, "height": 844}
# A text file that would run in the page if it were ever taken as HTML.
HOSTILE = (
    b"<script>window.pwned = true; document.title = 'pwned';</script>\n"
    b'<img src=x onerror="window.pwned = true">\n<b>not bold</b> & so on\n'
)


def png(width: int, height: int, colour: tuple[int, int, int]) -> bytes:
    """A PNG of one colour, made here by Pillow."""
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, "PNG")
    return out.getvalue()


def pdf() -> bytes:
    """A one-page PDF (a blue page), written here by Pillow."""
    out = io.BytesIO()
    Image.new("RGB", (400, 560), (30, 60, 200)).save(out, "PDF", resolution=72)
    return out.getvalue()


def row(page: Page, name: str) -> Any:
    """The files table's row of one file."""
    return page.locator("#file-rows tr").filter(has=page.get_by_text(name, exact=True))


def cookies(page: Page) -> dict[str, str]:
    """The browser's cookies, for calling the API as that browser."""
    return {c["name"]: c["value"] for c in page.context.cookies()}


def upload(page: Page, site: Site, files: dict[str, tuple[str, bytes]]) -> dict[str, str]:
    """Choose files (name -> (type, bytes)), wait until each is ready and, for images and
    PDFs, has its previews; then show the page again. Their ids by name."""
    page.locator("#file-input").set_input_files(
        [{"name": n, "mimeType": t, "buffer": data} for n, (t, data) in files.items()]
    )
    ids = {}
    for name in files:
        expect(row(page, name).get_by_text("Ready", exact=True)).to_be_visible(timeout=SLOW)
        ids[name] = str(row(page, name).get_attribute("data-file-id"))
    for name, (kind, _) in files.items():
        if kind.startswith("image/") or kind == "application/pdf":
            wait_for(
                lambda i=ids[name]: has_preview(page, site, i), SLOW / 1000, f"previews of {name}"
            )
    page.reload()
    return ids


def has_preview(page: Page, site: Site, file_id: str) -> bool:
    """Whether the file's details say its previews are made."""
    answer = requests.get(f"{site.url}/api/files/{file_id}", cookies=cookies(page), timeout=10)
    return bool(answer.json()["preview"])


def loaded(image: Any) -> dict[str, int]:
    """An <img>'s natural size once loaded (0 x 0 when its URL failed)."""
    expect(image).to_be_visible()
    image.evaluate("img => img.decode().catch(() => null)")
    return dict(image.evaluate("img => ({w: img.naturalWidth, h: img.naturalHeight})"))


def fits_a_phone(page: Page) -> None:
    """Nothing of the page scrolls sideways at 390 px."""
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def test_rows_show_thumbnails_and_the_grid_is_remembered(site: Site, page: Page) -> None:
    """Images get a small thumbnail in a fixed box, other files their kind; Grid shows large
    thumbnails with the name under each, and stays chosen in other folders and visits."""
    sign_up(page, site, "ada@acme.test", "Acme")
    upload(
        page,
        site,
        {
            "sunset.png": ("image/png", png(1600, 900, (230, 120, 40))),
            "notes.txt": ("text/plain", b"plain notes\n" * 20),
        },
    )
    thumb = row(page, "sunset.png").locator("img.thumb")
    assert "size=small" in str(thumb.get_attribute("src"))
    assert loaded(thumb) == {"w": 256, "h": 144}
    box = thumb.bounding_box()
    assert box is not None and (box["width"], box["height"]) == (40, 40)
    expect(row(page, "notes.txt").locator(".thumb.placeholder")).to_have_text("TXT")
    expect(row(page, "notes.txt").locator("img")).to_have_count(0)

    page.get_by_role("navigation", name="Layout").get_by_role("link", name="Grid").click()
    expect(page.locator("table.files.grid")).to_be_visible()
    large = row(page, "sunset.png").locator("img.thumb")
    assert "size=large" in str(large.get_attribute("src"))
    assert loaded(large) == {"w": 1024, "h": 576}
    picture, name = large.bounding_box(), row(page, "sunset.png").locator(".label").bounding_box()
    assert picture is not None and name is not None
    assert picture["width"] >= 140 and name["y"] >= picture["y"] + picture["height"]
    screenshot(page, "grid")

    page.get_by_label("Folder name").fill("Holidays")
    page.get_by_role("button", name="New folder").click()
    row(page, "Holidays").get_by_role("link", name="Holidays").click()
    expect(page.locator("table.files.grid")).to_have_count(1)  # remembered in the folder
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Files").click()
    expect(page.locator("table.files.grid")).to_be_visible()
    page.get_by_role("navigation", name="Layout").get_by_role("link", name="List").click()
    expect(page.locator("table.files.grid")).to_have_count(0)
    expect(page.locator("table.files")).to_be_visible()


def test_the_preview_page_of_an_image_a_text_and_a_pdf(site: Site, page: Page) -> None:
    """Clicking a name opens its preview: the large image, a text file's markup as text that
    never runs, a PDF's first page; arrows step through the folder by name; Download sends
    the bytes; History lists the file's events, newest first."""
    sign_up(page, site, "ada@acme.test", "Acme")
    picture = png(800, 600, (20, 160, 90))
    ids = upload(
        page,
        site,
        {
            "a-photo.png": ("image/png", picture),
            "b-page.txt": ("text/plain", HOSTILE),
            "c-scan.pdf": ("application/pdf", pdf()),
        },
    )
    page.get_by_role("link", name="Name", exact=True).click()  # A to Z
    page.wait_for_load_state()
    row(page, "a-photo.png").get_by_role("link", name="a-photo.png", exact=True).click()
    expect(page.get_by_role("heading", name="a-photo.png")).to_be_visible()
    image = page.get_by_role("img", name="Preview of a-photo.png")
    assert loaded(image) == {"w": 800, "h": 600}
    with page.expect_download() as download:
        page.get_by_role("link", name="Download").click()
    assert Path(download.value.path()).read_bytes() == picture
    # The download is recorded once its last byte has gone: the page shows it when reloaded.
    wait_for(
        lambda: (
            page.reload() and "file.downloaded" in page.locator("ol.history li").first.inner_text()
        ),
        10,
        "the download in the history",
    )
    expect(page.locator("ol.history li").last).to_contain_text("file.uploaded")
    expect(page.locator("ol.history li").last).to_contain_text("ada@acme.test")
    expect(page.get_by_text("← Previous", exact=True)).to_have_attribute("aria-disabled", "true")
    screenshot(page, "preview")

    page.get_by_role("link", name="Next file: b-page.txt").click()
    expect(page.get_by_role("heading", name="b-page.txt")).to_be_visible()
    shown = page.get_by_label("The text of b-page.txt")
    assert shown.inner_text() == HOSTILE.decode()
    assert page.evaluate("window.pwned") is None
    assert page.title() != "pwned"
    expect(page.locator("main script, main b, main img")).to_have_count(0)
    screenshot(page, "preview-text")

    page.get_by_role("link", name="Next file: c-scan.pdf").click()
    first_page = page.get_by_role("img", name="Preview of c-scan.pdf")
    size = loaded(first_page)
    assert size["w"] > 0 and abs(size["w"] / size["h"] - 400 / 560) < 0.02
    blue = first_page.evaluate(
        """img => { const c = document.createElement('canvas'); c.width = img.naturalWidth;
        c.height = img.naturalHeight; const g = c.getContext('2d'); g.drawImage(img, 0, 0);
        return Array.from(g.getImageData(c.width / 2, c.height / 2, 1, 1).data); }"""
    )
    assert blue[2] > 150 and blue[0] < 80  # the page's blue, not a blank
    expect(page.get_by_text("Next →", exact=True)).to_have_attribute("aria-disabled", "true")
    page.get_by_role("link", name="Previous file: b-page.txt").click()
    page.get_by_role("link", name="Versions").click()
    expect(page.get_by_role("heading", name="Versions of “b-page.txt”")).to_be_visible()
    page.go_back()
    page.get_by_role("button", name="Share").click()
    expect(page.get_by_label("Share link")).to_be_visible()
    assert ids["b-page.txt"] in page.url


def test_a_stranger_opens_the_share_page_and_downloads_the_file(
    site: Site, app: Flask, browser: Browser, page: Page, errors: ConsoleErrors
) -> None:
    """In a second browser with no session, the link shows the file's name, size and large
    preview and a Download button whose bytes are the original's; an expired link shows a
    page that says so (404). At phone width the share and preview pages fit."""
    sign_up(page, site, "ada@acme.test", "Acme")
    picture = png(1200, 800, (200, 40, 120))
    upload(page, site, {"poster.png": ("image/png", picture)})
    row(page, "poster.png").get_by_role("button", name="Share").click()
    url = page.get_by_label("Share link").input_value()
    stranger = new_context(browser, errors)
    try:
        tab = stranger.new_page()
        answer = tab.goto(url)
        assert answer is not None and answer.status == 200
        expect(tab.get_by_role("heading", name="poster.png")).to_be_visible()
        expect(tab.get_by_text(size(len(picture)), exact=True)).to_be_visible()
        assert loaded(tab.get_by_role("img", name="Preview of poster.png")) == {"w": 1024, "h": 683}
        assert stranger.cookies() == []  # no session was started for the visitor
        screenshot(tab, "shared")
        with tab.expect_download() as download:
            tab.get_by_role("link", name="Download").click()
        assert Path(download.value.path()).read_bytes() == picture
        assert download.value.suggested_filename == "poster.png"
    finally:
        stranger.close()
    page.reload()
    expect(page.locator("tbody tr").first.locator("td").nth(2)).to_have_text("1")

    with app.app_context():
        db.session.execute(update(ShareLink).values(expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    phone = new_context(browser, errors, viewport=PHONE)
    try:
        tab = phone.new_page()
        answer = tab.goto(url)
        assert answer is not None and answer.status == 404
        expect(tab.get_by_role("heading", name="This link does not work")).to_be_visible()
        fits_a_phone(tab)
        screenshot(tab, "shared-expired")
    finally:
        phone.close()


def test_on_a_phone_the_preview_and_share_pages_fit(
    site: Site, browser: Browser, errors: ConsoleErrors
) -> None:
    """At 390 x 844 the preview page (a wide image, a long unbroken line of text) and the
    share page scroll only downwards, with every button on screen."""
    phone = new_context(browser, errors, viewport=PHONE)
    try:
        tab = phone.new_page()
        sign_up(tab, site, "ada@acme.test", "Acme")
        long_line = ("x" * 3000 + "\n").encode()
        upload(
            tab,
            site,
            {
                "a wide panorama with a long name.png": (
                    "image/png",
                    png(3000, 500, (90, 90, 200)),
                ),
                "log.txt": ("text/plain", long_line * 3),
            },
        )
        fits_a_phone(tab)
        tab.get_by_role("link", name="Name", exact=True).click()  # A to Z
        tab.wait_for_load_state()
        row(tab, "log.txt").get_by_role("link", name="log.txt", exact=True).click()
        expect(tab.get_by_label("The text of log.txt")).to_be_visible()
        fits_a_phone(tab)
        tab.get_by_role("link", name="Previous file: a wide panorama with a long name.png").click()
        image = tab.get_by_role("img", name="Preview of a wide panorama with a long name.png")
        loaded(image)
        fits_a_phone(tab)
        for button in tab.locator(".preview-actions").locator("a, button").all():
            box = button.bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
        screenshot(tab, "preview-phone")
        tab.get_by_role("button", name="Share").click()
        url = tab.get_by_label("Share link").input_value()
        tab.goto(url)  # the same browser: the page is the same for anyone with the link
        expect(tab.get_by_role("link", name="Download")).to_be_visible()
        loaded(tab.get_by_role("img", name="Preview of a wide panorama with a long name.png"))
        fits_a_phone(tab)
        screenshot(tab, "shared-phone")
    finally:
        phone.close()
