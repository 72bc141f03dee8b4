"""Schemathesis against the live app: every documented operation, generated requests, both
ways of authenticating; no 5xx, and every answer as the OpenAPI document says.

The app is served by waitress on a free port in a thread; the document is
app.api.openapi_document's, which tests/test_openapi.py shows is the one GET /api/openapi.json
serves. Every check schemathesis has is on, "positive data acceptance" included: a request
the document calls valid must not be refused, but for the two SEMANTIC_REFUSALS, the only
failures the run accepts. A valid request on an object (an upload, a file, a link, a
webhook, a user) is pointed at a real one made for it. Each operation is
fuzzed on its own, then the document's links chain operations on real objects (an upload's
details, download and delete; a new token's revoke). FUZZ_EXAMPLES raises the number of
generated requests (`make fuzz`); a run with it set also draws fresh random inputs instead of
the fixed ones a normal run uses, so CI stays reproducible and a fuzzing run keeps exploring.
"""

from __future__ import annotations

import copy
import itertools
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import run_state_machine_as_test
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.config import PositiveDataAcceptanceConfig
from schemathesis.config._checks import NegativeDataRejectionConfig
from schemathesis.core.failures import FailureGroup

from app.api.openapi_document import document
from app.extensions import db as _db
from app.security import MAX_PASSWORD_BYTES, MIN_PASSWORD_LENGTH, is_common_password
from tests.support.live import LiveServer

pytestmark = pytest.mark.slow

FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "0") or 0)
EXAMPLES = FUZZ_EXAMPLES or 15
PASSWORD = "fuzzing password 1"
TIMEOUT = 30
PUBLIC_PATHS = {
    path
    for path, item in document()["paths"].items()
    if not any(op.get("security") for op in item.values())
}


@pytest.fixture
def app_overrides() -> dict[str, Any]:
    """Login and register limits out of the way (the run logs in again after every generated
    logout and registers hundreds of accounts), and a small upload limit so waitress's own
    413 is within reach."""
    return {
        "LOGIN_LIMIT_PER_EMAIL": "100000 per minute",
        "LOGIN_LIMIT_PER_ADDRESS": "100000 per minute",
        "REGISTER_LIMIT_PER_ADDRESS": "100000 per minute",
        "MAX_FILE_SIZE_MB": 1,
    }


@pytest.fixture
def live_server(app: Flask) -> Iterator[LiveServer]:
    """The test's app, served over HTTP."""
    server = LiveServer(app)
    server.start()
    yield server
    server.stop()


def post(url: str, **kwargs: Any) -> requests.Response:
    """POST and read the whole answer, leaving no connection open."""
    with requests.Session() as http:
        response = http.post(url, timeout=TIMEOUT, **kwargs)
        response.close()
        return response


