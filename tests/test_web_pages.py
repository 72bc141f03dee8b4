"""The web pages as HTTP answers: their policy, where sign-in leads, CSRF on every form."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.support.client import Auth, bearer, form_token
from tests.support.pipeline import upload

PAGES = ["/", "/tokens", "/org", "/trash"]


@pytest.fixture
def app_overrides() -> dict[str, Any]:
    """A login limit within reach of one test."""
    return {"LOGIN_LIMIT_PER_EMAIL": "3 per minute"}


def sign_in(
    client: FlaskClient, next_path: str | None = None, password: str = Auth.password
) -> Any:
    """Send the sign-in form as a browser would."""
    data = {
        "email": "admin@acme.test",
        "password": password,
        "csrf_token": form_token(client, "/login"),
    }
    if next_path is not None:
        data["next"] = next_path
    return client.post("/login", data=data)


@pytest.mark.parametrize("path", PAGES)
def test_a_signed_out_visitor_is_sent_to_sign_in_with_the_page_to_come_back_to(
    client: FlaskClient, path: str
) -> None:
    """Every signed-in page answers a visitor with the sign-in form, and no data."""
    with client.get(path) as response:
        assert response.status_code == 302
        assert response.headers["Location"] == f"/login?next={path}"


@pytest.mark.parametrize("path", PAGES)
def test_pages_allow_only_their_own_scripts_styles_and_images(auth: Auth, path: str) -> None:
    """The pages' policy names 'self' alone; no page keeps an inline script or style."""
    auth.register()
    with auth.client.get(path) as response:
        assert response.status_code == 200
        policy = response.headers["Content-Security-Policy"]
        html = response.get_data(as_text=True)
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["default-src"] == "'none'"
    for kind in ("script-src", "style-src", "img-src", "connect-src"):
        assert directives[kind] == "'self'"
    assert response.headers["Cache-Control"] == "no-store"
    assert re.search(r"<script(?![^>]*\bsrc=)", html) is None
    assert "<style" not in html and " style=" not in html and " on" + "click=" not in html


def test_the_api_keeps_its_stricter_policy(auth: Auth) -> None:
    """JSON answers may run, load or frame nothing."""
    auth.register()
    with auth.client.get("/api/auth/me") as response:
        assert "sandbox" in response.headers["Content-Security-Policy"]
        assert "'self'" not in response.headers["Content-Security-Policy"]


def test_the_pages_static_files_are_served_from_the_app(client: FlaskClient) -> None:
    """Scripts, the stylesheet and the icon come from Coffer itself."""
    for name, kind in [
        ("files.js", "text/javascript"),
        ("tus.js", "text/javascript"),
        ("copy.js", "text/javascript"),
        ("coffer.css", "text/css"),
        ("coffer.svg", "image/svg+xml"),
    ]:
        with client.get(f"/static/{name}") as response:
            assert response.status_code == 200, name
            assert response.mimetype == kind


@pytest.mark.parametrize(
    "target",
    ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)"],
)
def test_sign_in_never_leads_to_another_site(auth: Auth, client: FlaskClient, target: str) -> None:
    """A `next` that is not a path on this site leads to the files page instead."""
    auth.register()
    auth.logout()
    response = sign_in(client, target)
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


def test_sign_in_leads_back_to_the_page_asked_for(auth: Auth, client: FlaskClient) -> None:
    """A same-site path, query string included, is where sign-in ends."""
    auth.register()
    auth.logout()
    response = sign_in(client, "/?status=ready")
    assert response.headers["Location"] == "/?status=ready"
    with client.get("/?status=ready") as page:
        assert page.status_code == 200


def test_a_form_without_its_token_is_refused(auth: Auth, client: FlaskClient) -> None:
    """Sign-in, sign-up and every signed-in form need the page's CSRF token."""
    auth.register()
    auth.logout()
    refused = client.post("/login", data={"email": "admin@acme.test", "password": Auth.password})
    assert refused.status_code == 400
    assert "try again" in refused.get_data(as_text=True)
    assert client.get("/api/auth/me").status_code == 401
    sign_in(client)
    made = client.post("/tokens", data={"name": "sneaky"})
    assert made.status_code == 400
    assert client.get("/api/tokens").get_json()["tokens"] == []


def test_a_bearer_token_does_not_open_the_pages(auth: Auth, client: FlaskClient) -> None:
    """Pages are for the browser's session; a token alone gets the sign-in form."""
    auth.register()
    secret = auth.client.post("/api/tokens", json={"name": "t"}, headers=auth.headers())
    fresh = client.application.test_client()
    with fresh.get("/tokens", headers=bearer(secret.get_json()["token"])) as response:
        assert response.status_code == 302


