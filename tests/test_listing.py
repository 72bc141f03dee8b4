"""GET /api/files with folders, sorts, cursors and name search, and the indexes behind them."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import event, insert, select, text
from sqlalchemy.engine import Connection

from app.extensions import db
from app.files import listing as listing_module
from app.files.listing import Order, Sort
from app.models import File, FileStatus, Folder, User, name_key_of
from tests.support.client import Auth
from tests.support.database import run_sql

START = datetime(2031, 3, 4, 5, 6, 7, 123456)


@dataclass
class Org:
    """A registered organization: its admin's client and ids."""

    auth: Auth
    organization_id: int
    user_id: int


def registered(auth: Auth, email: str = "admin@acme.test", name: str = "Acme") -> Org:
    """Register an admin and read the organization's ids."""
    assert auth.register(email=email, organization_name=name).status_code == 201
    with auth.app.app_context():
        user = db.session.scalars(select(User).where(User.email == email)).one()
        org = Org(auth, user.organization_id, user.id)
        db.session.remove()
    return org


def folder(org: Org, name: str, parent: str | None = None) -> str:
    """A folder row in the organization; its id."""
    folder_id = str(uuid.uuid4())
    run_sql(
        org.auth.app,
        insert(Folder).values(
            id=folder_id,
            organization_id=org.organization_id,
            parent_id=parent,
            name=name,
            name_key=name_key_of(name),
            created_at=START,
        ),
    )
    return folder_id


def file_row(
    org: Org,
    name: str,
    *,
    folder_id: str | None = None,
    size: int = 1,
    at: datetime = START,
    keyed: bool = True,
) -> str:
    """A file row (its bytes already gone, as a failed file's may be); its id."""
    file_id = str(uuid.uuid4())
    run_sql(
        org.auth.app,
        insert(File).values(
            id=file_id,
            filename=name,
            name_key=name_key_of(name) if keyed else None,
            folder_id=folder_id,
            file_path=f"{org.organization_id}/{file_id}/x",
            size=size,
            status=FileStatus.FAILED,
            bytes_stored=False,
            organization_id=org.organization_id,
            uploaded_by=org.user_id,
            uploaded_at=at,
        ),
    )
    return file_id


def get(auth: Auth, **params: Any) -> dict[str, Any]:
    """GET /api/files with these parameters, asserting success."""
    response = auth.client.get("/api/files", query_string=params)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def names(body: dict[str, Any]) -> list[str]:
    """The filenames of a listing, in order."""
    return [f["filename"] for f in body["files"]]


def walk(auth: Auth, limit: int, **params: Any) -> list[str]:
    """Every file id of a listing, page by page by cursor."""
    seen: list[str] = []
    body = get(auth, limit=limit, **params)
    while True:
        seen += [f["id"] for f in body["files"]]
        if body["next_cursor"] is None:
            return seen
        body = get(auth, limit=limit, cursor=body["next_cursor"], **params)


# ---- listing a folder and sorting ----------------------------------------------------------


def test_without_new_parameters_the_listing_answers_as_before(app: Flask, auth: Auth) -> None:
    org = registered(auth)
    response = auth.upload("a.txt", b"a")
    assert response.status_code == 201

    body = get(auth)

    assert set(body) == {"files", "total", "page", "limit", "pages", "next_cursor"}
    # Every file object carries its folder since folders came, and the upload-only link it
    # came through since those came, and whether it has a preview since previews came;
    # nothing else was added.
    assert set(body["files"][0]) == {
        *("id", "filename", "size", "mime_type", "status", "uploaded_at"),
        *("uploaded_by_email", "folder_id", "uploaded_via_request", "preview"),
    }
    assert (body["total"], body["pages"], body["page"], body["limit"]) == (1, 1, 1, 20)
    assert org.organization_id


