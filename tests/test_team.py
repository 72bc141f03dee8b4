"""Team administration: roles that never leave an organization without an admin, passwords
changed, reset by a one-time link or by the operator, invites as links with a role, listed
and revoked, and API tokens with read or write access and an expiry."""

from __future__ import annotations

import hashlib
import re
import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from redis import Redis
from sqlalchemy import text, update
from werkzeug.routing import Rule

from app.api.openapi_document import document
from app.authentication import READING_WRITES, WRITE_METHODS, changes_data
from app.extensions import db
from app.models import ApiToken, Invite, PasswordReset, utcnow
from tests.support.client import Auth, bearer, form_token

NEW_PASSWORD = "a new and longer passphrase"
SESSION_PREFIX = "coffer:session:"


def assert_error(response: Any, status: int, code: str, field: str | None = None) -> None:
    """The response is the contract's JSON error with this status, code and field."""
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert body["code"] == code, body
    assert body["error"]
    if field is not None:
        assert body["field"] == field


def parse_timestamp(value: str) -> datetime:
    """A contract timestamp as an aware datetime."""
    assert value.endswith("Z"), value
    return datetime.fromisoformat(value[:-1]).replace(tzinfo=UTC)


def signed_in(client: FlaskClient) -> bool:
    """Whether the client's cookie is a live session."""
    return client.get("/api/auth/me").status_code == 200


class Team:
    """Acme: an admin and a member, each signed in on their own client."""

    def __init__(self, auth: Auth, name: str = "Acme", domain: str = "acme.test") -> None:
        self.admin = auth.another()
        registered = self.admin.register(f"admin@{domain}", name)
        assert registered.status_code == 201
        self.admin_id: int = registered.get_json()["user_id"]
        self.member = auth.another()
        self.member_email = f"member@{domain}"
        joined = self.member.register(self.member_email, name, invite_code=self.admin.invite())
        assert joined.status_code == 201
        self.member_id: int = joined.get_json()["user_id"]

    def as_admin(self, method: str, path: str, json: Any = None) -> Any:
        """A cookie-authenticated request of the admin."""
        return self.admin.client.open(path, method=method, json=json, headers=self.admin.headers())

    def role_of(self, user_id: int) -> str:
        """A user's role as the admin's listing says."""
        users = self.admin.client.get("/api/org/users").get_json()["users"]
        return str({u["id"]: u["role"] for u in users}[user_id])

    def set_role(self, who: Auth, user_id: int, role: Any) -> Any:
        """PATCH /api/org/users/<id> as `who`."""
        return who.client.patch(
            f"/api/org/users/{user_id}", json={"role": role}, headers=who.headers()
        )


@pytest.fixture
def team(auth: Auth) -> Team:
    """Acme's admin and member."""
    return Team(auth)


# ---- roles -------------------------------------------------------------------------------


def test_an_admin_promotes_a_member_who_then_administers(team: Team) -> None:
    response = team.set_role(team.admin, team.member_id, "admin")
    assert response.status_code == 200
    body = response.get_json()
    assert (body["id"], body["role"], body["email"]) == (team.member_id, "admin", team.member_email)
    assert team.member.client.get("/api/org/users").status_code == 200
    assert (
        team.member.client.post("/api/org/invites", headers=team.member.headers()).status_code
        == 201
    )


def test_an_admin_demotes_another_admin_who_loses_admin_rights(team: Team) -> None:
    team.set_role(team.admin, team.member_id, "admin")
    assert team.set_role(team.admin, team.member_id, "member").status_code == 200
    assert team.role_of(team.member_id) == "member"
    assert_error(team.member.client.get("/api/org/users"), 403, "forbidden")


