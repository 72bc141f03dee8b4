"""The pages: sign in, create an account (also by an invite link), files, tokens and one's
password, the organization (roles, invites, password reset links), a reset link's page."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Response,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    stream_with_context,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_limiter.errors import RateLimitExceeded
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from werkzeug.datastructures import ImmutableMultiDict
from werkzeug.wrappers import Response as BaseResponse

from .. import schemas
from ..authentication import (
    end_session,
    end_sessions_of,
    keep_session_after_password_change,
    start_session,
)
from ..content_disposition import attachment
from ..errors import MESSAGES, describe_rejection, domain_status
from ..extensions import csrf
from ..files import access, archive, folders, intake, listing, policy, retention, trash, versions
from ..files.names import ROOT
from ..limits import login_limits, password_limit, register_limit
from ..models import File, FileStatus, Folder, Role, TokenAccess, User, utcnow
from ..schemas import InputRejected, validated
from ..services import accounts, activity, links, passwords, tokens, webhooks
from ..services.errors import DomainError, NotAllowed, NotFound
from . import display

bp = Blueprint(
    "web",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)
bp.add_app_template_filter(display.size, "size")
bp.add_app_template_filter(display.amount, "amount")
bp.add_app_template_filter(display.when, "when")
bp.add_app_template_filter(display.kind, "kind")

F = TypeVar("F", bound=Callable[..., Any])

# Pages may load scripts, styles and images from Coffer itself and nothing else; the API's
# answers keep the stricter policy of app/middleware.py.
PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
PAGE_SIZE = 20
# The pages of a share link, which anyone holding it opens (app/web/previews.py).
SHARE_LINK_PAGES = frozenset({"web.shared_page", "web.shared_preview"})
# Register's domain errors that concern one field, by code.
FIELD_OF_CODE = {
    "email_taken": "email",
    "invite_required": "invite_code",
    "invite_invalid": "invite_code",
}


@bp.after_request
def page_headers(response: Response) -> Response:
    """The pages' policy; pages show a user's data, so no cache keeps them."""
    response.headers["Content-Security-Policy"] = PAGE_POLICY
    if response.mimetype == "text/html":
        response.headers["Cache-Control"] = "no-store"
    return response


def signed_in() -> bool:
    """Whether the page's visitor is signed in by the session cookie (pages take no token)."""
    return bool(current_user.is_authenticated) and g.get("auth_method") == "session"


def page(view: F) -> F:
    """A signed-in page: a visitor who is not signed in gets the sign-in form first."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not signed_in():
            return redirect(url_for("web.login", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)

    return cast(F, wrapped)


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path on this site, never another site."""
    if not target:
        return url_for("web.files")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("web.files")
    if "\\" in target or any(ord(c) < 32 for c in target):
        return url_for("web.files")
    return target


def user() -> User:
    """The signed-in user."""
    return cast(User, current_user._get_current_object())


def admin_page(view: F) -> F:
    """An admin-only action of the organization page: anyone else gets that page with the
    refusal (403). The services refuse as well; refusing first answers before the form is
    read, so a non-admin's form is refused, not corrected."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        try:
            policy.require_admin(user())
        except NotAllowed as exc:
            return render_org(error=exc.message, status=domain_status(exc))
        return view(*args, **kwargs)

    return cast(F, wrapped)


# ---- signing in and out -------------------------------------------------------------


def sign_in_or_up_template() -> str:
    """The form page of the sign-in or sign-up request being answered."""
    return "register.html" if request.endpoint == "web.register" else "login.html"


@bp.errorhandler(RateLimitExceeded)
def rate_limited(exc: RateLimitExceeded) -> ResponseReturnValue:
    """Too many attempts: the form again, with the API's message as an alert (a share
    link's page or preview: a page saying so)."""
    if request.endpoint in SHARE_LINK_PAGES:
        page_answer = render_template("shared_gone.html", status=429, title="Too many requests")
        return page_answer, 429, dict(exc.get_headers()) | {"Content-Type": "text/html"}
    return render_template(
        sign_in_or_up_template(),
        alert=MESSAGES[429],
        form=request.form,
        errors={},
        next=request.args.get("next"),
    ), 429


@bp.errorhandler(CSRFError)
def csrf_failed(exc: CSRFError) -> ResponseReturnValue:
    """A form without its page's token (an old tab, another site): nothing done, say so."""
    alert = "the form expired; please try again"
    if request.endpoint in {"web.login", "web.register"}:
        return render_template(
            sign_in_or_up_template(), alert=alert, form={}, errors={}, next=None
        ), 400
    back = request.referrer if safe_referrer() else url_for("web.files")
    return render_template("problem.html", alert=alert, back=back, me=user()), 400


def safe_referrer() -> bool:
    """Whether the Referer is one of this site's pages."""
    referrer = request.referrer or ""
    return urlsplit(referrer).netloc == request.host


@bp.get("/login")
def login_form() -> ResponseReturnValue:
    """The sign-in form (a visitor already signed in goes on)."""
    if signed_in():
        return redirect(safe_next(request.args.get("next")))
    return render_template("login.html", form={}, alert=None, next=request.args.get("next"))