def test_folder_id_lists_only_that_folders_own_files(app: Flask, auth: Auth) -> None:
    org = registered(auth)
    docs = folder(org, "Docs")
    inner = folder(org, "Inner", docs)
    top = file_row(org, "top.txt")
    in_docs = file_row(org, "doc.txt", folder_id=docs)
    in_inner = file_row(org, "deep.txt", folder_id=inner)

    assert [f["id"] for f in get(auth, folder_id="root")["files"]] == [top]
    assert [f["id"] for f in get(auth, folder_id=docs)["files"]] == [in_docs]
    assert [f["id"] for f in get(auth, folder_id=inner)["files"]] == [in_inner]
    everything = get(auth)
    assert sorted(f["id"] for f in everything["files"]) == sorted([top, in_docs, in_inner])
    # A folder's total is not counted (documented: null with folder_id or q).
    assert (get(auth, folder_id=docs)["total"], get(auth, folder_id=docs)["pages"]) == (None, None)


def expected_order(rows: list[dict[str, Any]], sort: Sort, order: Order) -> list[str]:
    """The ids in the documented order: by the key then id; names without a compared form
    before every name (ascending)."""
    if sort is Sort.NAME:

        def key(r: dict[str, Any]) -> tuple[Any, ...]:
            return (r["key"] is not None, r["key"] or "", r["id"])
    elif sort is Sort.SIZE:

        def key(r: dict[str, Any]) -> tuple[Any, ...]:
            return (r["size"], r["id"])
    else:

        def key(r: dict[str, Any]) -> tuple[Any, ...]:
            return (r["at"], r["id"])

    return [r["id"] for r in sorted(rows, key=key, reverse=order is Order.DESC)]


def seed_for_sorting(org: Org, folder_id: str | None) -> list[dict[str, Any]]:
    """Eleven files with ties on size and time, and two without a compared name."""
    rows = []
    for n in range(11):
        name = f"{'BCAED'[n % 5]}-{n:02d}.txt"
        size, at = n % 3, START + timedelta(microseconds=n % 4)
        keyed = n not in (4, 9) or folder_id is None
        rows.append(
            {
                "id": file_row(org, name, folder_id=folder_id, size=size, at=at, keyed=keyed),
                "key": name_key_of(name) if keyed else None,
                "size": size,
                "at": at,
            }
        )
    if folder_id is None:
        for n in (4, 9):
            rows[n]["key"] = None
        ids = [rows[4]["id"], rows[9]["id"]]
        run_sql(org.auth.app, File.__table__.update().where(File.id.in_(ids)).values(name_key=None))
    return rows


@pytest.mark.parametrize("in_folder", [False, True], ids=["organization", "folder"])
@pytest.mark.parametrize("sort", list(Sort))
@pytest.mark.parametrize("order", list(Order))
def test_every_sort_both_ways_pages_by_cursor_and_by_number(
    app: Flask, auth: Auth, in_folder: bool, sort: Sort, order: Order
) -> None:
    org = registered(auth)
    place = folder(org, "Here") if in_folder else None
    if in_folder:
        file_row(org, "elsewhere.txt")  # not in the folder: never listed
    rows = seed_for_sorting(org, place)
    params: dict[str, Any] = {"sort": sort.value, "order": order.value}
    if place:
        params["folder_id"] = place
    expected = expected_order(rows, sort, order)

    for limit in (1, 3, 4, 100):
        assert walk(auth, limit, **params) == expected, limit
    by_number = []
    for page in range(1, 6):
        by_number += [f["id"] for f in get(auth, limit=3, page=page, **params)["files"]]
    assert by_number == expected


def test_the_newer_direction_walks_back_over_the_same_rows(app: Flask, auth: Auth) -> None:
    org = registered(auth)
    rows = seed_for_sorting(org, None)
    expected = expected_order(rows, Sort.NAME, Order.ASC)
    with app.app_context():
        pages = [
            listing_module.list_files(
                org.organization_id, status=None, limit=4, sort=Sort.NAME, order=Order.ASC
            )
        ]
        while pages[-1].next_cursor:
            pages.append(
                listing_module.list_files(
                    org.organization_id,
                    status=None,
                    limit=4,
                    cursor=pages[-1].next_cursor,
                    sort=Sort.NAME,
                    order=Order.ASC,
                )
            )
        back = listing_module.list_files(
            org.organization_id,
            status=None,
            limit=4,
            cursor=pages[2].prev_cursor,
            newer=True,
            sort=Sort.NAME,
            order=Order.ASC,
        )
        assert [f.id for f, _ in back.rows] == [f.id for f, _ in pages[1].rows]
        assert [f.id for p in pages for f, _ in p.rows] == expected
        db.session.remove()