def test_the_last_active_admin_cannot_be_demoted_even_by_themselves(team: Team) -> None:
    assert_error(team.set_role(team.admin, team.admin_id, "member"), 409, "last_admin")
    assert team.role_of(team.admin_id) == "admin"
    # With a second admin, stepping down is allowed.
    team.set_role(team.admin, team.member_id, "admin")
    assert team.set_role(team.admin, team.admin_id, "member").status_code == 200
    assert_error(team.set_role(team.member, team.member_id, "member"), 409, "last_admin")


def test_a_deactivated_admin_does_not_count_as_the_admin_left(team: Team, auth: Auth) -> None:
    team.set_role(team.admin, team.member_id, "admin")
    assert team.as_admin("POST", f"/api/org/users/{team.member_id}/deactivate").status_code == 200
    assert_error(team.set_role(team.admin, team.admin_id, "member"), 409, "last_admin")


def test_a_member_cannot_change_roles(team: Team) -> None:
    assert_error(team.set_role(team.member, team.member_id, "admin"), 403, "forbidden")
    assert_error(team.set_role(team.member, team.admin_id, "member"), 403, "forbidden")
    assert team.role_of(team.member_id) == "member"


@pytest.mark.parametrize("role", ["owner", "", None, 1, ["admin"], "Admin"])
def test_a_role_that_is_not_admin_or_member_is_400(team: Team, role: Any) -> None:
    assert_error(team.set_role(team.admin, team.member_id, role), 400, "invalid_field", "role")
    assert team.role_of(team.member_id) == "member"


def test_another_organizations_user_is_404(team: Team, auth: Auth) -> None:
    globex = Team(auth, "Globex", "globex.test")
    for user_id in (globex.member_id, globex.admin_id, globex.member_id + 1000):
        assert_error(team.set_role(team.admin, user_id, "admin"), 404, "not_found")
    assert globex.role_of(globex.member_id) == "member"


