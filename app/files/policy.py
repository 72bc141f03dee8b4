"""Who may do what: the one place Coffer's permission rules are written.

The API, the pages, the templates (through the views) and the services all ask here, so a
rule changes in one place. Each function answers for an acting user of an organization; the
operator's `manage.py` commands act on the deployment's behalf and are not asked about.
"""

from __future__ import annotations

from ..models import ShareLink, TokenAccess, User
from ..services.errors import NotAllowed

# What an admin-only action answers anyone else, on the API and the pages alike.
ADMIN_ONLY_MESSAGE = "only an organization admin can do this"
# What a read-only API token answers when it asks to change anything.
READ_ONLY_MESSAGE = "this API token can only read; changing data needs a token with write access"


def is_admin(user: User) -> bool:
    """Whether the user administers their organization."""
    return user.is_admin


def require_admin(user: User) -> None:
    """Refuse (NotAllowed `forbidden`) an admin-only action to anyone but an admin."""
    if not is_admin(user):
        raise NotAllowed("forbidden", ADMIN_ONLY_MESSAGE)


def may_change_data(access: TokenAccess | str) -> bool:
    """Whether a request with this API token access may change data (upload, delete, rename,
    create, revoke, invite, ...): `write` tokens may, `read` tokens only list, read and
    download. Sessions act with the user's full rights."""
    return access == TokenAccess.WRITE


def require_change_access(access: TokenAccess | str) -> None:
    """Refuse (NotAllowed `insufficient_scope`) a change of data to a read-only token."""
    if not may_change_data(access):
        raise NotAllowed("insufficient_scope", READ_ONLY_MESSAGE)


def may_delete_file(user: User, uploaded_by: int | None) -> bool:
    """Whether the user may delete a file: its uploader or an admin."""
    return is_admin(user) or (uploaded_by is not None and uploaded_by == user.id)


def may_change_file(user: User, uploaded_by: int | None) -> bool:
    """Whether the user may rename or move a file: its uploader or an admin (as deleting)."""
    return may_delete_file(user, uploaded_by)


def may_arrange_folders(user: User) -> bool:
    """Whether the user may create, rename and move folders: any member, since a folder
    holds no bytes of its own; removing one asks `may_delete_file` of every file below."""
    del user  # every member alike
    return True


def sees_every_upload(user: User) -> bool:
    """Whether the user sees every unfinished upload of the organization, not just their own."""
    return is_admin(user)


def may_see_upload(user: User, uploaded_by: int | None) -> bool:
    """Whether the user may see (and terminate) an unfinished upload: its uploader or an admin."""
    return sees_every_upload(user) or (uploaded_by is not None and uploaded_by == user.id)


def may_write_upload(user: User, uploaded_by: int | None) -> bool:
    """Whether the user may send bytes to an upload: its uploader only, since the bytes, and
    the file they make, are credited to the uploader."""
    return uploaded_by is not None and uploaded_by == user.id


def may_revoke_link(user: User, link: ShareLink, uploader: int | None) -> bool:
    """Whether the user may revoke a share link: its creator, the file's uploader or an admin."""
    return is_admin(user) or user.id in (link.created_by, uploader)


def may_request_files(user: User) -> bool:
    """Whether the user may make an upload-only link into a folder: any member, since any
    member may upload there (a read-only token is refused before, as for every change)."""
    del user  # every member alike
    return True


def sees_every_request(user: User) -> bool:
    """Whether the user sees every upload-only link of the organization, not just their own."""
    return is_admin(user)


def may_revoke_request(user: User, created_by: int | None) -> bool:
    """Whether the user may revoke an upload-only link: its creator or an admin."""
    return is_admin(user) or (created_by is not None and created_by == user.id)