@dataclass
class FuzzIdentity:
    """The admin the generated requests act as, by session cookie or by bearer token."""

    base_url: str
    mode: str
    email: str = "fuzz-admin@coffer.test"
    cookie: str = ""
    csrf: str = ""
    token: str = ""
    token_id: int = -1

    app: Flask | None = None
    member_id: int = -1
    ready_file: str = ""

    def setup(self) -> None:
        """Register the admin, a member to act on, a few files, and the API token."""
        answer = post(
            f"{self.base_url}/api/auth/register",
            json={"email": self.email, "password": PASSWORD, "organization_name": "Fuzzers"},
        )
        assert answer.status_code == 201, answer.text
        self.remember_session(answer)
        invite = post(f"{self.base_url}/api/org/invites", **self.session_kwargs())
        assert invite.status_code == 201, invite.text
        member = post(
            f"{self.base_url}/api/auth/register",
            json={
                "email": "fuzz-member@coffer.test",
                "password": PASSWORD,
                "organization_name": "Fuzzers",
                "invite_code": invite.json()["invite_code"],
            },
        )
        assert member.status_code == 201, member.text
        self.member_id = member.json()["user_id"]
        for number in range(3):
            upload = post(
                f"{self.base_url}/api/files/upload",
                files={"file": (f"seed-{number}.txt", b"seed file\n")},
                **self.session_kwargs(),
            )
            assert upload.status_code == 201, upload.text
        self.mint_token()

    def remember_session(self, answer: requests.Response) -> None:
        """Keep the session cookie and CSRF token of a register or login answer."""
        self.cookie = answer.cookies["coffer_session"]
        self.csrf = answer.json()["csrf_token"]

    def session_kwargs(self) -> dict[str, Any]:
        """requests arguments authenticating by the session cookie."""
        return {"cookies": {"coffer_session": self.cookie}, "headers": {"X-CSRF-Token": self.csrf}}

    def credentials(self) -> dict[str, Any]:
        """requests arguments authenticating as this identity's mode does."""
        if self.mode == "bearer":
            return {"headers": {"Authorization": f"Bearer {self.token}"}}
        return self.session_kwargs()

    def issued_cursor(self, path: str, params: dict[str, Any]) -> str | None:
        """A cursor a listing issued for these parameters (a cursor is bound to them): past
        its first entry; None when it has no second page, or answers an error (an unknown
        folder or file: the request's own answer then says so)."""
        with requests.Session() as http:
            answer = http.get(
                f"{self.base_url}{path}",
                params={**params, "limit": 1},
                timeout=TIMEOUT,
                **self.credentials(),
            )
        if answer.status_code != 200:
            return None
        cursor: str | None = answer.json()["next_cursor"]
        return cursor

    def new_invite_id(self) -> int:
        """A fresh pending invite's id."""
        answer = post(f"{self.base_url}/api/org/invites", **self.credentials())
        assert answer.status_code == 201, answer.text
        invite_id: int = answer.json()["id"]
        return invite_id

    def new_invite(self) -> str:
        """A fresh invite code to the admin's organization."""
        answer = post(f"{self.base_url}/api/org/invites", **self.credentials())
        assert answer.status_code == 201, answer.text
        code: str = answer.json()["invite_code"]
        return code

    def issue(self, case: schemathesis.Case) -> None:
        """Put into a schema-valid request the values only the server can issue.

        A document can say what a cursor looks like, never which ones exist; made up, it is
        rightly refused (400). A positive request carries a real one instead, so what it is
        judged on is every field the document can describe. (A made-up invite code is left
        as drawn: its refusal is one of the SEMANTIC_REFUSALS.)
        """
        if case.meta is None or not case.meta.generation.mode.is_positive:
            return
        operation = f"{case.method.upper()} {case.operation.path}"
        if not case.query or not case.query.get("cursor"):
            return
        # Each listing with cursors, and the parameters its cursors are bound to.
        bound_to = {
            "GET /api/files": CURSOR_BOUND,
            "GET /api/trash": (),
            "GET /api/org/activity": ACTIVITY_BOUND,
            "GET /api/files/{file_id}/activity": ACTIVITY_BOUND,
        }
        if operation not in bound_to:
            return
        params = {k: v for k, v in case.query.items() if k in bound_to[operation]}
        path = case.operation.path.format(**(case.path_parameters or {}))
        cursor = self.issued_cursor(path, params)
        if cursor is None:
            del case.query["cursor"]
        else:
            case.query["cursor"] = cursor

    def point_at_real_object(self, case: schemathesis.Case) -> None:
        """A positive request's path id, made the id of an object made for it (the links
        between operations do this in the stateful run)."""
        if case.meta is None or not case.meta.generation.mode.is_positive:
            return
        real = self.real_object(f"{case.method.upper()} {case.operation.path}")
        if real is not None:
            name, value = real
            case.path_parameters = {**(case.path_parameters or {}), name: value}

    def real_object(self, operation: str) -> tuple[str, Any] | None:
        """(path parameter, id) of an object of this identity's that the operation may act
        on, made for it: made-up ids only ever reach 404, never the operation's work."""
        path = operation.split(" ", 1)[1]
        if path.startswith("/api/uploads/"):
            return "file_id", self.new_upload()
        if operation == "DELETE /api/files/{file_id}":
            return "file_id", self.new_file()
        if path.startswith("/api/files/{file_id}"):
            return "file_id", self.ready_file
        if operation == "DELETE /api/links/{link_id}":
            return "link_id", self.new_link()
        if path.startswith("/api/org/webhooks/{webhook_id}"):
            return "webhook_id", self.new_webhook()
        if path.startswith("/api/org/users/{user_id}"):
            return "user_id", self.member_id
        if path.startswith("/api/org/invites/{invite_id}"):
            return "invite_id", self.new_invite_id()
        if path.startswith("/api/folders/{folder_id}"):
            return "folder_id", self.new_folder()
        return None

    def new_folder(self) -> str:
        """A new, empty folder's id, under a name no other request takes."""
        answer = post(
            f"{self.base_url}/api/folders",
            json={"name": f"made {uuid.uuid4()}"},
            **self.credentials(),
        )
        assert answer.status_code == 201, answer.text
        folder_id: str = answer.json()["id"]
        return folder_id

    def new_file(self) -> str:
        """A new file's id."""
        answer = post(
            f"{self.base_url}/api/files/upload",
            files={"file": ("made.txt", b"made for one request\n")},
            **self.credentials(),
        )
        assert answer.status_code == 201, answer.text
        file_id: str = answer.json()["file_id"]
        return file_id

    def new_upload(self) -> str:
        """A new unfinished resumable upload's id."""
        headers = {
            "Tus-Resumable": "1.0.0",
            "Upload-Length": "10",
            "Upload-Metadata": "filename bWFkZS5iaW4=",
        }
        kwargs = self.credentials()
        answer = post(
            f"{self.base_url}/api/uploads",
            **{**kwargs, "headers": {**kwargs["headers"], **headers}},
        )
        assert answer.status_code == 201, answer.text
        return answer.headers["Location"].rsplit("/", 1)[-1]

    def new_link(self) -> int:
        """A new share link to the ready file."""
        answer = post(f"{self.base_url}/api/files/{self.ready_file}/links", **self.credentials())
        assert answer.status_code == 201, answer.text
        link_id: int = answer.json()["id"]
        return link_id

    def new_webhook(self) -> int:
        """A new endpoint. Made through the service with private addresses allowed for the
        moment: through the API, no address this machine can offer is public."""
        assert self.app is not None
        from app.models import User
        from app.services.webhooks import create_webhook

        with self.app.app_context():
            self.app.config["WEBHOOK_ALLOW_PRIVATE"] = True
            try:
                admin = _db.session.scalar(_db.select(User).where(User.email == self.email))
                assert admin is not None
                issued = create_webhook(admin, "http://127.0.0.1:9/hook", ["file.ready"])
            finally:
                self.app.config["WEBHOOK_ALLOW_PRIVATE"] = False
            webhook_id: int = issued.webhook.id
            _db.session.remove()
        return webhook_id

    def cancel_uploads(self) -> None:
        """Terminate every unfinished upload the run left, as the organization's admin."""
        with requests.Session() as http:
            listed = http.get(f"{self.base_url}/api/uploads", timeout=TIMEOUT, **self.credentials())
            assert listed.status_code == 200, listed.text
            kwargs = self.credentials()
            headers = {**kwargs["headers"], "Tus-Resumable": "1.0.0"}
            for upload in listed.json()["uploads"]:
                gone = http.delete(
                    f"{self.base_url}/api/uploads/{upload['id']}",
                    timeout=TIMEOUT,
                    **{**kwargs, "headers": headers},
                )
                assert gone.status_code in (204, 404), gone.text

    def login(self) -> None:
        """A new session, after a generated logout ended the last one."""
        answer = post(
            f"{self.base_url}/api/auth/login", json={"email": self.email, "password": PASSWORD}
        )
        assert answer.status_code == 200, answer.text
        self.remember_session(answer)

    def mint_token(self) -> None:
        """A new bearer token, after a generated revoke took the last one."""
        answer = post(
            f"{self.base_url}/api/tokens", json={"name": "fuzzing"}, **self.session_kwargs()
        )
        assert answer.status_code == 201, answer.text
        self.token = answer.json()["token"]
        self.token_id = answer.json()["id"]

    def apply(self, case: schemathesis.Case) -> None:
        """Put this identity's credentials on a generated request."""
        if self.mode == "bearer":
            case.headers["Authorization"] = f"Bearer {self.token}"
            return
        case.cookies["coffer_session"] = self.cookie
        if case.method.upper() != "GET":
            case.headers["X-CSRF-Token"] = self.csrf

    def recover(self, case: schemathesis.Case, response: schemathesis.Response) -> None:
        """Undo what a generated request took from this identity, so later ones still count.

        The admin cannot deactivate themselves (409), so only a logout (session mode) and a
        revoke of the token in use (bearer mode) can do that.
        """
        operation = f"{case.method.upper()} {case.operation.path}"
        if operation == "POST /api/auth/logout" and response.status_code == 200:
            if self.mode == "session" and case.cookies.get("coffer_session") == self.cookie:
                self.login()
        if operation == "DELETE /api/tokens/{token_id}" and response.status_code == 204:
            if str(case.path_parameters.get("token_id")) == str(self.token_id):
                self.mint_token()
        if operation == "DELETE /api/files/{file_id}" and response.status_code == 204:
            # A deleted file goes to the trash, still holding its bytes against the quota:
            # out of the trash too, so the identity's uploads keep fitting.
            file_id = case.path_parameters.get("file_id")
            with requests.Session() as http:
                http.delete(
                    f"{self.base_url}/api/trash/{file_id}", timeout=TIMEOUT, **self.credentials()
                )