def demote_each_other(team: Team) -> list[int]:
    """The admin and the other admin demote each other at the same instant; the statuses."""
    barrier = threading.Barrier(2)
    answers: list[int] = []

    def demote(who: Auth, target: int) -> None:
        barrier.wait()
        answers.append(team.set_role(who, target, "member").status_code)

    threads = [
        threading.Thread(target=demote, args=(team.admin, team.member_id)),
        threading.Thread(target=demote, args=(team.member, team.admin_id)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(answers)


def test_two_admins_demoting_each_other_at_once_leave_one_admin(app: Flask, auth: Auth) -> None:
    """The organization's row is locked (SQLite: writers take turns): whichever change
    commits second sees the first, so the organization never ends without an admin."""
    for round_ in range(3):
        team = Team(auth, f"Race {round_}", f"race{round_}.test")
        assert team.set_role(team.admin, team.member_id, "admin").status_code == 200
        answers = demote_each_other(team)
        assert answers[0] == 200 and answers[1] in (403, 409), answers
        with app.app_context():
            admins = db.session.execute(
                text(
                    "SELECT count(*) FROM users WHERE role = 'admin' AND organization_id = "
                    "(SELECT organization_id FROM users WHERE id = :id)"
                ),
                {"id": team.admin_id},
            ).scalar_one()
        assert admins == 1, answers


def test_the_operator_sets_a_role_but_never_demotes_the_last_admin(
    team: Team, runner: FlaskCliRunner
) -> None:
    promoted = runner.invoke(args=["users", "set-role", "Member@Acme.test", "admin"])
    assert promoted.exit_code == 0, promoted.output
    assert "member@acme.test is now an admin" in promoted.output
    assert team.role_of(team.member_id) == "admin"
    again = runner.invoke(args=["users", "set-role", "member@acme.test", "admin"])
    assert "already an admin" in again.output
    assert runner.invoke(args=["users", "set-role", "admin@acme.test", "member"]).exit_code == 0
    refused = runner.invoke(args=["users", "set-role", "member@acme.test", "member"])
    assert refused.exit_code == 1
    assert "last active admin" in refused.output
    assert team.member.client.get("/api/auth/me").get_json()["role"] == "admin"
    wrong = runner.invoke(args=["users", "set-role", "member@acme.test", "owner"])
    assert wrong.exit_code == 2


# ---- changing one's password ---------------------------------------------------------------


def change_password(
    who: Auth, current: str, new: str, headers: dict[str, str] | None = None
) -> Any:
    """POST /api/auth/password as `who` (cookie and CSRF unless `headers` say otherwise)."""
    return who.client.post(
        "/api/auth/password",
        json={"current_password": current, "new_password": new},
        headers=who.headers() if headers is None else headers,
    )


def test_a_password_change_ends_every_other_session_and_keeps_this_one(
    team: Team, redis: Redis
) -> None:
    laptop = team.member.another()
    assert laptop.login(team.member_email).status_code == 200
    token = team.member.token()
    assert len(list(redis.scan_iter(SESSION_PREFIX + "*"))) == 3  # admin, member twice

    response = change_password(team.member, Auth.password, NEW_PASSWORD)

    assert response.status_code == 204
    assert response.get_data() == b""
    assert signed_in(team.member.client)
    assert not signed_in(laptop.client)
    # The other session is gone from Redis at once, not only void.
    assert len(list(redis.scan_iter(SESSION_PREFIX + "*"))) == 2
    assert team.member.client.get("/api/auth/me", headers=bearer(token)).status_code == 200
    assert_error(laptop.login(team.member_email), 401, "invalid_credentials")
    assert laptop.login(team.member_email, NEW_PASSWORD).status_code == 200
    # The session kept goes on writing with its CSRF token.
    assert team.member.upload("after.txt", b"still here\n").status_code == 201


def test_a_wrong_current_password_changes_nothing(team: Team) -> None:
    other = team.member.another()
    other.login(team.member_email)
    response = change_password(team.member, "not my password at all", NEW_PASSWORD)
    assert_error(response, 400, "wrong_password", "current_password")
    assert signed_in(other.client)
    assert team.member.another().login(team.member_email).status_code == 200


@pytest.mark.parametrize(
    ("new", "code"),
    [("short", "weak_password"), ("password123", "weak_password"), ("é" * 40, "invalid_password")],
)
def test_a_new_password_breaking_the_rules_is_400(team: Team, new: str, code: str) -> None:
    assert_error(change_password(team.member, Auth.password, new), 400, code, "new_password")
    assert team.member.another().login(team.member_email).status_code == 200


def test_a_password_change_by_token_ends_every_session(team: Team, app: Flask) -> None:
    token = team.member.token()
    script = Auth(app, app.test_client())
    assert change_password(script, Auth.password, NEW_PASSWORD, bearer(token)).status_code == 204
    assert not signed_in(team.member.client)


def test_changing_a_password_needs_a_session_or_token(client: FlaskClient) -> None:
    response = client.post(
        "/api/auth/password", json={"current_password": "x" * 12, "new_password": NEW_PASSWORD}
    )
    assert_error(response, 401, "unauthorized")


def test_the_operator_sets_a_password_from_stdin_and_sessions_end(
    team: Team, runner: FlaskCliRunner
) -> None:
    result = runner.invoke(
        args=["users", "set-password", "MEMBER@acme.test"], input=NEW_PASSWORD + "\n"
    )
    assert result.exit_code == 0, result.output
    assert "password of member@acme.test set" in result.output
    assert not signed_in(team.member.client)
    assert team.member.login(team.member_email, NEW_PASSWORD).status_code == 200
    weak = runner.invoke(args=["users", "set-password", "member@acme.test"], input="short\n")
    assert weak.exit_code == 1 and "at least 10 characters" in weak.output
    unknown = runner.invoke(args=["users", "set-password", "nobody@acme.test"], input=NEW_PASSWORD)
    assert unknown.exit_code == 1 and "no user" in unknown.output
    assert team.member.login(team.member_email, NEW_PASSWORD).status_code == 200


# ---- an admin's reset link ---------------------------------------------------------------------


def new_reset(team: Team, user_id: int | None = None) -> dict[str, Any]:
    """A reset link for the member (or `user_id`), made by the admin."""
    response = team.as_admin("POST", f"/api/org/users/{user_id or team.member_id}/password-reset")
    assert response.status_code == 201, response.get_data(as_text=True)
    body: dict[str, Any] = response.get_json()
    return body


def use_reset(client: FlaskClient, url: str, password: str) -> Any:
    """Open a reset link's page and send its form."""
    path = url.removeprefix("http://localhost")
    token = form_token(client, path)
    return client.post(path, data={"password": password, "csrf_token": token})


def test_a_reset_link_sets_a_password_once_and_ends_the_sessions(team: Team, app: Flask) -> None:
    body = new_reset(team)
    assert set(body) == {"user_id", "url", "expires_at"}
    assert body["user_id"] == team.member_id
    code = re.fullmatch(r"http://localhost/reset/([A-Za-z0-9_-]{43})", body["url"])
    assert code is not None
    expires = parse_timestamp(body["expires_at"])
    assert abs(expires - (datetime.now(UTC) + timedelta(hours=24))) < timedelta(minutes=1)
    with app.app_context():
        [stored] = db.session.scalars(db.select(PasswordReset)).all()
        assert stored.code_hash == hashlib.sha256(code.group(1).encode()).hexdigest()

    visitor = app.test_client()
    page = visitor.get(body["url"].removeprefix("http://localhost"))
    assert page.status_code == 200
    assert team.member_email in page.get_data(as_text=True)
    done = use_reset(visitor, body["url"], NEW_PASSWORD)
    assert done.status_code == 200
    assert "Your password is set" in done.get_data(as_text=True)

    assert not signed_in(team.member.client)
    assert_error(team.member.login(team.member_email), 401, "invalid_credentials")
    assert team.member.login(team.member_email, NEW_PASSWORD).status_code == 200
    # Once only.
    again = app.test_client().get(body["url"].removeprefix("http://localhost"))
    assert again.status_code == 404
    assert "does not work" in again.get_data(as_text=True)


def test_a_weak_password_on_the_reset_page_keeps_the_link(team: Team, app: Flask) -> None:
    body = new_reset(team)
    visitor = app.test_client()
    refused = use_reset(visitor, body["url"], "short")
    assert refused.status_code == 400
    assert "at least 10 characters" in refused.get_data(as_text=True)
    assert signed_in(team.member.client)
    assert use_reset(visitor, body["url"], NEW_PASSWORD).status_code == 200


def test_a_newer_reset_link_replaces_the_older_and_an_expired_one_fails(
    team: Team, app: Flask
) -> None:
    first = new_reset(team)
    second = new_reset(team)
    assert app.test_client().get(first["url"].removeprefix("http://localhost")).status_code == 404
    with app.app_context():
        db.session.execute(update(PasswordReset).values(expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    assert app.test_client().get(second["url"].removeprefix("http://localhost")).status_code == 404
    assert team.member.another().login(team.member_email).status_code == 200


def test_only_an_admin_makes_reset_links_and_only_for_their_organization(
    team: Team, auth: Auth
) -> None:
    response = team.member.client.post(
        f"/api/org/users/{team.admin_id}/password-reset", headers=team.member.headers()
    )
    assert_error(response, 403, "forbidden")
    globex = Team(auth, "Globex", "globex.test")
    response = team.as_admin("POST", f"/api/org/users/{globex.member_id}/password-reset")
    assert_error(response, 404, "not_found")


# ---- invites as links -------------------------------------------------------------------------


def create_invite(team: Team, body: Any = None) -> Any:
    """POST /api/org/invites as the admin."""
    return team.as_admin("POST", "/api/org/invites", json=body)


def join(app: Flask, url: str, email: str, password: str = Auth.password) -> Any:
    """Open an invite link's page in a fresh client and sign up there."""
    visitor = app.test_client()
    path = url.removeprefix("http://localhost")
    token = form_token(visitor, path)
    return visitor.post(path, data={"email": email, "password": password, "csrf_token": token})


def test_an_invite_link_signs_up_into_its_organization_with_its_role(
    team: Team, app: Flask
) -> None:
    response = create_invite(team, {"role": "admin", "expires_in": 3600})
    assert response.status_code == 201
    invite = response.get_json()
    assert set(invite) == {"id", "invite_code", "url", "expires_at", "role"}
    assert invite["role"] == "admin"
    assert invite["url"] == f"http://localhost/join/{invite['invite_code']}"
    expires = parse_timestamp(invite["expires_at"])
    assert abs(expires - (datetime.now(UTC) + timedelta(hours=1))) < timedelta(minutes=1)

    page = app.test_client().get(f"/join/{invite['invite_code']}")
    assert page.status_code == 200
    assert "Join Acme" in page.get_data(as_text=True)
    assert 'name="organization_name"' not in page.get_data(as_text=True)

    joined = join(app, invite["url"], "Ada@acme.test")
    assert joined.status_code == 302 and joined.headers["Location"] == "/"
    users = team.admin.client.get("/api/org/users").get_json()["users"]
    assert {u["email"]: u["role"] for u in users}["ada@acme.test"] == "admin"
    # Used: gone from the pending list, and the link no longer works.
    assert team.admin.client.get("/api/org/invites").get_json()["invites"] == []
    assert app.test_client().get(f"/join/{invite['invite_code']}").status_code == 404
    late = app.test_client()
    token = form_token(late, "/login")
    path = invite["url"].removeprefix("http://localhost")
    data = {"email": "eve@acme.test", "password": Auth.password, "csrf_token": token}
    assert late.post(path, data=data).status_code == 404


def test_pending_invites_are_listed_without_their_codes(team: Team) -> None:
    before = team.admin.client.get("/api/org/invites").get_json()["invites"]
    assert before == []  # the member's invite was used
    made = [create_invite(team).get_json(), create_invite(team, {"role": "admin"}).get_json()]
    response = team.admin.client.get("/api/org/invites")
    assert response.status_code == 200
    listed = response.get_json()["invites"]
    assert [(i["id"], i["role"]) for i in listed] == [
        (made[0]["id"], "member"),
        (made[1]["id"], "admin"),
    ]
    for item in listed:
        assert set(item) == {"id", "role", "created_at", "expires_at", "created_by_email"}
        assert item["created_by_email"] == "admin@acme.test"
    text_ = response.get_data(as_text=True)
    assert all(m["invite_code"] not in text_ for m in made)


def test_a_revoked_invite_admits_no_one(team: Team, app: Flask) -> None:
    invite = create_invite(team).get_json()
    assert team.as_admin("DELETE", f"/api/org/invites/{invite['id']}").status_code == 204
    assert team.admin.client.get("/api/org/invites").get_json()["invites"] == []
    assert app.test_client().get(f"/join/{invite['invite_code']}").status_code == 404
    other = team.admin.another()
    assert_error(
        other.register("eve@acme.test", "Acme", invite_code=invite["invite_code"]),
        400,
        "invite_invalid",
    )
    assert_error(team.as_admin("DELETE", f"/api/org/invites/{invite['id']}"), 404, "not_found")


def test_a_used_invite_cannot_be_revoked_and_keeps_who_used_it(team: Team, app: Flask) -> None:
    with app.app_context():
        [used] = db.session.scalars(db.select(Invite)).all()
        used_id = used.id
    assert_error(team.as_admin("DELETE", f"/api/org/invites/{used_id}"), 404, "not_found")
    with app.app_context():
        assert db.session.get(Invite, used_id).used_by == team.member_id  # type: ignore[union-attr]


def test_invites_are_the_admins_own_business(team: Team, auth: Auth) -> None:
    invite = create_invite(team).get_json()
    assert_error(team.member.client.get("/api/org/invites"), 403, "forbidden")
    response = team.member.client.delete(
        f"/api/org/invites/{invite['id']}", headers=team.member.headers()
    )
    assert_error(response, 403, "forbidden")
    globex = Team(auth, "Globex", "globex.test")
    assert globex.admin.client.get("/api/org/invites").get_json()["invites"] == []
    response = globex.as_admin("DELETE", f"/api/org/invites/{invite['id']}")
    assert_error(response, 404, "not_found")
    assert len(team.admin.client.get("/api/org/invites").get_json()["invites"]) == 1


def test_registering_with_an_invite_code_gives_the_invites_role(team: Team) -> None:
    code = create_invite(team, {"role": "admin"}).get_json()["invite_code"]
    joined = team.admin.another().register("ada@acme.test", "Acme", invite_code=code)
    assert joined.status_code == 201
    assert joined.get_json()["role"] == "admin"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"role": "owner"}, "role"),
        ({"expires_in": 59}, "expires_in"),
        ({"expires_in": 30 * 24 * 3600 + 1}, "expires_in"),
        ({"expires_in": "3600"}, "expires_in"),
    ],
)
def test_an_invite_out_of_bounds_is_400(team: Team, body: dict[str, Any], field: str) -> None:
    assert_error(create_invite(team, body), 400, "invalid_field", field)
    assert team.admin.client.get("/api/org/invites").get_json()["invites"] == []