@bp.post("/login")
@login_limits
def login() -> ResponseReturnValue:
    """Sign in with the form, then go where the visitor was going."""
    csrf.protect()
    form = request.form
    try:
        body = validated(
            schemas.LoginRequest,
            {"email": form.get("email", ""), "password": form.get("password", "")},
        )
        signed = accounts.authenticate(body.email, body.password)
    except InputRejected as exc:
        _, message, _ = describe_rejection(exc)
        return render_template("login.html", form=form, alert=message, next=form.get("next")), 400
    except DomainError as exc:
        return render_template(
            "login.html", form=form, alert=exc.message, next=form.get("next")
        ), domain_status(exc)
    start_session(signed)
    return redirect(safe_next(form.get("next")))


@bp.get("/register")
def register_form() -> ResponseReturnValue:
    """The sign-up form."""
    return render_template("register.html", form={}, errors={}, alert=None)


@bp.post("/register")
@register_limit
def register() -> ResponseReturnValue:
    """Create the account from the form; errors go next to their field."""
    csrf.protect()
    form = request.form
    data = {
        "email": form.get("email", ""),
        "password": form.get("password", ""),
        "organization_name": form.get("organization_name", ""),
        "invite_code": form.get("invite_code") or None,
    }
    try:
        body = validated(schemas.RegisterRequest, data)
        created = accounts.register(
            body.email, body.password, body.organization_name, body.invite_code
        )
    except InputRejected as exc:
        _, message, field = describe_rejection(exc)
        return register_again(form, field, message, 400)
    except DomainError as exc:
        field = getattr(exc, "field", None) or FIELD_OF_CODE.get(exc.code)
        return register_again(form, field, exc.message, domain_status(exc))
    start_session(created)
    return redirect(url_for("web.files"))


def register_again(form: Any, field: str | None, message: str, status: int) -> ResponseReturnValue:
    """The sign-up form again, the error beside its field (or above the form)."""
    errors = {field: message} if field else {}
    alert = None if field else message
    return render_template("register.html", form=form, errors=errors, alert=alert), status


@bp.get("/join/<code>")
def join_form(code: str) -> ResponseReturnValue:
    """An invite link's page: the organization it joins, and the sign-up form."""
    return render_join(code, form={}, errors={}, alert=None, status=200)


def render_join(
    code: str, form: Any, errors: dict[str, str], alert: str | None, status: int
) -> ResponseReturnValue:
    """The invite link's page, or why the link no longer works (404)."""
    invite = accounts.pending_invite(code) if len(code) <= schemas.MAX_INVITE_CODE_LENGTH else None
    if invite is None:
        return render_template("join.html", invite=None, organization=None), 404
    organization = accounts.organization_of(invite)
    return render_template(
        "join.html",
        invite=invite,
        organization=organization,
        code=code,
        form=form,
        errors=errors,
        alert=alert,
    ), status


@bp.post("/join/<code>")
@register_limit
def join(code: str) -> ResponseReturnValue:
    """Sign up into the invite's organization with the invite's role, then sign in."""
    csrf.protect()
    form = request.form
    try:
        body = validated(
            schemas.JoinRequest,
            {"email": form.get("email", ""), "password": form.get("password", "")},
        )
        joined = accounts.join(body.email, body.password, code)
    except InputRejected as exc:
        _, message, field = describe_rejection(exc)
        errors = {field: message} if field else {}
        return render_join(code, form, errors, None if field else message, 400)
    except DomainError as exc:
        field = getattr(exc, "field", None) or FIELD_OF_CODE.get(exc.code)
        if field == "invite_code":
            field = None  # the page's own code: said above the form
        errors = {field: exc.message} if field else {}
        return render_join(code, form, errors, None if field else exc.message, domain_status(exc))
    start_session(joined)
    return redirect(url_for("web.files"))


@bp.get("/reset/<code>")
def reset_form(code: str) -> ResponseReturnValue:
    """A password reset link's page: whose password it sets, and the form."""
    return render_reset(code, errors={}, alert=None, status=200)


def render_reset(
    code: str, errors: dict[str, str], alert: str | None, status: int
) -> ResponseReturnValue:
    """The reset link's page, or why the link no longer works (404)."""
    reset = passwords.pending_reset(code) if len(code) <= schemas.MAX_INVITE_CODE_LENGTH else None
    if reset is None:
        return render_template("reset.html", reset=None, done=False), 404
    return render_template(
        "reset.html", reset=reset, code=code, errors=errors, alert=alert, done=False
    ), status


@bp.post("/reset/<code>")
@password_limit
def reset(code: str) -> ResponseReturnValue:
    """Set a new password by a reset link (once); every session of its user ends."""
    csrf.protect()
    try:
        body = validated(schemas.PasswordSetRequest, {"password": request.form.get("password", "")})
        changed = passwords.reset_password(code, body.password)
    except InputRejected as exc:
        _, message, _ = describe_rejection(exc)
        return render_reset(code, {"password": message}, None, 400)
    except DomainError as exc:
        if getattr(exc, "field", None):
            return render_reset(code, {"password": exc.message}, None, domain_status(exc))
        return render_reset(code, {}, exc.message, domain_status(exc))
    end_sessions_of(changed)
    return render_template("reset.html", reset=None, done=True, email=changed.email)


