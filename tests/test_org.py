"""The organization endpoints: details, invites, users, (de)activation and tenant boundaries."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app.extensions import db
from app.models import Invite, Role, User, Webhook
from app.services import accounts, passwords, webhooks
from app.services.errors import NotAllowed
from tests.support.client import Auth, arabic_indic

TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")


def parse_timestamp(value: Any) -> datetime:
    """A contract timestamp (ISO 8601, UTC, trailing Z) as an aware datetime."""
    assert isinstance(value, str) and TIMESTAMP.match(value), value
    return datetime.fromisoformat(value[:-1]).replace(tzinfo=UTC)


def assert_error(response: Any, status: int, code: str) -> None:
    """The response is the contract's JSON error with this status and code."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.is_json
    assert response.get_json()["code"] == code
    assert response.get_json()["error"]


class Org:
    """An organization with its admin and one member, each on their own client."""

    def __init__(self, auth: Auth, name: str, domain: str) -> None:
        self.admin = auth.another()
        registered = self.admin.register(f"admin@{domain}", name)
        assert registered.status_code == 201
        self.id: int = registered.get_json()["organization_id"]
        self.admin_id: int = registered.get_json()["user_id"]
        self.member = auth.another()
        joined = self.member.register(f"member@{domain}", name, invite_code=self.admin.invite())
        assert joined.status_code == 201
        self.member_id: int = joined.get_json()["user_id"]
        self.member_email = f"member@{domain}"

    def admin_post(self, path: str) -> Any:
        """A cookie-authenticated POST as the admin."""
        return self.admin.client.post(path, headers=self.admin.headers())

    def member_post(self, path: str) -> Any:
        """A cookie-authenticated POST as the member."""
        return self.member.client.post(path, headers=self.member.headers())

    def set_org(self, who: Auth, body: dict[str, Any]) -> Any:
        """PATCH /api/org with `body`, cookie-authenticated as `who`."""
        return who.client.patch("/api/org", json=body, headers=who.headers())


@pytest.fixture
def acme(auth: Auth) -> Org:
    """Acme: an admin and a member."""
    return Org(auth, "Acme", "acme.test")


@pytest.fixture
def globex(auth: Auth) -> Org:
    """Globex, another tenant: an admin and a member."""
    return Org(auth, "Globex", "globex.test")


def me(client: FlaskClient, headers: dict[str, str] | None = None) -> int:
    """The status GET /api/auth/me answers."""
    return client.get("/api/auth/me", headers=headers or {}).status_code


# --- details --------------------------------------------------------------------------


def test_get_org_answers_every_field(app: Flask, acme: Org) -> None:
    response = acme.member.client.get("/api/org")
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {
        "id",
        "name",
        "storage_quota_mb",
        "used_bytes",
        "reserved_bytes",
        "file_count",
        "trash_bytes",
        "versions_bytes",
        "trash_retention_days",
        "versions_kept",
        "created_at",
    }
    assert body["trash_bytes"] == body["versions_bytes"] == 0
    assert body["trash_retention_days"] == app.config["TRASH_RETENTION_DAYS"] == 30
    assert body["versions_kept"] == app.config["VERSIONS_KEPT"] == 10
    assert body["id"] == acme.id
    assert body["name"] == "Acme"
    assert body["storage_quota_mb"] == app.config["STORAGE_QUOTA_MB"]
    assert body["used_bytes"] == 0
    assert body["file_count"] == 0
    created = parse_timestamp(body["created_at"])
    assert abs(datetime.now(UTC) - created) < timedelta(minutes=1)


def test_an_admin_sets_the_trash_retention_and_versions_kept(acme: Org) -> None:
    changed = acme.set_org(acme.admin, {"trash_retention_days": 0, "versions_kept": 2})
    assert changed.status_code == 200
    assert changed.get_json()["trash_retention_days"] == 0
    assert changed.get_json()["versions_kept"] == 2
    # Absent fields keep their value; every member reads them.
    assert acme.set_org(acme.admin, {"versions_kept": 3}).status_code == 200
    body = acme.member.client.get("/api/org").get_json()
    assert (body["trash_retention_days"], body["versions_kept"]) == (0, 3)


