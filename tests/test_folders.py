"""Folders, names and places: creating, listing, reading, renaming, moving and deleting
folders; renaming and moving files; uploads into a folder with `on_conflict`; and each
organization's folders out of every other's reach."""

from __future__ import annotations

import base64
import io
import threading
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.support.client import Auth, usage
from tests.support.storage import stored_objects
from tests.support.trash import delete_forever, trash_items
from tests.test_pipeline import png_bytes

TUS = {"Tus-Resumable": "1.0.0"}
NOBODY = "00000000-0000-4000-8000-000000000000"


# ---- helpers -----------------------------------------------------------------------------


def new_folder(auth: Auth, name: str, parent_id: str | None = None) -> dict[str, Any]:
    """POST /api/folders, expecting 201."""
    body: dict[str, Any] = {"name": name}
    if parent_id is not None:
        body["parent_id"] = parent_id
    response = auth.client.post("/api/folders", json=body, headers=auth.headers())
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def post_folder(auth: Auth, body: dict[str, Any]) -> tuple[int, Any]:
    """POST /api/folders; (status, body)."""
    response = auth.client.post("/api/folders", json=body, headers=auth.headers())
    return response.status_code, response.get_json()


def patch(auth: Auth, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    """PATCH a folder or file; (status, body)."""
    response = auth.client.patch(path, json=body, headers=auth.headers())
    return response.status_code, response.get_json()


def upload(auth: Auth, filename: str, data: bytes, **fields: str) -> tuple[int, Any]:
    """A multipart upload with optional form fields (folder_id, on_conflict)."""
    response = auth.client.post(
        "/api/files/upload",
        data={"file": (io.BytesIO(data), filename), **fields},
        headers=auth.headers(),
        content_type="multipart/form-data",
    )
    return response.status_code, response.get_json()


def uploaded(auth: Auth, filename: str, data: bytes = b"data\n", **fields: str) -> str:
    """Upload, expecting 201; the file's id."""
    status, body = upload(auth, filename, data, **fields)
    assert status == 201, body
    return str(body["file_id"])


def details(auth: Auth, file_id: str) -> dict[str, Any]:
    """GET /api/files/<id>."""
    response = auth.client.get(f"/api/files/{file_id}")
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def folder_names(auth: Auth, parent_id: str = "root") -> list[str]:
    """The names GET /api/folders lists in a place, in its order."""
    response = auth.client.get(f"/api/folders?parent_id={parent_id}")
    assert response.status_code == 200, response.get_json()
    return [folder["name"] for folder in response.get_json()["folders"]]


def tus_metadata(**pairs: str) -> str:
    """Upload-Metadata of these pairs, base64 as tus encodes them."""
    return ",".join(
        f"{key} {base64.b64encode(value.encode()).decode()}" for key, value in pairs.items()
    )


def tus_create(auth: Auth, length: int, **pairs: str) -> Any:
    """POST /api/uploads with the metadata pairs."""
    return auth.client.post(
        "/api/uploads",
        headers={
            **TUS,
            **auth.headers(),
            "Upload-Length": str(length),
            "Upload-Metadata": tus_metadata(**pairs),
        },
    )


def tus_upload(auth: Auth, data: bytes, **pairs: str) -> Any:
    """A whole tus upload in its creation request (creation-with-upload)."""
    return auth.client.post(
        "/api/uploads",
        data=data,
        headers={
            **TUS,
            **auth.headers(),
            "Upload-Length": str(len(data)),
            "Upload-Metadata": tus_metadata(**pairs),
            "Content-Type": "application/offset+octet-stream",
        },
    )


@pytest.fixture
def member(app: Flask, auth: Auth) -> Auth:
    """A member of the admin's organization (the admin, `auth`, registers first)."""
    assert auth.register().status_code == 201
    code = auth.invite()
    person = auth.another()
    assert person.register("mia@acme.test", "Acme", invite_code=code).status_code == 201
    return person


@pytest.fixture
def stranger(app: Flask, auth: Auth) -> Auth:
    """The admin of another organization, Globex."""
    person = auth.another()
    assert person.register("boss@globex.test", "Globex").status_code == 201
    return person


# ---- create, list, read ------------------------------------------------------------------


def test_create_nested_folders_with_paths_breadcrumbs_and_listing(auth: Auth) -> None:
    auth.register()
    reports = new_folder(auth, "Reports")
    assert reports["parent_id"] == "root"
    assert reports["path"] == "/Reports"
    assert set(reports) == {"id", "name", "parent_id", "path", "created_at"}
    assert str(uuid.UUID(reports["id"])) == reports["id"]
    q1 = new_folder(auth, "2026 Q1", reports["id"])
    assert (q1["parent_id"], q1["path"]) == (reports["id"], "/Reports/2026 Q1")
    # `root` names the top level, as leaving it out does.
    assert new_folder(auth, "archive", "root")["path"] == "/archive"
    new_folder(auth, "Zeta")

    assert folder_names(auth) == ["archive", "Reports", "Zeta"]
    assert (
        auth.client.get("/api/folders").get_json()
        == auth.client.get("/api/folders?parent_id=root").get_json()
    )
    assert folder_names(auth, reports["id"]) == ["2026 Q1"]
    assert folder_names(auth, q1["id"]) == []
    listed = auth.client.get(f"/api/folders?parent_id={reports['id']}").get_json()["folders"]
    assert listed == [
        {
            "id": q1["id"],
            "name": "2026 Q1",
            "parent_id": reports["id"],
            "created_at": q1["created_at"],
        }
    ]

    body = auth.client.get(f"/api/folders/{q1['id']}").get_json()
    assert body == {
        **q1,
        "breadcrumbs": [
            {"id": reports["id"], "name": "Reports"},
            {"id": q1["id"], "name": "2026 Q1"},
        ],
    }


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("a/b", "invalid_name"),
        ("a\\b", "invalid_name"),
        ("..", "invalid_name"),
        ("   ", "invalid_name"),
        ("tab\there", "invalid_name"),
        ("x" * 256, "invalid_name"),
        (5, "invalid_field"),
    ],
)
def test_bad_folder_names_are_refused_not_cut(auth: Auth, name: Any, code: str) -> None:
    auth.register()
    status, body = post_folder(auth, {"name": name})
    assert (status, body["code"], body["field"]) == (400, code, "name")
    assert folder_names(auth) == []


