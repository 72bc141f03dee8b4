"""Organization names are one name whatever their case or Unicode form, in every script,
on SQLite and PostgreSQL alike; the migration that made it so refuses existing clashes."""

from __future__ import annotations

import html
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from flask_migrate import upgrade
from sqlalchemy import create_engine, func, select, text

from app.extensions import db as _db
from app.models import (
    MAX_NAME_KEY_LENGTH,
    Organization,
    User,
    name_key_of,
    name_skeleton_hash_of,
)
from app.services.accounts import MAX_ORG_NAME_LENGTH
from tests.support.client import Auth, form_token
from tests.support.database import migrated_to
from tests.support.processes import RedisServer

BEFORE_NAME_KEYS = "0004_files_status_index"
BEFORE_SKELETONS = "0009_sqlite_autoincrement"


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("Ärzte Zürich", "ärzte zürich"),  # SQLite's lower() folds ASCII letters only
        ("Straße", "STRASSE"),  # no lower() folds ß to ss
        ("Ａｃｍｅ", "acme"),  # full-width letters (NFKC)
        ("Σίσυφος", "ΣΊΣΥΦΟΣ"),
    ],
)
def test_names_that_differ_only_in_case_or_form_are_one_organization(
    auth: Auth, first: str, second: str
) -> None:
    admin = auth.register("admin@one.test", first)
    assert admin.status_code == 201
    again = auth.another().register("someone@one.test", second)
    assert again.status_code == 409
    assert again.get_json()["code"] == "invite_required"

    joined = auth.another().register("member@one.test", second, invite_code=auth.invite())
    assert joined.status_code == 201
    assert joined.get_json()["organization_id"] == admin.get_json()["organization_id"]


def test_names_that_only_look_alike_stay_two_organizations(auth: Auth) -> None:
    assert auth.register("a@one.test", "Acme").status_code == 201
    assert auth.another().register("b@two.test", "Acme Two").status_code == 201


# U+FDFA, one character, is 18 once NFKC-normalized: a name within its own length limit
# whose compared form would not fit the name_key column.
EXPANDING = "\ufdfa"
TOO_LONG_ONCE_NORMALIZED = EXPANDING * MAX_ORG_NAME_LENGTH


def accounts_in(app: Flask) -> tuple[int, int]:
    """(organizations, users) in the database."""
    with app.app_context():
        organizations, users = (
            _db.session.execute(select(func.count()).select_from(table)).scalar_one()
            for table in (Organization, User)
        )
        _db.session.remove()
    return organizations, users


def test_a_name_too_long_once_normalized_is_refused_by_name_and_creates_nothing(
    app: Flask, auth: Auth
) -> None:
    assert len(name_key_of(TOO_LONG_ONCE_NORMALIZED)) > MAX_NAME_KEY_LENGTH
    response = auth.register("admin@long.test", TOO_LONG_ONCE_NORMALIZED)
    assert response.status_code == 400
    body = response.get_json()
    assert body["code"] == "invalid_field"
    assert body["field"] == "organization_name"
    assert str(MAX_NAME_KEY_LENGTH) in body["error"]
    assert accounts_in(app) == (0, 0)

    # The longest that fits is one organization like any other.
    fitting = EXPANDING * (MAX_NAME_KEY_LENGTH // len(name_key_of(EXPANDING)))
    assert auth.another().register("admin@fits.test", fitting).status_code == 201
    assert accounts_in(app) == (1, 1)


def test_the_sign_up_page_shows_a_name_too_long_once_normalized_beside_its_field(
    app: Flask, auth: Auth
) -> None:
    client = auth.client
    form: dict[str, Any] = {
        "email": "admin@long.test",
        "password": Auth.password,
        "organization_name": TOO_LONG_ONCE_NORMALIZED,
        "csrf_token": form_token(client, "/register"),
    }
    response = client.post("/register", data=form)
    assert response.status_code == 400
    assert response.mimetype == "text/html"
    page = html.unescape(response.get_data(as_text=True))
    assert 'id="organization_name-error"' in page
    assert f"at most {MAX_NAME_KEY_LENGTH} characters" in page
    assert 'value="admin@long.test"' in page  # what was typed stays for a second try
    assert accounts_in(app) == (0, 0)
    # Nobody was signed in by the refused form.
    assert client.get("/api/auth/me").status_code == 401


@pytest.fixture
def database_before_name_keys(
    tmp_path: Path, redis_server: RedisServer
) -> Iterator[tuple[Flask, str]]:
    """A scratch database migrated up to the revision before organization name keys."""
    with migrated_to(tmp_path, "coffer_names", BEFORE_NAME_KEYS, redis_server.url) as made:
        yield made


def insert_organizations(url: str, *names: str) -> None:
    """Rows as an older Coffer would have written them, straight into the database."""
    engine = create_engine(url)
    with engine.begin() as connection:
        for name in names:
            connection.execute(
                text(
                    "INSERT INTO organizations (name, storage_quota_mb, used_bytes, file_count, "
                    "created_at) VALUES (:name, 10, 0, 0, CURRENT_TIMESTAMP)"
                ),
                {"name": name},
            )
    engine.dispose()


def test_the_migration_refuses_names_that_now_clash_and_names_them(
    database_before_name_keys: tuple[Flask, str], capfd: pytest.CaptureFixture[str]
) -> None:
    app, url = database_before_name_keys
    insert_organizations(url, "straße", "STRASSE", "Other")
    # `manage.py db upgrade` prints "Error: <the message>" and exits 1.
    with app.app_context(), pytest.raises(SystemExit):
        upgrade()
    message = capfd.readouterr().err
    assert "'straße' (id 1)" in message and "'STRASSE' (id 2)" in message
    assert "Other" not in message
    assert "Rename" in message

    # After the operator renames one, the upgrade goes through.
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE organizations SET name = 'Strasse Two' WHERE id = 2"))
    engine.dispose()
    with app.app_context():
        upgrade()
        keys = dict(_db.session.execute(text("SELECT name, name_key FROM organizations")).all())
        _db.session.remove()
    assert keys == {"straße": "strasse", "Strasse Two": "strasse two", "Other": "other"}


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("OrgA", "Οrgᴀ"),  # a Greek capital Omicron, a Latin small capital A
        ("Acme", "Асmе"),  # Cyrillic а, с, е
        ("Google", "Gооgle"),  # Cyrillic о
        ("Рара", "Papa"),  # all Cyrillic, and all Latin
    ],
)
def test_a_name_that_only_looks_like_a_taken_one_is_refused_as_a_taken_name_is(
    app: Flask, auth: Auth, first: str, second: str
) -> None:
    assert name_key_of(first) != name_key_of(second)
    assert auth.register("admin@one.test", first).status_code == 201
    refused = auth.another().register("someone@two.test", second)
    assert refused.status_code == 409
    assert refused.get_json()["code"] == "invite_required"
    assert first in refused.get_json()["error"]
    # Not even with an invite to the real one: its people join it by its own name.
    invite = auth.invite()
    assert auth.another().register("b@two.test", second, invite_code=invite).status_code == 409
    assert accounts_in(app) == (1, 1)
    joined = auth.another().register("b@two.test", first, invite_code=invite)
    assert joined.status_code == 201