def test_the_join_page_puts_errors_by_their_fields(team: Team, app: Flask) -> None:
    url = create_invite(team).get_json()["url"]
    taken = join(app, url, team.member_email)
    assert taken.status_code == 409
    assert 'id="email-error"' in taken.get_data(as_text=True)
    weak = join(app, url, "ada@acme.test", "short")
    assert weak.status_code == 400
    assert 'id="password-error"' in weak.get_data(as_text=True)
    # Refusals do not use the invite up.
    assert join(app, url, "ada@acme.test").status_code == 302


def test_an_unknown_invite_link_is_404(app: Flask) -> None:
    for code in ("no-such-code", "x" * 43, "x" * 300):
        page = app.test_client().get(f"/join/{code}")
        assert page.status_code == 404
        assert "does not work" in page.get_data(as_text=True)


# ---- tokens: access and expiry ---------------------------------------------------------------


def new_token(who: Auth, **body: Any) -> dict[str, Any]:
    """POST /api/tokens as `who`; the answer's body."""
    response = who.client.post("/api/tokens", json={"name": "t", **body}, headers=who.headers())
    assert response.status_code == 201, response.get_data(as_text=True)
    answer: dict[str, Any] = response.get_json()
    return answer


def placeholder(rule: Rule) -> dict[str, Any]:
    """Values for a rule's variables: well-formed, naming nobody's object."""
    values: dict[str, Any] = {}
    for name, converter in rule._converters.items():
        kind = type(converter).__name__
        if kind == "UUIDConverter":
            values[name] = uuid.UUID("00000000-0000-4000-8000-000000000000")
        elif kind == "AnyConverter":
            values[name] = sorted(converter.items)[0]  # type: ignore[attr-defined]
        elif "Integer" in kind or kind == "IdConverter":
            values[name] = 999999
        else:
            values[name] = "x"
    return values


