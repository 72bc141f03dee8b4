"""The web app in a real Chromium: what a person of a team does with Coffer in a browser."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import Browser, BrowserContext, Page, Route, expect

from tests.support.browser import (
    PASSWORD,
    ConsoleErrors,
    Site,
    new_context,
    screenshot,
    sign_in,
    sign_up,
)
from tests.support.pipeline import text_bytes
from tests.support.waiting import wait_for

MiB = 1024 * 1024
# Long enough for an upload and its validation on a busy machine.
SLOW = 30_000


@pytest.fixture
def app_overrides() -> dict[str, Any]:
    """A login limit within reach of one test."""
    return {"LOGIN_LIMIT_PER_EMAIL": "4 per minute"}


def row(page: Page, filename: str) -> Any:
    """The files table's row of one file."""
    return page.locator("#file-rows tr").filter(has=page.get_by_text(filename, exact=True))


def session_cookie(context: BrowserContext) -> dict[str, str]:
    """The profile's cookies, for calling the API as that browser."""
    return {c["name"]: c["value"] for c in context.cookies()}


def test_sign_up_upload_three_files_see_them_turn_ready_download_and_delete(
    site: Site, page: Page, tmp_path: Path
) -> None:
    """The files page from sign-up: three files at once, each with a progress bar, each
    turning ready without a reload; one downloaded byte for byte; one deleted."""
    sign_up(page, site, "ada@acme.test", "Acme")
    expect(page.get_by_text("No files yet")).to_be_visible()
    screenshot(page, "files-empty")
    contents = {f"notes-{n}.txt": text_bytes(200_000 + n, seed=n) for n in range(3)}
    page.locator("#file-input").set_input_files(
        [
            {"name": name, "mimeType": "text/plain", "buffer": data}
            for name, data in contents.items()
        ]
    )
    expect(page.get_by_role("progressbar")).to_have_count(3)
    for name in contents:
        expect(row(page, name).get_by_text("Ready", exact=True)).to_be_visible(timeout=SLOW)
    expect(page.get_by_text("No files yet")).to_have_count(0)
    expect(row(page, "notes-0.txt").locator("td").nth(1)).to_have_text("195.3 KiB")
    expect(row(page, "notes-0.txt").locator("td").nth(2)).to_have_text("ada@acme.test")
    screenshot(page, "files")

    with page.expect_download() as download:
        row(page, "notes-1.txt").get_by_role("link", name="Download").click()
    assert download.value.suggested_filename == "notes-1.txt"
    assert Path(download.value.path()).read_bytes() == contents["notes-1.txt"]

    page.once("dialog", lambda dialog: dialog.accept())
    row(page, "notes-2.txt").get_by_role("button", name="Delete").click()
    expect(row(page, "notes-2.txt")).to_have_count(0)
    listed = requests.get(
        f"{site.url}/api/files", cookies=session_cookie(page.context), timeout=10
    ).json()
    assert sorted(f["filename"] for f in listed["files"]) == ["notes-0.txt", "notes-1.txt"]


def test_a_delete_dismissed_in_its_confirmation_keeps_the_file(site: Site, page: Page) -> None:
    """Delete asks first; saying no keeps the file."""
    sign_up(page, site, "ada@acme.test", "Acme")
    page.locator("#file-input").set_input_files(
        [{"name": "keep.txt", "mimeType": "text/plain", "buffer": b"keep me\n" * 100}]
    )
    expect(row(page, "keep.txt").get_by_text("Ready")).to_be_visible(timeout=SLOW)
    page.once("dialog", lambda dialog: dialog.dismiss())
    row(page, "keep.txt").get_by_role("button", name="Delete").click()
    page.reload()
    expect(row(page, "keep.txt")).to_have_count(1)


def test_a_file_that_fails_validation_shows_failed_with_its_reason(site: Site, page: Page) -> None:
    """A PNG named .txt fails validation; its row says so, with the message."""
    sign_up(page, site, "ada@acme.test", "Acme")
    png = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + os.urandom(600)
    page.locator("#file-input").set_input_files(
        [{"name": "photo.txt", "mimeType": "text/plain", "buffer": png}]
    )
    failed = row(page, "photo.txt")
    expect(failed.get_by_text("Failed", exact=True)).to_be_visible(timeout=SLOW)
    expect(failed.locator(".reason")).not_to_be_empty()
    expect(failed.get_by_role("link", name="Download")).to_have_count(0)


