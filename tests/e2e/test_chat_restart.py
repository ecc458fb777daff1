"""A server restart with two chat pages open: they reconnect by themselves and show,
once, the message a third client posted through the API while the server was down."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
import pytest
from asgiref.sync import sync_to_async
from playwright.async_api import BrowserContext, expect

from tests.e2e.test_chat_browser import open_room, send, sign_up
from tests.servers import ServerProcess, uvicorn_command

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.asyncio(loop_scope="session"),
]

NewContext = Callable[..., Awaitable[BrowserContext]]


async def test_pages_reconnect_after_a_restart_and_show_what_was_posted_meanwhile(
    two_processes: list[ServerProcess], new_context: NewContext
) -> None:
    pages_server, api_server = two_processes
    alice = await open_room(
        await sign_up(new_context, pages_server.url, "alice"), pages_server.url, "lobby"
    )
    bob = await open_room(
        await sign_up(new_context, pages_server.url, "bob"), pages_server.url, "lobby"
    )
    await send(alice, "before the restart")
    for page in (alice, bob):
        await expect(page.locator(".message .text")).to_have_text(["before the restart"])

    seconds = await sync_to_async(pages_server.terminate)()
    for page in (alice, bob):
        await expect(page.locator("#connection")).to_have_attribute("data-state", "reconnecting")

    # A bot posts through the API of the other process while the pages' server is down.
    def post_as_bot() -> dict[str, object]:
        from io import StringIO

        from django.core.management import call_command

        out = StringIO()
        call_command("chat_token", "bot", stdout=out, stderr=StringIO())
        response = httpx.post(
            f"{api_server.url}/api/rooms/lobby/messages/",
            json={"text": "posted during the downtime"},
            headers={"Authorization": f"Bearer {out.getvalue().strip()}"},
        )
        assert response.status_code == 201, response.text
        data: dict[str, object] = response.json()
        return data

    posted = await sync_to_async(post_as_bot)()
    restarted = ServerProcess(
        uvicorn_command(), pages_server.env["DATABASE_URL"], port=pages_server.port
    )
    await sync_to_async(restarted.start)()
    try:
        for page in (alice, bob):
            await expect(page.locator("#connection")).to_have_attribute(
                "data-state", "live", timeout=15000
            )
            await expect(page.locator(".message .text")).to_have_text(
                ["before the restart", "posted during the downtime"]
            )
            await expect(page.locator(f'.message[data-id="{posted["id"]}"]')).to_have_count(1)
        # And the restarted server carries new messages live again.
        await send(bob, "after the restart")
        await expect(alice.locator(".message .text")).to_have_text(
            ["before the restart", "posted during the downtime", "after the restart"], timeout=2000
        )
    finally:
        restarted.kill()
        restarted.log.close()
    assert seconds < 10, f"the server took {seconds:.1f}s to stop with streams open"
