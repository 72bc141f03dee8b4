"""Zip downloads of a folder, the top level, or a selection: entries, paths, safe names,
tenant isolation, missing bytes, and memory while a large file streams."""

from __future__ import annotations

import hashlib
import io
import logging
import os
import threading
import time
import urllib.request
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest
from flask import Flask
from sqlalchemy import select, update

from app.extensions import db
from app.files import zipstream
from app.files.archive import safe_part
from app.models import File
from app.storage import get_storage
from tests.support.client import Auth
from tests.support.database import run_sql
from tests.support.folders import make_folder, organization_of, put_in, rename
from tests.support.live import LiveServer
from tests.support.storage import replace_stored_bytes, stored_key

MiB = 1024 * 1024


def upload(auth: Auth, filename: str, data: bytes) -> str:
    """Upload a file and return its id."""
    response = auth.upload(filename, data)
    assert response.status_code == 201, response.get_json()
    return str(response.get_json()["file_id"])


def ready(app: Flask, *file_ids: str) -> None:
    """Mark files ready, as validation would (their bytes are what was uploaded)."""
    run_sql(app, update(File).where(File.id.in_(file_ids)).values(status="ready"))


def entries(response: Any) -> dict[str, bytes]:
    """The zip answer's entries: path -> bytes (folders end in / and are empty)."""
    assert response.status_code == 200, response.data[:300]
    assert response.mimetype == "application/zip"
    with zipfile.ZipFile(io.BytesIO(response.data)) as archive:
        assert archive.testzip() is None
        return {info.filename: archive.read(info) for info in archive.infolist()}


@pytest.fixture
def outsider(app: Flask) -> Auth:
    """An admin of another organization, logged in on their own client."""
    other = Auth(app, app.test_client())
    assert other.register(email="eve@other.test", organization_name="Other").status_code == 201
    return other


@pytest.fixture
def tree(app: Flask, auth: Auth) -> dict[str, str]:
    """Reports/{a.txt, 2024/{b.bin, deep/c.txt, empty/}, pending.txt} and top.txt."""
    auth.register()
    ids = {
        name: upload(auth, name, f"bytes of {name}\n".encode() * 3)
        for name in ("top.txt", "a.txt", "b.bin", "c.txt", "pending.txt")
    }
    ready(app, ids["top.txt"], ids["a.txt"], ids["b.bin"], ids["c.txt"])
    org = organization_of(app, ids["a.txt"])
    ids["Reports"] = make_folder(app, org, "Reports")
    ids["2024"] = make_folder(app, org, "2024", ids["Reports"])
    ids["deep"] = make_folder(app, org, "deep", ids["2024"])
    ids["empty"] = make_folder(app, org, "empty", ids["2024"])
    put_in(app, ids["a.txt"], ids["Reports"])
    put_in(app, ids["pending.txt"], ids["Reports"])
    put_in(app, ids["b.bin"], ids["2024"])
    put_in(app, ids["c.txt"], ids["deep"])
    return ids


def crc_of(app: Flask, file_id: str) -> int | None:
    """The CRC-32 the file's row holds."""
    with app.app_context():
        found = db.session.scalar(select(File.crc32).where(File.id == file_id))
        db.session.remove()
    return found


def content(name: str) -> bytes:
    """What the tree's file `name` holds."""
    return f"bytes of {name}\n".encode() * 3


def test_folder_zip_has_every_ready_file_below_with_its_path(
    app: Flask, auth: Auth, tree: dict[str, str]
) -> None:
    response = auth.client.get(f"/api/folders/{tree['Reports']}/download")

    assert response.headers["Content-Disposition"] == "attachment; filename=Reports.zip"
    assert "Content-Length" not in response.headers
    assert entries(response) == {
        "a.txt": content("a.txt"),
        "2024/": b"",
        "2024/b.bin": content("b.bin"),
        "2024/deep/": b"",
        "2024/deep/c.txt": content("c.txt"),
        "2024/empty/": b"",
    }


def test_root_zip_has_the_whole_organization(app: Flask, auth: Auth, tree: dict[str, str]) -> None:
    response = auth.client.get("/api/folders/root/download")

    assert response.headers["Content-Disposition"] == "attachment; filename=Acme.zip"
    got = entries(response)
    assert got["top.txt"] == content("top.txt")
    assert got["Reports/a.txt"] == content("a.txt")
    assert got["Reports/2024/deep/c.txt"] == content("c.txt")
    assert "Reports/pending.txt" not in got  # only ready files
    assert sorted(got) == sorted(
        [
            "top.txt",
            "Reports/",
            "Reports/a.txt",
            "Reports/2024/",
            "Reports/2024/b.bin",
            "Reports/2024/deep/",
            "Reports/2024/deep/c.txt",
            "Reports/2024/empty/",
        ]
    )