@dataclass
class Tally:
    """What the run sent and got back, for the sanity checks at the end."""

    statuses: dict[str, dict[int, int]] = field(default_factory=dict)
    # The SEMANTIC_REFUSALS met.
    refused: set[tuple[str, int, str]] = field(default_factory=set)

    def add(self, case: schemathesis.Case, response: schemathesis.Response) -> None:
        """Count one answer of one operation."""
        per_status = self.statuses.setdefault(case.operation.label, {})
        per_status[response.status_code] = per_status.get(response.status_code, 0) + 1


@pytest.fixture(params=["session", "bearer"])
def fuzz_identity(
    request: pytest.FixtureRequest, app: Flask, live_server: LiveServer, worker: Callable[[], None]
) -> Iterator[FuzzIdentity]:
    """The identity of this run, set up through the API, with a validated file to act on;
    afterwards, no unfinished upload is left."""
    identity = FuzzIdentity(base_url=live_server.url, mode=request.param, app=app)
    identity.setup()
    worker()
    identity.ready_file = identity.new_file()
    worker()
    yield identity
    identity.cancel_uploads()


@pytest.fixture
def tally(fuzz_identity: FuzzIdentity) -> Iterator[Tally]:
    """The run's answers per status; afterwards, proof that the requests were not all refused:
    the credentials worked everywhere, and an operation on an object reached a real one."""
    counts = Tally()
    yield counts
    for label, statuses in counts.statuses.items():
        if label.split(" ", 1)[1] not in PUBLIC_PATHS:
            assert set(statuses) - {401, 403}, f"{label} only refused the identity: {statuses}"
        # Those real_object makes an object for: every path id but a secret and a token.
        if "{" in label and not label.split(" ", 1)[1].startswith(("/s/", "/api/tokens/")):
            assert set(statuses) - {401, 403, 404}, f"{label} never found its object: {statuses}"