def test_a_resumable_upload_cut_off_resumes_where_it_stopped(site: Site, page: Page) -> None:
    """A large file goes through /api/uploads; the network drops after its first part and
    the upload carries on from the server's offset once it is back, not from zero."""
    sign_up(page, site, "ada@acme.test", "Acme")
    data = text_bytes(10 * MiB + 4321, seed=7)
    patches: list[int] = []
    creations: list[str] = []
    cut = {"left": 3}

    def network(route: Route) -> None:
        request = route.request
        if request.method == "POST":
            creations.append(request.url)
        if request.method == "PATCH":
            offset = int(request.headers["upload-offset"])
            if offset > 0 and cut["left"] > 0:
                cut["left"] -= 1
                route.abort("internetdisconnected")
                return
            patches.append(offset)
        route.continue_()

    page.route(re.compile(r".*/api/uploads(/.*)?$"), network)
    page.locator("#file-input").set_input_files(
        [{"name": "big.txt", "mimeType": "text/plain", "buffer": data}]
    )
    expect(page.get_by_text(re.compile("connection lost"))).to_be_visible(timeout=SLOW)
    expect(row(page, "big.txt").get_by_text("Ready")).to_be_visible(timeout=2 * SLOW)
    assert len(creations) == 1
    assert patches[0] == 0 and patches[1] > 0  # resumed after the cut, not restarted
    assert patches == sorted(set(patches))
    with page.expect_download() as download:
        row(page, "big.txt").get_by_role("link", name="Download").click()
    assert Path(download.value.path()).read_bytes() == data


def test_an_upload_cut_by_a_reload_carries_on_from_the_servers_offset_when_picked_again(
    site: Site, page: Page, tmp_path: Path
) -> None:
    """The page is reloaded mid-upload: it lists the upload as paused, and the same file
    picked again asks the server for its offset (HEAD) and sends only the rest, into the
    same upload, which ends byte for byte."""
    sign_up(page, site, "ada@acme.test", "Acme")
    data = text_bytes(20 * MiB + 4321, seed=9)
    path = tmp_path / "film.txt"
    path.write_bytes(data)
    seen: list[tuple[str, str]] = []
    parked = {"on": True}

    def network(route: Route) -> None:
        request = route.request
        offset = request.headers.get("upload-offset", "")
        if parked["on"] and request.method == "PATCH" and offset != "0":
            route.abort("internetdisconnected")  # the first part is in; the rest waits
            return
        seen.append((request.method, offset))
        route.continue_()

    page.route(re.compile(r".*/api/uploads(/.*)?$"), network)
    page.locator("#file-input").set_input_files(str(path))
    expect(page.get_by_text(re.compile("connection lost"))).to_be_visible(timeout=SLOW)
    assert [method for method, _ in seen][:2] == ["POST", "PATCH"]

    page.reload()
    page.wait_for_load_state()
    parked["on"] = False
    expect(page.get_by_text(re.compile(r"Paused at 39%"))).to_be_visible(timeout=SLOW)
    seen.clear()
    page.locator("#file-input").set_input_files(str(path))
    expect(row(page, "film.txt").get_by_text("Ready")).to_be_visible(timeout=2 * SLOW)
    expect(page.get_by_text(re.compile("Paused at"))).to_have_count(0)
    # Asked where it stood, then sent from there: no new upload, the first part not again.
    assert seen[0] == ("HEAD", "")
    patches = [int(offset) for method, offset in seen if method == "PATCH"]
    assert "POST" not in [method for method, _ in seen]
    assert patches == [8 * MiB, 16 * MiB]
    assert sum(min(8 * MiB, len(data) - offset) for offset in patches) < len(data)
    with page.expect_download() as download:
        row(page, "film.txt").get_by_role("link", name="Download").click()
    assert Path(download.value.path()).read_bytes() == data
    # Done: nothing is remembered for it any more.
    assert page.evaluate("Object.keys(localStorage).length") == 0