def test_sign_in_attempts_count_together_with_the_apis(auth: Auth, client: FlaskClient) -> None:
    """The login limit is one counter for the page and /api/auth/login alike."""
    auth.register()
    auth.logout()
    for _ in range(2):
        assert auth.login(password="wrong password!").status_code == 401
    assert sign_in(client, password="wrong password!").status_code == 401
    limited = sign_in(client)
    assert limited.status_code == 429
    assert 'role="alert"' in limited.get_data(as_text=True)
    assert auth.login().status_code == 429


def test_unknown_paths_still_answer_json(client: FlaskClient) -> None:
    """Outside the pages, a missing path is the API's JSON 404."""
    with client.get("/no-such-page") as response:
        assert response.status_code == 404
        assert response.get_json()["code"] == "not_found"


def names_on(client: FlaskClient, path: str) -> tuple[list[str], dict[str, str]]:
    """The file names a files page lists, and its pager's links by label."""
    with client.get(path) as page:
        html = page.get_data(as_text=True)
    names = re.findall(r'<td class="name" title="([^"]+)"', html)
    pager = html[html.index('class="pager"') :]
    links = {
        label: href.replace("&amp;", "&")
        for href, label in re.findall(r'<a href="([^"]+)">(?:← )?(Newer|Older)', pager)
    }
    return names, links


def test_the_files_page_goes_to_older_and_back_to_newer_pages_by_cursor(auth: Auth) -> None:
    """Twenty files a page, newest first; Older and Newer walk the pages and back."""
    auth.register()
    for n in range(45):
        assert upload(auth, f"file-{n:02}.txt", b"x\n").status_code == 201
    first, links = names_on(auth.client, "/")
    assert first == [f"file-{n:02}.txt" for n in range(44, 24, -1)]
    assert set(links) == {"Older"}
    second, links = names_on(auth.client, links["Older"])
    assert second == [f"file-{n:02}.txt" for n in range(24, 4, -1)]
    third, third_links = names_on(auth.client, links["Older"])
    assert third == [f"file-{n:02}.txt" for n in range(4, -1, -1)]
    assert set(third_links) == {"Newer"}
    back, back_links = names_on(auth.client, third_links["Newer"])
    assert back == second
    top, top_links = names_on(auth.client, back_links["Newer"])
    assert top == first
    assert set(top_links) == {"Older"}  # the newest page has nothing newer


def test_the_organization_page_gives_usage_in_words_and_a_meter(auth: Auth) -> None:
    """Usage reads as a person says it, beside a meter of the same figures."""
    auth.register()
    assert upload(auth, "half.txt", b"a" * (12 * 1024 * 1024 + 512 * 1024)).status_code == 201
    with auth.client.get("/org") as page:
        html = page.get_data(as_text=True)
    assert "12.5 MiB of 1,000 MiB" in html
    meter = re.search(r'<meter min="0" max="(\d+)" value="(\d+)"', html)
    assert meter and meter.groups() == (str(1000 * 1024 * 1024), str(13107200))
    with auth.client.get("/") as files_page:
        assert '<td class="num">12.5 MiB</td>' in files_page.get_data(as_text=True)


def test_an_admin_sets_the_retention_on_the_organization_page_and_members_read_it(
    auth: Auth,
) -> None:
    """The admin's form saves the trash's days and the versions kept (0 days allowed, a
    number out of range refused with its reason); a member reads the rules and may not
    change them."""
    auth.register()
    code = auth.invite()
    with auth.client.get("/org") as page:
        html = page.get_data(as_text=True)
    assert 'id="trash-retention-days"' in html and 'value="30"' in html
    assert "0 B is in the trash and 0 B in older versions of files" in html

    token = form_token(auth.client, "/org")
    saved = auth.client.post(
        "/org/settings",
        data={"trash_retention_days": "0", "versions_kept": "3", "csrf_token": token},
    )
    assert saved.status_code == 303 and saved.headers["Location"].endswith("/org#retention")
    with auth.client.get("/org") as page:
        html = page.get_data(as_text=True)
    assert "Settings saved." in html
    org = auth.client.get("/api/org").get_json()
    assert (org["trash_retention_days"], org["versions_kept"]) == (0, 3)

    refused = auth.client.post(
        "/org/settings",
        data={"trash_retention_days": "7", "versions_kept": "0", "csrf_token": token},
    )
    assert refused.status_code == 400
    assert 'role="alert"' in refused.get_data(as_text=True)
    assert auth.client.get("/api/org").get_json()["versions_kept"] == 3

    member = auth.another()
    assert member.register("member@acme.test", invite_code=code).status_code == 201
    with member.client.get("/org") as page:
        html = page.get_data(as_text=True)
    assert "stay in the trash for 0 days" in html and "keeps its 3 newest versions" in html
    assert 'id="trash-retention-days"' not in html
    member_token = form_token(member.client, "/org")
    forbidden = member.client.post(
        "/org/settings",
        data={"trash_retention_days": "90", "versions_kept": "50", "csrf_token": member_token},
    )
    assert forbidden.status_code == 403
    assert auth.client.get("/api/org").get_json()["trash_retention_days"] == 0


