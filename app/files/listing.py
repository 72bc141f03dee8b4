"""Listing an organization's files: pages, cursors, sorts, one folder's files and name search.

Every order is a keyset on (sort key, id) that an index walks: the organization's files by
time, name and size, a folder's own by the same three (migrations 0012, 0013). A cursor
holds the last row's key and id and a short hash of the parameters it was made for, so it
is refused (400) with any others. Search uses each database's substring index (PostgreSQL
`pg_trgm`, SQLite FTS5's trigram tokenizer) for texts of three characters or more.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Select, func, literal_column, select, text, tuple_

from ..extensions import db
from ..models import FILE_SEARCH_TABLE, File, FileStatus, Organization, User
from ..services.errors import InvalidInput
from ..services.tenancy import in_organization, scoped
from .folders import check_place, paths_of, place_of, subtree
from .ledger import STATUS_COUNTERS
from .names import ROOT, key_of

# The shortest text a trigram index can find by itself; shorter ones are compared row by row
# over the organization's (or the folder's) names.
TRIGRAM = 3
# Characters of the parameters' hash a cursor carries: enough to tell parameter sets apart.
HASH_LENGTH = 10
CURSOR_VERSION = "2"
# Runs of ASCII letters and digits: the search's trigram pieces on PostgreSQL.
ASCII_WORD = re.compile(r"[a-z0-9]+")
# At most this many pieces of a searched text go to the index (see _spread).
SEARCH_PIECES = 3
# The place indexes' expression (models.FILE_PLACE), written so that SQLite and PostgreSQL
# match it to those indexes: the '' a literal, not a bound parameter.
FILE_PLACE_COLUMN = func.coalesce(File.folder_id, literal_column("''"))


class Sort(StrEnum):
    """What a listing is ordered by (ties by id)."""

    UPLOADED_AT = "uploaded_at"
    NAME = "name"
    SIZE = "size"


class Order(StrEnum):
    """Which way a listing runs."""

    DESC = "desc"
    ASC = "asc"


@dataclass(frozen=True)
class Filters:
    """What a listing holds and in which order; a cursor belongs to one set of these.

    `folder_id` is as requested: None lists the whole organization, `root` the top level.
    With `q`, the folder is searched at every depth; without, only its own files are listed.
    """

    status: FileStatus | None = None
    folder_id: str | None = None
    q: str | None = None
    sort: Sort = Sort.UPLOADED_AT
    order: Order = Order.DESC

    @property
    def counted(self) -> bool:
        """Whether the kept counters give this listing's total (no folder or search filter)."""
        return self.folder_id is None and self.q is None

    def digest(self) -> str:
        """A short hash of the parameters, carried by cursors made for them."""
        status = self.status.value if self.status else ""
        search = key_of(self.q, field="q") if self.q is not None else ""
        raw = "\x1f".join([status, self.folder_id or "", search, self.sort, self.order])
        return hashlib.sha256(raw.encode()).hexdigest()[:HASH_LENGTH]


@dataclass(frozen=True)
class Page:
    """One page of a listing."""

    rows: list[tuple[File, str | None]]
    # None when a folder or search filter is given: counting those would cost a scan.
    total: int | None
    next_cursor: str | None
    # Set when newer rows exist before this page (a page reached by cursor).
    prev_cursor: str | None = None
    # With `q`: each place's path (`/A/B`, `` for the top level) for the matches' paths.
    paths: dict[str | None, str] = field(default_factory=dict)

    def path_of(self, row: File) -> str:
        """A listed file's path, `/A/B/name` (`/name` at the top level)."""
        return f"{self.paths.get(row.folder_id, '')}/{row.filename}"


# ---- cursors ------------------------------------------------------------------------------

Key = datetime | int | str | None


def sort_key(row: File, sort: Sort) -> Key:
    """The value a row is ordered by."""
    if sort is Sort.UPLOADED_AT:
        return row.uploaded_at
    if sort is Sort.SIZE:
        return row.size
    return row.name_key


def encode_cursor(row: File, filters: Filters | None = None) -> str:
    """An opaque cursor pointing just after this row in the order of `filters`."""
    filters = filters or Filters()
    key = sort_key(row, filters.sort)
    if key is None:
        written = "n"
    elif isinstance(key, datetime):
        written = "v" + key.isoformat(timespec="microseconds")
    else:
        written = f"v{key}"
    raw = f"{CURSOR_VERSION}|{filters.digest()}|{written}|{row.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _refused() -> InvalidInput:
    return InvalidInput("invalid_parameter", "cursor is not valid", field="cursor")


