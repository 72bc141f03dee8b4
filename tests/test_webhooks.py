"""Webhooks: registered by admins, refused for internal addresses, delivered signed by a real
RQ worker to a receiver on 127.0.0.1, retried with backoff, and verified with the code
docs/API.md gives."""

from __future__ import annotations

import json
import re
import ssl
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from redis import Redis
from sqlalchemy import select, update

from app import schemas
from app.broker import worker_queues
from app.extensions import db as _db
from app.models import File, Webhook, isoformat, utcnow
from app.services import webhooks
from jobs.worker import InProcessWorker
from tests.support.client import Auth, bearer
from tests.support.database import run_sql
from tests.support.metrics import scrape, value
from tests.support.receiver import Received, receiver

EVENTS = [
    "file.ready",
    "file.failed",
    "file.deleted",
    "file.trashed",
    "file.restored",
    "file.version_added",
]
API_MD = Path(__file__).resolve().parent.parent / "docs" / "API.md"


def documented_verify() -> Callable[..., bool]:
    """The verification code of docs/API.md, exactly as written there, ready to call."""
    text = API_MD.read_text()
    marker = text.index("<!-- tests/test_webhooks.py runs this block")
    code = re.search(r"```python\n(.*?)```", text[marker:], re.DOTALL)
    assert code is not None
    namespace: dict[str, Any] = {}
    exec(code.group(1), namespace)  # the documentation's own code, as a reader copies it
    verify: Callable[..., bool] = namespace["verify"]
    return verify


def register_webhook(auth: Auth, url: str, events: list[str] | None = None) -> Any:
    """POST /api/org/webhooks as the logged-in user."""
    return auth.client.post(
        "/api/org/webhooks", json={"url": url, "events": events or EVENTS}, headers=auth.headers()
    )


def deliveries(auth: Auth, webhook_id: int) -> list[dict[str, Any]]:
    """GET .../deliveries, newest first."""
    response = auth.client.get(f"/api/org/webhooks/{webhook_id}/deliveries")
    assert response.status_code == 200, response.get_json()
    return list(response.get_json()["deliveries"])


def upload(auth: Auth, name: str, data: bytes) -> str:
    """Upload a file; its id."""
    response = auth.upload(name, data)
    assert response.status_code == 201, response.get_json()
    return str(response.get_json()["file_id"])


def run_until(app: Flask, redis: Redis, done: Callable[[], bool], seconds: float = 30) -> None:
    """Burst workers with the scheduler, again and again, until `done` (retries are
    scheduled jobs: each burst first moves the due ones onto the queue)."""
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, "the deliveries did not happen in time"
        with app.app_context():
            InProcessWorker(worker_queues(redis), connection=redis).work(
                burst=True, with_scheduler=True, logging_level="WARNING"
            )
        time.sleep(0.2)


@pytest.fixture
def app_overrides() -> dict[str, Any]:
    """The receivers run on 127.0.0.1; retries come without waiting unless a test says."""
    return {"WEBHOOK_ALLOW_PRIVATE": True, "WEBHOOK_RETRY_SECONDS": [0, 0]}


