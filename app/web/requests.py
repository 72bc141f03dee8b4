"""Upload-only links on the pages: a folder's "Request files", the page listing every link
of the organization, and /r/<secret>, where anyone holding a link sends files (the form,
or resumable for large ones) and follows only the files sent from that browser."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any, TypeVar, cast

from flask import current_app, g, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_limiter.util import get_remote_address
from flask_wtf.csrf import validate_csrf
from werkzeug.datastructures import ImmutableMultiDict
from werkzeug.http import http_date
from werkzeug.wrappers import Response as BaseResponse
from wtforms.validators import ValidationError

from .. import schemas
from ..errors import APIError, describe_rejection, domain_status
from ..extensions import limiter
from ..files import file_requests, intake
from ..files.file_requests import Open
from ..files.names import ROOT
from ..multipart import received_file
from ..schemas import InputRejected, validated
from ..services import links
from ..services.errors import DomainError, NotFound
from ..storage import display_name
from .views import (
    RESUMABLE_ABOVE,
    bp,
    files_page,
    page,
    safe_next,
    show_once,
    user,
    whole_number,
)

F = TypeVar("F", bound=Callable[..., Any])

# The files this browser sent, by link: {link id: {file id: the name as sent}}, kept in
# the visitor's session (server-side), so only they are shown to it.
SENT = "_coffer_sent"
# At most this many files are followed per link in one session (the newest).
MAX_FOLLOWED = 200
TUS_VERSION = "1.0.0"


def visitor_limit() -> Callable[[F], F]:
    """REQUEST_LIMIT_PER_ADDRESS, per client address, for what opens a link or adds a file."""
    return limiter.limit(  # type: ignore[return-value]
        lambda: current_app.config["REQUEST_LIMIT_PER_ADDRESS"],
        key_func=get_remote_address,
        scope="request-address",
    )


# ---- the members' side ---------------------------------------------------------------


@bp.post("/folders/requests", endpoint="create_file_request")
@page
def create_file_request() -> ResponseReturnValue:
    """The files page's Request files form: a link into the folder shown, shown once."""
    form = request.form
    place = form.get("folder_id") or ROOT
    data: dict[str, Any] = {}
    for name in ("expires_in", "max_files"):
        number = whole_number(form.get(name))
        if number is not None:
            data[name] = number
    if form.get("message", "").strip():
        data["message"] = form["message"]
    try:
        body = validated(schemas.FileRequestRequest, data)
        issued = file_requests.create_request(
            user(),
            place,
            expires_in=body.expires_in,
            max_files=body.max_files,
            message=body.message,
        )
    except InputRejected as exc:
        return files_again_with(place, describe_rejection(exc)[1], 400)
    except DomainError as exc:
        if exc.code == "not_found":
            raise
        return files_again_with(place, exc.message, domain_status(exc))
    show_once(request_link={"url": file_requests.request_url(issued.secret, request.host_url)})
    return redirect(url_for("web.files", folder=None if place == ROOT else place), 303)


def files_again_with(place: str, error: str, status: int) -> ResponseReturnValue:
    """The files page of the place, with why the form was refused."""
    request.args = ImmutableMultiDict({} if place == ROOT else {"folder": place})
    return files_page(error=error, status=status)


@bp.get("/links", endpoint="links_page")
@page
def links_page() -> ResponseReturnValue:
    """Every live share link and upload-only link of the organization (an admin's), or
    the member's own; each may be revoked here."""
    me = user()
    return render_template(
        "links.html",
        share_links=links.organization_links(me),
        requests=file_requests.list_requests(me),
        me=me,
    )


@bp.post("/requests/<id:request_id>/revoke", endpoint="revoke_file_request")
@page
def revoke_file_request(request_id: int) -> BaseResponse:
    """Revoke an upload-only link, then back to the links page."""
    file_requests.revoke_request(user(), request_id)
    return redirect(safe_next(request.form.get("next") or url_for("web.links_page")), 303)