def decode_cursor(cursor: str, filters: Filters | None = None) -> tuple[Key, str]:
    """The (sort key, id) a cursor points after; InvalidInput when it is not one of ours or
    was made for other parameters."""
    filters = filters or Filters()
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        raw = base64.urlsafe_b64decode(padded).decode()
        head, _, rest = raw.partition("|")
        if head != CURSOR_VERSION:
            return _legacy_cursor(raw, filters)
        digest, _, rest = rest.partition("|")
        written, _, file_id = rest.rpartition("|")
        file_id = str(uuid.UUID(file_id))
        if digest != filters.digest():
            raise InvalidInput(
                "invalid_parameter",
                "cursor was made for other parameters (status, folder_id, q, sort, order)",
                field="cursor",
            )
        if written == "n" and filters.sort is Sort.NAME:
            return None, file_id
        if not written.startswith("v"):
            raise _refused()
        value = written[1:]
        if filters.sort is Sort.UPLOADED_AT:
            return datetime.fromisoformat(value), file_id
        if filters.sort is Sort.SIZE:
            if not value.isascii() or not value.isdigit():
                raise _refused()
            return int(value), file_id
        return value, file_id
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise _refused() from None


def _legacy_cursor(raw: str, filters: Filters) -> tuple[Key, str]:
    """A cursor of the previous release (`<uploaded_at>|<id>`, newest first), still taken for
    the listing it was made for: a page open during an upgrade keeps paging."""
    if filters.sort is not Sort.UPLOADED_AT or filters.order is not Order.DESC:
        raise _refused()
    if not filters.counted:
        raise _refused()
    stamp, _, file_id = raw.partition("|")
    return datetime.fromisoformat(stamp), str(uuid.UUID(file_id))


# ---- the queries ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    """A run of the order walked by one keyset query: the rows with a sort key, or (by
    name) the few without one, which come before every name."""

    where: ColumnElement[bool] | None
    columns: tuple[Any, ...]
    # The name key in one folder is unique: no id is needed to break ties.
    unique: bool = False
    null: bool = False


def list_files(
    organization_id: int,
    *,
    status: FileStatus | None,
    limit: int,
    page: int = 1,
    cursor: str | None = None,
    newer: bool = False,
    folder_id: str | None = None,
    q: str | None = None,
    sort: Sort = Sort.UPLOADED_AT,
    order: Order = Order.DESC,
) -> Page:
    """The organization's files in the order asked (ties by id), by page number or cursor;
    only a folder's own files with `folder_id`, names containing `q` with a search.

    With `newer`, the page is the one just before the cursor.
    """
    filters = Filters(status=status, folder_id=folder_id, q=q, sort=sort, order=order)
    query = _filtered(organization_id, filters)
    segments = _segments(filters)
    forward = filters.order is Order.ASC
    ids: list[str]
    if cursor:
        after = decode_cursor(cursor, filters)
        if newer:
            ids = _walk(query, segments, not forward, after, limit + 1)
        else:
            ids = _walk(query, segments, forward, after, limit + 1)
    else:
        ids = _walk(query, segments, forward, None, limit + 1, offset=(page - 1) * limit)
    rows = _rows(ids)
    if not rows and filters.folder_id is not None:
        # Listed files prove their folder is the organization's and not in the trash (a
        # folder goes to the trash with everything in it; a file restored from a folder
        # that has gone lands at the top), so only an empty page looks the folder up:
        # another organization's, a missing or a trashed folder is 404.
        check_place(organization_id, filters.folder_id)
    more = len(rows) > limit
    rows = rows[:limit]
    if newer and cursor:
        # Walked away from the cursor: the page reads the other way round.
        rows.reverse()
        prev_cursor = encode_cursor(rows[0][0], filters) if more and rows else None
        next_cursor = encode_cursor(rows[-1][0], filters) if rows else None
    else:
        next_cursor = encode_cursor(rows[-1][0], filters) if more and rows else None
        prev_cursor = encode_cursor(rows[0][0], filters) if cursor and rows else None
    paths = paths_of(organization_id, {row.folder_id for row, _ in rows}) if q is not None else {}
    return Page(
        rows=rows,
        total=_total(organization_id, filters),
        next_cursor=next_cursor,
        prev_cursor=prev_cursor,
        paths=paths,
    )


def _total(organization_id: int, filters: Filters) -> int | None:
    """The kept counter of the listing, when one exists (no COUNT over the rows)."""
    if not filters.counted:
        return None
    counter = Organization.file_count if filters.status is None else STATUS_COUNTERS[filters.status]
    # One statement, so the counter and the trash's count come from one snapshot: read
    # apart, a file trashed or validated in between made the total wrong, even negative.
    trashed = _trashed_query(organization_id, filters.status).scalar_subquery()
    total = db.session.scalar(select(counter - trashed).where(Organization.id == organization_id))
    return int(total or 0)


def trashed_files(organization_id: int, status: FileStatus | None = None) -> int:
    """How many of the organization's files (in `status`) are in the trash: the kept
    counters count them (their bytes are still held), listings do not."""
    return int(db.session.scalar(_trashed_query(organization_id, status)) or 0)


def _trashed_query(organization_id: int, status: FileStatus | None) -> Select[Any]:
    """The count of the trashed files, over the trash's index, which holds them alone."""
    query = select(func.count()).where(
        in_organization(File, organization_id), File.trashed_at.is_not(None)
    )
    if status is not None:
        query = query.where(File.status == status)
    return query