@bp.post("/logout")
@page
def logout() -> BaseResponse:
    """Sign out: the server-side session is destroyed."""
    end_session()
    return redirect(url_for("web.login_form"))


# ---- files ------------------------------------------------------------------------------


# The query parameters the files page reads; no others are passed on.
LISTING_PARAMETERS = ("folder", "q", "sort", "order", "status", "cursor", "direction")
# What a link to another page of the same place keeps (not its cursor).
PLACE_PARAMETERS = ("folder", "q", "sort", "order", "status")
SORTS = ("uploaded_at", "name", "size")


def listing_arguments() -> dict[str, Any]:
    """The listing's own parameters of the query string, none empty.

    Only these go into the rows URL: url_for takes `_method`, `_external`, `_scheme` and
    `_anchor` as instructions, so a query string passed whole could break or bend the link.
    """
    return {k: v for k, v in request.args.items() if k in LISTING_PARAMETERS and v}


@dataclass(frozen=True)
class Shown:
    """What one view of the files page lists: its place, sort, search and rows."""

    folder_id: str | None
    crumbs: list[folders.Crumb]
    sort: str
    order: str
    q: str
    status: FileStatus | None
    page: listing.Page
    folders: list[Folder]
    # Each listed file's folder path, when the rows come from a search (else None).
    paths: dict[str | None, str] | None

    @property
    def arguments(self) -> dict[str, Any]:
        """The query string that shows this place again (sorted, searched, filtered)."""
        values = {
            "folder": self.folder_id,
            "q": self.q or None,
            "sort": None if self.sort == "uploaded_at" else self.sort,
            "order": None if self.order == default_order(self.sort) else self.order,
            "status": self.status.value if self.status else None,
        }
        return {k: v for k, v in values.items() if v is not None}


def default_order(sort: str) -> str:
    """The order a column starts in: names A to Z, sizes and times largest and newest first."""
    return "asc" if sort == "name" else "desc"


def requested_page() -> Shown:
    """The folder, search and page of files the query string asks for."""
    me = user()
    args = listing_arguments()
    folder_id = folders.check_place(me.organization_id, args.get("folder"))
    sort = str(args["sort"]) if args.get("sort") in SORTS else "uploaded_at"
    order = str(args["order"]) if args.get("order") in ("asc", "desc") else default_order(sort)
    q = (args.get("q") or "").strip()
    query_args = {k: v for k, v in args.items() if k in ("status", "cursor")}
    try:
        query = validated(schemas.FileListQuery, {**query_args, "limit": PAGE_SIZE})
    except InputRejected:
        query = validated(schemas.FileListQuery, {"limit": PAGE_SIZE})
    newer = args.get("direction") == "newer" and query.cursor is not None
    # At the top level a search looks in every folder (`root` with `q` is the whole tree).
    place: dict[str, Any] = {
        "folder_id": folder_id if folder_id is not None else ROOT,
        "q": q or None,
        "sort": listing.Sort(sort),
        "order": listing.Order(order),
    }
    try:
        result = listing.list_files(
            me.organization_id,
            status=query.status,
            limit=PAGE_SIZE,
            cursor=query.cursor,
            newer=newer,
            **place,
        )
    except DomainError:  # a cursor that is not ours (or not this view's): the first page
        result = listing.list_files(
            me.organization_id, status=query.status, limit=PAGE_SIZE, **place
        )
        query = validated(schemas.FileListQuery, {"limit": PAGE_SIZE, "status": query.status})
    first_page = query.cursor is None
    shown_folders: list[Folder] = []
    if first_page and not q and query.status is None:
        # Folders come first, on the first page only; they sort by name alone (they have
        # no size of their own), Z to A when the names are sorted that way.
        shown_folders = folders.children(me.organization_id, folder_id)
        if sort == "name" and order == "desc":
            shown_folders.reverse()
    crumbs = folders.breadcrumbs(me.organization_id, folder_id) if folder_id else []
    return Shown(
        folder_id=folder_id,
        crumbs=crumbs,
        sort=sort,
        order=order,
        q=q,
        status=query.status,
        page=result,
        folders=shown_folders,
        paths=result.paths if q else None,
    )


def file_rows_of(result: listing.Page) -> list[tuple[File, str | None, bool, bool]]:
    """The page's rows as the table shows them: file, uploader, and whether the signed-in
    user may rename or move it, and delete it."""
    me = user()
    return [
        (
            row,
            uploader,
            policy.may_change_file(me, row.uploaded_by),
            policy.may_delete_file(me, row.uploaded_by),
        )
        for row, uploader in result.rows
    ]


# The files page's two layouts: a table (small thumbnails) or a grid of large ones.
VIEWS = ("list", "grid")
VIEW_KEY = "_coffer_files_view"


