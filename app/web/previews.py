"""A file's preview page (its large preview, or the head of a text file, its neighbours in
the folder and its history), and the page behind a share link: /s/<secret> answers a
browser's navigation with a page, and every other client with the bytes (app/api/links.py)."""

from __future__ import annotations

from typing import Any

from flask import Response, render_template, request, url_for
from flask.typing import ResponseReturnValue

from ..files import access, excerpt, listing, policy, previews
from ..limits import share_limit
from ..services import activity, links
from ..services.errors import NotFound
from ..share_negotiation import prefers_html
from .views import PAGE_POLICY, SORTS, bp, default_order, page, user

# The history shown under a preview; the API's `/api/files/<id>/activity` pages through all.
HISTORY_SHOWN = 50
# The API's route that sends a shared file's bytes; its problems are pages for browsers.
SHARE_ENDPOINT = "links.download"
# The statuses of /s/<secret> that a browser sees as a page rather than as JSON.
SHARE_PROBLEMS = {
    404: "This link does not work",
    410: "This file is not available",
    429: "Too many requests",
}


# ---- a file's preview page --------------------------------------------------------------


def listing_order() -> tuple[listing.Sort, listing.Order]:
    """The files page's sort and order the preview was opened from (the default otherwise)."""
    sort = request.args.get("sort")
    sort = sort if sort in SORTS else "uploaded_at"
    order = request.args.get("order")
    order = order if order in ("asc", "desc") else default_order(sort)
    return listing.Sort(sort), listing.Order(order)


def order_arguments(sort: listing.Sort, order: listing.Order) -> dict[str, Any]:
    """The query string that keeps a listing's sort and order (nothing for the defaults)."""
    values: dict[str, Any] = {
        "sort": None if sort is listing.Sort.UPLOADED_AT else sort.value,
        "order": None if order.value == default_order(sort.value) else order.value,
    }
    return {k: v for k, v in values.items() if v is not None}


@bp.get("/files/<uuid:file_id>")
@page
def preview_page(file_id: Any) -> ResponseReturnValue:
    """One file: its large preview (images, PDFs), the head of a text file as text, or a
    note; Download, Share, Versions, the files beside it in its folder, and its history."""
    me = user()
    row = access.get_file(me.organization_id, str(file_id))
    sort, order = listing_order()
    kept = order_arguments(sort, order)
    beside = listing.neighbours(me.organization_id, row, sort=sort, order=order)
    text = None
    if not row.preview and excerpt.is_text(row) and row.status == "ready":
        text = excerpt.text_head(row)
    _, history = activity.file_history(me, row.id, limit=HISTORY_SHOWN)
    return render_template(
        "preview.html",
        file=row,
        text=text,
        text_limit=excerpt.TEXT_HEAD_BYTES,
        previous=beside.previous,
        next=beside.next,
        kept=kept,
        back=url_for("web.files", folder=row.folder_id, **kept),
        events=history.events,
        more_history=history.next_cursor is not None,
        may_change=policy.may_change_file(me, row.uploaded_by),
        me=me,
    )


# ---- the page behind a share link --------------------------------------------------------


def as_page(response: Response) -> Response:
    """A page of a share link, answered under the API's endpoint: the pages' own policy,
    and never cached (it names a file that a revoke hides at once)."""
    response.headers["Content-Security-Policy"] = PAGE_POLICY
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/s/<secret>/page")
@share_limit
def shared_page(secret: str) -> ResponseReturnValue:
    """What a browser opening /s/<secret> sees (app/share_negotiation.py routes it here):
    the file's name, size, large preview when it has one and a Download button; a page
    saying the link does not work (404) when it cannot be used. Nothing is counted."""
    try:
        shared = links.resolve(secret)
    except NotFound:
        return problem_page(404)
    return render_template("shared.html", file=shared.file, secret=secret)


def problem_page(status: int) -> Response:
    """Why a share link gives nothing, as a page for a person."""
    body = render_template("shared_gone.html", status=status, title=SHARE_PROBLEMS[status])
    return as_page(Response(body, status=status, mimetype="text/html"))


@bp.after_app_request
def share_problems_as_pages(response: Response) -> Response:
    """A browser's download from a link that no longer works (`?download=1`, or too many
    requests) sees a page, not the API's JSON."""
    if (
        request.endpoint == SHARE_ENDPOINT
        and request.method == "GET"
        and response.status_code in SHARE_PROBLEMS
        and response.mimetype == "application/json"
        and prefers_html(request.headers.get("Accept"))
    ):
        page_answer = problem_page(response.status_code)
        response.set_data(page_answer.get_data())
        response.mimetype = "text/html"
        for name in ("Content-Security-Policy", "Cache-Control"):
            response.headers[name] = page_answer.headers[name]
    return response


@bp.get("/s/<secret>/preview")
@share_limit
def shared_preview(secret: str) -> ResponseReturnValue:
    """A shared file's large preview, for its page: no download is counted nor recorded."""
    shared = links.resolve(secret)
    # NoPreview (a 404 `no_preview`) when it has none: the page then shows no image.
    image = previews.read(shared.file.organization_id, shared.file.id, "large")
    response = Response(image.data, mimetype=image.mime_type)
    response.set_etag(image.etag.strip('"'))
    response.headers["Cache-Control"] = "private, no-cache"
    return response.make_conditional(request)