def test_parent_ids_malformed_or_unknown_are_404(auth: Auth) -> None:
    auth.register()
    assert post_folder(auth, {"name": "a", "parent_id": "nope"})[0] == 404
    status, body = post_folder(auth, {"name": "a", "parent_id": 7})
    assert (status, body["code"], body["field"]) == (400, "invalid_field", "parent_id")
    assert post_folder(auth, {"name": "a", "parent_id": NOBODY})[0] == 404
    assert post_folder(auth, {"name": "a"})[0] == 201
    assert auth.client.get("/api/folders?parent_id=nope").status_code == 404
    assert auth.client.get(f"/api/folders?parent_id={NOBODY}").status_code == 404
    assert auth.client.get(f"/api/folders/{NOBODY}").status_code == 404
    assert auth.client.get("/api/folders/not-a-uuid").status_code == 404
    assert auth.client.get("/api/folders/root").status_code == 404


def test_names_are_unique_per_place_across_files_and_folders(auth: Auth) -> None:
    auth.register()
    new_folder(auth, "Straße")
    # Compared NFKC case-folded, as organization names are.
    status, body = post_folder(auth, {"name": "STRASSE"})
    assert (status, body["code"]) == (409, "name_taken")
    uploaded(auth, "notes.txt")
    assert post_folder(auth, {"name": "NOTES.TXT"})[1]["code"] == "name_taken"
    # A file named as a folder is numbered (the default `rename`) or refused (`fail`).
    assert upload(auth, "straße", b"x", on_conflict="fail")[0] == 409
    status, body = upload(auth, "STRASSE", b"x")
    assert (status, body["filename"]) == (201, "STRASSE (2)")
    # Another place holds its own names.
    other = new_folder(auth, "other")
    assert new_folder(auth, "strasse", other["id"])["path"] == "/other/strasse"


def test_two_concurrent_creations_of_one_name_give_one_201_and_one_409(
    app: Flask, auth: Auth
) -> None:
    auth.register()
    token = auth.token()
    parent = new_folder(auth, "shared")
    barrier = threading.Barrier(2)
    results: list[int] = []
    errors: list[BaseException] = []

    def create() -> None:
        try:
            client: FlaskClient = app.test_client()
            barrier.wait(timeout=30)
            response = client.post(
                "/api/folders",
                json={"name": "Inbox", "parent_id": parent["id"]},
                headers={"Authorization": f"Bearer {token}"},
            )
            results.append(response.status_code)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=create) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert sorted(results) == [201, 409]
    assert folder_names(auth, parent["id"]) == ["Inbox"]