# ---- the visitor's side --------------------------------------------------------------


def gone() -> ResponseReturnValue:
    """The page for a link that cannot be used, whatever the reason."""
    return render_template("request_gone.html", me=None), 404


def followed(link: Open) -> dict[str, str]:
    """The files this browser sent through the link: id -> the name as sent."""
    sent = cast(dict[str, dict[str, str]], session.get(SENT) or {})
    return dict(sent.get(str(link.id), {}))


def follow(link: Open, file_id: str, name: str) -> None:
    """Remember a file this browser sent, for its page and its status."""
    sent = cast(dict[str, dict[str, str]], dict(session.get(SENT) or {}))
    mine = dict(sent.get(str(link.id), {}))
    mine[file_id] = name
    if len(mine) > MAX_FOLLOWED:
        mine = dict(list(mine.items())[-MAX_FOLLOWED:])
    sent[str(link.id)] = mine
    session[SENT] = sent


def check_visitor_csrf(token: str | None) -> None:
    """The page's token, bound to the visitor's session: a form on another site has none."""
    try:
        validate_csrf(token)
    except ValidationError:
        raise APIError(400, "csrf_failed", "the page expired; reload it and try again") from None


def sent_json(link: Open, names: dict[str, str]) -> list[dict[str, Any]]:
    """The visitor's files as their page shows them: the name they sent (never the name it
    took in the folder, which would tell of the folder's others), size, progress, verdict."""
    return [
        {
            "id": item.id,
            "name": names.get(item.id, ""),
            "status": item.status,
            "size": item.size,
            "received": item.received,
            "error": item.error_message,
        }
        for item in file_requests.sent_files(link, list(names))
    ]


@bp.get("/r/<secret>", endpoint="request_page")
@visitor_limit()
def request_page(secret: str) -> ResponseReturnValue:
    """The page where anyone holding the link sends files, and follows those they sent."""
    try:
        link = file_requests.resolve(secret)
    except NotFound:
        return gone()
    names = followed(link)
    return render_template(
        "request.html",
        link=link,
        secret=secret,
        sent=list(reversed(sent_json(link, names))),
        upload_limit=intake.max_file_size(),
        resumable_above=RESUMABLE_ABOVE,
        me=None,
    )


@bp.post("/r/<secret>/files", endpoint="request_upload")
@visitor_limit()
def request_upload(secret: str) -> ResponseReturnValue:
    """A file sent by the form: JSON for the page's script (which sends the token in
    X-CSRF-Token), else back to the page."""
    link = file_requests.resolve(secret)
    header_token = request.headers.get("X-CSRF-Token")
    if header_token is not None:
        check_visitor_csrf(header_token)
    # The file's bytes go to the link's organization as they arrive.
    g.receiving_for_organization = link.organization_id
    part = request.files.get("file")
    if header_token is None:
        check_visitor_csrf(request.form.get("csrf_token"))
    if part is None:
        raise APIError(400, "no_file", "send the file as multipart/form-data field 'file'")
    receiving = received_file(part)
    if receiving is None:  # pragma: no cover - request class invariant
        raise APIError(500, "internal_error", "upload was not streamed to storage")
    accepted = file_requests.accept(link, receiving)
    follow(link, accepted.file_id, receiving.display_name)
    if header_token is None:
        return redirect(url_for("web.request_page", secret=secret), 303)
    return {
        "id": accepted.file_id,
        "name": receiving.display_name,
        "size": accepted.size,
        "status": "pending",
    }, 201


@bp.get("/r/<secret>/files", endpoint="request_files")
def request_files(secret: str) -> ResponseReturnValue:
    """The files this browser sent through the link, for the page's status polling."""
    link = file_requests.resolve(secret)
    return {"files": sent_json(link, followed(link))}