@pytest.mark.parametrize(
    "changed",
    [
        {"sort": "name"},
        {"order": "asc"},
        {"status": "ready"},
        {"folder_id": "root"},
        {"q": "file"},
    ],
)
def test_a_cursor_with_other_parameters_is_400(
    app: Flask, auth: Auth, changed: dict[str, str]
) -> None:
    org = registered(auth)
    for n in range(3):
        file_row(org, f"file-{n}.txt", at=START + timedelta(seconds=n))
    cursor = get(auth, limit=1)["next_cursor"]
    assert cursor

    response = auth.client.get("/api/files", query_string={"cursor": cursor, **changed})

    assert response.status_code == 400
    assert response.get_json()["code"] == "invalid_parameter"
    assert response.get_json()["field"] == "cursor"
    # The limit is no parameter of the order: a cursor takes any.
    assert get(auth, limit=2, cursor=cursor)["files"]


@pytest.mark.parametrize(
    ("name", "value"),
    [("sort", "filename"), ("sort", "NAME"), ("order", "up"), ("q", "a" * 256), ("q", "a\x00")],
)
def test_bad_sort_order_or_q_is_400(app: Flask, auth: Auth, name: str, value: str) -> None:
    registered(auth)
    response = auth.client.get("/api/files", query_string={name: value})
    assert response.status_code == 400
    assert (response.get_json()["code"], response.get_json()["field"]) == (
        "invalid_parameter",
        name,
    )


# ---- search ------------------------------------------------------------------------------


def test_search_compares_case_but_keeps_accents(app: Flask, auth: Auth) -> None:
    org = registered(auth)
    file_row(org, "Café.txt")
    file_row(org, "cafe.txt")
    file_row(org, "MENU CAFÉ.pdf")

    assert sorted(names(get(auth, q="café"))) == ["Café.txt", "MENU CAFÉ.pdf"]
    assert sorted(names(get(auth, q="CAFÉ"))) == ["Café.txt", "MENU CAFÉ.pdf"]
    # Decomposed as typed on some keyboards: é as e + combining accent.
    assert sorted(names(get(auth, q="cafe\u0301"))) == ["Café.txt", "MENU CAFÉ.pdf"]
    assert names(get(auth, q="cafe")) == ["cafe.txt"]
    # Shorter than a trigram: compared row by row, by the same rule.
    assert sorted(names(get(auth, q="fé"))) == ["Café.txt", "MENU CAFÉ.pdf"]


def test_search_takes_percent_and_underscore_literally(app: Flask, auth: Auth) -> None:
    org = registered(auth)
    for name in ("100%.txt", "1000.txt", "a_b.txt", "axb.txt", 'say "hi".txt'):
        file_row(org, name)

    assert names(get(auth, q="0%")) == ["100%.txt"]
    assert names(get(auth, q="00%.")) == ["100%.txt"]
    assert names(get(auth, q="%")) == ["100%.txt"]
    assert names(get(auth, q="a_b")) == ["a_b.txt"]
    assert names(get(auth, q="_")) == ["a_b.txt"]
    assert names(get(auth, q='"hi"')) == ['say "hi".txt']
    assert names(get(auth, q="nothing")) == []


def test_search_finds_the_whole_text_not_its_pieces(app: Flask, auth: Auth) -> None:
    org = registered(auth)
    # Each holds pieces of "invoice-march" (on PostgreSQL the index looks up a few of
    # them), but only two hold the whole text.
    for name in (
        "invoice-march.pdf",
        "Old INVOICE-March 2026.txt",
        "inv ice rch.txt",
        "invoice march.txt",
        "march-invoice.txt",
        "invoicemarch.txt",
    ):
        file_row(org, name)

    assert sorted(names(get(auth, q="invoice-march"))) == [
        "Old INVOICE-March 2026.txt",
        "invoice-march.pdf",
    ]
    assert sorted(names(get(auth, q="voice-mar"))) == [
        "Old INVOICE-March 2026.txt",
        "invoice-march.pdf",
    ]
    assert names(get(auth, q="invoicemarch")) == ["invoicemarch.txt"]