# ---- rename, move ------------------------------------------------------------------------


def test_rename_and_move_a_folder_with_everything_in_it(auth: Auth) -> None:
    auth.register()
    a = new_folder(auth, "A")
    b = new_folder(auth, "B")
    inner = new_folder(auth, "inner", b["id"])
    file_id = uploaded(auth, "deep.txt", folder_id=inner["id"])
    assert details(auth, file_id)["path"] == "/B/inner/deep.txt"

    status, body = patch(auth, f"/api/folders/{b['id']}", {"name": "Bee", "parent_id": a["id"]})
    assert status == 200, body
    assert (body["name"], body["parent_id"], body["path"]) == ("Bee", a["id"], "/A/Bee")
    assert body["breadcrumbs"] == [{"id": a["id"], "name": "A"}, {"id": b["id"], "name": "Bee"}]
    assert details(auth, file_id)["path"] == "/A/Bee/inner/deep.txt"
    assert folder_names(auth) == ["A"]
    assert folder_names(auth, a["id"]) == ["Bee"]

    # Only the case: the same compared name, its own.
    assert patch(auth, f"/api/folders/{b['id']}", {"name": "BEE"})[1]["path"] == "/A/BEE"
    # Back to the top; `{}` changes nothing.
    assert patch(auth, f"/api/folders/{b['id']}", {"parent_id": "root"})[1]["path"] == "/BEE"
    status, body = patch(auth, f"/api/folders/{b['id']}", {})
    assert (status, body["path"], body["name"]) == (200, "/BEE", "BEE")


def test_a_move_into_itself_or_below_is_refused(auth: Auth) -> None:
    auth.register()
    top = new_folder(auth, "top")
    mid = new_folder(auth, "mid", top["id"])
    low = new_folder(auth, "low", mid["id"])
    for target in (top, mid, low):
        status, body = patch(auth, f"/api/folders/{top['id']}", {"parent_id": target["id"]})
        assert (status, body["code"]) == (409, "folder_cycle"), target["name"]
    assert auth.client.get(f"/api/folders/{low['id']}").get_json()["path"] == "/top/mid/low"
    # Moving a lower folder up is fine.
    assert patch(auth, f"/api/folders/{low['id']}", {"parent_id": top["id"]})[0] == 200


def test_folder_rename_or_move_onto_a_taken_name_is_409(auth: Auth) -> None:
    auth.register()
    a = new_folder(auth, "a")
    new_folder(auth, "b")
    new_folder(auth, "A", a["id"])
    uploaded(auth, "c.txt")
    assert patch(auth, f"/api/folders/{a['id']}", {"name": "B"})[1]["code"] == "name_taken"
    assert patch(auth, f"/api/folders/{a['id']}", {"name": "C.TXT"})[0] == 409
    a2 = new_folder(auth, "x", a["id"])
    status, body = patch(auth, f"/api/folders/{a2['id']}", {"name": "a", "parent_id": "root"})
    assert (status, body["code"]) == (409, "name_taken")
    status, body = patch(auth, f"/api/folders/{a['id']}", {"name": "a/b"})
    assert (status, body["code"]) == (400, "invalid_name")
    assert patch(auth, f"/api/folders/{a['id']}", {"parent_id": "x"})[0] == 404
    assert patch(auth, f"/api/folders/{a['id']}", {"parent_id": NOBODY})[0] == 404
    assert patch(auth, f"/api/folders/{NOBODY}", {"name": "z"})[0] == 404


