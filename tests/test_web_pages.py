"""The web pages as HTTP answers: their policy, where sign-in leads, CSRF on every form."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.support.client import Auth, bearer, form_token
from tests.support.pipeline import upload

PAGES = ["/", "/tokens", "/org"]


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