# ---- folders, sort and search without scripts ----------------------------------------------


def make_folder(auth: Auth, name: str, parent: str = "root") -> str:
    """Make a folder with the files page's New folder form; its id."""
    token = form_token(auth.client, "/")
    made = auth.client.post(
        "/folders", data={"name": name, "parent_id": parent, "csrf_token": token}
    )
    assert made.status_code == 303, made.get_data(as_text=True)
    listed = auth.client.get(f"/api/folders?parent_id={parent}").get_json()["folders"]
    return next(f["id"] for f in listed if f["name"] == name)


def put_file(auth: Auth, name: str, data: bytes, folder_id: str) -> str:
    """Upload a file and move it into a folder; its id."""
    uploaded = upload(auth, name, data)
    assert uploaded.status_code == 201
    file_id = str(uploaded.get_json()["file_id"])
    moved = auth.client.patch(
        f"/api/files/{file_id}", json={"folder_id": folder_id}, headers=auth.headers()
    )
    assert moved.status_code == 200, moved.get_json()
    return file_id


def listed_on(client: FlaskClient, path: str) -> tuple[int, str, list[str], list[str]]:
    """A files page's status, HTML, folder names and file names, in the order shown."""
    with client.get(path) as page:
        html = page.get_data(as_text=True)
        status = page.status_code
    folder_names = re.findall(r'<td class="name folder" title="([^"]+)"', html)
    return status, html, folder_names, re.findall(r'<td class="name" title="([^"]+)"', html)


def test_a_folder_page_shows_its_breadcrumbs_its_folders_first_then_its_own_files(
    auth: Auth,
) -> None:
    """`/?folder=<id>` lists that folder alone, folders first, with the path above it; the
    New folder form makes a folder where the page stands."""
    auth.register()
    docs = make_folder(auth, "Docs")
    inner = make_folder(auth, "Inner", docs)
    put_file(auth, "in-docs.txt", b"docs\n", docs)
    assert upload(auth, "top.txt", b"top\n").status_code == 201
    status, html, folder_names, file_names = listed_on(auth.client, f"/?folder={docs}")
    assert status == 200
    assert folder_names == ["Inner"] and file_names == ["in-docs.txt"]
    start = html.index('aria-label="Folder path"')
    crumbs = html[start : html.index("</nav>", start)]
    assert re.findall(r">([^<]+)</a>", crumbs) == ["All files", "Docs"]
    assert f'name="parent_id" value="{docs}"' in html
    _, _, top_folders, top_files = listed_on(auth.client, "/")
    assert top_folders == ["Docs"] and top_files == ["top.txt"]
    _, inner_html, _, _ = listed_on(auth.client, f"/?folder={inner}")
    assert "This folder is empty" in inner_html


def test_a_folder_not_of_this_organization_is_not_found(auth: Auth) -> None:
    """Another organization's folder, or no folder at all, is a 404 page with no data."""
    auth.register()
    mine = make_folder(auth, "Mine")
    other = auth.another()
    other.register("grace@globex.test", "Globex")
    for folder in (mine, "not-a-folder", "00000000-0000-0000-0000-000000000000"):
        status, html, _, _ = listed_on(other.client, f"/?folder={folder}")
        assert status == 404 and "Mine" not in html
    token = form_token(other.client, "/")
    refused = other.client.post(
        "/folders", data={"name": "Inside", "parent_id": mine, "csrf_token": token}
    )
    assert refused.status_code == 404


def test_the_new_folder_form_says_why_a_name_is_refused(auth: Auth) -> None:
    """A taken name (compared as Coffer compares names) is 409, a slash 400, each with the
    reason as an alert; no token, nothing made."""
    auth.register()
    make_folder(auth, "Straße")
    token = form_token(auth.client, "/")
    for name, status, words in [("STRASSE", 409, "taken"), ("a/b", 400, "/")]:
        answer = auth.client.post("/folders", data={"name": name, "csrf_token": token})
        assert answer.status_code == status
        html = answer.get_data(as_text=True)
        alert = re.search(r'<p class="alert" role="alert">([^<]+)</p>', html)
        assert alert and words in alert.group(1)
    assert auth.client.post("/folders", data={"name": "sneaky"}).status_code == 400
    names = [f["name"] for f in auth.client.get("/api/folders").get_json()["folders"]]
    assert names == ["Straße"]