class IdentityAuth:
    """Puts the current test's identity on every operation that declares security."""

    identity: FuzzIdentity | None = None

    def get(self, case: schemathesis.Case, ctx: schemathesis.AuthContext) -> FuzzIdentity | None:
        """The identity, for a protected operation only; public ones go without."""
        if not ctx.operation.definition.raw.get("security"):
            return None
        return IdentityAuth.identity

    def set(
        self, case: schemathesis.Case, data: FuzzIdentity, ctx: schemathesis.AuthContext
    ) -> None:
        """Add the identity's cookie and CSRF header, or its bearer token."""
        data.apply(case)


def utf8_cut(text: str) -> str:
    """The text cut to at most MAX_PASSWORD_BYTES of UTF-8, on a character boundary."""
    return text.encode()[:MAX_PASSWORD_BYTES].decode(errors="ignore")


# The document's `format: password` (register) is text of at most 72 bytes of UTF-8 and not
# one of the 10,000 most common passwords, which no JSON Schema keyword can say; cut from at
# least 10 characters, at least 18 are left.
schemathesis.openapi.format(
    "password",
    st.text(min_size=MIN_PASSWORD_LENGTH)
    .map(utf8_cut)
    .filter(lambda password: not is_common_password(password)),
)

# A well-formed Range that starts past the end of the file is rightly 416 (RFC 9110 15.5.17);
# whether it does depends on the file's size, which no schema of the header can know.
RANGE_PAST_THE_END = "416"

# tus answers a missing or other Tus-Resumable with 412, as its protocol says. An
# Upload-Length over this deployment's MAX_FILE_SIZE_MB (413) or past the quota (507), and a
# base64 file name that is not UTF-8 or is empty once cleaned (400), are not something a
# pattern in a static document can tell from valid ones.
TUS_OPERATIONS = "^(createUpload|getUploadOffset|appendToUpload|terminateUpload)$"
TUS_REFUSALS = ["412"]
TUS_SIZE_ANSWERS = ["400", "413", "507"]


@schemathesis.serializer("application/offset+octet-stream")
def offset_stream(ctx: Any, value: Any) -> bytes:
    """tus bodies: the generated binary string, as bytes."""
    return value if isinstance(value, bytes) else str(value).encode()