@pytest.mark.parametrize(
    "body",
    [
        {"trash_retention_days": -1},
        {"trash_retention_days": 3651},
        {"versions_kept": 0},
        {"versions_kept": "many"},
        {"trash_retention_days": True},
    ],
)
def test_retention_settings_out_of_range_are_refused(acme: Org, body: dict[str, object]) -> None:
    response = acme.set_org(acme.admin, body)
    assert response.status_code == 400
    assert response.get_json()["field"] == next(iter(body))
    assert acme.admin.client.get("/api/org").get_json()["versions_kept"] == 10


def test_only_an_admin_sets_retention(acme: Org) -> None:
    response = acme.set_org(acme.member, {"versions_kept": 1})
    assert response.status_code == 403
    assert acme.member.client.get("/api/org").get_json()["versions_kept"] == 10


@pytest.mark.parametrize("app_overrides", [{"STORAGE_QUOTA_MB": 7}])
def test_get_org_shows_the_configured_quota_and_stored_bytes(acme: Org) -> None:
    assert acme.member.upload("notes.txt", b"hello coffer\n").status_code == 201
    body = acme.admin.client.get("/api/org").get_json()
    assert body["storage_quota_mb"] == 7
    assert body["used_bytes"] == len(b"hello coffer\n")
    assert body["file_count"] == 1


def test_get_org_unauthenticated_is_401(client: FlaskClient) -> None:
    assert_error(client.get("/api/org"), 401, "unauthorized")


# --- invites --------------------------------------------------------------------------


def test_an_admin_creates_an_invite_expiring_after_the_default_72_hours(acme: Org) -> None:
    before = datetime.now(UTC)
    response = acme.admin_post("/api/org/invites")
    assert response.status_code == 201
    body = response.get_json()
    assert set(body) == {"id", "invite_code", "url", "expires_at", "role"}
    assert isinstance(body["invite_code"], str) and len(body["invite_code"]) >= 32
    assert body["url"] == f"http://localhost/join/{body['invite_code']}"
    assert body["role"] == "member"
    expires = parse_timestamp(body["expires_at"])
    assert before + timedelta(hours=72) - timedelta(seconds=5) <= expires
    assert expires <= datetime.now(UTC) + timedelta(hours=72) + timedelta(seconds=5)


@pytest.mark.parametrize("app_overrides", [{"INVITE_TTL_HOURS": 5}])
def test_invites_expire_after_invite_ttl_hours(acme: Org) -> None:
    expires = parse_timestamp(acme.admin_post("/api/org/invites").get_json()["expires_at"])
    assert abs(expires - (datetime.now(UTC) + timedelta(hours=5))) < timedelta(minutes=1)


def test_each_invite_code_is_new(acme: Org) -> None:
    codes = {acme.admin.invite() for _ in range(3)}
    assert len(codes) == 3


def test_a_member_cannot_create_invites(acme: Org) -> None:
    assert_error(acme.member_post("/api/org/invites"), 403, "forbidden")


def test_creating_an_invite_unauthenticated_is_401(client: FlaskClient) -> None:
    assert_error(client.post("/api/org/invites"), 401, "unauthorized")


# --- users ----------------------------------------------------------------------------


def test_an_admin_lists_the_users_of_their_organization_only(acme: Org, globex: Org) -> None:
    response = acme.admin.client.get("/api/org/users")
    assert response.status_code == 200
    users = response.get_json()["users"]
    assert [u["email"] for u in users] == ["admin@acme.test", "member@acme.test"]
    for user in users:
        assert set(user) == {"id", "email", "role", "is_active", "created_at"}
        assert isinstance(user["id"], int)
        assert user["is_active"] is True
        parse_timestamp(user["created_at"])
    assert [(u["id"], u["role"]) for u in users] == [
        (acme.admin_id, "admin"),
        (acme.member_id, "member"),
    ]