def test_search_below_a_folder_at_every_depth_with_paths(app: Flask, auth: Auth) -> None:
    org = registered(auth)
    projects = folder(org, "Projects")
    alpha = folder(org, "Alpha", projects)
    deep = folder(org, "Deep", alpha)
    other = folder(org, "Other")
    at = START
    for name, place in [
        ("report top.txt", None),
        ("report p.txt", projects),
        ("report a.txt", alpha),
        ("report d.txt", deep),
        ("report o.txt", other),
    ]:
        at += timedelta(seconds=1)
        file_row(org, name, folder_id=place, at=at)

    everywhere = get(auth, q="report")
    below = get(auth, q="report", folder_id=projects)
    below_alpha = get(auth, q="REPORT", folder_id=alpha, sort="name", order="asc")

    assert {f["filename"]: f["path"] for f in everywhere["files"]} == {
        "report top.txt": "/report top.txt",
        "report p.txt": "/Projects/report p.txt",
        "report a.txt": "/Projects/Alpha/report a.txt",
        "report d.txt": "/Projects/Alpha/Deep/report d.txt",
        "report o.txt": "/Other/report o.txt",
    }
    assert names(below) == ["report d.txt", "report a.txt", "report p.txt"]
    assert names(below_alpha) == ["report a.txt", "report d.txt"]
    assert get(auth, q="report", folder_id="root")["files"] == everywhere["files"]
    assert (everywhere["total"], everywhere["pages"]) == (None, None)
    # Page by page, sorted by size: every match once.
    found = walk(auth, 2, q="rep", sort="size", order="asc")
    assert sorted(found) == sorted(f["id"] for f in everywhere["files"])


def test_search_pages_by_cursor_over_many_matches(app: Flask, auth: Auth) -> None:
    org = registered(auth)
    wanted = [file_row(org, f"invoice {n:02d}.pdf", size=n % 2) for n in range(9)]
    file_row(org, "receipt.pdf")
    for sort in Sort:
        found = walk(auth, 2, q="voice", sort=sort.value, order="desc")
        assert sorted(found) == sorted(wanted), sort


# ---- tenants ----------------------------------------------------------------------------


def test_another_organizations_folder_is_404_as_a_filter(app: Flask, auth: Auth) -> None:
    registered(auth)
    other = registered(Auth(app, app.test_client()), "eve@other.test", "Other")
    theirs = folder(other, "Secret")
    file_row(other, "secret.txt", folder_id=theirs)

    for params in (
        {"folder_id": theirs},
        {"folder_id": theirs, "q": "secret"},
        {"folder_id": str(uuid.uuid4())},
        {"folder_id": "not-a-folder"},
    ):
        response = auth.client.get("/api/files", query_string=params)
        assert response.status_code == 404, params
        assert response.get_json()["code"] == "not_found"
    assert get(auth, q="secret")["files"] == []
    assert names(get(other.auth, q="secret")) == ["secret.txt"]


# ---- the indexes serve the queries ------------------------------------------------------------


# Enough rows that an index is worth its while to each planner.
BULK = 5_000


def seed_many(org: Org, folder_id: str, count: int) -> None:
    """`count` file rows in one folder, inserted in one statement."""
    rows = []
    for n in range(count):
        name = f"seed-{n:06d}.txt"
        file_id = str(uuid.uuid4())
        rows.append(
            {
                "id": file_id,
                "filename": name,
                "name_key": name_key_of(name),
                "folder_id": folder_id,
                "file_path": f"{org.organization_id}/{file_id}/x",
                "size": n % 977,
                "status": FileStatus.FAILED,
                "bytes_stored": False,
                "organization_id": org.organization_id,
                "uploaded_by": org.user_id,
                "uploaded_at": START - timedelta(seconds=n),
            }
        )
    with org.auth.app.app_context():
        db.session.execute(insert(File), rows)
        db.session.commit()
        db.session.remove()