# The only refusals of schema-valid requests the run accepts, as (operation, status, code):
# whether an invite code was issued, whether a current password is the caller's, and whether
# a webhook URL's host is and resolves only to public addresses (`HTTP://0` is 0.0.0.0), no
# schema can say. Any other failure of any
# check fails the run.
# The activity record's filters a cursor is bound to.
ACTIVITY_BOUND = ("type", "actor_id", "file_id")
# The listing's parameters a cursor is bound to (another value with it is 400).
CURSOR_BOUND = ("status", "folder_id", "q", "sort", "order")
SEMANTIC_REFUSALS = {
    ("POST /api/auth/register", 400, "invite_invalid"),
    ("POST /api/auth/password", 400, "wrong_password"),
    ("POST /api/org/webhooks", 400, "url_not_allowed"),
}


def semantic_refusal(case: schemathesis.Case, response: schemathesis.Response) -> bool:
    """Whether the answer is one of the SEMANTIC_REFUSALS."""
    try:
        code = response.json().get("code")
    except (ValueError, AttributeError):
        return False
    return (case.operation.label, response.status_code, code) in SEMANTIC_REFUSALS


def call_and_check(case: schemathesis.Case, base_url: str, tally: Tally) -> schemathesis.Response:
    """Send the case and run every check on the answer; a failure other than a semantic
    refusal of a valid request is raised, that one only counted."""
    response = case.call(base_url=base_url, timeout=TIMEOUT)
    tally.add(case, response)
    try:
        case.validate_response(response)
    except FailureGroup as found:
        accepted = all(
            "positive_data_acceptance" in failure.checks for failure in found.exceptions
        ) and semantic_refusal(case, response)
        if not accepted:
            raise
        tally.refused.add((case.operation.label, response.status_code, response.json()["code"]))
    return response


# Every check is on, with its default settings but for the answers above.
def fuzz_config() -> schemathesis.Config:
    """The run's settings: every check, with the answers above allowed where they are right."""
    return schemathesis.Config.from_dict(
        {
            "generation": {"database": "none", "deterministic": not FUZZ_EXAMPLES},
            # Only the document's own links: a link schemathesis infers (a new folder's id into
            # an upload's folder_id) overwrites the very field a negative case made invalid.
            "phases": {"stateful": {"inference": {"algorithms": []}}},
            "operations": [
                {
                    "include-operation-id": "downloadFile",
                    "checks": {
                        "positive_data_acceptance": {
                            "expected-statuses": [
                                *PositiveDataAcceptanceConfig().expected_statuses,
                                RANGE_PAST_THE_END,
                            ]
                        }
                    },
                },
                {
                    "include-operation-id-regex": TUS_OPERATIONS,
                    "checks": {
                        "negative_data_rejection": {
                            "expected-statuses": [
                                *NegativeDataRejectionConfig().expected_statuses,
                                *TUS_REFUSALS,
                            ]
                        },
                        "positive_data_acceptance": {
                            "expected-statuses": [
                                *PositiveDataAcceptanceConfig().expected_statuses,
                                *TUS_SIZE_ANSWERS,
                            ]
                        },
                    },
                },
            ],
        }
    )


schema = schemathesis.openapi.from_dict(document(), config=fuzz_config())
schema.auth(refresh_interval=None)(IdentityAuth)


def test_every_check_is_on() -> None:
    """The runs below apply every check schemathesis has, for every operation."""
    load_all_checks()
    names = {check.__name__ for check in CHECKS.get_all() if not isinstance(check, type)}
    assert "positive_data_acceptance" in names
    for result in schema.get_all_operations():
        operation = result.ok()
        config = schema.config.checks_config_for(operation=operation)
        assert all(config.get_by_name(name=name).enabled for name in names), operation.label


@pytest.fixture
def served_identity(fuzz_identity: FuzzIdentity) -> Iterator[FuzzIdentity]:
    """The identity generated requests of this test carry."""
    IdentityAuth.identity = fuzz_identity
    yield fuzz_identity
    IdentityAuth.identity = None


SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize=not FUZZ_EXAMPLES,
    suppress_health_check=list(HealthCheck),
)


@SETTINGS
@schema.parametrize()
def test_api_conforms_to_its_document(
    case: schemathesis.Case, served_identity: FuzzIdentity, live_server: LiveServer, tally: Tally
) -> None:
    """No generated request gets a 5xx; each answer's status, content type, headers and
    body are the documented ones, and operations that declare security enforce it."""
    served_identity.issue(case)
    served_identity.point_at_real_object(case)
    response = call_and_check(case, live_server.url, tally)
    served_identity.recover(case, response)