def test_a_member_cannot_list_users(acme: Org) -> None:
    assert_error(acme.member.client.get("/api/org/users"), 403, "forbidden")


def test_listing_users_unauthenticated_is_401(client: FlaskClient) -> None:
    assert_error(client.get("/api/org/users"), 401, "unauthorized")


# --- deactivate / activate ------------------------------------------------------------


def test_deactivating_a_user_stops_their_session_and_tokens_at_once(acme: Org) -> None:
    token = {"Authorization": f"Bearer {acme.member.token()}"}
    bearer = acme.member.app.test_client()
    assert me(acme.member.client) == 200
    assert me(bearer, token) == 200

    response = acme.admin_post(f"/api/org/users/{acme.member_id}/deactivate")
    assert response.status_code == 200
    assert response.get_json() == {"id": acme.member_id, "is_active": False}

    assert me(acme.member.client) == 401
    assert me(bearer, token) == 401
    assert_error(acme.member.upload("a.txt", b"a"), 401, "unauthorized")
    assert_error(acme.member.login(acme.member_email), 403, "account_disabled")
    listed = acme.admin.client.get("/api/org/users").get_json()["users"]
    assert {u["id"]: u["is_active"] for u in listed}[acme.member_id] is False


def test_activating_a_user_restores_their_login(acme: Org) -> None:
    token = {"Authorization": f"Bearer {acme.member.token()}"}
    bearer = acme.member.app.test_client()
    acme.admin_post(f"/api/org/users/{acme.member_id}/deactivate")

    response = acme.admin_post(f"/api/org/users/{acme.member_id}/activate")
    assert response.status_code == 200
    assert response.get_json() == {"id": acme.member_id, "is_active": True}
    assert acme.member.login(acme.member_email).status_code == 200
    assert me(acme.member.client) == 200
    # The user's API tokens were suspended, not revoked.
    assert me(bearer, token) == 200


def test_reactivation_does_not_revive_sessions_from_before_deactivation(acme: Org) -> None:
    old_session = acme.member.app.test_client()
    assert Auth(acme.member.app, old_session).login(acme.member_email).status_code == 200
    acme.admin_post(f"/api/org/users/{acme.member_id}/deactivate")
    acme.admin_post(f"/api/org/users/{acme.member_id}/activate")
    assert me(old_session) == 401
    assert me(acme.member.client) == 401


def test_deactivating_twice_is_harmless(acme: Org) -> None:
    path = f"/api/org/users/{acme.member_id}/deactivate"
    assert acme.admin_post(path).status_code == 200
    second = acme.admin_post(path)
    assert second.status_code == 200
    assert second.get_json() == {"id": acme.member_id, "is_active": False}


def test_an_admin_cannot_deactivate_themselves(acme: Org) -> None:
    response = acme.admin_post(f"/api/org/users/{acme.admin_id}/deactivate")
    assert_error(response, 409, "cannot_deactivate_self")
    assert me(acme.admin.client) == 200


@pytest.mark.parametrize("action", ["deactivate", "activate"])
def test_a_member_cannot_change_who_is_active(acme: Org, action: str) -> None:
    assert_error(acme.member_post(f"/api/org/users/{acme.admin_id}/{action}"), 403, "forbidden")
    assert me(acme.admin.client) == 200


# The services refuse a member by themselves, whoever calls them: not only the API and pages.
ADMIN_ONLY_SERVICES: dict[str, Callable[[User, Org], object]] = {
    "create_invite": lambda member, org: accounts.create_invite(member),
    "list_users": lambda member, org: accounts.list_users(member),
    "deactivate": lambda member, org: accounts.set_active(member, org.admin_id, active=False),
    "set_role": lambda member, org: accounts.set_role(member, org.admin_id, Role.MEMBER),
    "list_invites": lambda member, org: accounts.list_invites(member),
    "revoke_invite": lambda member, org: accounts.revoke_invite(member, 1),
    "create_reset": lambda member, org: passwords.create_reset(member, org.admin_id),
    "create_webhook": lambda member, org: webhooks.create_webhook(
        member, "https://hooks.example.com/coffer", ["file.ready"]
    ),
    "delete_webhook": lambda member, org: webhooks.delete_webhook(member, 1),
    "list_webhooks": lambda member, org: webhooks.list_webhooks(member),
    "recent_deliveries": lambda member, org: webhooks.recent_deliveries(member, 1),
}