def test_events_are_delivered_signed_and_verify_with_the_documented_code(
    app: Flask, auth: Auth, worker: Callable[[], None]
) -> None:
    auth.register()
    verify = documented_verify()
    with receiver([204]) as hook:
        created = register_webhook(auth, hook.url)
        assert created.status_code == 201, created.get_json()
        body = created.get_json()
        assert set(body) == {"id", "url", "events", "secret", "created_at"}
        assert body["url"] == hook.url
        assert body["events"] == EVENTS
        secret = body["secret"]
        assert secret.startswith("whsec_")

        ready_id = upload(auth, "notes.txt", b"ready soon\n")
        failed_id = upload(auth, "holiday.png", b"not a picture\n")
        worker()
        assert (
            auth.client.delete(f"/api/files/{ready_id}", headers=auth.headers()).status_code == 204
        )
        worker()

    by_type: dict[str, Received] = {}
    for request in hook.received:
        by_type[json.loads(request.body)["type"]] = request
    # A delete moves the file to the trash: file.trashed (file.deleted comes when it
    # leaves the trash, tests/test_trash.py).
    assert sorted(by_type) == ["file.failed", "file.ready", "file.trashed"]
    assert len(hook.received) == 3

    seen: set[str] = set()
    for event_type, request in by_type.items():
        assert request.path == "/hooks/coffer"
        assert request.headers["Content-Type"] == "application/json"
        assert verify(secret, request.headers, request.body, seen), event_type
        payload = json.loads(request.body)
        assert request.headers["Coffer-Event-Id"] == payload["id"]
        assert payload["organization_id"] == auth.client.get("/api/org").get_json()["id"]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT[\d:.]+Z", payload["created_at"])
    # The same delivery again is a duplicate; a changed body or another secret fails.
    ready = by_type["file.ready"]
    assert not verify(secret, ready.headers, ready.body, seen)
    assert not verify(secret, ready.headers, ready.body + b" ", set())
    assert not verify("whsec_other", ready.headers, ready.body, set())

    # data.file is the file as GET /api/files/<id> gives it.
    failed = json.loads(by_type["file.failed"].body)["data"]["file"]
    assert failed == auth.client.get(f"/api/files/{failed_id}").get_json()
    assert failed["status"] == "failed"
    ready_file = json.loads(by_type["file.ready"].body)["data"]["file"]
    trashed_file = json.loads(by_type["file.trashed"].body)["data"]["file"]
    assert ready_file["id"] == trashed_file["id"] == ready_id
    assert ready_file["status"] == trashed_file["status"] == "ready"
    assert ready_file == trashed_file  # as it was just before the deletion

    # Each delivery is on record, once, as succeeded.
    recorded = deliveries(auth, body["id"])
    assert sorted(d["type"] for d in recorded) == ["file.failed", "file.ready", "file.trashed"]
    for delivery in recorded:
        assert delivery["attempt"] == 1
        assert delivery["outcome"] == "succeeded"
        assert delivery["status_code"] == 204
        assert delivery["error"] is None
        assert delivery["next_attempt_at"] is None
        assert delivery["duration_ms"] >= 0


def test_the_event_body_is_the_api_s_webhook_event_byte_for_byte(
    app: Flask, auth: Auth, worker: Callable[[], None]
) -> None:
    """The services render the body without the API's schemas; it is what the API's
    FileDetails gives, in the same bytes, and reads as the documented WebhookEvent; its file
    is GET /api/files/<id>'s, path and folder included."""
    auth.register()
    folder = auth.client.post("/api/folders", json={"name": "Inbox"}, headers=auth.headers())
    folder_id = folder.get_json()["id"]
    ready_id = upload(auth, "notes.txt", b"ready soon\n")
    failed_id = upload(auth, "holiday.png", b"not a picture\n")
    moved = auth.client.patch(
        f"/api/files/{ready_id}", json={"folder_id": folder_id}, headers=auth.headers()
    )
    assert moved.status_code == 200
    worker()
    answers = {
        file_id: auth.client.get(f"/api/files/{file_id}").get_json()
        for file_id in (ready_id, failed_id)
    }
    assert answers[ready_id]["path"] == "/Inbox/notes.txt"
    with app.app_context():
        for file_id in (ready_id, failed_id):
            row = _db.session.get(File, file_id)
            assert row is not None
            snapshot = webhooks.file_snapshot(row)
            as_text = {
                **snapshot,
                "uploaded_at": isoformat(snapshot["uploaded_at"]),
                "processed_at": isoformat(snapshot["processed_at"]),
            }
            for file in (snapshot, as_text):
                event = {
                    "id": str(uuid.uuid4()),
                    "type": "file.ready",
                    "created_at": isoformat(utcnow()),
                    "organization_id": row.organization_id,
                    "file": file,
                }
                expected = {
                    "id": event["id"],
                    "type": event["type"],
                    "created_at": event["created_at"],
                    "organization_id": event["organization_id"],
                    "data": {"file": schemas.FileDetails.model_validate(answers[file_id]).body()},
                }
                body = webhooks.event_body(event)
                assert body == json.dumps(expected, separators=(",", ":")).encode()
                assert schemas.WebhookEvent.model_validate_json(body).body() == json.loads(body)


