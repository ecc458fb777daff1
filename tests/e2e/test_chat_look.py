"""The chat's layout at desktop and phone widths, in Chromium.

``CHAT_SCREENSHOTS=1`` also writes the screenshots of docs/screenshots/ from these pages.
"""

from __future__ import annotations

import io
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async
from PIL import Image, ImageDraw
from playwright.async_api import BrowserContext, Page, expect

from tests.chat_accounts import PASSWORD, ChatAccount
from tests.e2e.test_chat_browser import open_room, sign_up, unread_badge
from tests.servers import LiveServer

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.asyncio(loop_scope="session"),
]

NewContext = Callable[..., Awaitable[BrowserContext]]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
CONVERSATION = [
    ("alice", "Morning! Did the deploy go out?"),
    ("bob", "Yes, 10 minutes ago. Two server processes, one PostgreSQL."),
    ("bob", "The pages reconnected by themselves, and showed what was posted meanwhile."),
    ("alice", "Notes are here: https://example.com/notes"),
    ("carol", "Great. <b>Tags</b> stay text, by the way."),
    ("bob", "@carol could you check the phone layout?"),
]


async def conversation(server: LiveServer, carol: bool = True) -> None:
    names = ("alice", "bob", "carol") if carol else ("alice", "bob")
    people = {name: await sync_to_async(ChatAccount)(server.url, name) for name in names}
    if carol:
        # Carol is in #random too, where two messages wait for her.
        await sync_to_async(people["carol"].say)("random", "Lunch at noon?")
    for name, text in CONVERSATION:
        if name in people:
            await sync_to_async(people[name].say)("lobby", text)
    await sync_to_async(post_chart)(people["bob"])
    if carol:
        await sync_to_async(people["alice"].say)("random", "Yes!")
        await sync_to_async(people["bob"].say)("random", "@carol count me in")
    for person in people.values():
        person.close()


def post_chart(bob: ChatAccount) -> None:
    """Bob shares an image: a bar chart of the deploy, drawn here."""
    picture = Image.new("RGB", (720, 360), "white")
    draw = ImageDraw.Draw(picture)
    for n, height in enumerate((120, 180, 150, 260, 300, 240, 320)):
        draw.rectangle((40 + n * 95, 340 - height, 110 + n * 95, 340), fill=(36, 86, 184))
    data = io.BytesIO()
    picture.save(data, "PNG")
    response = bob.client.post(
        "/api/rooms/lobby/messages/",
        data={"text": "Requests per second during the deploy:"},
        files=[("file", ("deploy.png", data.getvalue(), "image/png"))],
        headers={"X-CSRFToken": bob.csrf_token},
    )
    assert response.status_code == 201, response.text


async def screenshot(page: Page, name: str) -> None:
    if os.environ.get("CHAT_SCREENSHOTS") == "1":
        await page.screenshot(path=str(SCREENSHOTS / name))


async def log_in(new_context: NewContext, base_url: str, name: str) -> BrowserContext:
    context = await new_context()
    page = await context.new_page()
    await page.goto(f"{base_url}/accounts/login/")
    await page.fill("#id_username", name)
    await page.fill("#id_password", PASSWORD)
    await page.click("button[type=submit]")
    await expect(page.locator("#me")).to_have_text(name)
    await page.close()
    return context


async def test_desktop_layout(server: LiveServer, new_context: NewContext) -> None:
    await conversation(server)
    carol = await log_in(new_context, server.url, "carol")
    dave = await sign_up(new_context, server.url, "dave")
    page = await open_room(carol, server.url, "lobby")
    await page.set_viewport_size({"width": 1280, "height": 720})
    other = await open_room(dave, server.url, "lobby")
    await expect(page.locator("#presence li")).to_have_text(["carol", "dave"])
    await other.type("#text", "typing a reply")
    await expect(page.locator("#typing")).to_have_text("dave is typing…")
    await page.fill("#text", "On it, @bob!")
    await expect(unread_badge(page, "random")).to_contain_text("2 unread")
    await expect(page.locator(".message.mentions-me")).to_have_count(1)
    sidebar = await page.locator(".sidebar").bounding_box()
    messages = await page.locator("#scroller").bounding_box()
    assert sidebar is not None
    assert messages is not None
    assert sidebar["x"] + sidebar["width"] <= messages["x"]  # side by side
    await screenshot(page, "chat-desktop.png")


async def test_phone_layout_fits_360_pixels(server: LiveServer, new_context: NewContext) -> None:
    await conversation(server, carol=False)
    context = await sign_up(new_context, server.url, "carol")
    page = await open_room(context, server.url, "lobby")
    await page.set_viewport_size({"width": 360, "height": 740})
    await expect(page.locator(".message")).to_have_count(
        len([name for name, _ in CONVERSATION if name != "carol"]) + 1  # and the chart
    )
    await expect(page.locator("#presence li")).to_have_text(["carol"])
    # Nothing wider than the screen: no sideways scrolling.
    assert await page.evaluate("document.documentElement.scrollWidth") <= 360
    send_button = "#composer button[type=submit]"  # the composer also holds Cancel reply
    selectors = ("#text", send_button, "#attach", "#connection", ".message .text >> nth=3")
    for selector in (*selectors, ".message .file.image img"):
        box = await page.locator(selector).bounding_box()
        assert box is not None, selector
        assert box["x"] >= 0, selector
        assert box["x"] + box["width"] <= 360, selector
    await expect(page.locator(send_button)).to_be_in_viewport()
    # The top bar is one line: the name, the badge, the search box and the account side by
    # side, none of them wrapped or cut.
    middles = []
    for selector in (".brand", "#connection", "#search-box", "#me", ".account button"):
        box = await page.locator(selector).bounding_box()
        assert box is not None, selector
        assert box["height"] < 40, selector
        middles.append(box["y"] + box["height"] / 2)
    assert max(middles) - min(middles) < 6, middles
    assert await page.locator("#me").evaluate("(me) => me.scrollWidth <= me.clientWidth")
    await screenshot(page, "chat-phone.png")
