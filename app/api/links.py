"""Share link endpoints: make, list and revoke a file's links, and /s/<secret>, where
anyone holding a link downloads the file without an account."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from flask import Blueprint, current_app, request
from flask_limiter.util import get_remote_address
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from .. import schemas
from ..extensions import limiter
from ..services import links
from .files import file_response
from .inputs import parse_body

bp = Blueprint("links", __name__)


@bp.post("/api/files/<uuid:file_id>/links")
@login_required
def create(file_id: UUID) -> tuple[dict[str, Any], int]:
    """Make a link to a ready file; its URL, which holds the secret, is in this answer only."""
    # No body at all takes every default, as `{}` does.
    has_body = bool(request.content_length) or request.is_json
    body = parse_body(schemas.ShareLinkRequest) if has_body else schemas.ShareLinkRequest()
    issued = links.create_link(current_user, str(file_id), body.expires_in, body.max_downloads)
    return schemas.IssuedShareLink(
        id=issued.link.id,
        url=links.link_url(issued.secret, request.host_url),
        expires_at=issued.link.expires_at,
        max_downloads=issued.link.max_downloads,
    ).body(), 201


@bp.get("/api/files/<uuid:file_id>/links")
@login_required
def index(file_id: UUID) -> dict[str, Any]:
    """A file's usable links, never their secrets."""
    listed = links.list_links(current_user.organization_id, str(file_id))
    return schemas.ShareLinkList(links=[schemas.ShareLink.model_validate(x) for x in listed]).body()


# Ids past the 32-bit id column match no route (404) rather than overflow the database.
@bp.delete("/api/links/<id:link_id>")
@login_required
def revoke(link_id: int) -> tuple[str, int]:
    """Revoke a link at once."""
    links.revoke_link(current_user, link_id)
    return "", 204


@bp.get("/s/<secret>")
@limiter.limit(
    lambda: current_app.config["SHARE_LIMIT_PER_ADDRESS"],
    key_func=get_remote_address,
    scope="share-address",
)
def download(secret: str) -> Response:
    """The shared file, as GET /api/files/<id>/download gives it; each download counts."""
    shared = links.resolve(secret)
    response = file_response(shared.file)
    if request.method != "HEAD" and links.counts_as_download(response.status_code):
        try:
            links.count_download(shared)
        except BaseException:
            response.close()  # the last download went to another request: nothing is sent
            raise
    return response