def test_an_empty_folder_is_a_valid_empty_zip(app: Flask, auth: Auth, tree: dict[str, str]) -> None:
    assert entries(auth.client.get(f"/api/folders/{tree['empty']}/download")) == {}


def test_a_token_downloads_a_folder(app: Flask, auth: Auth, tree: dict[str, str]) -> None:
    token = auth.token()
    response = app.test_client().get(
        f"/api/folders/{tree['deep']}/download", headers={"Authorization": f"Bearer {token}"}
    )
    assert entries(response) == {"c.txt": content("c.txt")}


def test_other_organizations_and_missing_folders_are_404(
    app: Flask, auth: Auth, outsider: Auth, tree: dict[str, str]
) -> None:
    for path in (
        f"/api/folders/{tree['Reports']}/download",
        "/api/folders/00000000-0000-4000-8000-000000000000/download",
        "/api/folders/not-a-folder/download",
    ):
        response = outsider.client.get(path)
        assert response.status_code == 404, path
        assert response.get_json()["code"] == "not_found"
    # The outsider's own top level holds none of Acme's files.
    assert entries(outsider.client.get("/api/folders/root/download")) == {}
    for body in ({"file_ids": [tree["a.txt"]]}, {"folder_ids": [tree["Reports"]]}):
        response = outsider.client.post("/api/files/archive", json=body, headers=outsider.headers())
        assert response.status_code == 404, body
    assert app.test_client().get("/api/folders/root/download").status_code == 401


def test_selection_zip(app: Flask, auth: Auth, tree: dict[str, str]) -> None:
    response = auth.client.post(
        "/api/files/archive",
        json={
            "file_ids": [tree["top.txt"], tree["pending.txt"], tree["c.txt"], tree["top.txt"]],
            "folder_ids": [tree["2024"]],
        },
        headers=auth.headers(),
    )

    assert response.headers["Content-Disposition"] == "attachment; filename=selection.zip"
    # Pending files are left out; a file selected twice (and inside a selected folder) is
    # in the zip once.
    assert entries(response) == {
        "top.txt": content("top.txt"),
        "c.txt": content("c.txt"),
        "2024/": b"",
        "2024/b.bin": content("b.bin"),
        "2024/deep/": b"",
        "2024/empty/": b"",
    }


def test_selection_limits(app: Flask, auth: Auth, tree: dict[str, str]) -> None:
    def post(body: Any) -> Any:
        return auth.client.post("/api/files/archive", json=body, headers=auth.headers())

    # Nothing selected is an empty zip; more than 1,000 files (or folders) is refused.
    nothing = post({})
    assert nothing.status_code == 200 and entries(nothing) == {}
    assert entries(post({"file_ids": [], "folder_ids": []})) == {}
    answer = post({"file_ids": [tree["a.txt"]] * 1001})
    assert answer.status_code == 400
    assert answer.get_json()["code"] == "invalid_field"
    at_most = post({"file_ids": [tree["a.txt"]] * 1000, "folder_ids": [tree["empty"]] * 1000})
    assert at_most.status_code == 200
    assert set(entries(at_most)) == {"a.txt", "empty/"}
    assert post({"file_ids": "x"}).status_code == 400
    assert post({"file_ids": ["not-an-id"]}).status_code == 404
    assert post({"folder_ids": ["root"]}).status_code == 404
    # A session write needs its CSRF token.
    assert (
        auth.client.post("/api/files/archive", json={"file_ids": [tree["a.txt"]]}).status_code
        == 400
    )