def files_view() -> str:
    """The layout asked for (`?view=`), remembered in the session for the next pages; else
    the one last chosen."""
    asked = request.args.get("view")
    if asked in VIEWS:
        if session.get(VIEW_KEY, "list") != asked:
            session[VIEW_KEY] = asked
        return asked
    kept = session.get(VIEW_KEY)
    return kept if kept in VIEWS else "list"


def rows_context(shown: Shown) -> dict[str, Any]:
    """What the table's rows need, for the whole page and for the rows alone."""
    return {
        "rows": file_rows_of(shown.page),
        "folders": shown.folders,
        "paths": shown.paths,
        "grid": files_view() == "grid",
        # A file's preview steps through its folder in the order the page shows.
        "order_arguments": {k: v for k, v in shown.arguments.items() if k in ("sort", "order")},
        # Where a row's form comes back to: this very page, or the place for the rows alone.
        "back": request.full_path
        if request.endpoint == "web.files"
        else url_for("web.files", **shown.arguments),
    }


@bp.get("/", endpoint="files")
@page
def files_page(error: str | None = None, status: int = 200) -> ResponseReturnValue:
    """One folder of the organization (the top level by default), or a search's results:
    its folders and files, the drop zone and the uploads in progress."""
    try:
        shown = requested_page()
    except NotFound:
        back = url_for("web.files")
        return render_template(
            "problem.html", alert="That folder is not here.", back=back, me=user()
        ), 404
    place_name = shown.crumbs[-1].name if shown.crumbs else "the top level"
    return render_template(
        "files.html",
        page=shown.page,
        **rows_context(shown),
        rows_url=url_for("web.file_rows", **listing_arguments()),
        status=shown.status.value if shown.status else "",
        statuses=[s.value for s in FileStatus],
        folder_id=shown.folder_id,
        crumbs=shown.crumbs,
        place_name=f"“{place_name}”" if shown.crumbs else place_name,
        place_arguments={k: v for k, v in shown.arguments.items() if k in PLACE_PARAMETERS},
        listing_arguments=shown.arguments,
        sort=shown.sort,
        order=shown.order,
        newest_first=shown.sort == "uploaded_at" and shown.order == "desc",
        q=shown.q,
        error=error,
        **once_on_files_page(),
        me=user(),
        upload_limit=intake.max_file_size(),
        resumable_above=RESUMABLE_ABOVE,
        request_lifetimes=REQUEST_LIFETIMES,
    ), status


# The lifetimes the Request files form offers, in seconds (7 days first: the default).
REQUEST_LIFETIMES = [
    (7 * 24 * 3600, "7 days"),
    (3600, "1 hour"),
    (24 * 3600, "1 day"),
    (30 * 24 * 3600, "30 days"),
    (90 * 24 * 3600, "90 days"),
]


def once_on_files_page() -> dict[str, Any]:
    """What the files page shows once: the items just trashed (Undo), a new upload-only
    link's URL."""
    once = shown_once()
    return {"trashed": once.get("trashed") or [], "request_link": once.get("request_link")}


# Larger files go through the resumable endpoint, in parts of this size.
RESUMABLE_ABOVE = 4 * 1024 * 1024


@bp.get("/files/rows")
@page
def file_rows() -> ResponseReturnValue:
    """The table's rows alone, for the page's script to refresh statuses without a reload."""
    return render_template("_file_rows.html", **rows_context(requested_page()))


@bp.post("/files/<uuid:file_id>/delete")
@page
def delete_file(file_id: Any) -> BaseResponse:
    """Move a file to the trash (the page's script asks first); the page it goes back to
    offers Undo."""
    item = trash.trash_file(user(), str(file_id))
    show_once(trashed=[trashed_entry(item)])
    return redirect(safe_next(request.form.get("next")))


def trashed_entry(item: trash.TrashItem) -> dict[str, str]:
    """What the files page's Undo notice needs of an item just put in the trash (plain
    values: the session keeps them)."""
    return {"id": item.id, "kind": item.kind, "name": item.name}


@bp.post("/folders")
@page
def create_folder() -> ResponseReturnValue:
    """The New folder form: make the folder in the place shown, then show that place again."""
    parent = request.form.get("parent_id") or ROOT
    try:
        folders.create_folder(user(), request.form.get("name", ""), parent)
    except DomainError as exc:
        if exc.code == "not_found":
            raise
        return files_again(parent, exc.message, domain_status(exc))
    target = url_for("web.files", folder=None if parent == ROOT else parent)
    return redirect(target, 303)


def files_again(parent: str, error: str, status: int) -> ResponseReturnValue:
    """The files page of a place, with why the form was refused."""
    request.args = ImmutableMultiDict({} if parent == ROOT else {"folder": parent})
    return files_page(error=error, status=status)


def selected() -> tuple[list[str], list[str]]:
    """The files and folders a selection form names."""
    return request.form.getlist("file_ids"), request.form.getlist("folder_ids")


