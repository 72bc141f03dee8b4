"""Organization names are one name whatever their case or Unicode form, in every script,
on SQLite and PostgreSQL alike; the migration that made it so refuses existing clashes."""

from __future__ import annotations

import html
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import create_engine, func, select, text

from app.extensions import db as _db
from app.models import MAX_NAME_KEY_LENGTH, Organization, User, name_key_of
from app.services.accounts import MAX_ORG_NAME_LENGTH
from tests.support.client import Auth, form_token
from tests.support.database import migrated_to
from tests.support.processes import RedisServer

BEFORE_NAME_KEYS = "0004_files_status_index"


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