def test_unsafe_names_are_made_safe_and_unique(app: Flask, auth: Auth) -> None:
    auth.register()
    names = [
        "CON.txt",
        "con.txt.",
        "a:b?.txt",
        "A_B_.TXT",
        "tab\there.txt",
        "trailing. . ",
        "x" * 250 + ".pdf",
        "..",
    ]
    ids = [upload(auth, f"f{n}.txt", f"file {n}".encode()) for n in range(len(names))]
    ready(app, *ids)
    for file_id, name in zip(ids, names, strict=True):
        rename(app, file_id, name)
    org = organization_of(app, ids[0])
    folder = make_folder(app, org, "Q: *what*?")
    clash = make_folder(app, org, "Q_ _what__")
    inner = upload(auth, "inner.txt", b"inner")
    ready(app, inner)
    put_in(app, inner, clash)

    got = entries(auth.client.get("/api/folders/root/download"))

    paths = list(got)
    assert len(paths) == len(names) + 3
    # Each name distinct even where case is ignored.
    assert len({path.casefold() for path in paths}) == len(paths)
    for path in paths:
        assert not path.startswith("/") and ".." not in path.split("/")
        for part in path.rstrip("/").split("/"):
            assert part == safe_part(part), part
            assert len(part.encode()) <= 255
            assert not any(ch in part for ch in '<>:"\\|?*\t')
            assert not part.endswith((".", " "))
            assert part.split(".")[0].upper() not in {"CON", "NUL", "PRN", "AUX"}
    assert sorted(got[p] for p in paths if not p.endswith("/")) == sorted(
        [f"file {n}".encode() for n in range(len(names))] + [b"inner"]
    )
    assert "CON_.txt" in got
    # "a:b?.txt" comes first by name and takes "a_b_.txt"; "A_B_.TXT" is numbered.
    assert "a_b_.txt" in got and "A_B_ (2).TXT" in got
    long_name = next(p for p in paths if p.startswith("xxx"))
    assert long_name.endswith(".pdf")
    assert {p for p in paths if p.endswith("/")} == {"Q_ _what__/", "Q_ _what__ (2)/"}
    del folder


def test_safe_part() -> None:
    assert safe_part("NUL") == "NUL_"
    assert safe_part("com1.tar.gz") == "com1_.tar.gz"
    assert safe_part("COM10") == "COM10"
    assert safe_part("...") == "_"
    assert safe_part(" name ") == "name"
    assert safe_part("a\u202eb") == "a_b"
    assert safe_part("é" * 200) == "é" * 127


def test_a_file_whose_bytes_are_missing_is_left_out(
    app: Flask, auth: Auth, tree: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    key = stored_key(app, tree["b.bin"])
    with app.app_context():
        get_storage().remove(key)  # lost outside Coffer

    with caplog.at_level(logging.ERROR, logger="app.files.archive"):
        got = entries(auth.client.get(f"/api/folders/{tree['2024']}/download"))

    assert got == {"deep/": b"", "deep/c.txt": content("c.txt"), "empty/": b""}
    assert any(tree["b.bin"] in record.getMessage() for record in caplog.records)
    replace_stored_bytes(app, key, content("b.bin"))  # as the store had it


def test_a_large_file_streams_in_small_memory(app: Flask, auth: Auth, tmp_path: Path) -> None:
    auth.register()
    data = os.urandom(64 * MiB)
    file_id = upload(auth, "big.bin", data)
    ready(app, file_id)
    digest = hashlib.sha256(data).hexdigest()
    del data
    token = auth.token()
    # The server `manage.py serve` runs: it queues the zip's pieces as they are.
    server = LiveServer(app, coffer_server=True)
    server.start()
    process = psutil.Process()
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], process.memory_info().rss)
            time.sleep(0.002)

    saved = tmp_path / "answer.zip"
    try:
        request = urllib.request.Request(
            f"{server.url}/api/folders/root/download",
            headers={"Authorization": f"Bearer {token}"},
        )
        baseline = process.memory_info().rss
        sampler = threading.Thread(target=sample)
        sampler.start()
        # The answer goes to disk as it arrives: what RSS gains is the server side's.
        with urllib.request.urlopen(request, timeout=60) as answer, saved.open("wb") as out:
            assert answer.status == 200
            assert answer.headers.get("Content-Length") is None
            assert answer.headers.get("Transfer-Encoding") == "chunked"
            while chunk := answer.read(MiB):
                out.write(chunk)
                time.sleep(0.001)  # a client slower than the server
        done.set()
        sampler.join()
    finally:
        done.set()
        server.stop()
    with zipfile.ZipFile(saved) as archive:
        assert [info.filename for info in archive.infolist()] == ["big.bin"]
        with archive.open("big.bin") as entry:
            hashed = hashlib.sha256()
            while block := entry.read(MiB):
                hashed.update(block)
    assert hashed.hexdigest() == digest
    growth = (peak[0] - baseline) / MiB
    # Holding the archive, or the file, would add 64 MiB at least; what is seen is the
    # allocator's and the threads' working sets (about 30 MiB, whatever the file's size).
    assert growth < 48, f"RSS grew by {growth:.0f} MiB while 64 MiB were zipped"