def test_column_headers_sort_both_ways_and_keep_the_folder(auth: Auth) -> None:
    """Name, size and time sort by links that keep the folder and flip the order."""
    auth.register()
    place = make_folder(auth, "Place")
    for name, size in [("b.txt", 30), ("a.txt", 10), ("c.txt", 20)]:
        put_file(auth, name, b"x" * size, place)
    base = f"/?folder={place}"
    _, html, _, names = listed_on(auth.client, base)
    assert names == ["c.txt", "a.txt", "b.txt"]  # newest first
    header = re.search(r'<a class="sort" href="([^"]+)">Name', html)
    assert header and header.group(1).replace("&amp;", "&") == f"{base}&sort=name&order=asc"
    assert listed_on(auth.client, f"{base}&sort=name")[3] == ["a.txt", "b.txt", "c.txt"]
    _, html, _, names = listed_on(auth.client, f"{base}&sort=name&order=desc")
    assert names == ["c.txt", "b.txt", "a.txt"]
    assert 'aria-sort="descending"' in html
    assert listed_on(auth.client, f"{base}&sort=size")[3] == ["b.txt", "c.txt", "a.txt"]
    assert listed_on(auth.client, f"{base}&sort=size&order=asc")[3] == ["a.txt", "c.txt", "b.txt"]
    # Nonsense sorts and orders read as the defaults rather than failing.
    assert listed_on(auth.client, f"{base}&sort=evil&order=up")[3] == ["c.txt", "a.txt", "b.txt"]


def test_search_lists_matches_below_a_folder_with_their_folder_path(auth: Auth) -> None:
    """`?q=` finds names containing the text in every folder (or below the one shown), each
    with a link to its folder."""
    auth.register()
    clients = make_folder(auth, "Clients")
    deep = make_folder(auth, "Deep", clients)
    put_file(auth, "Report-deep.txt", b"1\n", deep)
    assert upload(auth, "report-top.txt", b"2\n").status_code == 201
    assert upload(auth, "other.txt", b"3\n").status_code == 201
    _, html, folder_names, names = listed_on(auth.client, "/?q=REPORT")
    assert folder_names == [] and sorted(names) == ["Report-deep.txt", "report-top.txt"]
    assert f'href="/?folder={deep}" aria-label="Open folder /Clients/Deep"' in html
    assert 'aria-label="Open folder /"' in html
    _, _, _, below = listed_on(auth.client, f"/?folder={clients}&q=report")
    assert below == ["Report-deep.txt"]
    _, html, _, none = listed_on(auth.client, "/?q=nothing-like-it")
    assert none == [] and "Nothing named like" in html


def test_a_selection_downloads_as_a_zip_and_deletes_without_scripts(
    auth: Auth, worker: Callable[[], None]
) -> None:
    """The selection form: Download as zip answers the zip of the files and folders
    checked; Delete removes them and comes back to the page."""
    auth.register()
    box = make_folder(auth, "Box")
    put_file(auth, "inside.txt", b"inside\n", box)
    kept = upload(auth, "kept.txt", b"kept\n").get_json()["file_id"]
    loose = upload(auth, "loose.txt", b"loose\n").get_json()["file_id"]
    worker()  # the uploads validated: only ready files go into a zip
    token = form_token(auth.client, "/")
    zipped = auth.client.post(
        "/files/archive",
        data={"file_ids": [loose], "folder_ids": [box], "csrf_token": token},
    )
    assert zipped.status_code == 200 and zipped.mimetype == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(zipped.get_data()))
    assert {i.filename: archive.read(i) for i in archive.infolist() if not i.is_dir()} == {
        "loose.txt": b"loose\n",
        "Box/inside.txt": b"inside\n",
    }
    gone = auth.client.post(
        "/files/delete",
        data={"file_ids": [loose], "folder_ids": [box], "csrf_token": token, "next": "/?sort=name"},
    )
    assert gone.status_code == 303 and gone.headers["Location"] == "/?sort=name"
    listed = auth.client.get("/api/files").get_json()["files"]
    assert [f["id"] for f in listed] == [kept]
    assert auth.client.get("/api/folders").get_json()["folders"] == []


# ---- the trash and versions without scripts -------------------------------------------------