def test_manage_py_refuses_an_organization_that_looks_like_another(
    app: Flask, runner: FlaskCliRunner
) -> None:
    assert runner.invoke(args=["orgs", "create", "Acme"]).exit_code == 0
    result = runner.invoke(args=["orgs", "create", "Асmе"])
    assert result.exit_code == 1
    assert "'Acme' already exists" in result.output and "looks like it" in result.output
    assert accounts_in(app) == (1, 0)


def test_sign_up_and_manage_py_word_a_taken_name_or_email_each_their_own_way(
    app: Flask, auth: Auth, runner: FlaskCliRunner
) -> None:
    # Both create organizations and users through the same functions; each keeps its words.
    assert auth.register("admin@one.test", "Acme").status_code == 201
    lookalike = auth.another().register("someone@two.test", "Асmе", invite_code="not-a-code")
    assert lookalike.status_code == 409
    assert lookalike.get_json()["error"] == (
        "an organization named 'Acme' exists, which this name looks like; joining it needs "
        "its name and an invite code from its admin"
    )
    taken = auth.another().register("ADMIN@one.test", "Elsewhere")
    assert taken.status_code == 409
    assert taken.get_json()["error"] == "an account with this email already exists"
    result = runner.invoke(args=["orgs", "create", "Асmе"])
    assert "Error: an organization named 'Acme' already exists, and 'Асmе' looks like it" in (
        result.output
    )
    result = runner.invoke(
        args=["users", "create", "ADMIN@one.test", "--org", "Acme", "--password-stdin"],
        input="x7#kq9!mz2-long\n",
    )
    assert result.exit_code == 1
    assert "Error: a user with email 'admin@one.test' already exists" in result.output
    assert accounts_in(app) == (1, 1)


@pytest.mark.parametrize(
    ("first", "second"),
    [("Acme", "Acme Two"), ("Café", "Cafe"), ("Orga", "Orgb"), ("Мир", "Мира")],
)
def test_names_that_look_different_stay_two_organizations(
    auth: Auth, first: str, second: str
) -> None:
    assert auth.register("a@one.test", first).status_code == 201
    assert auth.another().register("b@two.test", second).status_code == 201


@pytest.fixture
def database_before_skeletons(
    tmp_path: Path, redis_server: RedisServer
) -> Iterator[tuple[Flask, str]]:
    """A scratch database migrated up to the revision before name skeletons."""
    with migrated_to(tmp_path, "coffer_alike", BEFORE_SKELETONS, redis_server.url) as made:
        yield made


def test_the_migration_keeps_names_that_already_look_alike_and_guards_them_after(
    database_before_skeletons: tuple[Flask, str], capfd: pytest.CaptureFixture[str]
) -> None:
    app, url = database_before_skeletons
    engine = create_engine(url)
    with engine.begin() as connection:
        for name in ("OrgA", "Οrgᴀ", "Other"):
            connection.execute(
                text(
                    "INSERT INTO organizations (name, name_key, storage_quota_mb, created_at) "
                    "VALUES (:name, :key, 10, CURRENT_TIMESTAMP)"
                ),
                {"name": name, "key": name_key_of(name)},
            )
    engine.dispose()
    with app.app_context():
        upgrade()
        rows = _db.session.execute(
            text("SELECT id, name, name_skeleton FROM organizations ORDER BY id")
        ).all()
        _db.session.remove()
    assert [(row[0], row[1]) for row in rows] == [(1, "OrgA"), (2, "Οrgᴀ"), (3, "Other")]
    assert rows[0][2] == name_skeleton_hash_of("OrgA") and rows[1][2] is None
    assert rows[2][2] == name_skeleton_hash_of("Other")
    # `manage.py db upgrade` logs the warning to standard error.
    assert "'Οrgᴀ' (id 2) looks like 'OrgA' (id 1)" in capfd.readouterr().err

    # The oldest of the two still guards the name.
    with app.app_context():
        refused = Auth(app, app.test_client()).register("x@three.test", "0rgA")
        assert refused.status_code == 409
        _db.engine.dispose()
