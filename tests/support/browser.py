"""A real Chromium under Playwright, and the web app served to it with a real worker."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from flask import Flask
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, expect

from tests.support.live import LiveServer
from tests.support.pipeline import process_env
from tests.support.processes import ManagedProcess, managed

# Debian's Chromium: Playwright's own browser download is not reachable from here.
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
PASSWORD = "correct horse battery"
# `make screenshots` sets this: the browser tests then save the pages they pass through.
SCREENSHOTS = os.environ.get("COFFER_SCREENSHOTS")
# Chromium logs every 4xx/5xx answer to a script's request, and every request the test
# cuts, as this console error; the pages show those answers themselves.
RESOURCE_ERROR = "Failed to load resource"


@dataclass
class Site:
    """The app served by waitress on a free port, with a worker validating its uploads."""

    url: str
    worker: ManagedProcess


@contextmanager
def served(app: Flask, log_dir: Path) -> Iterator[Site]:
    """Serve the app and run `manage.py worker` beside it for the length of a block."""
    server = LiveServer(app)
    server.start()
    try:
        with managed(["worker"], process_env(app), log_dir / "worker.log") as worker:
            yield Site(url=server.url, worker=worker)
    finally:
        server.stop()


@dataclass
class ConsoleErrors:
    """A page's console errors and uncaught exceptions (the 4xx log lines left aside)."""

    seen: list[str] = field(default_factory=list)

    def watch(self, page: Page) -> None:
        """Record what this page reports."""
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.seen.append(f"uncaught: {error}"))

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error" and RESOURCE_ERROR not in message.text:
            self.seen.append(f"{message.location.get('url')}: {message.text}")


def new_context(browser: Browser, errors: ConsoleErrors, **options: object) -> BrowserContext:
    """A fresh browser profile (its own cookies) whose pages report their console errors."""
    context = browser.new_context(accept_downloads=True, **options)  # type: ignore[arg-type]
    context.on("page", errors.watch)
    return context


def sign_up(page: Page, site: Site, email: str, organization: str, invite: str = "") -> None:
    """Create an account through the sign-up page; lands on the files page."""
    page.goto(f"{site.url}/register")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Organization").fill(organization)
    if invite:
        page.get_by_label("Invite code").fill(invite)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", name="Files", exact=True)).to_be_visible()
    page.wait_for_load_state()


def sign_in(page: Page, email: str, password: str = PASSWORD) -> None:
    """Fill and send the sign-in form of the page shown."""
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


def screenshot(page: Page, name: str) -> None:
    """Save the page for docs/ when `make screenshots` asks for it."""
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"), full_page=True)