@bp.post("/files/delete")
@page
def delete_selection() -> BaseResponse:
    """Move the selected files and folders to the trash (the page's script asks first);
    the page it goes back to offers Undo."""
    me = user()
    file_ids, folder_ids = selected()
    items = [trash.trash_folder(me, folder_id) for folder_id in folder_ids]
    items += [trash.trash_file(me, file_id) for file_id in file_ids]
    show_once(trashed=[trashed_entry(item) for item in items])
    return redirect(safe_next(request.form.get("next")), 303)


@bp.post("/trash/undo")
@page
def undo_delete() -> ResponseReturnValue:
    """Undo: the items just put in the trash go back where they were, then the page again."""
    me = user()
    for item_id in request.form.getlist("item_ids"):
        try:
            trash.restore(me, item_id)
        except NotFound:
            continue  # already restored (a second click) or removed for good meanwhile
    return redirect(safe_next(request.form.get("next")), 303)


@bp.post("/files/archive")
@page
def download_selection() -> ResponseReturnValue:
    """The selected files and folders as one zip, streamed as it is built."""
    file_ids, folder_ids = selected()
    built = archive.selection_archive(user().organization_id, file_ids, folder_ids)
    # As the API answers it: streamed with the request's context, never kept.
    response = Response(
        stream_with_context(built.chunks), mimetype="application/zip", direct_passthrough=True
    )
    response.headers["Content-Disposition"] = attachment(built.name)
    response.headers["Cache-Control"] = "private, no-store"
    return response


# ---- trash ------------------------------------------------------------------------------


@bp.get("/trash")
@page
def trash_page(error: str | None = None, status: int = 200) -> ResponseReturnValue:
    """The trash: what was deleted, by whom, and when it goes for good; Restore and Delete
    forever for each, Empty trash for admins."""
    me = user()
    cursor = request.args.get("cursor") or None
    try:
        listed = trash.list_trash(me, limit=PAGE_SIZE, cursor=cursor)
    except DomainError:  # a cursor that is not ours: the first page
        cursor = None
        listed = trash.list_trash(me, limit=PAGE_SIZE)
    once = shown_once()
    return render_template(
        "trash.html",
        items=listed.items,
        next_cursor=listed.next_cursor,
        first_page=cursor is None,
        now=utcnow(),
        retention_days=retention.trash_retention_days(me.organization),
        restored=once.get("restored"),
        removed=once.get("removed"),
        error=error,
        is_admin=policy.is_admin(me),
        me=me,
    ), status


@bp.post("/trash/<uuid:item_id>/restore")
@page
def restore_item(item_id: Any) -> ResponseReturnValue:
    """Put an item back where it was (or at the top level), then say where it is."""
    me = user()
    try:
        done = trash.restore(me, str(item_id))
    except DomainError as exc:
        return trash_page(error=exc.message, status=domain_status(exc))
    show_once(restored={"kind": done.kind, "path": done.path, "place": restored_place(done)})
    return redirect(url_for("web.trash_page"), 303)


def restored_place(done: trash.Restored) -> str:
    """The files page that shows a restored item: the folder it is in, or the folder itself."""
    if done.kind == "folder":
        return url_for("web.files", folder=done.id)
    row = access.get_file(user().organization_id, done.id)
    return url_for("web.files", folder=row.folder_id)


@bp.post("/trash/<uuid:item_id>/delete")
@page
def delete_forever(item_id: Any) -> ResponseReturnValue:
    """Remove an item of the trash for good (the page's script asks first)."""
    try:
        trash.delete_forever(user(), str(item_id))
    except DomainError as exc:
        return trash_page(error=exc.message, status=domain_status(exc))
    show_once(removed=1)
    return redirect(url_for("web.trash_page"), 303)


@bp.post("/trash/empty")
@page
def empty_trash() -> ResponseReturnValue:
    """Remove everything in the trash for good (admins; the page's script asks first)."""
    try:
        count = trash.empty_trash(user())
    except DomainError as exc:
        return trash_page(error=exc.message, status=domain_status(exc))
    show_once(removed=count)
    return redirect(url_for("web.trash_page"), 303)


# ---- versions ---------------------------------------------------------------------------


@bp.get("/files/<uuid:file_id>/versions")
@page
def versions_page(file_id: Any, error: str | None = None, status: int = 200) -> ResponseReturnValue:
    """A file's versions, newest first: Download for ready ones, Restore for older ones."""
    me = user()
    row = access.get_file(me.organization_id, str(file_id))
    listed = versions.list_versions(me, str(file_id))
    return render_template(
        "versions.html",
        file=row,
        versions=listed,
        may_change=policy.may_change_file(me, row.uploaded_by),
        kept=retention.versions_kept(me.organization),
        restored=shown_once().get("restored_version"),
        error=error,
        me=me,
    ), status


@bp.post("/files/<uuid:file_id>/versions/<id:number>/restore")
@page
def restore_version(file_id: Any, number: int) -> ResponseReturnValue:
    """Make an older version the newest again (a new version with its content)."""
    try:
        made = versions.restore_version(user(), str(file_id), number)
    except DomainError as exc:
        if exc.code == "not_found":
            raise
        return versions_page(file_id, error=exc.message, status=domain_status(exc))
    show_once(restored_version={"from": number, "to": made.version})
    return redirect(url_for("web.versions_page", file_id=file_id), 303)


