"""Password reset: in Chromium through the pages and the e-mail's link, and under `make
run`'s settings (DJANGO_DEBUG=1, a server in its own process) where the e-mail is printed
in the server's terminal. Whether an address has an account is never told; the link
works once; asking is limited per client address. The profile and the reset by keyboard
alone."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.core import mail
from playwright.async_api import BrowserContext, expect

from tests.chat_accounts import PASSWORD, ChatAccount
from tests.e2e.test_chat_accessibility import violations
from tests.e2e.test_chat_browser import sign_up
from tests.postgres import Postgres
from tests.servers import LiveServer, ServerProcess, uvicorn_command

pytestmark = [pytest.mark.django_db(transaction=True)]

NewContext = Callable[..., Awaitable[BrowserContext]]
NEW_PASSWORD = "another-horse-battery-staple-43"
LINK = re.compile(r"https?://\S+/accounts/reset/\S+/")


@pytest.mark.browser
@pytest.mark.asyncio(loop_scope="session")
async def test_a_forgotten_password_is_reset_through_the_emailed_link(
    server: LiveServer, new_context: NewContext
) -> None:
    alice = await sync_to_async(ChatAccount)(server.url, "alice")
    await sync_to_async(alice.form)("/accounts/profile/", email="alice@example.com")
    alice.close()
    page = await (await new_context()).new_page()
    await page.goto(f"{server.url}/accounts/login/")
    await page.click("#forgot-password")
    assert await violations(page) == [], "the reset form"
    # An address nobody has: the same answer, and no e-mail.
    await page.fill("#id_email", "nobody@example.com")
    await page.click("button[type=submit]")
    await expect(page.locator("h1")).to_have_text("Check your e-mail")
    assert mail.outbox == []
    await page.go_back()
    await page.fill("#id_email", "alice@example.com")
    await page.click("button[type=submit]")
    await expect(page.locator("h1")).to_have_text("Check your e-mail")
    assert await violations(page) == [], "check your e-mail"
    (sent,) = mail.outbox
    assert sent.to == ["alice@example.com"]
    assert 'account "alice"' in sent.body
    link = LINK.search(str(sent.body))
    assert link is not None, sent.body
    await page.goto(link.group(0))
    await expect(page.locator("h1")).to_have_text("Choose a new password")
    assert await violations(page) == [], "choose a new password"
    await page.fill("#id_new_password1", NEW_PASSWORD)
    await page.fill("#id_new_password2", NEW_PASSWORD)
    await page.click("button[type=submit]")
    await expect(page.locator("h1")).to_have_text("Password set")
    # The new password logs in; the old one no longer does; the link works once.
    user = await sync_to_async(User.objects.get)(username="alice")
    assert user.check_password(NEW_PASSWORD)
    assert not user.check_password(PASSWORD)
    await page.goto(link.group(0))
    await expect(page.locator("#invalid-link")).to_contain_text("does not work any more")
    await page.goto(f"{server.url}/accounts/login/")
    await page.fill("#id_username", "alice")
    await page.fill("#id_password", NEW_PASSWORD)
    await page.click("button[type=submit]")
    await expect(page.locator("#me")).to_have_text("alice")


def test_asking_is_limited_per_address(server: LiveServer, settings: Any) -> None:
    settings.CHAT_RATE_LIMITS = {"password_reset": (None, 2, 600.0)}
    User.objects.create_user("alice", "alice@example.com", PASSWORD)
    with httpx.Client(base_url=server.url) as client:
        client.get("/accounts/password_reset/").raise_for_status()
        token = client.cookies["csrftoken"]
        statuses = []
        for _ in range(3):
            response = client.post(
                "/accounts/password_reset/",
                data={"email": "alice@example.com", "csrfmiddlewaretoken": token},
            )
            statuses.append(response.status_code)
        assert statuses == [302, 302, 429]
        assert "Too many password-reset e-mails from your address" in response.text
        assert 1 <= int(response.headers["retry-after"]) <= 600
    assert len(mail.outbox) == 2


def test_under_make_run_the_email_is_printed_in_the_terminal(pg: Postgres) -> None:
    """`make run` serves with DJANGO_DEBUG=1 and chatsite.settings: the console backend."""
    User.objects.create_user("alice", "alice@example.com", PASSWORD)
    server = ServerProcess(
        uvicorn_command(),
        pg.url,
        DJANGO_SETTINGS_MODULE="chatsite.settings",
        DJANGO_DEBUG="1",
        DJANGO_SECRET_KEY="tests-only-not-secret",
    ).start()
    try:
        with httpx.Client(base_url=server.url) as client:
            client.get("/accounts/password_reset/").raise_for_status()
            response = client.post(
                "/accounts/password_reset/",
                data={
                    "email": "alice@example.com",
                    "csrfmiddlewaretoken": client.cookies["csrftoken"],
                },
            )
            assert response.status_code == 302
            printed = server.output()
            link = LINK.search(printed)
            assert link is not None, printed
            assert "Subject: Your password on pgsse chat" in printed
            form = client.get(link.group(0), follow_redirects=True)
            assert "Choose a new password" in form.text
    finally:
        server.stop()


@pytest.mark.browser
@pytest.mark.asyncio(loop_scope="session")
async def test_the_profile_and_the_reset_by_keyboard_alone(
    server: LiveServer, new_context: NewContext
) -> None:
    context = await sign_up(new_context, server.url, "alice")
    page = await context.new_page()
    await page.goto(f"{server.url}/")
    # From the top bar: the name leads to the profile; its fields in order; Enter saves.
    await page.locator("#me").focus()
    await page.keyboard.press("Enter")
    await expect(page.locator("h1")).to_have_text("Your profile")
    await page.locator("#id_display_name").focus()
    await page.keyboard.type("Alice Liddell")
    await page.keyboard.press("Tab")
    await expect(page.locator("#id_email")).to_be_focused()
    await page.keyboard.type("alice@example.com")
    await page.keyboard.press("Enter")
    await expect(page.locator(".notices")).to_contain_text("Your profile is saved.")
    await expect(page.locator("#me")).to_have_text("Alice Liddell")
    # Logged out, the reset by keyboard: the log-in page's link, the address, Enter.
    visitor = await (await new_context()).new_page()
    await visitor.goto(f"{server.url}/accounts/login/")
    await visitor.locator("#forgot-password").focus()
    await visitor.keyboard.press("Enter")
    await expect(visitor.locator("#id_email")).to_be_visible()
    await visitor.locator("#id_email").focus()
    await visitor.keyboard.type("alice@example.com")
    await visitor.keyboard.press("Enter")
    await expect(visitor.locator("h1")).to_have_text("Check your e-mail")
    assert len(mail.outbox) == 1