def _filtered(organization_id: int, filters: Filters) -> Select[Any]:
    """The ids of the files the filters keep, in no order yet."""
    query = scoped(File, organization_id).with_only_columns(File.id)
    if filters.status is not None:
        query = query.where(File.status == filters.status)
    # Checked to be the organization's only when the page is empty (list_files).
    place = place_of(filters.folder_id)
    if filters.q is None:
        if filters.folder_id is not None:
            # The same expression as the place indexes, so they serve the order too.
            query = query.where(FILE_PLACE_COLUMN == (place or ""))
        return query
    if place is not None:
        below = subtree(organization_id, place)
        query = query.where(File.folder_id.in_(select(below.c.id)))
    return query.where(*_matching(key_of(filters.q, field="q")))


def _matching(key: str) -> list[ColumnElement[bool]]:
    """The conditions of names containing `key` (both compared forms), by the index."""
    if db.session.get_bind().dialect.name == "postgresql":
        pieces = _trigram_pieces(key)
        if pieces:
            # The index looks up three pieces of the text instead of every trigram of it
            # (a GIN scan merges one list per trigram: 11 for `invoice-march`, 12-16 ms
            # over a million names, against 4 ms for 3 pieces); strpos() then keeps exactly
            # the names holding the whole text, `%` and `_` as plain characters.
            pieces_present = [File.name_key.like(f"%{piece}%") for piece in pieces]
            return [*pieces_present, func.strpos(File.name_key, key) > 0]
        escaped = key.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        # pg_trgm's GIN index serves LIKE '%…%' (texts of three characters or more).
        return [File.name_key.like(f"%{escaped}%", escape="\\")]
    # instr(): `%` and `_` are plain characters, and it holds the index's candidates to
    # exact substrings.
    contains = func.instr(File.name_key, key) > 0
    if len(key) < TRIGRAM:
        return [contains]
    # FTS5 looks up three pieces of the text (each one trigram to its tokenizer) rather than
    # the whole text as a phrase, which merges and checks the positions of every trigram:
    # 22 ms against 12-13 for `invoice-march` over a million names; instr() keeps the
    # names holding all of it.
    pieces = _spread([key[start : start + TRIGRAM] for start in range(len(key) - TRIGRAM + 1)])
    query = " AND ".join('"' + piece.replace('"', '""') + '"' for piece in dict.fromkeys(pieces))
    candidates = text(
        f"SELECT rowid FROM {FILE_SEARCH_TABLE} WHERE {FILE_SEARCH_TABLE} MATCH :query"
    ).bindparams(query=query)
    return [literal_column("files.rowid").in_(candidates), contains]


def _trigram_pieces(key: str) -> list[str]:
    """Up to three three-character pieces of the text's runs of ASCII letters and digits:
    every name holding the text holds each piece. Such a piece is one trigram to pg_trgm
    whatever the database's locale (it splits words on other characters); a text without
    such a run gets no pieces."""
    pieces: list[str] = []
    for run in ASCII_WORD.findall(key):
        if len(run) < TRIGRAM:
            continue
        starts = list(range(0, len(run) - TRIGRAM + 1, TRIGRAM))
        if starts[-1] != len(run) - TRIGRAM:
            starts.append(len(run) - TRIGRAM)
        pieces += [run[start : start + TRIGRAM] for start in starts]
    return _spread(list(dict.fromkeys(pieces)))