@pytest.fixture
def captured(app: Flask) -> Iterator[list[tuple[str, Any]]]:
    """The SELECTs of file ids the listing runs, as sent to the database."""
    statements: list[tuple[str, Any]] = []

    def record(conn: Connection, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        if re.match(r"SELECT files\.id\s+FROM", statement.lstrip()):
            statements.append((statement, parameters))

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    yield statements
    event.remove(engine, "before_cursor_execute", record)


def plan_of(app: Flask, statement: str, parameters: Any) -> str:
    """The database's plan of a statement, as text."""
    with app.app_context():
        connection = db.session.connection().connection.driver_connection
        assert connection is not None
        cursor = connection.cursor()
        if db.engine.dialect.name == "postgresql":
            # Few rows make any plan cheap; this asks whether an index can serve at all.
            cursor.execute("SET enable_seqscan = off")
            cursor.execute(f"EXPLAIN {statement}", parameters)
            lines = [row[0] for row in cursor.fetchall()]
            cursor.execute("RESET enable_seqscan")
        else:
            cursor.execute(f"EXPLAIN QUERY PLAN {statement}", parameters)
            lines = [row[-1] for row in cursor.fetchall()]
        db.session.rollback()
        db.session.remove()
    return "\n".join(lines)


@pytest.mark.parametrize(
    ("params", "sqlite_index", "postgresql_index"),
    [
        ({"q": "invoice"}, "files_name_search", "ix_files_name_trigram"),
        ({"q": "invoice", "sort": "name"}, "files_name_search", "ix_files_name_trigram"),
        ({"sort": "name"}, "ix_files_org_name", "ix_files_org_name"),
        ({"sort": "size", "order": "asc"}, "ix_files_org_size", "ix_files_org_size"),
        ({"folder_id": "root", "sort": "name"}, "uq_files_place", "uq_files_place"),
        ({"folder_id": "root", "sort": "size"}, "ix_files_place_size", "ix_files_place_size"),
        ({"folder_id": "root"}, "ix_files_place_uploaded", "ix_files_place_uploaded"),
        ({}, "ix_files_org_uploaded", "ix_files_org_uploaded"),
    ],
)
def test_the_listings_queries_use_their_indexes(
    app: Flask,
    auth: Auth,
    captured: list[tuple[str, Any]],
    params: dict[str, str],
    sqlite_index: str,
    postgresql_index: str,
) -> None:
    org = registered(auth)
    seed_many(org, folder(org, "Bulk"), BULK)
    for n in range(5):
        file_row(org, f"invoice {n}.pdf", size=n)
    with app.app_context():
        # Statistics as a live database has them (autovacuum; SQLite's ANALYZE).
        db.session.execute(text("ANALYZE"))
        if db.engine.dialect.name == "postgresql":
            # What autovacuum does: the GIN index's pending list merged into the index.
            db.session.execute(text("SELECT gin_clean_pending_list('ix_files_name_trigram')"))
        db.session.commit()
        db.session.remove()
    first = get(auth, limit=2, **params)
    get(auth, limit=2, cursor=first["next_cursor"], **params)
    assert len(captured) >= 2

    for number, (statement, parameters) in enumerate(captured):
        plan = plan_of(app, statement, parameters)
        with app.app_context():
            postgresql = db.engine.dialect.name == "postgresql"
        if postgresql:
            # A cursor's page may rightly take a narrower index range than the first's.
            assert number > 0 or postgresql_index in plan, plan
            assert "Seq Scan on files" not in plan, plan
        else:
            assert sqlite_index in plan, plan
            # A full pass over the table (or over a whole index of it) is a scan.
            assert not any(
                line.startswith("SCAN files") and "VIRTUAL TABLE" not in line
                for line in plan.splitlines()
            ), plan


def test_the_search_index_follows_renames_and_deletes(app: Flask, auth: Auth) -> None:
    org = registered(auth)
    renamed = file_row(org, "draft.txt")
    gone = file_row(org, "draft two.txt")
    run_sql(
        app,
        File.__table__.update()
        .where(File.id == renamed)
        .values(filename="final.txt", name_key=name_key_of("final.txt")),
    )
    run_sql(app, File.__table__.delete().where(File.id == gone))

    assert names(get(auth, q="draft")) == []
    assert names(get(auth, q="final")) == ["final.txt"]
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            # The FTS5 index agrees with its content table, row for row.
            db.session.execute(
                text("INSERT INTO files_name_search(files_name_search) VALUES ('integrity-check')")
            )
        db.session.remove()
