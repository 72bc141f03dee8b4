"""The README's curl walk-through, run as written (bash and the real curl) against a live
server with a worker, so that the README cannot drift from what Coffer answers."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from flask import Flask
from sqlalchemy import select

from app.extensions import db as _db
from app.models import ApiToken, File, Organization
from tests.support import ROOT
from tests.support.browser import Site

README = ROOT / "README.md"
SECTION = "## A walk through with curl"


def walk_through() -> str:
    """The shell block of the README's walk-through section, exactly as a reader copies it."""
    text = README.read_text()
    section = text[text.index(SECTION) :]
    section = section[: section.index("\n## ", len(SECTION))]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.DOTALL)
    assert len(blocks) == 1, "the walk-through is one shell block"
    return str(blocks[0])


def run_walk(site: Site, directory: Path) -> subprocess.CompletedProcess[str]:
    """Save the block as walk.sh in `directory` and run `bash walk.sh`, as the README says."""
    directory.mkdir(exist_ok=True)
    (directory / "walk.sh").write_text(walk_through())
    return subprocess.run(
        ["bash", "walk.sh"],
        cwd=directory,
        env={**os.environ, "B": site.url},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_walk_through_runs_as_written_and_does_what_it_says(
    app: Flask, site: Site, tmp_path: Path
) -> None:
    walked = run_walk(site, tmp_path / "reader")

    assert walked.returncode == 0, walked.stdout + walked.stderr
    assert walked.stderr == ""
    directory = tmp_path / "reader"
    assert (directory / "notes-downloaded.txt").read_bytes() == (
        directory / "notes.txt"
    ).read_bytes()
    assert '"status":"ready"' in walked.stdout.replace(" ", "")
    assert '"email":"ada@example.com"' in walked.stdout.replace(" ", "")
    with app.app_context():
        organization = _db.session.execute(
            select(Organization).where(Organization.name == "Acme")
        ).scalar_one()
        (uploaded,) = _db.session.execute(
            select(File).where(File.organization_id == organization.id)
        ).scalars()
        assert (uploaded.filename, uploaded.status) == ("notes.txt", "ready")
        assert _db.session.execute(select(ApiToken.name)).scalars().all() == ["backup script"]


def test_a_step_that_fails_stops_the_walk_through_and_says_why(
    app: Flask, site: Site, tmp_path: Path
) -> None:
    assert run_walk(site, tmp_path / "first").returncode == 0

    # The same walk again: the account exists, so registering is refused.
    again = run_walk(site, tmp_path / "second")

    assert again.returncode == 22, again.stdout + again.stderr  # curl's "HTTP error"
    assert '"code":"email_taken"' in again.stdout.replace(" ", "")
    assert not (tmp_path / "second" / "notes.txt").exists(), "it went on after the failure"