def changing_routes(app: Flask) -> list[tuple[str, str, str]]:
    """(method, URL, endpoint) of every route of the app that changes data."""
    found = []
    adapter = app.url_map.bind("localhost")
    for rule in app.url_map.iter_rules():
        for method in sorted((rule.methods or set()) & WRITE_METHODS):
            if changes_data(method, rule.endpoint):
                url = adapter.build(rule.endpoint, placeholder(rule), method=method)
                found.append((method, url, rule.endpoint))
    return found


def test_a_read_token_is_refused_on_every_route_that_changes_data(team: Team, app: Flask) -> None:
    """The app's own route table, walked: a new changing route is covered the day it is
    added. A write token of the same user is not refused there."""
    read = new_token(team.admin, access="read")["token"]
    write = new_token(team.admin)["token"]
    routes = changing_routes(app)
    assert len(routes) >= 30
    assert ("PATCH", "org.change_role") in {(m, e) for m, _, e in routes}
    client = app.test_client()
    for method, url, endpoint in routes:
        refused = client.open(url, method=method, json={}, headers=bearer(read))
        assert refused.status_code == 403, (method, url, endpoint)
        assert refused.get_json()["code"] == "insufficient_scope", (method, url)
        allowed = client.open(url, method=method, json={}, headers=bearer(write))
        assert allowed.status_code != 403 or allowed.get_json()["code"] != "insufficient_scope"