def test_rename_and_move_a_file_without_copying_its_bytes(app: Flask, auth: Auth) -> None:
    auth.register()
    docs = new_folder(auth, "Docs")
    file_id = uploaded(auth, "draft.txt", b"words\n")
    keys = set(stored_objects(app))
    before = details(auth, file_id)
    assert (before["folder_id"], before["path"], before["version"]) == ("root", "/draft.txt", 1)

    status, body = patch(
        auth, f"/api/files/{file_id}", {"filename": "final.txt", "folder_id": docs["id"]}
    )
    assert status == 200, body
    assert body == details(auth, file_id)
    assert (body["filename"], body["folder_id"], body["path"]) == (
        "final.txt",
        docs["id"],
        "/Docs/final.txt",
    )
    assert set(stored_objects(app)) == keys
    listed = auth.client.get("/api/files").get_json()["files"]
    assert [(f["filename"], f["folder_id"]) for f in listed] == [("final.txt", docs["id"])]

    status, body = patch(auth, f"/api/files/{file_id}", {"folder_id": "root"})
    assert (status, body["path"]) == (200, "/final.txt")
    for bad in ("a/b.txt", "", "..", "x" * 300):
        status, body = patch(auth, f"/api/files/{file_id}", {"filename": bad})
        assert (status, body["code"], body["field"]) == (400, "invalid_name", "filename"), bad
    assert patch(auth, f"/api/files/{file_id}", {"folder_id": "nope"})[0] == 404
    assert patch(auth, f"/api/files/{file_id}", {"folder_id": NOBODY})[0] == 404
    assert patch(auth, f"/api/files/{NOBODY}", {"filename": "x.txt"})[0] == 404
    uploaded(auth, "other.txt")
    status, body = patch(auth, f"/api/files/{file_id}", {"filename": "OTHER.txt"})
    assert (status, body["code"]) == (409, "name_taken")
    status, body = patch(auth, f"/api/files/{file_id}", {"filename": "Docs"})
    assert (status, body["code"]) == (409, "name_taken")
    # Its own name in another case is its own.
    assert patch(auth, f"/api/files/{file_id}", {"filename": "FINAL.txt"})[0] == 200


def test_only_the_uploader_or_an_admin_renames_a_file(auth: Auth, member: Auth) -> None:
    admins = uploaded(auth, "admins.txt")
    mine = uploaded(member, "mine.txt")
    status, body = patch(member, f"/api/files/{admins}", {"filename": "taken.txt"})
    assert (status, body["code"]) == (403, "forbidden")
    assert details(auth, admins)["filename"] == "admins.txt"
    assert patch(member, f"/api/files/{mine}", {"filename": "still-mine.txt"})[0] == 200
    assert patch(auth, f"/api/files/{mine}", {"filename": "admin-named.txt"})[0] == 200
    # Any member may arrange folders.
    folder = new_folder(member, "member's")
    assert patch(auth, f"/api/folders/{folder['id']}", {"name": "renamed"})[0] == 200


def test_renaming_a_file_failed_on_its_extension_validates_it_again(
    auth: Auth, worker: Callable[[], None]
) -> None:
    auth.register()
    file_id = uploaded(auth, "Photo.JPG", png_bytes())
    other_id = uploaded(auth, "notes.png", b"just text\n")
    worker()
    failed = details(auth, file_id)
    assert failed["status"] == "failed"
    assert failed["error_message"] == "content is image/png but .jpg expects image/jpeg"

    status, body = patch(auth, f"/api/files/{file_id}", {"filename": "photo.png"})
    assert status == 200, body
    assert (body["status"], body["error_message"]) == ("pending", None)
    worker()
    assert (details(auth, file_id)["status"], details(auth, file_id)["mime_type"]) == (
        "ready",
        "image/png",
    )

    # Moving alone is no rename: a failed file stays failed.
    assert details(auth, other_id)["status"] == "failed"
    folder = new_folder(auth, "texts")
    assert patch(auth, f"/api/files/{other_id}", {"folder_id": folder["id"]})[1]["status"] == (
        "failed"
    )
    # Renamed, a text file named as text is valid.
    assert patch(auth, f"/api/files/{other_id}", {"filename": "notes.txt"})[1]["status"] == (
        "pending"
    )
    worker()
    assert details(auth, other_id)["status"] == "ready"


# ---- delete ------------------------------------------------------------------------------