def test_a_timestamp_outside_the_tolerance_is_refused_by_the_documented_code(
    app: Flask, auth: Auth, worker: Callable[[], None]
) -> None:
    auth.register()
    verify = documented_verify()
    with receiver([204]) as hook:
        secret = register_webhook(auth, hook.url, ["file.ready"]).get_json()["secret"]
        upload(auth, "notes.txt", b"hello\n")
        worker()
    (request,) = hook.received
    assert verify(secret, request.headers, request.body, set(), tolerance=300)
    # Seen from ten minutes later, the same genuine delivery is too old.
    real_time = time.time
    try:
        time.time = lambda: real_time() + 600  # type: ignore[assignment]
        assert not verify(secret, request.headers, request.body, set(), tolerance=300)
    finally:
        time.time = real_time  # type: ignore[assignment]


def test_only_the_events_an_endpoint_takes_are_sent(
    app: Flask, auth: Auth, worker: Callable[[], None]
) -> None:
    auth.register()
    with receiver([200]) as deletions, receiver([200]) as everything:
        register_webhook(auth, deletions.url, ["file.deleted", "file.deleted"])
        register_webhook(auth, everything.url)
        file_id = upload(auth, "notes.txt", b"hello\n")
        worker()
        auth.client.delete(f"/api/files/{file_id}", headers=auth.headers())
        worker()
        # Into the trash (file.trashed), then out of it for good (file.deleted).
        assert deletions.received == []
        auth.client.delete(f"/api/trash/{file_id}", headers=auth.headers())
        worker()
    assert [json.loads(r.body)["type"] for r in deletions.received] == ["file.deleted"]
    assert sorted(json.loads(r.body)["type"] for r in everything.received) == [
        "file.deleted",
        "file.ready",
        "file.trashed",
    ]
    # One event, one id, whichever endpoint it goes to.
    deleted = [r for r in everything.received if json.loads(r.body)["type"] == "file.deleted"]
    assert deleted[0].headers["Coffer-Event-Id"] == deletions.received[0].headers["Coffer-Event-Id"]
    listed = auth.client.get("/api/org/webhooks").get_json()["webhooks"]
    assert [w["events"] for w in listed] == [["file.deleted"], EVENTS]
    assert all("secret" not in w for w in listed)


@pytest.mark.parametrize(
    "app_overrides", [{"WEBHOOK_ALLOW_PRIVATE": True, "WEBHOOK_RETRY_SECONDS": [1, 1, 1]}]
)
def test_a_receiver_that_fails_twice_gets_the_event_on_the_third_attempt(
    app: Flask, auth: Auth, redis: Redis
) -> None:
    """500, then 503, then 200: three attempts after the backoff, one event id, one success."""
    auth.register()
    verify = documented_verify()
    with receiver([500, 503, 200]) as hook:
        created = register_webhook(auth, hook.url, ["file.ready"]).get_json()
        upload(auth, "notes.txt", b"third time lucky\n")
        run_until(app, redis, lambda: len(hook.received) >= 3)
        time.sleep(0.5)
    assert len(hook.received) == 3
    assert len({r.headers["Coffer-Event-Id"] for r in hook.received}) == 1
    assert len({r.body for r in hook.received}) == 1
    seen: set[str] = set()
    assert verify(created["secret"], hook.received[0].headers, hook.received[0].body, seen)
    # Each attempt is signed afresh; a retry of a handled event is a duplicate.
    assert not verify(created["secret"], hook.received[2].headers, hook.received[2].body, seen)

    recorded = deliveries(auth, created["id"])
    assert [(d["attempt"], d["status_code"], d["outcome"]) for d in recorded] == [
        (3, 200, "succeeded"),
        (2, 503, "retrying"),
        (1, 500, "retrying"),
    ]
    assert len({d["event_id"] for d in recorded}) == 1
    assert recorded[0]["next_attempt_at"] is None
    for retried in recorded[1:]:
        assert retried["next_attempt_at"] > retried["delivered_at"]
    counted = scrape(auth.client)
    assert value(counted, "coffer_webhook_deliveries_total", outcome="retrying") == 2
    assert value(counted, "coffer_webhook_deliveries_total", outcome="succeeded") == 1
    assert value(counted, "coffer_webhook_deliveries_total", outcome="failed") == 0