def test_a_read_token_lists_reads_and_downloads(team: Team, app: Flask, worker: Any) -> None:
    assert team.admin.upload("notes.txt", b"hello coffer\n").status_code == 201
    worker()
    read = bearer(new_token(team.admin, access="read")["token"])
    client = app.test_client()
    [listed] = client.get("/api/files", headers=read).get_json()["files"]
    assert client.get(f"/api/files/{listed['id']}", headers=read).status_code == 200
    with client.get(f"/api/files/{listed['id']}/download", headers=read) as download:
        assert download.status_code == 200 and download.get_data() == b"hello coffer\n"
    archive = {"file_ids": [listed["id"]]}
    with client.post("/api/files/archive", json=archive, headers=read) as zipped:
        assert zipped.status_code == 200
    assert client.get("/api/org/users", headers=read).status_code == 200
    refused = team.admin.upload("more.txt", b"more\n", headers=read)
    assert_error(refused, 403, "insufficient_scope")
    assert len(client.get("/api/files", headers=read).get_json()["files"]) == 1


def test_tokens_show_their_access_and_expiry(team: Team) -> None:
    made = new_token(team.member, access="read", expires_in=7 * 24 * 3600)
    assert made["access"] == "read"
    expires = parse_timestamp(made["expires_at"])
    assert abs(expires - (datetime.now(UTC) + timedelta(days=7))) < timedelta(minutes=1)
    [listed] = team.member.client.get("/api/tokens").get_json()["tokens"]
    assert listed["access"] == "read"
    assert listed["expires_at"] == made["expires_at"]
    assert new_token(team.member)["access"] == "write"