def test_deleting_a_folder_trashes_everything_below_and_deleting_it_there_frees_it(
    app: Flask, auth: Auth
) -> None:
    auth.register()
    keep = uploaded(auth, "keep.txt", b"k" * 10)
    top = new_folder(auth, "top")
    mid = new_folder(auth, "mid", top["id"])
    new_folder(auth, "empty", mid["id"])
    uploaded(auth, "a.txt", b"a" * 100, folder_id=top["id"])
    uploaded(auth, "b.txt", b"b" * 200, folder_id=mid["id"])
    sibling = new_folder(auth, "sibling")
    assert usage(auth) == (310, 3)

    response = auth.client.delete(f"/api/folders/{top['id']}", headers=auth.headers())
    assert response.status_code == 204
    # Out of sight; the bytes stay (and count) while the folder is in the trash.
    assert usage(auth) == (310, 1)
    assert len(stored_objects(app)) == 3
    assert [f["id"] for f in auth.client.get("/api/files").get_json()["files"]] == [keep]
    assert folder_names(auth) == ["sibling"]
    for folder in (top, mid):
        assert auth.client.get(f"/api/folders/{folder['id']}").status_code == 404
        # Nor can a folder in the trash be listed, by itself or searched below.
        for params in ({"folder_id": folder["id"]}, {"folder_id": folder["id"], "q": "txt"}):
            assert auth.client.get("/api/files", query_string=params).status_code == 404
    assert auth.client.delete(f"/api/folders/{top['id']}", headers=auth.headers()).status_code == (
        404
    )
    assert auth.client.get(f"/api/folders/{sibling['id']}").status_code == 200
    # One item: the folder, with the bytes of what went with it.
    [item] = trash_items(auth)
    assert (item["id"], item["kind"], item["path"], item["size"]) == (
        top["id"],
        "folder",
        "/top",
        300,
    )

    assert delete_forever(auth, top["id"])[0] == 204
    assert usage(auth) == (10, 1)
    assert len(stored_objects(app)) == 1
    assert trash_items(auth) == []


def test_a_member_cannot_delete_a_folder_holding_anothers_file(
    app: Flask, auth: Auth, member: Auth
) -> None:
    folder = new_folder(member, "team")
    inner = new_folder(member, "inner", folder["id"])
    uploaded(member, "mine.txt", folder_id=folder["id"])
    uploaded(auth, "admins.txt", folder_id=inner["id"])
    before = (usage(auth), set(stored_objects(app)))

    response = member.client.delete(f"/api/folders/{folder['id']}", headers=member.headers())
    assert (response.status_code, response.get_json()["code"]) == (403, "forbidden")
    assert (usage(auth), set(stored_objects(app))) == before
    assert folder_names(auth, folder["id"]) == ["inner"]
    assert trash_items(auth) == []
    # The admin may.
    response = auth.client.delete(f"/api/folders/{folder['id']}", headers=auth.headers())
    assert response.status_code == 204
    assert usage(auth)[1] == 0
    assert [item["id"] for item in trash_items(auth)] == [folder["id"]]


# ---- uploads into folders ----------------------------------------------------------------


def test_multipart_uploads_into_a_folder_with_each_on_conflict(app: Flask, auth: Auth) -> None:
    auth.register()
    folder = new_folder(auth, "in")
    first = uploaded(auth, "report.pdf", b"%PDF-1.4\n", folder_id=folder["id"])
    assert details(auth, first)["path"] == "/in/report.pdf"

    status, body = upload(auth, "Report.pdf", b"2", folder_id=folder["id"])
    assert (status, body["filename"]) == (201, "Report (2).pdf")
    status, body = upload(auth, "report.pdf", b"3", folder_id=folder["id"], on_conflict="rename")
    assert (status, body["filename"]) == (201, "report (3).pdf")
    keys = set(stored_objects(app))
    status, body = upload(auth, "REPORT.pdf", b"4", folder_id=folder["id"], on_conflict="fail")
    assert (status, body["code"]) == (409, "name_taken")
    # `replace` onto a folder's name (versions are tests/test_versions.py's).
    new_folder(auth, "inner.pdf", parent_id=folder["id"])
    status, body = upload(auth, "inner.pdf", b"5", folder_id=folder["id"], on_conflict="replace")
    assert (status, body["code"]) == (409, "name_taken")
    status, body = upload(auth, "x.pdf", b"6", on_conflict="sideways")
    assert (status, body["field"]) == (400, "on_conflict")
    assert upload(auth, "x.pdf", b"7", folder_id="nope")[0] == 404
    assert upload(auth, "x.pdf", b"8", folder_id=NOBODY)[0] == 404
    # Nothing refused was stored.
    assert set(stored_objects(app)) == keys
    # The top level by `root` or by nothing; `fail` with a free name is stored.
    assert upload(auth, "report.pdf", b"9", folder_id="root", on_conflict="fail")[0] == 201