def test_a_receiver_that_never_succeeds_is_marked_failed(
    app: Flask, auth: Auth, worker: Callable[[], None], redis: Redis
) -> None:
    """One attempt and the two retries of WEBHOOK_RETRY_SECONDS, then `failed`; the job
    stays out of RQ's failed registry (an endpoint that is down is not the worker's fault)."""
    auth.register()
    with receiver([500]) as hook:
        created = register_webhook(auth, hook.url, ["file.ready"]).get_json()
        upload(auth, "notes.txt", b"nobody listens\n")
        worker()
    assert len(hook.received) == 3
    recorded = deliveries(auth, created["id"])
    assert [(d["attempt"], d["outcome"]) for d in recorded] == [
        (3, "failed"),
        (2, "retrying"),
        (1, "retrying"),
    ]
    assert all(d["status_code"] == 500 for d in recorded)
    assert all(len(q.failed_job_registry) == 0 for q in worker_queues(redis))


def test_a_redirect_is_not_followed(app: Flask, auth: Auth, worker: Callable[[], None]) -> None:
    auth.register()
    with receiver([204]) as inside, receiver([302], location="") as outside:
        outside.location = inside.url
        created = register_webhook(auth, outside.url, ["file.ready"]).get_json()
        upload(auth, "notes.txt", b"hello\n")
        worker()
    assert inside.received == []
    assert len(outside.received) == 3  # the first attempt and two retries
    assert {d["status_code"] for d in deliveries(auth, created["id"])} == {302}
    assert deliveries(auth, created["id"])[0]["outcome"] == "failed"


def test_a_connection_error_is_recorded_and_retried(
    app: Flask, auth: Auth, worker: Callable[[], None]
) -> None:
    auth.register()
    with receiver([204]) as gone:
        url = gone.url
    created = register_webhook(auth, url, ["file.ready"]).get_json()
    upload(auth, "notes.txt", b"hello\n")
    worker()
    recorded = deliveries(auth, created["id"])
    assert [d["outcome"] for d in recorded] == ["failed", "retrying", "retrying"]
    assert all(d["status_code"] is None for d in recorded)
    assert all("could not connect to 127.0.0.1" in d["error"] for d in recorded)


def test_the_address_is_checked_again_at_delivery(
    app: Flask, auth: Auth, worker: Callable[[], None]
) -> None:
    """Registered while internal addresses were allowed; once they are not, nothing is sent."""
    auth.register()
    with receiver([204]) as hook:
        created = register_webhook(auth, hook.url, ["file.ready"]).get_json()
        app.config["WEBHOOK_ALLOW_PRIVATE"] = False
        upload(auth, "notes.txt", b"hello\n")
        worker()
    assert hook.received == []
    recorded = deliveries(auth, created["id"])
    assert len(recorded) == 3
    assert all(d["error"].startswith("url_not_allowed: ") for d in recorded)
    assert "127.0.0.1" in recorded[0]["error"]


def test_a_deleted_endpoint_is_sent_nothing_more(
    app: Flask, auth: Auth, worker: Callable[[], None]
) -> None:
    auth.register()
    with receiver([204]) as hook:
        created = register_webhook(auth, hook.url).get_json()
        upload(auth, "notes.txt", b"hello\n")
        deleted = auth.client.delete(f"/api/org/webhooks/{created['id']}", headers=auth.headers())
        assert deleted.status_code == 204
        worker()
    assert hook.received == []
    assert auth.client.get("/api/org/webhooks").get_json() == {"webhooks": []}
    assert auth.client.get(f"/api/org/webhooks/{created['id']}/deliveries").status_code == 404


