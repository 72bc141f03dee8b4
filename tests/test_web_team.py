"""Team administration in a real Chromium: an invite link joins a second browser without
typing the organization, an admin promotes a member, a member changes their password."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.support.browser import PASSWORD, ConsoleErrors, Site, new_context, sign_in, sign_up

NEW_PASSWORD = "a new and longer passphrase"


@pytest.fixture
def second(browser: Browser, errors: ConsoleErrors) -> Iterator[Page]:
    """A tab of a second browser profile (another person, or the same on another device)."""
    context: BrowserContext = new_context(browser, errors)
    yield context.new_page()
    context.close()


def invite_link(page: Page, site: Site, role: str = "Member") -> str:
    """Make an invite link on the Organization page as its admin; the link shown once."""
    page.get_by_role("link", name="Organization").click()
    page.get_by_label("Role").select_option(label=role)
    page.get_by_role("button", name="Create invite link").click()
    link = page.get_by_label("Invite link")
    expect(link).to_have_attribute("readonly", "")
    url = link.input_value()
    assert url.startswith(f"{site.url}/join/")
    return url


def join(page: Page, url: str, email: str, organization: str = "Acme") -> None:
    """Open an invite link and sign up there: the organization is named, never typed."""
    page.goto(url)
    expect(page.get_by_role("heading", name=f"Join {organization}")).to_be_visible()
    expect(page.get_by_label("Organization")).to_have_count(0)
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name=f"Join {organization}").click()
    expect(page.get_by_role("heading", name="Files", exact=True)).to_be_visible()


def test_an_admin_invites_by_link_and_the_invitee_joins_without_typing_the_organization(
    site: Site, page: Page, second: Page
) -> None:
    sign_up(page, site, "ada@acme.test", "Acme")
    url = invite_link(page, site)
    pending = page.locator("table.invites tbody tr")
    expect(pending).to_have_count(1)
    expect(pending).to_contain_text("Member")
    expect(pending).to_contain_text("ada@acme.test")

    join(second, url, "grace@acme.test")
    expect(second.get_by_text("Acme", exact=True)).to_be_visible()  # the header's organization

    page.reload()
    expect(page.get_by_label("Invite link")).to_have_count(0)  # shown once
    expect(page.locator("table.invites")).to_have_count(0)
    expect(page.get_by_text("No pending invites")).to_be_visible()
    grace = page.locator("table.users tbody tr").filter(has_text="grace@acme.test")
    expect(grace).to_contain_text("Member")
    # The link worked once.
    second.goto(url)
    expect(second.get_by_role("heading", name="This invite link does not work")).to_be_visible()


def test_a_revoked_invite_link_no_longer_works(site: Site, page: Page, second: Page) -> None:
    sign_up(page, site, "ada@acme.test", "Acme")
    url = invite_link(page, site, role="Admin")
    pending = page.locator("table.invites tbody tr")
    expect(pending).to_contain_text("Admin")
    pending.get_by_role("button", name="Revoke").click()
    expect(page.get_by_text("No pending invites")).to_be_visible()
    second.goto(url)
    expect(second.get_by_role("heading", name="This invite link does not work")).to_be_visible()


def test_an_admin_promotes_a_member_who_then_sees_the_admin_sections(
    site: Site, page: Page, second: Page
) -> None:
    sign_up(page, site, "ada@acme.test", "Acme")
    join(second, invite_link(page, site), "grace@acme.test")
    second.get_by_role("link", name="Organization").click()
    expect(second.get_by_role("heading", name="Invite someone")).to_have_count(0)

    page.reload()
    grace = page.locator("table.users tbody tr").filter(has_text="grace@acme.test")
    grace.get_by_role("button", name="Make admin").click()
    grace = page.locator("table.users tbody tr").filter(has_text="grace@acme.test")
    expect(grace.get_by_role("button", name="Make member")).to_be_visible()
    expect(grace.locator("td").nth(1)).to_have_text("Admin")

    second.reload()
    expect(second.get_by_role("heading", name="Invite someone")).to_be_visible()
    expect(second.locator("table.users tbody tr")).to_have_count(2)

    # Ada steps down; Grace, the last admin now, cannot.
    ada = page.locator("table.users tbody tr").filter(has_text="ada@acme.test")
    ada.get_by_role("button", name="Make member").click()
    expect(page.get_by_role("heading", name="Invite someone")).to_have_count(0)
    second.reload()
    me = second.locator("table.users tbody tr").filter(has_text="grace@acme.test")
    me.get_by_role("button", name="Make member").click()
    expect(second.get_by_role("alert")).to_contain_text("last active admin")


def test_a_member_changes_their_password_and_their_other_browser_is_signed_out(
    site: Site, page: Page, second: Page
) -> None:
    sign_up(page, site, "ada@acme.test", "Acme")
    join(second, invite_link(page, site), "grace@acme.test")
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, "grace@acme.test")  # Grace on a second device
    expect(page.get_by_role("heading", name="Files", exact=True)).to_be_visible()

    second.get_by_role("link", name="Tokens").click()
    second.get_by_label("Current password").fill("not my password")
    second.get_by_label("New password").fill(NEW_PASSWORD)
    second.get_by_role("button", name="Change password").click()
    expect(second.locator("#current_password-error")).to_contain_text("not right")

    second.get_by_label("Current password").fill(PASSWORD)
    second.get_by_label("New password").fill(NEW_PASSWORD)
    second.get_by_role("button", name="Change password").click()
    expect(second.get_by_role("status")).to_contain_text("Your password was changed")
    second.get_by_role("link", name="Files").click()
    expect(second.get_by_role("heading", name="Files", exact=True)).to_be_visible()

    page.reload()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    page.get_by_label("Email").fill("grace@acme.test")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("invalid email or password")
    page.get_by_label("Password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Files", exact=True)).to_be_visible()
