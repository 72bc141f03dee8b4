"""Share link endpoints: make, list and revoke a file's links, and /s/<secret>, where
anyone holding a link downloads the file without an account."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from flask import request
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from .. import schemas
from ..downloads import file_response
from ..limits import share_limit
from ..services import activity, links
from .contract import (
    DOWNLOAD_ANSWERS,
    DOWNLOAD_HEADERS,
    E400_WRITE,
    E401,
    E413_JSON,
    FILE_ID,
    JSON_BODY_CODES,
    LINK_ID,
    PUBLIC,
    READ,
    SECRET,
    WRITE,
    DocumentedBlueprint,
    error,
    link,
    operation,
    optional_json_body,
    query_parameter,
    ref,
    response,
    with_links,
)
from .inputs import parse_optional_body

bp = DocumentedBlueprint("links", __name__)


@bp.post(
    "/api/files/<uuid:file_id>/links",
    openapi=operation(
        "createShareLink",
        "Make a share link to a ready file; its URL is shown once",
        "links",
        {
            "201": with_links(
                response(
                    "The link; `url` holds its secret and works without an account.",
                    ref(schemas.IssuedShareLink),
                ),
                RevokeShareLink=link("revokeShareLink", link_id="$response.body#/id"),
            ),
            "400": error(
                "the body is not a JSON object of the fields (`expires_in` 60 to 2592000, "
                "`max_downloads` at least 1), or a session write lacks its CSRF token.",
                *JSON_BODY_CODES,
                "csrf_failed",
            ),
            "401": E401,
            "404": error("no such file in the organization.", "not_found"),
            "409": response("`not_ready`: pending, processing or failed.", ref(schemas.NotReady)),
            "413": E413_JSON,
        },
        security=WRITE,
        parameters=[FILE_ID],
        body=optional_json_body(schemas.ShareLinkRequest),
        description="No body at all takes every default, as `{}` does.",
    ),
)
@login_required
def create(file_id: UUID) -> tuple[dict[str, Any], int]:
    """Make a link to a ready file; its URL, which holds the secret, is in this answer only."""
    body = parse_optional_body(schemas.ShareLinkRequest)
    issued = links.create_link(current_user, str(file_id), body.expires_in, body.max_downloads)
    return schemas.IssuedShareLink(
        id=issued.link.id,
        url=links.link_url(issued.secret, request.host_url),
        expires_at=issued.link.expires_at,
        max_downloads=issued.link.max_downloads,
        path=issued.path,
    ).body(), 201


@bp.get(
    "/api/files/<uuid:file_id>/links",
    openapi=operation(
        "listShareLinks",
        "A file's usable links (not expired, not used up), never their secrets",
        "links",
        {
            "200": response("The links, oldest first.", ref(schemas.ShareLinkList)),
            "401": E401,
            "404": error("no such file in the organization.", "not_found"),
        },
        security=READ,
        parameters=[FILE_ID],
    ),
)
@login_required
def index(file_id: UUID) -> dict[str, Any]:
    """A file's usable links, never their secrets."""
    listed = links.list_links(current_user.organization_id, str(file_id))
    return schemas.ShareLinkList(
        links=[
            schemas.ShareLink(
                id=x.id,
                created_at=x.created_at,
                expires_at=x.expires_at,
                max_downloads=x.max_downloads,
                downloads=x.downloads,
                path=listed.path,
            )
            for x in listed.links
        ]
    ).body()


# Ids past the 32-bit id column match no route (404) rather than overflow the database.
@bp.delete(
    "/api/links/<id:link_id>",
    openapi=operation(
        "revokeShareLink",
        "Revoke a share link at once (its creator, the file's uploader or an admin)",
        "links",
        {
            "204": response("Revoked."),
            "400": E400_WRITE,
            "401": E401,
            "403": error(
                "neither the link's creator, the file's uploader nor an admin.", "forbidden"
            ),
            "404": error("no such link in the organization.", "not_found"),
        },
        security=WRITE,
        parameters=[LINK_ID],
    ),
)
@login_required
def revoke(link_id: int) -> tuple[str, int]:
    """Revoke a link at once."""
    links.revoke_link(current_user, link_id)
    return "", 204


@bp.get(
    "/s/<secret>",
    openapi=operation(
        "downloadSharedFile",
        "A shared file, without an account, as the download endpoint gives it",
        "links",
        {
            **DOWNLOAD_ANSWERS,
            "404": error(
                "alike for an unknown, expired, revoked or used up link, and for a file "
                "that was deleted.",
                "not_found",
            ),
            "410": error(
                "the file is ready but its bytes are missing from storage.", "file_missing"
            ),
            "416": error("a well-formed Range entirely outside the file.", "range_not_satisfiable"),
            "429": error(
                "too many requests from this address (SHARE_LIMIT_PER_ADDRESS); "
                "`Retry-After` says when to try again.",
                "rate_limited",
            ),
        },
        security=PUBLIC,
        parameters=[
            SECRET,
            query_parameter(
                "download",
                {"type": "string"},
                "Present (any value): the bytes, even to a browser that prefers HTML.",
            ),
            *DOWNLOAD_HEADERS,
        ],
        description="Every answer that sends bytes (200, 302 to the store, 206 of any "
        "range) uses one of the link's `max_downloads`; 304 and HEAD do not. A browser's "
        "navigation (an `Accept` that ranks `text/html` above both "
        "`application/octet-stream` and `application/json`) is answered instead by the "
        "link's HTML page (200, or 404 for a link that cannot be used, 429 past the limit), "
        "which counts no download; with the query parameter `download` (`?download=1`, the "
        "page's Download button), or from any other client (`*/*`, no `Accept`), the bytes "
        "as described here, and an unusable link's 404 is JSON except to a browser.",
    ),
)
@share_limit
def download(secret: str) -> Response:
    """The shared file, as GET /api/files/<id>/download gives it; each download counts."""
    shared = links.resolve(secret)
    response = file_response(
        shared.file,
        activity.download_recorder(
            shared.file.organization_id,
            activity.by_link(shared.link_id),
            activity.on_file(shared.file.id, shared.file.filename),
        ),
    )
    if request.method != "HEAD" and links.counts_as_download(response.status_code):
        try:
            links.count_download(shared)
        except BaseException:
            response.close()  # the last download went to another request: nothing is sent
            raise
    return response