def test_a_paused_upload_is_discarded_or_forgotten_once_the_server_no_longer_holds_it(
    site: Site, page: Page, tmp_path: Path
) -> None:
    """After a reload, Discard gives a paused upload up (its holding freed); one the server
    dropped meanwhile is forgotten, and picking its file again starts a new upload."""
    sign_up(page, site, "ada@acme.test", "Acme")
    first, second = tmp_path / "one.txt", tmp_path / "two.txt"
    first.write_bytes(text_bytes(9 * MiB, seed=3))
    second.write_bytes(text_bytes(9 * MiB, seed=4))

    def park(route: Route) -> None:
        if route.request.method == "PATCH" and route.request.headers["upload-offset"] != "0":
            route.abort("internetdisconnected")
            return
        route.continue_()

    page.route(re.compile(r".*/api/uploads(/.*)?$"), park)
    page.locator("#file-input").set_input_files([str(first), str(second)])
    expect(page.get_by_text(re.compile("connection lost"))).to_have_count(2, timeout=SLOW)
    page.unroute(re.compile(r".*/api/uploads(/.*)?$"))
    page.reload()
    page.wait_for_load_state()
    expect(page.get_by_text(re.compile("Paused at"))).to_have_count(2, timeout=SLOW)
    cookies = session_cookie(page.context)

    def reserved() -> int:
        org = requests.get(f"{site.url}/api/org", cookies=cookies, timeout=10).json()
        return int(org["reserved_bytes"])

    assert reserved() == 18 * MiB
    page.get_by_role("button", name="Discard one.txt").click()
    wait_for(lambda: reserved() == 9 * MiB, 10, "the discarded upload's holding to be freed")

    # The server drops the other (as an expiry would): the page forgets it.
    stored = page.evaluate("Object.values(localStorage).map((v) => JSON.parse(v).url)")
    assert len(stored) == 1
    csrf = page.locator('meta[name="csrf-token"]').get_attribute("content") or ""
    gone = requests.delete(
        f"{site.url}{stored[0]}",
        cookies=cookies,
        headers={"Tus-Resumable": "1.0.0", "X-CSRF-Token": csrf},
        timeout=10,
    )
    assert gone.status_code == 204
    page.reload()
    page.wait_for_load_state()
    wait_for(
        lambda: page.evaluate("Object.keys(localStorage).length") == 0,
        10,
        "the page to forget the upload the server dropped",
    )
    expect(page.get_by_text(re.compile("Paused at"))).to_have_count(0)
    with page.expect_request(lambda r: r.method == "POST" and "/api/uploads" in r.url):
        page.locator("#file-input").set_input_files(str(second))
    expect(row(page, "two.txt").get_by_text("Ready")).to_be_visible(timeout=2 * SLOW)
    assert reserved() == 0


def test_cancel_stops_a_resumable_upload_and_frees_what_it_held(site: Site, page: Page) -> None:
    """Cancel ends the upload (tus termination): nothing listed, nothing held."""
    sign_up(page, site, "ada@acme.test", "Acme")
    held = {"patches": 0}

    def slow_second_part(route: Route) -> None:
        if route.request.method == "PATCH":
            held["patches"] += 1
            if held["patches"] > 1:
                route.abort("internetdisconnected")  # parked: retries until cancelled
                return
        route.continue_()

    page.route(re.compile(r".*/api/uploads/.*$"), slow_second_part)
    page.locator("#file-input").set_input_files(
        [{"name": "big.txt", "mimeType": "text/plain", "buffer": text_bytes(9 * MiB, seed=2)}]
    )
    expect(page.get_by_text(re.compile("connection lost"))).to_be_visible(timeout=SLOW)
    page.get_by_role("button", name="Cancel").click()
    expect(page.get_by_role("progressbar")).to_have_count(0)
    cookies = session_cookie(page.context)

    def holding() -> int:
        org = requests.get(f"{site.url}/api/org", cookies=cookies, timeout=10).json()
        return int(org["reserved_bytes"])

    wait_for(lambda: holding() == 0, 10, "the cancelled upload's holding to be freed")
    assert requests.get(f"{site.url}/api/files", cookies=cookies, timeout=10).json()["total"] == 0


def test_a_token_made_in_the_page_works_against_the_api_until_revoked(
    site: Site, page: Page
) -> None:
    """Tokens page: the new secret shown once in a read-only field works as a bearer
    token; Revoke stops it."""
    sign_up(page, site, "ada@acme.test", "Acme")
    page.get_by_role("link", name="Tokens").click()
    page.get_by_label("Token name").fill("backup script")
    page.get_by_role("button", name="Create token").click()
    secret_field = page.get_by_label("New token")
    expect(secret_field).to_have_attribute("readonly", "")
    secret = secret_field.input_value()
    assert secret
    me = requests.get(
        f"{site.url}/api/auth/me", headers={"Authorization": f"Bearer {secret}"}, timeout=10
    )
    assert me.status_code == 200 and me.json()["email"] == "ada@acme.test"
    page.get_by_role("button", name="Copy").click()
    expect(page.get_by_role("button", name="Copied")).to_be_visible()
    screenshot(page, "tokens")
    listed = page.locator("tbody tr").filter(has_text="backup script")
    expect(listed).to_have_count(1)
    page.reload()
    expect(page.get_by_label("New token")).to_have_count(0)  # shown once
    expect(listed.locator("td").nth(2)).not_to_have_text("never")  # last used: just now
    listed.get_by_role("button", name="Revoke").click()
    expect(page.locator("tbody tr").filter(has_text="backup script")).to_have_count(0)
    gone = requests.get(
        f"{site.url}/api/auth/me", headers={"Authorization": f"Bearer {secret}"}, timeout=10
    )
    assert gone.status_code == 401