@pytest.mark.parametrize(
    "app_overrides",
    [{"WEBHOOK_ALLOW_PRIVATE": True, "WEBHOOK_RETRY_SECONDS": [0], "WEBHOOK_TIMEOUT_SECONDS": 1}],
)
def test_a_slow_receiver_times_out_and_is_retried(
    app: Flask, auth: Auth, worker: Callable[[], None]
) -> None:
    auth.register()
    with receiver([204], delay=3) as slow:
        created = register_webhook(auth, slow.url, ["file.ready"]).get_json()
        upload(auth, "notes.txt", b"hello\n")
        worker()
    recorded = deliveries(auth, created["id"])
    assert [d["outcome"] for d in recorded] == ["failed", "retrying"]
    for delivery in recorded:
        assert delivery["error"] == "timed out after 1 s"
        assert delivery["status_code"] is None
        assert 900 <= delivery["duration_ms"] < 2500


def certificates(folder: Path) -> tuple[Path, ssl.SSLContext]:
    """A test CA (its PEM file) and a server context with a certificate it signed for the
    name `localhost` only."""

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=Test CA",
        "-keyout", "ca.key", "-out", "ca.pem",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign",
    )  # fmt: skip
    openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
        "-keyout", "leaf.key", "-out", "leaf.csr",
    )  # fmt: skip
    (folder / "leaf.ext").write_text("subjectAltName=DNS:localhost\n")
    openssl(
        "x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "1", "-extfile", "leaf.ext", "-out", "leaf.pem",
    )  # fmt: skip
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(folder / "leaf.pem", folder / "leaf.key")
    return folder / "ca.pem", context