def test_tus_uploads_into_a_folder_with_each_on_conflict(app: Flask, auth: Auth) -> None:
    auth.register()
    folder = new_folder(auth, "in")
    response = tus_upload(auth, b"one\n", filename="a.txt", folder_id=folder["id"])
    assert response.status_code == 201, response.get_json()
    file_id = response.headers["Location"].rsplit("/", 1)[-1]
    assert details(auth, file_id)["path"] == "/in/a.txt"

    response = tus_upload(auth, b"two\n", filename="A.txt", folder_id=folder["id"])
    assert details(auth, response.headers["Location"].rsplit("/", 1)[-1])["filename"] == (
        "A (2).txt"
    )
    holding = auth.client.get("/api/org").get_json()["reserved_bytes"]
    response = tus_create(auth, 10, filename="a.TXT", folder_id=folder["id"], on_conflict="fail")
    assert (response.status_code, response.get_json()["code"]) == (409, "name_taken")
    new_folder(auth, "z.txt")
    response = tus_create(auth, 10, filename="Z.txt", on_conflict="replace")
    assert (response.status_code, response.get_json()["code"]) == (409, "name_taken")
    assert tus_create(auth, 10, filename="z.txt", folder_id=NOBODY).status_code == 404
    assert tus_create(auth, 10, filename="z.txt", folder_id="nope").status_code == 404
    # Nothing was held by the refused ones.
    assert auth.client.get("/api/org").get_json()["reserved_bytes"] == holding
    response = tus_create(auth, 4, filename="b.txt", folder_id=folder["id"], on_conflict="fail")
    assert response.status_code == 201
    finish = auth.client.patch(
        response.headers["Location"],
        data=b"four",
        headers={
            **TUS,
            **auth.headers(),
            "Upload-Offset": "0",
            "Content-Type": "application/offset+octet-stream",
        },
    )
    assert finish.status_code == 204
    assert details(auth, response.headers["Location"].rsplit("/", 1)[-1])["path"] == "/in/b.txt"


# ---- tenants -----------------------------------------------------------------------------


def test_another_organizations_folder_is_not_found_everywhere(
    app: Flask, auth: Auth, stranger: Auth
) -> None:
    auth.register()
    theirs = new_folder(stranger, "secret")
    mine = new_folder(auth, "mine")
    file_id = uploaded(auth, "f.txt")
    foreign = theirs["id"]

    assert post_folder(auth, {"name": "x", "parent_id": foreign})[0] == 404
    assert auth.client.get(f"/api/folders?parent_id={foreign}").status_code == 404
    assert auth.client.get(f"/api/folders/{foreign}").status_code == 404
    assert patch(auth, f"/api/folders/{foreign}", {"name": "mine now"})[0] == 404
    assert patch(auth, f"/api/folders/{mine['id']}", {"parent_id": foreign})[0] == 404
    assert patch(auth, f"/api/files/{file_id}", {"folder_id": foreign})[0] == 404
    assert auth.client.delete(f"/api/folders/{foreign}", headers=auth.headers()).status_code == (
        404
    )
    stored = stored_objects(app)
    assert upload(auth, "g.txt", b"g", folder_id=foreign)[0] == 404
    assert stored_objects(app) == stored  # no bytes stay behind the refused upload
    assert tus_create(auth, 3, filename="h.txt", folder_id=foreign).status_code == 404
    # Their folder is untouched, and their file is not ours to move.
    assert folder_names(stranger) == ["secret"]
    assert patch(stranger, f"/api/files/{file_id}", {"filename": "x.txt"})[0] == 404
    # One name in two organizations is no clash.
    assert new_folder(auth, "secret")["path"] == "/secret"


# ---- paths elsewhere ---------------------------------------------------------------------


def test_share_links_carry_the_files_path(auth: Auth, worker: Callable[[], None]) -> None:
    auth.register()
    folder = new_folder(auth, "out")
    file_id = uploaded(auth, "memo.txt", b"memo\n", folder_id=folder["id"])
    worker()
    response = auth.client.post(f"/api/files/{file_id}/links", headers=auth.headers())
    assert response.status_code == 201
    assert response.get_json()["path"] == "/out/memo.txt"
    patch(auth, f"/api/folders/{folder['id']}", {"name": "sent"})
    listed = auth.client.get(f"/api/files/{file_id}/links").get_json()["links"]
    assert [link["path"] for link in listed] == ["/sent/memo.txt"]