def test_a_delete_offers_undo_once_and_undo_restores_without_scripts(auth: Auth) -> None:
    """The selection's Delete comes back to the page with one notice naming what went to
    the trash and an Undo form; Undo restores them all; the notice is not shown again."""
    auth.register()
    box = make_folder(auth, "Box")
    put_file(auth, "inside.txt", b"inside\n", box)
    loose = upload(auth, "loose.txt", b"loose\n").get_json()["file_id"]
    token = form_token(auth.client, "/")
    gone = auth.client.post(
        "/files/delete",
        data={"file_ids": [loose], "folder_ids": [box], "csrf_token": token, "next": "/"},
    )
    assert gone.status_code == 303
    with auth.client.get("/") as page:
        html = page.get_data(as_text=True)
    assert "2 items were moved to the trash." in html
    undo = re.search(r'<form method="post" action="/trash/undo">(.*?)</form>', html, re.S)
    assert undo is not None
    ids = re.findall(r'name="item_ids" value="([^"]+)"', undo.group(1))
    assert sorted(ids) == sorted([loose, box])
    with auth.client.get("/") as again:
        assert "moved to the trash" not in again.get_data(as_text=True)
    assert auth.client.get("/api/files").get_json()["files"] == []

    back = auth.client.post(
        "/trash/undo", data={"item_ids": ids, "csrf_token": token, "next": "/?sort=name"}
    )
    assert back.status_code == 303 and back.headers["Location"] == "/?sort=name"
    assert len(auth.client.get("/api/files").get_json()["files"]) == 2
    assert [f["name"] for f in auth.client.get("/api/folders").get_json()["folders"]] == ["Box"]
    # A second Undo finds nothing left to restore and changes nothing.
    twice = auth.client.post("/trash/undo", data={"item_ids": ids, "csrf_token": token})
    assert twice.status_code == 303
    assert auth.client.get("/api/trash").get_json()["items"] == []


def test_the_trash_page_lists_each_ones_items_and_empties_only_for_admins(auth: Auth) -> None:
    """A member's Trash shows their own deleted files and no Empty trash (the form refused
    with 403); the admin's shows everyone's; Restore of what is no longer there says so."""
    auth.register()
    code = auth.invite()
    member = auth.another()
    assert member.register("member@acme.test", invite_code=code).status_code == 201
    mine = upload(member, "mine.txt", b"mine\n").get_json()["file_id"]
    theirs = upload(auth, "theirs.txt", b"theirs\n").get_json()["file_id"]
    for who, file_id in ((member, mine), (auth, theirs)):
        assert who.client.delete(f"/api/files/{file_id}", headers=who.headers()).status_code == 204

    with member.client.get("/trash") as page:
        html = page.get_data(as_text=True)
    assert "mine.txt" in html and "theirs.txt" not in html
    assert "Empty trash" not in html and "member@acme.test" in html
    refused = member.client.post(
        "/trash/empty", data={"csrf_token": form_token(member.client, "/trash")}
    )
    assert refused.status_code == 403 and 'role="alert"' in refused.get_data(as_text=True)

    with auth.client.get("/trash") as page:
        html = page.get_data(as_text=True)
    assert "mine.txt" in html and "theirs.txt" in html and "Empty trash" in html
    token = form_token(auth.client, "/trash")
    restored = auth.client.post(f"/trash/{mine}/restore", data={"csrf_token": token})
    assert restored.status_code == 303
    with auth.client.get("/trash") as page:
        assert "File restored to /mine.txt." in page.get_data(as_text=True)
    missing = auth.client.post(f"/trash/{mine}/restore", data={"csrf_token": token})
    assert missing.status_code == 404 and 'role="alert"' in missing.get_data(as_text=True)
    emptied = auth.client.post("/trash/empty", data={"csrf_token": token})
    assert emptied.status_code == 303
    with auth.client.get("/trash") as page:
        html = page.get_data(as_text=True)
    assert "1 item was removed for good." in html and "The trash is empty" in html


def test_a_files_versions_page_is_its_organizations_alone(auth: Auth) -> None:
    """A file's Versions page lists its one version as current; another organization's
    file, or a trashed one, is not found."""
    auth.register()
    file_id = upload(auth, "notes.txt", b"notes\n").get_json()["file_id"]
    with auth.client.get(f"/files/{file_id}/versions") as page:
        html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Version 1" in html and "Current" in html and "Restore version" not in html
    other = auth.another()
    other.register("eve@else.test", "Elsewhere")
    assert other.client.get(f"/files/{file_id}/versions").status_code == 404
    assert auth.client.delete(f"/api/files/{file_id}", headers=auth.headers()).status_code == 204
    assert auth.client.get(f"/files/{file_id}/versions").status_code == 404