@pytest.mark.parametrize(
    "app_overrides", [{"WEBHOOK_ALLOW_PRIVATE": True, "WEBHOOK_RETRY_SECONDS": [0]}]
)
def test_https_goes_to_the_checked_address_and_verifies_the_name(
    app: Flask,
    auth: Auth,
    worker: Callable[[], None],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The connection goes to the address checked, yet TLS checks the certificate against
    the URL's host name: `localhost` is delivered to, `127.0.0.1` (not the certificate's
    name) and an untrusted CA are not."""
    auth.register()
    ca, context = certificates(tmp_path)
    with receiver([204], tls=context, host="localhost") as secure:
        by_name = register_webhook(auth, secure.url, ["file.ready"]).get_json()
        by_address_url = secure.url.replace("localhost", "127.0.0.1")
        by_address = register_webhook(auth, by_address_url, ["file.ready"]).get_json()
        monkeypatch.setenv("SSL_CERT_FILE", str(ca))
        upload(auth, "trusted.txt", b"hello\n")
        worker()
        assert len(secure.received) == 1
        assert secure.received[0].headers["Host"] == urlsplit(secure.url).netloc
        monkeypatch.delenv("SSL_CERT_FILE")
        upload(auth, "untrusted.txt", b"hello\n")
        worker()
    assert len(secure.received) == 1
    named = deliveries(auth, by_name["id"])
    assert [(d["outcome"], d["status_code"]) for d in named][-1] == ("succeeded", 204)
    assert "CERTIFICATE_VERIFY_FAILED" in named[0]["error"]  # the CA is no longer trusted
    by_ip = deliveries(auth, by_address["id"])
    assert all(d["status_code"] is None and "SSLError" in d["error"] for d in by_ip)
    # While the CA was trusted, only the name stood in the way.
    assert "hostname '127.0.0.1' doesn't match 'localhost'" in by_ip[-1]["error"]


# ---- refusals ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://127.1.2.3:8080/hook",
        "http://localhost:5000/hook",
        "http://10.0.0.5/hook",
        "http://172.16.0.1/hook",
        "http://192.168.1.1/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://100.64.0.1/hook",
        "http://0.0.0.0/hook",
        "http://224.0.0.1/hook",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://[::ffff:10.0.0.1]/hook",
        "http://[fe80::1]/hook",
        "http://[fd00::1]/hook",
        "http://[2002:7f00:1::]/hook",
        "http://[64:ff9b::a9fe:a9fe]/hook",
        "https://coffer-test-host.invalid/hook",
        "ftp://93.184.215.14/hook",
        "file:///etc/passwd",
        "https://user:password@93.184.215.14/hook",
        "https:///hook",
        "https://93.184.215.14:99999/hook",
    ],
)
@pytest.mark.parametrize("app_overrides", [{}])
def test_internal_and_unusable_urls_are_refused(app: Flask, auth: Auth, url: str) -> None:
    """With WEBHOOK_ALLOW_PRIVATE off (the default), nothing internal can be registered."""
    auth.register()
    assert app.config["WEBHOOK_ALLOW_PRIVATE"] is False
    response = register_webhook(auth, url)
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["code"] in {"url_not_allowed", "invalid_field"}
    if url.startswith("http"):
        assert response.get_json()["code"] == "url_not_allowed"
    assert auth.client.get("/api/org/webhooks").get_json() == {"webhooks": []}


@pytest.mark.parametrize("app_overrides", [{}])
def test_a_public_address_is_accepted(app: Flask, auth: Auth) -> None:
    auth.register()
    for url in ("https://93.184.215.14/hooks", "http://[2606:4700:4700::1111]:8443/x?y=1"):
        response = register_webhook(auth, url, ["file.ready"])
        assert response.status_code == 201, response.get_json()
        assert response.get_json()["url"] == url


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "https://93.184.215.14/"}, "events"),
        ({"url": "https://93.184.215.14/", "events": []}, "events"),
        ({"url": "https://93.184.215.14/", "events": ["file.uploaded"]}, "events"),
        ({"events": ["file.ready"]}, "url"),
        ({"url": "https://93.184.215.14/" + "a" * 2048, "events": ["file.ready"]}, "url"),
    ],
)
def test_bad_webhook_bodies_are_400(
    app: Flask, auth: Auth, body: dict[str, Any], field: str
) -> None:
    auth.register()
    response = auth.client.post("/api/org/webhooks", json=body, headers=auth.headers())
    assert response.status_code == 400
    assert response.get_json()["field"] == field


def test_webhooks_are_for_admins_only(app: Flask, auth: Auth) -> None:
    auth.register()
    created = register_webhook(auth, "https://93.184.215.14/hook").get_json()
    member = auth.another()
    member.register(email="bob@acme.test", organization_name="Acme", invite_code=auth.invite())
    token = member.token()
    for headers in (member.headers(), bearer(token)):
        calls = [
            member.client.post(
                "/api/org/webhooks",
                json={"url": "https://93.184.215.14/x", "events": EVENTS},
                headers=headers,
            ),
            member.client.get("/api/org/webhooks", headers=headers),
            member.client.delete(f"/api/org/webhooks/{created['id']}", headers=headers),
            member.client.get(f"/api/org/webhooks/{created['id']}/deliveries", headers=headers),
        ]
        for response in calls:
            assert response.status_code == 403
            assert response.get_json()["code"] == "forbidden"
    assert len(auth.client.get("/api/org/webhooks").get_json()["webhooks"]) == 1


def test_another_organizations_webhook_is_404(app: Flask, auth: Auth) -> None:
    auth.register()
    created = register_webhook(auth, "https://93.184.215.14/hook").get_json()
    outsider = auth.another()
    outsider.register(email="eve@globex.test", organization_name="Globex")
    assert outsider.client.get("/api/org/webhooks").get_json() == {"webhooks": []}
    gone = outsider.client.delete(f"/api/org/webhooks/{created['id']}", headers=outsider.headers())
    assert gone.status_code == 404
    assert outsider.client.get(f"/api/org/webhooks/{created['id']}/deliveries").status_code == 404
    assert len(auth.client.get("/api/org/webhooks").get_json()["webhooks"]) == 1


def test_the_secret_is_kept_to_sign_and_never_listed(app: Flask, auth: Auth) -> None:
    auth.register()
    created = register_webhook(auth, "https://93.184.215.14/hook").get_json()
    listed = auth.client.get("/api/org/webhooks").get_json()["webhooks"]
    assert created["secret"] not in json.dumps(listed)
    with app.app_context():
        stored = _db.session.scalars(select(Webhook)).one()
        assert stored.secret == created["secret"]
        _db.session.remove()


def test_webhooks_need_an_account(app: Flask, client: Any) -> None:
    assert client.post("/api/org/webhooks", json={}).status_code == 401
    assert client.get("/api/org/webhooks").status_code == 401
    assert client.delete("/api/org/webhooks/1").status_code == 401
    assert client.get("/api/org/webhooks/1/deliveries").status_code == 401


def queue_scheduled_retries(redis: Redis) -> int:
    """Put every retry RQ has scheduled on its queue now, as the scheduler will once it is
    due; how many there were."""
    moved = 0
    for queue in worker_queues(redis):
        registry = queue.scheduled_job_registry
        for job_id in registry.get_job_ids():
            registry.requeue(job_id)
            moved += 1
    return moved


def delete_webhook(auth: Auth, webhook_id: int) -> None:
    """DELETE /api/org/webhooks/<id> as the logged-in admin."""
    deleted = auth.client.delete(f"/api/org/webhooks/{webhook_id}", headers=auth.headers())
    assert deleted.status_code == 204


@pytest.mark.parametrize(
    "app_overrides", [{"WEBHOOK_ALLOW_PRIVATE": True, "WEBHOOK_RETRY_SECONDS": [3600]}]
)
def test_a_deleted_endpoints_queued_retry_is_dropped_and_its_id_not_given_again(
    app: Flask, auth: Auth, redis: Redis, worker: Callable[[], None]
) -> None:
    """The first attempt fails and a retry waits; the endpoint is deleted and another
    registered: the new one has an id of its own and is sent nothing of the old one's."""
    auth.register()
    with receiver([500]) as old, receiver([204]) as new:
        first = register_webhook(auth, old.url, ["file.ready"]).get_json()
        upload(auth, "notes.txt", b"hello\n")
        worker()
        assert len(old.received) == 1
        delete_webhook(auth, first["id"])
        second = register_webhook(auth, new.url, ["file.ready"]).get_json()
        assert second["id"] != first["id"]
        assert queue_scheduled_retries(redis) == 1
        worker()
    assert len(old.received) == 1
    assert new.received == []
    assert deliveries(auth, second["id"]) == []


