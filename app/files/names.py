"""Names in folders: the rules for a file's or folder's name, and one name per place.

A place is a folder, or the organization's top level (`root`, None here). Within one place
names are unique across files and folders, compared as organization names are (NFKC,
case-folded: `name_key_of`). Each table's unique index holds its own rows to that; the two
tables together are checked here, under the organization's lock, so two writers can never
both take one name.
"""

from __future__ import annotations

import unicodedata
from enum import StrEnum

from sqlalchemy import exists, select

from ..extensions import db
from ..models import MAX_ENTRY_KEY_LENGTH, File, Folder, name_key_of
from ..services.errors import Conflict, InvalidInput
from ..services.tenancy import live, lock_organization
from ..storage.names import MAX_DISPLAY_NAME_BYTES

ROOT = "root"
# How many numbered names `rename` tries before it gives up (a place of that many copies
# of one name is a script gone wrong).
MAX_NUMBERED = 10_000


class OnConflict(StrEnum):
    """What a new name does when the place already holds it."""

    RENAME = "rename"
    FAIL = "fail"
    REPLACE = "replace"


def checked_name(raw: str, *, field: str = "name") -> str:
    """A name as given for a folder, or a new name for a file: refused (400 `invalid_name`)
    rather than cut when it holds a path separator, a control character or is too long."""
    name = raw.strip()
    if not name:
        raise InvalidInput("invalid_name", f"{field} is empty", field=field)
    if "/" in name or "\\" in name:
        raise InvalidInput("invalid_name", f"{field} may not contain / or \\", field=field)
    if name in {".", ".."}:
        raise InvalidInput("invalid_name", f"{field} may not be . or ..", field=field)
    if any(unicodedata.category(ch) in {"Cc", "Cf", "Cs"} for ch in name):
        raise InvalidInput(
            "invalid_name", f"{field} may not contain control characters", field=field
        )
    if len(name.encode()) > MAX_DISPLAY_NAME_BYTES:
        raise InvalidInput(
            "invalid_name",
            f"{field} must be at most {MAX_DISPLAY_NAME_BYTES} bytes of UTF-8",
            field=field,
        )
    key_of(name, field=field)
    return name


def key_of(name: str, *, field: str = "name") -> str:
    """The compared form of a name; 400 when it is too long once normalized."""
    key = name_key_of(name)
    if len(key) > MAX_ENTRY_KEY_LENGTH:
        raise InvalidInput(
            "invalid_name",
            f"{field} is too long once normalized for comparison (NFKC, case-folded)",
            field=field,
        )
    return key


def numbered(name: str, n: int) -> str:
    """`report.pdf` as its n-th copy: `report (n).pdf`; a name without an extension, or a
    dot file, gets the number at its end."""
    root, dot, extension = name.rpartition(".")
    if dot and root:
        return f"{root} ({n}).{extension}"
    return f"{name} ({n})"


def lock_names(organization_id: int) -> None:
    """Hold the organization's names until the transaction ends (its row's lock)."""
    lock_organization(organization_id)


def is_taken(
    organization_id: int,
    place: str | None,
    key: str,
    *,
    except_file: str | None = None,
    except_folder: str | None = None,
) -> bool:
    """Whether a file or folder of the place has this compared name (leaving out the entry
    being renamed, and everything in the trash: a trashed item's name is free)."""
    file_there = (
        select(File.id)
        .where(File.organization_id == organization_id, File.name_key == key, live(File))
        .where(File.folder_id.is_(None) if place is None else File.folder_id == place)
    )
    if except_file is not None:
        file_there = file_there.where(File.id != except_file)
    folder_there = (
        select(Folder.id)
        .where(Folder.organization_id == organization_id, Folder.name_key == key, live(Folder))
        .where(Folder.parent_id.is_(None) if place is None else Folder.parent_id == place)
    )
    if except_folder is not None:
        folder_there = folder_there.where(Folder.id != except_folder)
    return bool(db.session.scalar(select(exists(file_there) | exists(folder_there))))


def take(
    organization_id: int,
    place: str | None,
    name: str,
    on_conflict: OnConflict = OnConflict.RENAME,
    *,
    except_file: str | None = None,
    except_folder: str | None = None,
    field: str = "name",
) -> tuple[str, str]:
    """The name (and its compared form) an entry gets in the place: `name` when free, else
    the first free `name (n)` for `rename`, or 409 `name_taken` for `fail`.

    Run inside the write transaction, after `lock_names`, so the answer holds until it
    commits.
    """
    candidate = name
    for n in range(2, MAX_NUMBERED + 2):
        key = key_of(candidate, field=field)
        if not is_taken(
            organization_id, place, key, except_file=except_file, except_folder=except_folder
        ):
            return candidate, key
        if on_conflict is not OnConflict.RENAME:
            raise Conflict("name_taken", f"{name!r} is already taken in this folder", field=field)
        candidate = numbered(name, n)
    raise Conflict("name_taken", f"{name!r} and {MAX_NUMBERED} numbered copies are taken")