def test_an_invite_made_by_the_admin_lets_a_second_browser_join_and_be_deactivated(
    site: Site, browser: Browser, errors: ConsoleErrors, page: Page
) -> None:
    """Organization page: an invite code joins a second person (their own browser); the
    member sees usage only; the admin deactivates them and their next page asks to sign in."""
    sign_up(page, site, "ada@acme.test", "Acme")
    page.get_by_role("link", name="Organization").click()
    expect(page.get_by_text("0 MiB of 1,000 MiB")).to_be_visible()
    page.get_by_role("button", name="Create invite").click()
    code = page.get_by_label("Invite code").input_value()
    assert code

    other = new_context(browser, errors)
    try:
        member = other.new_page()
        sign_up(member, site, "grace@acme.test", "Acme", invite=code)
        member.get_by_role("link", name="Organization").click()
        expect(member.get_by_text("0 MiB of 1,000 MiB")).to_be_visible()
        expect(member.get_by_role("button", name="Create invite")).to_have_count(0)
        expect(member.get_by_role("table")).to_have_count(0)

        page.reload()
        screenshot(page, "organization")
        users = page.locator("tbody tr")
        expect(users).to_have_count(2)
        grace = users.filter(has_text="grace@acme.test")
        expect(grace.get_by_text("Member")).to_be_visible()
        grace.get_by_role("button", name="Deactivate", exact=True).click()
        expect(grace.get_by_text("Deactivated")).to_be_visible()
        member.reload()
        expect(member.get_by_role("button", name="Sign in")).to_be_visible()
        page.locator("tbody tr").filter(has_text="grace@acme.test").get_by_role(
            "button", name="Activate", exact=True
        ).click()
        expect(page.locator("tbody tr").filter(has_text="grace@acme.test")).to_contain_text(
            "Active"
        )
    finally:
        other.close()


def test_sign_out_ends_the_session_for_the_api_too(site: Site, page: Page) -> None:
    """After Sign out the cookie the browser held is refused by the API."""
    sign_up(page, site, "ada@acme.test", "Acme")
    cookies = session_cookie(page.context)
    assert requests.get(f"{site.url}/api/auth/me", cookies=cookies, timeout=10).status_code == 200
    expect(page.get_by_text("ada@acme.test")).to_be_visible()
    expect(page.get_by_text("Acme", exact=True)).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    assert requests.get(f"{site.url}/api/auth/me", cookies=cookies, timeout=10).status_code == 401


def test_a_wrong_password_and_then_the_rate_limit_show_as_alerts(site: Site, page: Page) -> None:
    """Sign in: the API's message for a wrong password, then for too many attempts."""
    sign_up(page, site, "ada@acme.test", "Acme")
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, "ada@acme.test", "not the password")
    expect(page.get_by_role("alert")).to_have_text("invalid email or password")
    screenshot(page, "sign-in")
    for _ in range(3):  # the limit is 4 a minute: these use it up
        sign_in(page, "ada@acme.test", "not the password")
        expect(page.get_by_role("alert")).to_have_text("invalid email or password")
    sign_in(page, "ada@acme.test", PASSWORD)  # even the right password must wait now
    expect(page.get_by_role("alert")).to_have_text("too many attempts; wait a minute and try again")


def test_a_signed_out_visitor_gets_the_sign_in_form_and_then_the_page_they_asked_for(
    site: Site, page: Page, context: BrowserContext
) -> None:
    """No data before sign-in; afterwards, the page the visitor was going to."""
    sign_up(page, site, "ada@acme.test", "Acme")
    page.get_by_role("button", name="Sign out").click()
    page.goto(f"{site.url}/tokens")
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    expect(page.get_by_text("ada@acme.test")).to_have_count(0)
    sign_in(page, "ada@acme.test")
    expect(page).to_have_url(f"{site.url}/tokens")
    expect(page.get_by_label("Token name")).to_be_visible()