@pytest.mark.parametrize(
    "app_overrides", [{"WEBHOOK_ALLOW_PRIVATE": True, "WEBHOOK_RETRY_SECONDS": [3600]}]
)
def test_an_endpoint_given_a_deleted_ones_id_is_not_sent_its_retries(
    app: Flask, auth: Auth, redis: Redis, worker: Callable[[], None]
) -> None:
    """Should an endpoint still come to have the id of a deleted one (a database restored
    from a backup, a SQLite database from before ids were kept), a retry queued for the old
    endpoint is not sent to it, nor signed with its secret."""
    auth.register()
    with receiver([500]) as old, receiver([204]) as new:
        first = register_webhook(auth, old.url, ["file.ready"]).get_json()
        upload(auth, "notes.txt", b"hello\n")
        worker()
        delete_webhook(auth, first["id"])
        second = register_webhook(auth, new.url, ["file.ready"]).get_json()
        run_sql(app, update(Webhook).where(Webhook.id == second["id"]).values(id=first["id"]))
        assert queue_scheduled_retries(redis) == 1
        worker()
        # The endpoint under that id still gets its own events.
        upload(auth, "more.txt", b"more\n")
        worker()
    assert len(old.received) == 1
    assert len(new.received) == 1
    assert json.loads(new.received[0].body)["data"]["file"]["filename"] == "more.txt"
