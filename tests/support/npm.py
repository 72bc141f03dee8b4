"""Browser builds of JavaScript clients from the npm registry, installed once into .cache/npm
and reused by later runs."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# The npm packages the browser tests load, pinned here and nowhere else.
PACKAGES = {
    # Its browser build, dist/tus.min.js, defines the global `tus`.
    "tus-js-client": "4.3.1",
    # @uppy/core and @uppy/tus among the rest; dist/uppy.min.js defines the global `Uppy`.
    "uppy": "6.0.1",
}
# The files the pages load, each from its package.
BUNDLES = {
    "tus.min.js": "tus-js-client/dist/tus.min.js",
    "uppy.min.js": "uppy/dist/uppy.min.js",
}
INSTALL_TIMEOUT = 600


class NpmUnavailable(Exception):
    """npm is missing or could not install the packages; the message says why."""


def cache_dir(packages: dict[str, str]) -> Path:
    """Where a set of pinned packages is installed: a new set gets a folder of its own."""
    pins = ",".join(f"{name}@{version}" for name, version in sorted(packages.items()))
    digest = hashlib.sha256(pins.encode()).hexdigest()[:12]
    base = Path(os.environ.get("COFFER_NPM_CACHE", ROOT / ".cache" / "npm"))
    return base / digest


def installed(packages: dict[str, str], files: list[str]) -> Path:
    """The node_modules folder holding `packages` (pinned versions), installed with npm the
    first time; `files` (paths under node_modules) say a finished install is there.

    NpmUnavailable when npm is missing or fails (stderr's end in the message).
    """
    target = cache_dir(packages)
    modules = target / "node_modules"
    if all((modules / path).is_file() for path in files):
        return modules
    npm = shutil.which("npm")
    if npm is None:
        raise NpmUnavailable("npm not found")
    target.parent.mkdir(parents=True, exist_ok=True)
    # Installed beside the cache and moved into place whole: an interrupted install leaves
    # nothing a later run would take for finished.
    staging = Path(tempfile.mkdtemp(prefix="install-", dir=target.parent))
    try:
        done = subprocess.run(
            [
                npm,
                "install",
                "--prefix",
                str(staging),
                "--no-audit",
                "--no-fund",
                "--ignore-scripts",
                "--loglevel=error",
                *(f"{name}@{version}" for name, version in packages.items()),
            ],
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT,
            check=False,
        )
        if done.returncode != 0:
            raise NpmUnavailable(f"npm install failed ({done.returncode}):\n{done.stderr[-4000:]}")
        if target.exists():
            shutil.rmtree(target)  # an earlier install that lost a file
        try:
            staging.rename(target)
        except OSError:
            # Another run installed the same versions meanwhile: theirs is as good.
            if not all((modules / path).is_file() for path in files):
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return modules


def install() -> Path:
    """The node_modules folder holding the browser tests' PACKAGES."""
    try:
        return installed(PACKAGES, list(BUNDLES.values()))
    except NpmUnavailable as exc:
        pytest.fail(
            f"the CORS browser tests install tus-js-client and Uppy with npm: {exc} "
            "(apt-get install npm, or Node.js with npm)"
        )


def bundles(into: Path) -> None:
    """Copy the browser builds into a folder a page is served from."""
    modules = install()
    for name, path in BUNDLES.items():
        shutil.copyfile(modules / path, into / name)