# ---- tokens -----------------------------------------------------------------------------


# A new secret (token or invite code) waits in the server-side session for the one page
# that shows it: Post/Redirect/Get, so a reload neither shows it again nor makes another.
SHOW_ONCE = "_coffer_show_once"


def show_once(**values: Any) -> None:
    """Keep values for the next page this session loads."""
    session[SHOW_ONCE] = values


def shown_once() -> dict[str, Any]:
    """The values kept for this page, gone once read."""
    return cast(dict[str, Any], session.pop(SHOW_ONCE, None) or {})


# The lifetimes the token form offers, in seconds ("" : until revoked).
TOKEN_LIFETIMES = [
    ("", "Never"),
    (str(24 * 3600), "1 day"),
    (str(7 * 24 * 3600), "7 days"),
    (str(30 * 24 * 3600), "30 days"),
    (str(90 * 24 * 3600), "90 days"),
    (str(365 * 24 * 3600), "1 year"),
]


@bp.get("/tokens")
@page
def tokens_page(
    error: str | None = None,
    status: int = 200,
    password_errors: dict[str, str] | None = None,
) -> ResponseReturnValue:
    """The user's API tokens (a new one's secret is shown once) and their password."""
    once = shown_once()
    listed = tokens.list_tokens(user())
    return render_template(
        "tokens.html",
        tokens=listed,
        issued=once.get("token"),
        password_changed=once.get("password_changed", False),
        password_errors=password_errors or {},
        error=error,
        me=user(),
        name_limit=tokens.MAX_TOKEN_NAME_LENGTH,
        accesses=[a.value for a in TokenAccess],
        lifetimes=TOKEN_LIFETIMES,
        now=utcnow(),
    ), status


@bp.post("/tokens")
@page
def create_token() -> ResponseReturnValue:
    """Issue a token, then show its secret once."""
    form = request.form
    data: dict[str, Any] = {"name": form.get("name", ""), "access": form.get("access", "write")}
    expires_in = whole_number(form.get("expires_in"))
    if expires_in is not None:
        data["expires_in"] = expires_in
    try:
        body = validated(schemas.TokenRequest, data)
        issued = tokens.create_token(user(), body.name, body.access, body.expires_in)
    except InputRejected as exc:
        return tokens_page(error=describe_rejection(exc)[1], status=400)
    except DomainError as exc:
        return tokens_page(error=exc.message, status=domain_status(exc))
    show_once(token={"name": issued.token.name, "secret": issued.secret})
    return redirect(url_for("web.tokens_page"), 303)


@bp.post("/tokens/<id:token_id>/revoke")
@page
def revoke_token(token_id: int) -> BaseResponse:
    """Revoke one of the user's tokens."""
    tokens.revoke_token(user(), token_id)
    return redirect(url_for("web.tokens_page"))


@bp.post("/account/password")
@page
@password_limit
def change_password() -> ResponseReturnValue:
    """Change one's own password; every other session of the user ends, this one goes on."""
    form = request.form
    data = {
        "current_password": form.get("current_password", ""),
        "new_password": form.get("new_password", ""),
    }
    try:
        body = validated(schemas.PasswordChangeRequest, data)
        passwords.change_password(user(), body.current_password, body.new_password)
    except InputRejected as exc:
        _, message, field = describe_rejection(exc)
        return tokens_page(password_errors={field or "new_password": message}, status=400)
    except DomainError as exc:
        field = getattr(exc, "field", None) or "new_password"
        return tokens_page(password_errors={field: exc.message}, status=domain_status(exc))
    keep_session_after_password_change(user())
    show_once(password_changed=True)
    return redirect(url_for("web.tokens_page") + "#password", 303)


# ---- organization -----------------------------------------------------------------------


@bp.get("/org")
@page
def org_page() -> ResponseReturnValue:
    """Usage for everyone; invites, users and webhooks for admins."""
    once = shown_once()
    return render_org(
        invite=once.get("invite"),
        new_webhook=once.get("webhook"),
        settings_saved=bool(once.get("settings_saved")),
        reset=once.get("reset"),
    )


# The lifetimes the invite form offers, in seconds ("": INVITE_TTL_HOURS).
INVITE_LIFETIMES = [
    (str(3600), "1 hour"),
    (str(24 * 3600), "1 day"),
    ("", "3 days"),
    (str(7 * 24 * 3600), "7 days"),
    (str(30 * 24 * 3600), "30 days"),
]