def test_sign_up_errors_appear_beside_their_field(site: Site, page: Page) -> None:
    """A short password and an organization that needs an invite: each error by its field."""
    page.goto(f"{site.url}/")
    page.get_by_role("link", name="Create an account").click()
    page.get_by_label("Email").fill("ada@acme.test")
    page.get_by_label("Password").fill("short")
    page.get_by_label("Organization").fill("Acme")
    page.get_by_role("button", name="Create account").click()
    expect(page.locator("#password-error")).to_contain_text("at least 10")
    expect(page.get_by_label("Email")).to_have_value("ada@acme.test")
    sign_up(page, site, "ada@acme.test", "Acme")
    page.get_by_role("button", name="Sign out").click()
    page.goto(f"{site.url}/register")
    page.get_by_label("Email").fill("grace@acme.test")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Organization").fill("Acme")
    page.get_by_role("button", name="Create account").click()
    expect(page.locator("#invite_code-error")).to_contain_text("invite code")


def test_every_page_fits_a_phone_screen_and_signs_in_by_keyboard(
    site: Site, browser: Browser, errors: ConsoleErrors
) -> None:
    """At 375 px wide no page scrolls sideways, and the sign-in form works from the keyboard."""
    phone = new_context(browser, errors, viewport={"width": 375, "height": 740})
    try:
        tab = phone.new_page()
        tab.goto(f"{site.url}/register")
        tab.get_by_label("Email").fill("ada@acme.test")
        tab.keyboard.press("Tab")
        tab.keyboard.type(PASSWORD)
        tab.get_by_label("Organization").fill("Acme")
        tab.get_by_label("Organization").press("Enter")
        expect(tab.get_by_role("heading", name="Files", exact=True)).to_be_visible()
        for path in ["/", "/tokens", "/org"]:
            tab.goto(f"{site.url}{path}")
            wide = tab.evaluate("document.documentElement.scrollWidth")
            assert wide <= 375, f"{path} is {wide} px wide"
        tab.get_by_role("button", name="Sign out").click()
        tab.goto(f"{site.url}/login")
        wide = tab.evaluate("document.documentElement.scrollWidth")
        assert wide <= 375
    finally:
        phone.close()


def test_a_ready_file_is_shared_by_a_link_anyone_can_use_until_it_is_revoked(
    site: Site, page: Page
) -> None:
    """Share on a ready row makes a link shown once with a copy button; a stranger
    downloads the exact bytes with it; the page counts the download; Revoke ends it."""
    sign_up(page, site, "ada@acme.test", "Acme")
    data = b"quarterly figures\n" * 500
    page.locator("#file-input").set_input_files(
        [{"name": "report.txt", "mimeType": "text/plain", "buffer": data}]
    )
    expect(row(page, "report.txt").get_by_text("Ready")).to_be_visible(timeout=SLOW)
    row(page, "report.txt").get_by_role("button", name="Share").click()
    field = page.get_by_label("Share link")
    expect(field).to_have_attribute("readonly", "")
    url = field.input_value()
    assert url.startswith(f"{site.url}/s/")
    page.get_by_role("button", name="Copy").click()
    expect(page.get_by_role("button", name="Copied")).to_be_visible()
    screenshot(page, "share")

    stranger = requests.get(url, timeout=10)  # no cookie, no token
    assert stranger.status_code == 200 and stranger.content == data
    page.reload()
    expect(page.get_by_label("Share link")).to_have_count(0)  # shown once
    links = page.locator("tbody tr")
    expect(links).to_have_count(1)
    expect(links.locator("td").nth(2)).to_have_text("1")
    links.get_by_role("button", name="Revoke").click()
    expect(page.get_by_text("No live links")).to_be_visible()
    assert requests.get(url, timeout=10).status_code == 404


def test_a_file_not_yet_ready_cannot_be_shared(site: Site, page: Page) -> None:
    """Only ready rows offer Share."""
    sign_up(page, site, "ada@acme.test", "Acme")
    png = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + os.urandom(600)
    page.locator("#file-input").set_input_files(
        [{"name": "photo.txt", "mimeType": "text/plain", "buffer": png}]
    )
    expect(row(page, "photo.txt").get_by_text("Failed", exact=True)).to_be_visible(timeout=SLOW)
    expect(row(page, "photo.txt").get_by_role("button", name="Share")).to_have_count(0)