@pytest.mark.parametrize("action", sorted(ADMIN_ONLY_SERVICES))
def test_an_admin_only_service_refuses_a_member(app: Flask, acme: Org, action: str) -> None:
    with app.app_context():
        member = db.session.get(User, acme.member_id)
        assert member is not None
        with pytest.raises(NotAllowed) as refused:
            ADMIN_ONLY_SERVICES[action](member, acme)
        assert refused.value.code == "forbidden"
        assert refused.value.message == "only an organization admin can do this"
        db.session.rollback()
        assert db.session.scalars(select(Invite).where(Invite.created_by == member.id)).all() == []
        assert db.session.scalars(select(Webhook)).all() == []
        admin = db.session.get(User, acme.admin_id)
        assert admin is not None and admin.is_active and admin.is_admin
        db.session.remove()


@pytest.mark.parametrize("action", ["deactivate", "activate"])
def test_changing_who_is_active_unauthenticated_is_401(client: FlaskClient, action: str) -> None:
    assert_error(client.post(f"/api/org/users/1/{action}"), 401, "unauthorized")


@pytest.mark.parametrize("action", ["deactivate", "activate"])
def test_an_unknown_user_id_is_404(acme: Org, action: str) -> None:
    unknown = acme.member_id + 1000
    assert_error(acme.admin_post(f"/api/org/users/{unknown}/{action}"), 404, "not_found")
    assert_error(acme.admin_post(f"/api/org/users/abc/{action}"), 404, "not_found")


def test_a_user_id_in_digits_other_than_ascii_is_404(acme: Org) -> None:
    foreign_digits = arabic_indic(acme.member_id)

    response = acme.admin_post(f"/api/org/users/{foreign_digits}/deactivate")

    assert_error(response, 404, "not_found")
    assert me(acme.member.client) == 200


# --- tenant boundaries ----------------------------------------------------------------


def test_an_admin_cannot_deactivate_another_organizations_user(acme: Org, globex: Org) -> None:
    for user_id in (globex.member_id, globex.admin_id):
        response = acme.admin_post(f"/api/org/users/{user_id}/deactivate")
        assert_error(response, 404, "not_found")
        unknown = acme.admin_post(f"/api/org/users/{user_id + 1000}/deactivate")
        # Indistinguishable from a user that does not exist.
        assert response.get_json() == unknown.get_json()
    assert me(globex.member.client) == 200
    assert me(globex.admin.client) == 200
    assert globex.member.another().login(globex.member_email).status_code == 200


def test_an_admin_cannot_activate_another_organizations_user(acme: Org, globex: Org) -> None:
    assert globex.admin_post(f"/api/org/users/{globex.member_id}/deactivate").status_code == 200
    response = acme.admin_post(f"/api/org/users/{globex.member_id}/activate")
    assert_error(response, 404, "not_found")
    assert_error(globex.member.login(globex.member_email), 403, "account_disabled")


def test_an_admin_sees_nothing_of_another_organization(acme: Org, globex: Org) -> None:
    listed = acme.admin.client.get("/api/org/users").get_json()["users"]
    assert {u["id"] for u in listed}.isdisjoint({globex.admin_id, globex.member_id})
    assert acme.admin.client.get("/api/org").get_json()["id"] == acme.id
    assert globex.admin.client.get("/api/org").get_json()["id"] == globex.id


def test_an_invite_admits_only_into_the_organization_that_issued_it(acme: Org, globex: Org) -> None:
    code = acme.admin.invite()
    response = acme.admin.another().register("spy@globex.test", "Globex", invite_code=code)
    assert_error(response, 400, "invite_invalid")
    users = globex.admin.client.get("/api/org/users").get_json()["users"]
    assert len(users) == 2