def render_org(
    invite: dict[str, Any] | None = None,
    error: str | None = None,
    status: int = 200,
    new_webhook: dict[str, Any] | None = None,
    webhook_error: str | None = None,
    settings_error: str | None = None,
    settings_saved: bool = False,
    reset: dict[str, Any] | None = None,
) -> ResponseReturnValue:
    """The organization page, with what was just made or went wrong, if anything."""
    me = user()
    org = me.organization
    is_admin = policy.is_admin(me)
    users = accounts.list_users(me) if is_admin else []
    invites = accounts.list_invites(me) if is_admin else []
    endpoints = []
    if is_admin:
        for hook in webhooks.list_webhooks(me):
            recent = webhooks.recent_deliveries(me, hook.id, limit=WEBHOOK_RECENT_SHOWN)
            endpoints.append((hook, recent))
    return render_template(
        "org.html",
        org=org,
        held=retention.held(org.id),
        trash_retention_days=retention.trash_retention_days(org),
        versions_kept=retention.versions_kept(org),
        max_trash_retention_days=retention.MAX_TRASH_RETENTION_DAYS,
        max_versions_kept=retention.MAX_VERSIONS_KEPT,
        settings_error=settings_error,
        settings_saved=settings_saved,
        form=request.form if settings_error else {},
        users=users,
        invites=invites,
        invite=invite,
        reset=reset,
        roles=[r.value for r in Role],
        invite_lifetimes=INVITE_LIFETIMES,
        default_invite_hours=current_app.config["INVITE_TTL_HOURS"],
        error=error,
        endpoints=endpoints,
        events=webhooks.EVENT_TYPES,
        new_webhook=new_webhook,
        webhook_error=webhook_error,
        is_admin=is_admin,
        me=me,
    ), status


# Deliveries shown per endpoint on the page; the API lists more.
WEBHOOK_RECENT_SHOWN = 10


@bp.post("/org/invites")
@page
@admin_page
def create_invite() -> ResponseReturnValue:
    """Issue an invite link (admins) for the role chosen, then show it once."""
    data: dict[str, Any] = {"role": request.form.get("role", Role.MEMBER)}
    expires_in = whole_number(request.form.get("expires_in"))
    if expires_in is not None:
        data["expires_in"] = expires_in
    try:
        body = validated(schemas.InviteRequest, data)
    except InputRejected as exc:
        return render_org(error=describe_rejection(exc)[1], status=400)
    invite = accounts.create_invite(user(), body.role, body.expires_in)
    # Kept as text: the session holds plain values only.
    expires = invite.expires_at.isoformat(timespec="seconds") + "Z"
    show_once(
        invite={
            "code": invite.code,
            "url": accounts.invite_url(invite.code, request.host_url),
            "role": invite.role.value,
            "expires_at": expires,
            "expires_text": display.when(invite.expires_at),
        }
    )
    return redirect(url_for("web.org_page") + "#invites", 303)


@bp.post("/org/invites/<id:invite_id>/revoke")
@page
@admin_page
def revoke_invite(invite_id: int) -> ResponseReturnValue:
    """Revoke a pending invite (admins)."""
    try:
        accounts.revoke_invite(user(), invite_id)
    except DomainError as exc:
        return render_org(error=exc.message, status=domain_status(exc))
    return redirect(url_for("web.org_page") + "#invites", 303)


@bp.post("/org/users/<id:user_id>/role")
@page
@admin_page
def set_role(user_id: int) -> ResponseReturnValue:
    """Promote a member or demote an admin (admins); never the last active admin."""
    try:
        body = validated(schemas.RoleChangeRequest, {"role": request.form.get("role", "")})
        accounts.set_role(user(), user_id, body.role)
    except InputRejected as exc:
        return render_org(error=describe_rejection(exc)[1], status=400)
    except DomainError as exc:
        return render_org(error=exc.message, status=domain_status(exc))
    return redirect(url_for("web.org_page") + "#users", 303)


@bp.post("/org/users/<id:user_id>/password-reset")
@page
@admin_page
def create_password_reset(user_id: int) -> ResponseReturnValue:
    """Issue a one-time password reset link for a user (admins), then show it once."""
    try:
        issued = passwords.create_reset(user(), user_id)
    except DomainError as exc:
        return render_org(error=exc.message, status=domain_status(exc))
    show_once(
        reset={
            "email": issued.email,
            "url": passwords.reset_url(issued.code, request.host_url),
            "expires_text": display.when(issued.expires_at),
        }
    )
    return redirect(url_for("web.org_page") + "#users", 303)


@bp.post("/org/settings")
@page
@admin_page
def update_settings() -> ResponseReturnValue:
    """Set how long the trash keeps items and how many versions each file keeps (admins)."""
    form = request.form
    data = {
        "trash_retention_days": whole_number(form.get("trash_retention_days")),
        "versions_kept": whole_number(form.get("versions_kept")),
    }
    try:
        body = validated(schemas.OrganizationChangeRequest, data)
        retention.update_settings(
            user(),
            trash_retention_days=body.trash_retention_days,
            versions_kept=body.versions_kept,
        )
    except InputRejected as exc:
        return render_org(settings_error=describe_rejection(exc)[1], status=400)
    except DomainError as exc:
        return render_org(settings_error=exc.message, status=domain_status(exc))
    show_once(settings_saved=True)
    return redirect(url_for("web.org_page") + "#retention", 303)