def _spread(pieces: list[str]) -> list[str]:
    """At most SEARCH_PIECES of the text's pieces, in order: the first, one between and the
    last. What an index merges grows with each piece, while three from across the text
    already leave few names to check."""
    if len(pieces) <= SEARCH_PIECES:
        return pieces
    return [pieces[0], pieces[len(pieces) // 2], pieces[-1]]


def _segments(filters: Filters) -> list[Segment]:
    """The runs of the ascending order, in order."""
    if filters.sort is Sort.UPLOADED_AT:
        return [Segment(None, (File.uploaded_at, File.id))]
    if filters.sort is Sort.SIZE:
        return [Segment(None, (File.size, File.id))]
    # A row without a compared name (written by hand) comes first, ordered by id.
    in_one_folder = filters.folder_id is not None and filters.q is None
    return [
        Segment(File.name_key.is_(None), (File.id,), null=True),
        Segment(
            File.name_key.is_not(None),
            (File.name_key,) if in_one_folder else (File.name_key, File.id),
            unique=in_one_folder,
        ),
    ]


def _walk(
    query: Select[Any],
    segments: Sequence[Segment],
    forward: bool,
    after: tuple[Key, str] | None,
    count: int,
    offset: int = 0,
) -> list[str]:
    """Up to `count` ids in order (ascending when `forward`), after the cursor's row or
    past `offset` rows; one keyset query per run of the order reached."""
    runs = list(segments) if forward else list(reversed(segments))
    if after is not None:
        key, _ = after
        at = next(i for i, s in enumerate(runs) if s.null == (key is None))
        runs = runs[at:]
    ids: list[str] = []
    for index, segment in enumerate(runs):
        part = query if segment.where is None else query.where(segment.where)
        if after is not None and index == 0:
            part = part.where(_beyond(segment, after, forward))
        ordering = [c.asc() if forward else c.desc() for c in segment.columns]
        found = list(
            db.session.scalars(part.order_by(*ordering).offset(offset).limit(count - len(ids)))
        )
        if not found and offset:
            # The offset lies past this run: skip it whole (a run counted only here,
            # when page numbers reach past it).
            skipped = db.session.scalar(select(func.count()).select_from(part.subquery()))
            offset = max(0, offset - int(skipped or 0))
        else:
            offset = 0
        ids += found
        if len(ids) >= count:
            break
    return ids


def _beyond(segment: Segment, after: tuple[Key, str], forward: bool) -> ColumnElement[bool]:
    """The keyset condition: rows past the cursor's, in the walk's direction."""
    key, file_id = after
    if segment.null:
        return File.id > file_id if forward else File.id < file_id
    if segment.unique:
        name = File.name_key
        return name > key if forward else name < key
    # A row-value comparison is one index range on SQLite and PostgreSQL alike (an OR of
    # two conditions makes SQLite walk the index from its end).
    mark, cursor = tuple_(*segment.columns), tuple_(key, file_id)
    beyond: ColumnElement[bool] = mark > cursor if forward else mark < cursor
    return beyond


def _rows(ids: list[str]) -> list[tuple[File, str | None]]:
    """The files of these ids with their uploaders' emails, in the ids' order."""
    if not ids:
        return []
    found = db.session.execute(
        select(File, User.email)
        .outerjoin(User, User.id == File.uploaded_by)
        .where(File.id.in_(ids))
    ).all()
    by_id = {row.id: (row, email) for row, email in found}
    return [by_id[i] for i in ids if i in by_id]


def page_count(total: int | None, limit: int) -> int | None:
    """How many pages of `limit` hold `total` rows (None when the total is not known)."""
    if total is None:
        return None
    return math.ceil(total / limit) if total else 0


@dataclass(frozen=True)
class Neighbours:
    """The files just before and after one file in its folder's listing."""

    previous: File | None
    next: File | None


def neighbours(
    organization_id: int, row: File, *, sort: Sort = Sort.UPLOADED_AT, order: Order = Order.DESC
) -> Neighbours:
    """The files beside `row` in its folder, in the order the folder is listed (a file's
    preview page steps through them): two keyset queries from the row's own cursor."""
    place = row.folder_id if row.folder_id is not None else ROOT
    filters = Filters(folder_id=place, sort=sort, order=order)
    cursor = encode_cursor(row, filters)
    after, before = (
        list_files(
            organization_id,
            status=None,
            limit=1,
            cursor=cursor,
            newer=newer,
            folder_id=place,
            sort=sort,
            order=order,
        )
        for newer in (False, True)
    )
    return Neighbours(
        previous=before.rows[0][0] if before.rows else None,
        next=after.rows[0][0] if after.rows else None,
    )