# The operations the document links: uploads, share links and tokens, and what is done with
# them next.
# createFolder is kept so that a folder is made somewhere: schemathesis starts a walk only
# from an operation whose inputs (an upload's `folder_id`) some kept operation produces.
LINKED_OPERATIONS = [
    "createFolder",
    "uploadFile",
    "getFile",
    "downloadFile",
    "deleteFile",
    "createShareLink",
    "revokeShareLink",
    "createToken",
    "revokeToken",
]


def only_operations(whole: dict[str, Any], kept: list[str]) -> dict[str, Any]:
    """The document with only these operations, and only the links between them.

    The state machine then walks these alone: with every operation in it, calls such as
    register answer differently as the server's state grows from one example to the next,
    and hypothesis refuses a draw that depends on such outside state.
    """
    part = copy.deepcopy(whole)
    paths: dict[str, Any] = {}
    for path, item in part["paths"].items():
        ops = {
            m: op
            for m, op in item.items()
            if isinstance(op, dict) and op.get("operationId") in kept
        }
        for op in ops.values():
            for answer in op.get("responses", {}).values():
                links = answer.get("links")
                if links:
                    answer["links"] = {
                        name: link
                        for name, link in links.items()
                        if link.get("operationId") in kept
                    }
        if ops:
            paths[path] = {**{k: v for k, v in item.items() if not isinstance(v, dict)}, **ops}
    part["paths"] = paths
    return part


linked_schema = schemathesis.openapi.from_dict(
    only_operations(document(), LINKED_OPERATIONS), config=fuzz_config()
)
linked_schema.auth(refresh_interval=None)(IdentityAuth)


def test_linked_operations_conform_on_real_objects(
    served_identity: FuzzIdentity, live_server: LiveServer, worker: Callable[[], None]
) -> None:
    """Following the document's links from real uploads and tokens: details, download and
    share links (of a validated file, and of one still pending), delete and revoke all answer
    as documented."""
    seen: set[tuple[str, int]] = set()
    # Which walk runs (read by the machine's after_call).
    walks = [0]

    class CofferStateMachine(linked_schema.as_state_machine()):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            # Counted per example: a count carried over from the last example would make
            # the same draw validate other uploads, and hypothesis refuses a generation that
            # depends on what came before.
            self.uploads = itertools.count()

        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
            """Send to the live server."""
            return {"base_url": live_server.url, "timeout": TIMEOUT}

        def before_call(self, case: schemathesis.Case) -> None:
            """Real invite codes and cursors in schema-valid requests, as in the run above."""
            served_identity.issue(case)

        def after_call(self, response: schemathesis.Response, case: schemathesis.Case) -> None:
            """Keep the identity usable, note the answer, validate some uploads."""
            served_identity.recover(case, response)
            seen.add((case.operation.label, response.status_code))
            if case.operation.label == "POST /api/files/upload" and response.status_code == 201:
                # Validate uploads at once, so links reach ready and pending files: every
                # other one in the first walk, every one but an example's first in a later
                # walk (which runs when the first did not download a ready file).
                n = next(self.uploads)
                if (n % 2 == 1) if walks[0] == 0 else (n > 0):
                    worker()

    followed = {
        ("POST /api/files/upload", 201),
        ("GET /api/files/{file_id}", 200),
        ("GET /api/files/{file_id}/download", 200),
        ("GET /api/files/{file_id}/download", 409),
        ("DELETE /api/files/{file_id}", 204),
        ("POST /api/files/{file_id}/links", 201),
        ("POST /api/files/{file_id}/links", 409),
        ("POST /api/tokens", 201),
        ("DELETE /api/tokens/{token_id}", 204),
    }
    # The draw is fixed (derandomized), so any change to the document moves it, and which
    # uploads are validated when depends on the server's answers: the walk runs again (each
    # run meeting the objects the last ones left) until every link above was followed, at
    # most three times. Every answer of every run is checked against the document.
    for walk in range(3):
        walks[0] = walk
        run_state_machine_as_test(
            CofferStateMachine,
            settings=settings(SETTINGS, max_examples=max(EXAMPLES, 40), stateful_step_count=15),
        )
        if followed <= seen:
            break
    assert followed <= seen, sorted(seen)
