"""WebDAV helpers: a member with tokens, a live server, and litmus and rclone run against it."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import requests

from tests.support.client import Auth


@dataclass(frozen=True)
class Member:
    """A registered member with an API token of each access."""

    email: str
    write: str
    read: str

    def session(self, *, read_only: bool = False) -> requests.Session:
        """A requests session authenticated with one of the member's tokens."""
        session = requests.Session()
        session.auth = (self.email, self.read if read_only else self.write)
        return session


def member(auth: Auth, email: str = "admin@acme.test", organization: str = "Acme") -> Member:
    """Register a new organization's admin and issue a write and a read token."""
    person = auth.another()
    assert person.register(email=email, organization_name=organization).status_code == 201
    write = person.client.post(
        "/api/tokens", json={"name": "dav", "access": "write"}, headers=person.headers()
    )
    read = person.client.post(
        "/api/tokens", json={"name": "dav-read", "access": "read"}, headers=person.headers()
    )
    assert write.status_code == 201 and read.status_code == 201
    return Member(email, write.get_json()["token"], read.get_json()["token"])


def litmus(url: str, user: str, password: str, suites: str, workdir: Path) -> str:
    """Run litmus's suites against `url`; returns its output (it fails on any failed test)."""
    result = subprocess.run(
        ["litmus", url, user, password],
        env={**os.environ, "TESTS": suites, "HOME": str(workdir)},
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    return output


def rclone_env(name: str, url: str, user: str, password: str, workdir: Path) -> dict[str, str]:
    """The environment of an rclone remote `name` on Coffer's WebDAV."""
    obscured = subprocess.run(
        ["rclone", "obscure", password], capture_output=True, text=True, check=True
    ).stdout.strip()
    prefix = f"RCLONE_CONFIG_{name.upper()}"
    return {
        **os.environ,
        "HOME": str(workdir),
        "RCLONE_CONFIG": str(workdir / "rclone.conf"),
        f"{prefix}_TYPE": "webdav",
        f"{prefix}_URL": url,
        f"{prefix}_VENDOR": "other",
        f"{prefix}_USER": user,
        f"{prefix}_PASS": obscured,
    }


def rclone(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run rclone with a remote's environment."""
    return subprocess.run(
        ["rclone", *args], env=env, capture_output=True, text=True, timeout=600, check=False
    )