@bp.post("/org/users/<id:user_id>/<any(activate, deactivate):action>")
@page
@admin_page
def set_active(user_id: int, action: str) -> ResponseReturnValue:
    """Activate or deactivate a user of the organization (admins)."""
    try:
        accounts.set_active(user(), user_id, active=action == "activate")
    except DomainError as exc:
        return render_org(error=exc.message, status=domain_status(exc))
    return redirect(url_for("web.org_page"))


# ---- share links ------------------------------------------------------------------------

# The lifetimes the share form offers, in seconds.
LINK_LIFETIMES = [
    (3600, "1 hour"),
    (24 * 3600, "1 day"),
    (7 * 24 * 3600, "7 days"),
    (30 * 24 * 3600, "30 days"),
]


@bp.get("/files/<uuid:file_id>/share")
@page
def share_page(file_id: Any, error: str | None = None, status: int = 200) -> ResponseReturnValue:
    """A file's live share links; a new one's URL is shown once."""
    me = user()
    row = access.get_file(me.organization_id, str(file_id))
    listed = links.links_of(row)
    return render_template(
        "share.html",
        file=row,
        links=listed,
        issued=shown_once().get("link"),
        lifetimes=LINK_LIFETIMES,
        default_lifetime=links.DEFAULT_EXPIRES_IN,
        error=error,
        me=me,
    ), status


def whole_number(raw: str | None) -> int | str | None:
    """A form's number as an int for the body's model; other text as is, for it to refuse."""
    if raw is None or raw.strip() == "":
        return None
    return int(raw) if raw.strip().isdigit() else raw


@bp.post("/files/<uuid:file_id>/share")
@page
def create_link(file_id: Any) -> ResponseReturnValue:
    """Make a link to a ready file (the files page's Share button), then show it once."""
    form = request.form
    body_data: dict[str, Any] = {}
    for name in ("expires_in", "max_downloads"):
        number = whole_number(form.get(name))
        if number is not None:
            body_data[name] = number
    try:
        body = validated(schemas.ShareLinkRequest, body_data)
        issued = links.create_link(user(), str(file_id), body.expires_in, body.max_downloads)
    except InputRejected as exc:
        return share_page(file_id, error=describe_rejection(exc)[1], status=400)
    except DomainError as exc:
        if exc.code == "not_found":
            raise
        return share_page(file_id, error=exc.message, status=domain_status(exc))
    show_once(link={"url": links.link_url(issued.secret, request.host_url)})
    return redirect(url_for("web.share_page", file_id=file_id), 303)


@bp.post("/links/<id:link_id>/revoke")
@page
def revoke_link(link_id: int) -> BaseResponse:
    """Revoke a link, then back to its file's links."""
    links.revoke_link(user(), link_id)
    return redirect(safe_next(request.form.get("next")), 303)


# ---- webhooks ---------------------------------------------------------------------------


@bp.post("/org/webhooks")
@page
@admin_page
def create_webhook() -> ResponseReturnValue:
    """Register an endpoint (admins), then show its signing secret once."""
    data = {"url": request.form.get("url", ""), "events": request.form.getlist("events")}
    try:
        body = validated(schemas.WebhookRequest, data)
        issued = webhooks.create_webhook(user(), body.url, list(body.events))
    except InputRejected as exc:
        return render_org(webhook_error=describe_rejection(exc)[1], status=400)
    except DomainError as exc:
        return render_org(webhook_error=exc.message, status=domain_status(exc))
    show_once(webhook={"url": issued.webhook.url, "secret": issued.secret})
    return redirect(url_for("web.org_page") + "#webhooks", 303)


@bp.post("/org/webhooks/<id:webhook_id>/delete")
@page
@admin_page
def delete_webhook(webhook_id: int) -> ResponseReturnValue:
    """Remove an endpoint (admins)."""
    webhooks.delete_webhook(user(), webhook_id)
    return redirect(url_for("web.org_page") + "#webhooks", 303)


# ---- the activity record ---------------------------------------------------------------


@bp.get("/activity")
@page
def activity_page() -> ResponseReturnValue:
    """The organization's activity record for admins, filtered by person, file and type."""
    me = user()
    if not policy.is_admin(me):
        return render_template(
            "activity.html", refused="Only an admin can read the organization's activity.", me=me
        ), 403
    try:
        query = validated(schemas.ActivityQuery, request.args.to_dict())
        filters = activity.Filters(
            type=query.type,
            actor_id=query.actor_id,
            file_id=str(query.file_id) if query.file_id else None,
        )
        listed = activity.organization_events(me, filters, cursor=query.cursor)
    except (InputRejected, DomainError):
        # A filter or cursor edited by hand: the record from its start, unfiltered.
        filters = activity.Filters()
        listed = activity.organization_events(me, filters)
    chosen = {
        key: value
        for key, value in (
            ("type", filters.type),
            ("actor_id", filters.actor_id),
            ("file_id", filters.file_id),
        )
        if value is not None
    }
    return render_template(
        "activity.html",
        events=listed.events,
        next_cursor=listed.next_cursor,
        chosen=chosen,
        people=accounts.list_users(me),
        types=activity.EVENT_TYPES,
        me=me,
    )