# Bit 3 of an entry's flags: its CRC and sizes follow its bytes rather than lead them.
DATA_DESCRIPTOR = 0x08


def test_validation_records_each_file_s_crc32(
    app: Flask, auth: Auth, worker: Callable[[], None]
) -> None:
    auth.register()
    small = b"a few bytes of text\n"
    # Past libmagic's 7 MiB head, so the CRC covers the reads after it too.
    large = os.urandom(8 * MiB + 3)
    ids = {upload(auth, "small.txt", small): small, upload(auth, "large.bin", large): large}
    worker()

    for file_id, data in ids.items():
        assert auth.client.get(f"/api/files/{file_id}").get_json()["status"] == "ready"
        assert crc_of(app, file_id) == zlib.crc32(data)


def test_zip_of_validated_files_has_each_crc_before_its_bytes(
    app: Flask, auth: Auth, worker: Callable[[], None]
) -> None:
    auth.register()
    data = {f"part-{n}.bin": os.urandom(100_000 + n) for n in range(3)}
    for name, body in data.items():
        upload(auth, name, body)
    worker()

    response = auth.client.get("/api/folders/root/download")
    assert entries(response) == data
    with zipfile.ZipFile(io.BytesIO(response.data)) as archive:
        for info in archive.infolist():
            # A streaming unzip can read each entry from its header alone.
            assert info.flag_bits & DATA_DESCRIPTOR == 0, info.filename
            assert info.CRC == zlib.crc32(data[info.filename])
            assert info.external_attr >> 16 == 0o100644


def test_zip_mixes_files_with_and_without_a_recorded_crc32(
    app: Flask, auth: Auth, worker: Callable[[], None]
) -> None:
    auth.register()
    checked = os.urandom(300_000)
    checked_id = upload(auth, "checked.bin", checked)
    worker()
    # A file validated before Coffer recorded CRCs: ready, crc32 NULL.
    older = os.urandom(200_000)
    older_id = upload(auth, "older.bin", older)
    ready(app, older_id)
    assert crc_of(app, older_id) is None
    org = organization_of(app, checked_id)
    folder = make_folder(app, org, "Inside")
    put_in(app, older_id, folder)

    response = auth.client.get("/api/folders/root/download")
    assert entries(response) == {"checked.bin": checked, "Inside/": b"", "Inside/older.bin": older}
    with zipfile.ZipFile(io.BytesIO(response.data)) as archive:
        assert archive.getinfo("checked.bin").flag_bits & DATA_DESCRIPTOR == 0
        # Its CRC computed as its bytes went out, written after them.
        assert archive.getinfo("Inside/older.bin").flag_bits & DATA_DESCRIPTOR
        assert archive.getinfo("Inside/older.bin").CRC == zlib.crc32(older)
        assert archive.getinfo("Inside/").is_dir()


def test_entries_and_archives_past_the_zip32_limits_carry_zip64_fields(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The ZIP64 fields, written once a size, an offset or the entry count passes its
    limit, read back right: the limits lowered so that small entries pass them."""
    monkeypatch.setattr(zipstream, "ZIP32_LIMIT", 5000)
    monkeypatch.setattr(zipstream, "COUNT_LIMIT", 5)
    files = {f"d/{n}.bin": os.urandom(1000 + 900 * n) for n in range(8)}
    moment = (2026, 12, 7, 4, 30, 58)
    archive = zipstream.ZipStream()
    pieces = [archive.folder("d/", moment, 0o40755 << 16 | 0x10)]
    for n, (path, data) in enumerate(files.items()):
        crc = zlib.crc32(data) if n % 2 else None  # known, and computed as sent
        pieces.extend(archive.file(path, moment, 0o100644 << 16, len(data), crc, [data]))
    pieces.extend(archive.finish())
    blob = b"".join(pieces)

    assert b"PK\x06\x06" in blob  # the ZIP64 end of central directory
    with zipfile.ZipFile(io.BytesIO(blob)) as zipped:
        assert zipped.testzip() is None
        assert [info.filename for info in zipped.infolist()] == ["d/", *files]
        for path, data in files.items():
            assert zipped.read(path) == data
            assert zipped.getinfo(path).date_time == moment
        # Entries past the limit say so in their ZIP64 extra field (header id 1).
        assert zipped.getinfo("d/7.bin").extra[:2] == b"\x01\x00"