@bp.get("/r/<secret>/files/<file_id>", endpoint="request_file")
def request_file(secret: str, file_id: str) -> ResponseReturnValue:
    """One file this browser sent; 404 for any other id."""
    link = file_requests.resolve(secret)
    names = followed(link)
    item = file_requests.sent_file(link, file_id, list(names))
    return {
        "id": item.id,
        "name": names[item.id],
        "status": item.status,
        "size": item.size,
        "received": item.received,
        "error": item.error_message,
    }


# ---- the visitor's resumable uploads (tus 1.0.0: creation, HEAD, PATCH) ---------------


def tus_answer(status: int, headers: dict[str, str]) -> BaseResponse:
    """A body-less tus answer."""
    answer = BaseResponse("", status, {**headers, "Tus-Resumable": TUS_VERSION})
    return answer


def tus_number(name: str) -> int:
    """A tus header holding a non-negative integer; 400 otherwise."""
    raw = (request.headers.get(name) or "").strip()
    if not raw.isascii() or not raw.isdigit() or len(raw) > 19:
        raise APIError(400, f"invalid_{name.lower().replace('-', '_')}", f"send {name}")
    return int(raw)


def tus_filename(metadata: str) -> str:
    """The file name of Upload-Metadata (`filename <base64>`)."""
    for item in metadata.split(","):
        key, _, value = item.strip().partition(" ")
        if key == "filename" and value.strip():
            try:
                return display_name(base64.b64decode(value.strip(), validate=True).decode())
            except (binascii.Error, ValueError):
                break
    raise APIError(400, "invalid_filename", "Upload-Metadata must carry filename <base64>")


def check_tus() -> None:
    """412 unless the request speaks tus 1.0.0; then the page's token."""
    if request.headers.get("Tus-Resumable") != TUS_VERSION:
        raise APIError(412, "unsupported_version", f"send Tus-Resumable: {TUS_VERSION}")
    check_visitor_csrf(request.headers.get("X-CSRF-Token"))


@bp.post("/r/<secret>/uploads", endpoint="request_tus_create")
@visitor_limit()
def request_tus_create(secret: str) -> ResponseReturnValue:
    """Begin a resumable upload through the link (one of its files is taken now)."""
    link = file_requests.resolve(secret)
    check_tus()
    length = tus_number("Upload-Length")
    metadata = request.headers.get("Upload-Metadata", "")
    name = tus_filename(metadata)
    started = file_requests.begin_resumable(link, length, name, metadata)
    follow(link, started.id, name)
    return tus_answer(
        201,
        {
            "Location": url_for("web.request_tus_append", secret=secret, upload_id=started.id),
            "Upload-Offset": "0",
            "Upload-Expires": http_date(started.expires_at),
        },
    )


@bp.route(
    "/r/<secret>/uploads/<upload_id>", methods=["HEAD", "PATCH"], endpoint="request_tus_append"
)
def request_tus_append(secret: str, upload_id: str) -> ResponseReturnValue:
    """Where one of this browser's uploads stands (HEAD), or its next bytes (PATCH)."""
    link = file_requests.resolve(secret)
    if upload_id not in followed(link):
        raise NotFound("not_found", "upload not found")
    if request.method == "HEAD":
        if request.headers.get("Tus-Resumable") != TUS_VERSION:
            raise APIError(412, "unsupported_version", f"send Tus-Resumable: {TUS_VERSION}")
        state = file_requests.resumable_progress(link, upload_id)
        return tus_answer(
            200,
            {
                "Upload-Offset": str(state.offset),
                "Upload-Length": str(state.length),
                "Cache-Control": "no-store",
            },
        )
    check_tus()
    if request.mimetype != "application/offset+octet-stream":
        raise APIError(415, "unsupported_media_type", "send application/offset+octet-stream")
    if request.content_length is None:
        raise APIError(400, "length_required", "send the body with a Content-Length")
    offset = tus_number("Upload-Offset")
    state = file_requests.append_resumable(
        link, upload_id, offset, request.stream, request.content_length
    )
    headers = {"Upload-Offset": str(state.offset)}
    if not state.completed:
        headers["Upload-Expires"] = http_date(state.expires_at)
    return tus_answer(204, headers)