def test_an_expired_token_is_401(team: Team, app: Flask) -> None:
    made = new_token(team.member, expires_in=60)
    client = app.test_client()
    assert client.get("/api/auth/me", headers=bearer(made["token"])).status_code == 200
    with app.app_context():
        db.session.execute(
            update(ApiToken)
            .where(ApiToken.id == made["id"])
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
        db.session.commit()
    assert_error(client.get("/api/auth/me", headers=bearer(made["token"])), 401, "unauthorized")
    page = team.member.client.get("/tokens").get_data(as_text=True)
    assert "Expired" in page


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"access": "admin"}, "access"),
        ({"access": None}, "access"),
        ({"expires_in": 59}, "expires_in"),
        ({"expires_in": 366 * 24 * 3600}, "expires_in"),
        ({"expires_in": True}, "expires_in"),
    ],
)
def test_a_token_request_out_of_bounds_is_400(team: Team, body: dict[str, Any], field: str) -> None:
    response = team.member.client.post(
        "/api/tokens", json={"name": "t", **body}, headers=team.member.headers()
    )
    assert_error(response, 400, "invalid_field", field)
    assert team.member.client.get("/api/tokens").get_json()["tokens"] == []


def test_the_document_lists_the_scope_refusal_on_exactly_the_changing_operations() -> None:
    for path, item in document()["paths"].items():
        for method, op in item.items():
            refusal = op["responses"].get("403", {}).get("description", "")
            expected = bool(op["security"]) and method.upper() in WRITE_METHODS
            if method == "post" and path in ("/api/files/archive", "/api/auth/logout"):
                expected = False
            assert ("insufficient_scope" in refusal) is expected, (method, path)
    assert READING_WRITES == {"archives.download_selection", "auth.logout"}


