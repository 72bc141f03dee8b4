"""`manage.py storage check`: whether the stored bytes, the file rows and the quota
counters agree, and the repairs that are safe to make without an operator's judgement."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import Subquery, case, func, literal, select, union_all

from ..database import write_transaction
from ..extensions import db
from ..files.previews import owner_of
from ..files.resumable import in_flight_pieces
from ..files.trash import being_purged
from ..models import File, FileVersion, Organization
from ..storage import StoredObject, get_storage

log = logging.getLogger(__name__)

# Uploads move their bytes into place just before their row commits, and a temp file
# is written while an upload streams in: anything younger than this may be one of those.
GRACE_SECONDS = 15 * 60


@dataclass
class StrayFile:
    """Bytes on disk that no row accounts for (or an abandoned upload temp file)."""

    path: str
    size: int
    age_seconds: float
    removed: bool = False


@dataclass(frozen=True)
class MissingBytes:
    """A row whose bytes should be on disk but are not."""

    file_id: str
    organization_id: int
    path: str


@dataclass(frozen=True)
class SizeMismatch:
    """A stored file whose size on disk differs from the size its row records."""

    file_id: str
    path: str
    recorded: int
    on_disk: int


@dataclass
class CounterDrift:
    """An organization whose usage counters disagree with its file rows."""

    organization_id: int
    name: str
    used_bytes: int
    actual_bytes: int
    file_count: int
    actual_files: int
    fixed: bool = False


@dataclass
class StorageReport:
    """Everything one check found, and what --fix repaired."""

    location: str
    root_exists: bool
    files_on_disk: int = 0
    rows: int = 0
    orphans: list[StrayFile] = field(default_factory=list)
    recent_orphans: list[StrayFile] = field(default_factory=list)
    stale_temp: list[StrayFile] = field(default_factory=list)
    missing: list[MissingBytes] = field(default_factory=list)
    size_mismatches: list[SizeMismatch] = field(default_factory=list)
    counters: list[CounterDrift] = field(default_factory=list)

    @property
    def problems_left(self) -> int:
        """How many problems remain unrepaired (recent orphans are not counted)."""
        return (
            sum(not item.removed for item in self.orphans + self.stale_temp)
            + len(self.missing)
            + len(self.size_mismatches)
            + sum(not item.fixed for item in self.counters)
        )


def check(fix: bool = False) -> StorageReport:
    """Compare disk, rows and counters; with `fix`, remove stray bytes and recount quotas.

    Rows without their bytes and size mismatches are only reported: the bytes may be on
    a volume that is not mounted, and deciding what the file should become is an
    operator's call.
    """
    storage = get_storage()
    report = StorageReport(location=storage.describe(), root_exists=storage.exists())
    # Stored objects first, rows second: an upload that commits in between is then seen
    # as a row.
    stored = {obj.key: obj for obj in storage.objects()}
    report.files_on_disk = sum(owner_of(key) is None for key in stored)
    # Every version's bytes are a row's: the one a file answers with (in the trash or not),
    # and its others (file_versions); in the trash they are rows like any other, neither
    # stray nor missing, except those of a purge under way, which may be partly gone
    # already (the sweep finishes it).
    rows = db.session.execute(
        union_all(
            select(
                File.id,
                File.organization_id,
                File.file_path,
                File.size,
                being_purged(File).label("purging"),
            ).where(File.bytes_stored.is_(True)),
            select(
                FileVersion.file_id,
                FileVersion.organization_id,
                FileVersion.file_path,
                FileVersion.size,
                being_purged(File).label("purging"),
            )
            .join(File, File.id == FileVersion.file_id)
            .where(FileVersion.bytes_stored.is_(True)),
        )
    ).all()
    db.session.rollback()
    report.rows = len(rows)
    expected = {path for _, _, path, _, _ in rows}

    for key, listed in sorted(stored.items()):
        # A content's preview images are its row's too (and never missing: a file may
        # have none); once its bytes' row is gone they are stray like the bytes.
        if key in expected or owner_of(key) in expected:
            continue
        stray = StrayFile(key, listed.size, listed.age_seconds)
        if stray.age_seconds < GRACE_SECONDS:
            report.recent_orphans.append(stray)
        else:
            report.orphans.append(stray)

    for file_id, organization_id, path, size, purging in rows:
        obj = stored.get(path)
        if obj is None:
            if purging:
                continue
            # Perhaps uploaded after the listing, or deleted since: look again first.
            if storage.size(path) is not None or not _row_holds(path):
                continue
            report.missing.append(MissingBytes(file_id, organization_id, path))
        elif obj.size != size:
            report.size_mismatches.append(SizeMismatch(file_id, path, size, obj.size))

    pending = list(storage.pending_uploads())
    # Read after the listing, so an upload that finished in between is not taken as stale.
    in_flight = in_flight_pieces()
    report.stale_temp = _stale_uploads(obj for obj in pending if obj.key not in in_flight)
    report.counters = _counter_drift()

    if fix:
        _fix(report)
    return report


def _stale_uploads(pending: Iterable[StoredObject]) -> list[StrayFile]:
    """In-flight uploads nobody has written to for the grace period (resumable uploads
    that have a row aside: those expire by their own clock)."""
    return sorted(
        (
            StrayFile(obj.key, obj.size, obj.age_seconds)
            for obj in pending
            if obj.age_seconds >= GRACE_SECONDS
        ),
        key=lambda stray: stray.path,
    )


def _row_holds(path: str) -> bool:
    """Whether a row (a file's, or another version's) whose bytes are stored names this
    path right now."""
    found = db.session.scalar(
        select(File.id).where(File.file_path == path, File.bytes_stored.is_(True))
    ) or db.session.scalar(
        select(FileVersion.id).where(
            FileVersion.file_path == path, FileVersion.bytes_stored.is_(True)
        )
    )
    db.session.rollback()
    return found is not None


def _actual_usage() -> Subquery:
    """Per organization: the bytes stored (files' and their other versions'), and the
    file count."""
    rows = union_all(
        select(
            File.organization_id.label("organization_id"),
            case((File.bytes_stored, File.size), else_=0).label("bytes"),
            # A file counts once, whatever its versions.
            literal(1).label("counted"),
        ),
        select(
            FileVersion.organization_id,
            case((FileVersion.bytes_stored, FileVersion.size), else_=0),
            literal(0),
        ),
    ).subquery()
    return (
        select(
            rows.c.organization_id,
            func.coalesce(func.sum(rows.c.bytes), 0).label("bytes"),
            func.coalesce(func.sum(rows.c.counted), 0).label("files"),
        )
        .group_by(rows.c.organization_id)
        .subquery()
    )


def _counter_drift() -> list[CounterDrift]:
    """Organizations whose counters disagree with their rows, read in one statement."""
    usage = _actual_usage()
    result = db.session.execute(
        select(
            Organization.id,
            Organization.name,
            Organization.used_bytes,
            Organization.file_count,
            func.coalesce(usage.c.bytes, 0),
            func.coalesce(usage.c.files, 0),
        )
        .outerjoin(usage, usage.c.organization_id == Organization.id)
        .order_by(Organization.id)
    ).all()
    db.session.rollback()
    return [
        CounterDrift(org_id, name, int(used), int(actual), int(count), int(files))
        for org_id, name, used, count, actual, files in result
        if int(used) != int(actual) or int(count) != int(files)
    ]


def _fix(report: StorageReport) -> None:
    """Make the safe repairs: stray bytes and stale uploads go, counters are recounted."""
    storage = get_storage()
    for stray in report.orphans:
        # Checked once more right before removing, so a row committed since is never hit.
        if _row_holds(owner_of(stray.path) or stray.path):
            continue
        storage.remove(stray.path)
        stray.removed = True
    for stray in report.stale_temp:
        storage.discard_pending(stray.path)
        stray.removed = True
    for drift in report.counters:
        _recount(drift)


def _recount(drift: CounterDrift) -> None:
    """Set one organization's counters from its rows, with the organization locked.

    The database's triggers keep them in step with every row written (migration 0011), so
    drift comes only from writes to the counters themselves: an operator's SQL, a TRUNCATE.
    """
    with write_transaction() as session:
        org = session.scalars(
            select(Organization).where(Organization.id == drift.organization_id).with_for_update()
        ).first()
        if org is None:
            return
        # Summed after taking the lock, so no upload or delete can slip in between.
        usage = _actual_usage()
        actual = session.execute(
            select(usage.c.bytes, usage.c.files).where(usage.c.organization_id == org.id)
        ).first()
        org.used_bytes = int(actual[0]) if actual else 0
        org.file_count = int(actual[1]) if actual else 0
        drift.actual_bytes, drift.actual_files = org.used_bytes, org.file_count
    drift.fixed = True
    log.info(
        "recounted usage of organization %s: %d bytes in %d file(s)",
        drift.organization_id,
        drift.actual_bytes,
        drift.actual_files,
    )