# ---- the pages -----------------------------------------------------------------------------


def post_form(who: Auth, path: str, data: dict[str, str], page: str = "/org") -> Any:
    """A page's form, sent with that page's CSRF token."""
    token = form_token(who.client, page)
    return who.client.post(path, data={**data, "csrf_token": token})


def test_the_organization_page_promotes_and_demotes(team: Team) -> None:
    page = team.admin.client.get("/org").get_data(as_text=True)
    assert "Make admin" in page
    done = post_form(team.admin, f"/org/users/{team.member_id}/role", {"role": "admin"})
    assert done.status_code == 303
    assert team.role_of(team.member_id) == "admin"
    post_form(team.admin, f"/org/users/{team.member_id}/role", {"role": "member"})
    refused = post_form(team.admin, f"/org/users/{team.admin_id}/role", {"role": "member"})
    assert refused.status_code == 409
    assert "last active admin" in refused.get_data(as_text=True)
    denied = post_form(team.member, f"/org/users/{team.member_id}/role", {"role": "admin"})
    assert denied.status_code == 403
    assert team.role_of(team.member_id) == "member"


def test_the_organization_page_makes_lists_and_revokes_invite_links(team: Team) -> None:
    made = post_form(team.admin, "/org/invites", {"role": "admin", "expires_in": "3600"})
    assert made.status_code == 303
    page = team.admin.client.get("/org").get_data(as_text=True)
    link = re.search(r'id="invite-link" readonly value="(http://localhost/join/[^"]+)"', page)
    assert link is not None
    [pending] = team.admin.client.get("/api/org/invites").get_json()["invites"]
    assert pending["role"] == "admin"
    # Shown once.
    assert "invite-link" not in team.admin.client.get("/org").get_data(as_text=True)
    revoked = post_form(team.admin, f"/org/invites/{pending['id']}/revoke", {})
    assert revoked.status_code == 303
    assert team.admin.client.get("/api/org/invites").get_json()["invites"] == []


def test_the_organization_page_makes_a_reset_link_shown_once(team: Team, app: Flask) -> None:
    made = post_form(team.admin, f"/org/users/{team.member_id}/password-reset", {})
    assert made.status_code == 303
    page = team.admin.client.get("/org").get_data(as_text=True)
    link = re.search(r'id="reset-link" readonly value="http://localhost(/reset/[^"]+)"', page)
    assert link is not None
    assert app.test_client().get(link.group(1)).status_code == 200


def test_the_tokens_page_changes_ones_password(team: Team) -> None:
    other = team.member.another()
    other.login(team.member_email)
    wrong = post_form(
        team.member,
        "/account/password",
        {"current_password": "not the password", "new_password": NEW_PASSWORD},
        page="/tokens",
    )
    assert wrong.status_code == 400
    assert 'id="current_password-error"' in wrong.get_data(as_text=True)
    done = post_form(
        team.member,
        "/account/password",
        {"current_password": Auth.password, "new_password": NEW_PASSWORD},
        page="/tokens",
    )
    assert done.status_code == 303
    assert "Your password was changed" in team.member.client.get("/tokens").get_data(as_text=True)
    assert not signed_in(other.client)
    assert signed_in(team.member.client)


def test_the_tokens_page_makes_a_read_token_with_an_expiry(team: Team, app: Flask) -> None:
    made = post_form(
        team.member,
        "/tokens",
        {"name": "reader", "access": "read", "expires_in": str(24 * 3600)},
        page="/tokens",
    )
    assert made.status_code == 303
    [token] = team.member.client.get("/api/tokens").get_json()["tokens"]
    assert token["access"] == "read"
    assert token["expires_at"] is not None
    page = team.member.client.get("/tokens").get_data(as_text=True)
    assert "Read only" in page
