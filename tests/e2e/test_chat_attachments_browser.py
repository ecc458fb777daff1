"""Attachments in Chromium: picked by keyboard, pasted, reviewed and removed before
sending; shown live on every page (image previews, downloads); an SVG or HTML file never
runs; the checks and the page are accessible."""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import BrowserContext, Dialog, Error, FilePayload, Locator, Page, expect
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from tests.attachment_files import HTML_WITH_SCRIPT, PDF, SVG_WITH_SCRIPT, image
from tests.e2e.test_chat_accessibility import violations
from tests.e2e.test_chat_browser import DIALOGS, join, send, start_reply
from tests.servers import LiveServer

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.asyncio(loop_scope="session"),
]

NewContext = Callable[..., Awaitable[BrowserContext]]


def payload(name: str, data: bytes, mime: str) -> FilePayload:
    return FilePayload(name=name, mimeType=mime, buffer=data)


async def pick_by_keyboard(page: Page, *files: FilePayload) -> None:
    """From the composer, Tab to the Attach button and press Enter: the file chooser."""
    # Chromium opens no file chooser for a window in the background, and on a loaded machine
    # a window brought to the front may not be there yet when Enter is pressed: the chooser
    # is waited for a while and the whole keyboard path is taken again if it did not come.
    for attempt in range(3):
        await page.bring_to_front()
        await page.focus("#text")
        await page.keyboard.press("Tab")
        await expect(page.locator("#attach")).to_be_focused()
        try:
            async with page.expect_file_chooser(timeout=10_000) as chooser:
                await page.keyboard.press("Enter")
        except PlaywrightTimeoutError:
            if attempt == 2:
                raise
            continue
        await (await chooser.value).set_files(list(files))
        return


async def test_files_are_picked_reviewed_sent_and_shown_live(
    server: LiveServer, new_context: NewContext
) -> None:
    alice = await join(new_context, server, "alice", "lobby")
    bob = await join(new_context, server, "bob", "lobby")
    photo = image("PNG", (1200, 900))
    await pick_by_keyboard(
        alice,
        payload("photo.png", photo, "image/png"),
        payload("report.pdf", PDF, "application/pdf"),
        payload("notes.txt", b"remove me", "text/plain"),
    )
    chips = alice.locator("#attached .chip")
    await expect(chips).to_have_count(3)
    await expect(alice.locator("#attach-status")).to_have_text("3 files ready to send.")
    # Removed by keyboard: the focus stays in the list.
    await alice.locator("#attached button[aria-label='Remove notes.txt']").focus()
    await alice.keyboard.press("Enter")
    await expect(chips).to_have_count(2)
    await expect(alice.locator("#attached .chip-name")).to_have_text(["photo.png", "report.pdf"])
    await expect(alice.locator("#attached .chip-remove").first).to_be_focused()
    assert await violations(alice) == [], "files to send"
    await send(alice, "the plan")
    await expect(chips).to_have_count(0)
    await expect(alice.locator("#attached")).to_be_hidden()
    for page in (alice, bob):
        message = page.locator(".message").last
        await expect(message.locator(".text")).to_have_text("the plan")
        picture = message.locator(".file.image img")
        await expect(picture).to_have_attribute("alt", "photo.png")
        await expect(picture).to_have_attribute("width", "1200")
        # The preview loaded (the browser decoded it).
        await page.wait_for_function(
            "(img) => img.complete && img.naturalWidth === 640",
            arg=await picture.element_handle(),
        )
        download = message.locator(".file:not(.image) a")
        await expect(download).to_contain_text("report.pdf")
        await expect(download).to_contain_text("PDF, ")
        await expect(download).to_have_attribute("download", "report.pdf")
    async with bob.expect_download() as saved:
        await bob.locator(".message .file:not(.image) a").click()
    assert (await saved.value).suggested_filename == "report.pdf"
    assert Path(await (await saved.value).path()).read_bytes() == PDF
    assert await violations(bob) == [], "message with files"


async def test_a_pasted_image_is_sent_alone_and_kept_through_an_edit(
    server: LiveServer, new_context: NewContext
) -> None:
    alice = await join(new_context, server, "alice", "lobby")
    data = base64.b64encode(image("PNG", (80, 60))).decode()
    await alice.focus("#text")
    # What a browser does when an image is pasted from the clipboard.
    await alice.evaluate(
        """(data) => {
          const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
          const transfer = new DataTransfer();
          transfer.items.add(new File([bytes], "image.png", {type: "image/png"}));
          const event = new ClipboardEvent("paste", {clipboardData: transfer, bubbles: true,
                                                     cancelable: true});
          document.getElementById("text").dispatchEvent(event);
        }""",
        data,
    )
    await expect(alice.locator("#attached .chip-name")).to_have_text(["image.png"])
    # A file dropped on the room joins it.
    await alice.evaluate(
        """() => {
          const transfer = new DataTransfer();
          transfer.items.add(new File(["%PDF-1.4\\n"], "dropped.pdf", {type: "application/pdf"}));
          const room = document.getElementById("room");
          for (const type of ["dragover", "drop"]) {
            room.dispatchEvent(new DragEvent(type, {dataTransfer: transfer, bubbles: true,
                                                     cancelable: true}));
          }
        }"""
    )
    await expect(alice.locator("#attached .chip-name")).to_have_text(["image.png", "dropped.pdf"])
    await expect(alice.locator("#text")).to_be_focused()
    await alice.locator("#attached button[aria-label='Remove dropped.pdf']").click()
    await alice.focus("#text")
    await alice.press("#text", "Enter")  # no text: the image alone
    message = alice.locator(".message").last
    await expect(message.locator(".file.image img")).to_have_attribute("alt", "image.png")
    await expect(message.locator(".text")).to_be_hidden()
    # Editing the text (↑ in the empty box), then cancelling, keeps the image.
    await alice.keyboard.press("ArrowUp")
    await expect(message.locator(".editor")).to_be_focused()
    await alice.keyboard.press("Escape")
    await expect(message).to_be_focused()
    await expect(message.locator(".file.image img")).to_have_count(1)
    await expect(message.locator(".text")).to_be_hidden()
    # Nothing at all is still refused.
    await send(alice, "  ")
    await expect(alice.locator("#composer-error")).to_have_text("A message cannot be empty.")


async def test_too_large_files_are_refused_at_once(
    server: LiveServer, new_context: NewContext, settings: Any
) -> None:
    settings.CHAT_ATTACHMENT_MAX_BYTES = 1000
    alice = await join(new_context, server, "alice", "lobby")
    await alice.set_input_files(
        "#file-input", [payload("big.bin", b"x" * 1001, "application/octet-stream")]
    )
    await expect(alice.locator("#composer-error")).to_have_text(
        "big.bin is 1001 B; a file is at most 1000 B."
    )
    await expect(alice.locator("#attached .chip")).to_have_count(0)


async def test_svg_and_html_files_never_run(server: LiveServer, new_context: NewContext) -> None:
    alice = await join(new_context, server, "alice", "lobby")
    bob = await join(new_context, server, "bob", "lobby")
    await alice.set_input_files(
        "#file-input",
        [
            payload("drawing.svg", SVG_WITH_SCRIPT, "image/svg+xml"),
            payload("page.html", HTML_WITH_SCRIPT, "text/html"),
        ],
    )
    await send(alice, "careful")
    links = bob.locator(".message .file a")
    await expect(links).to_have_count(2)
    await expect(bob.locator(".message img")).to_have_count(0)  # not shown as images
    urls = [await link.get_attribute("href") for link in await links.all()]
    # Opened directly, each is a download, never a page of the chat's origin.
    for url in urls:
        opened = await bob.context.new_page()
        dialogs: list[str] = []
        DIALOGS[opened] = dialogs

        def seen(dialog: Dialog, dialogs: list[str] = dialogs) -> None:
            dialogs.append(dialog.message)

        opened.on("dialog", seen)
        async with opened.expect_download() as saved:
            with pytest.raises(Error, match="Download is starting"):
                await opened.goto(f"{server.url}{url}")
        assert (await saved.value).suggested_filename in ("drawing.svg", "page.html")
        assert DIALOGS[opened] == []
        await opened.close()
    assert DIALOGS[bob] == []
    assert DIALOGS[alice] == []


async def parts(message: Locator) -> list[str]:
    """What a message's item holds, in reading order (each part by its first class)."""
    found = await message.evaluate("(item) => [...item.children].map((part) => part.classList[0])")
    return [str(name) for name in found]


async def test_a_reply_carries_files_and_the_thread_shows_them(
    server: LiveServer, new_context: NewContext
) -> None:
    alice = await join(new_context, server, "alice", "lobby")
    bob = await join(new_context, server, "bob", "lobby")
    await alice.set_input_files(
        "#file-input", [payload("chart.png", image("PNG", (120, 80)), "image/png")]
    )
    await alice.press("#text", "Enter")  # the image alone
    root = bob.locator(".message").first
    await expect(root.locator(".file.image img")).to_have_attribute("alt", "chart.png")
    # Bob replies with a file: Reply, then attach as usual. A message that is its files
    # alone is quoted by their names.
    await start_reply(root)
    await expect(bob.locator("#replying-text")).to_have_text("alice: 📎 chart.png")
    await bob.set_input_files("#file-input", [payload("report.pdf", PDF, "application/pdf")])
    await send(bob, "the numbers")
    await expect(bob.locator("#replying")).to_be_hidden()
    for page in (alice, bob):
        first = page.locator(".message").first
        reply = page.locator(".message").last
        await expect(reply.locator(".quote")).to_contain_text("alice: 📎 chart.png")
        await expect(reply.locator(".file a")).to_contain_text("report.pdf")
        await expect(first.locator(".replies")).to_contain_text("1 reply")
        # The files follow the text; the replies and reactions come after them.
        assert await parts(reply) == ["meta", "quote", "text", "files"]
        assert await parts(first) == ["meta", "text", "files", "replies"]
    # Alice reacts: the reactions go after the replies, on both pages, live.
    first = alice.locator(".message").first
    await first.hover()
    await first.locator("button[data-action=react]").click()
    await first.locator(".picker button[aria-label='React with 👍']").click()
    for page in (alice, bob):
        first = page.locator(".message").first
        await expect(first.locator(".reaction")).to_have_text("👍 1")
        assert await parts(first) == ["meta", "text", "files", "replies", "reactions"]
    # The thread panel shows every message's files, and those of new replies, live.
    await alice.locator(".message").first.locator(".replies").click()
    panel = alice.locator("#thread-panel")
    await expect(panel.locator("#thread-root .file.image img")).to_have_attribute(
        "alt", "chart.png"
    )
    await expect(panel.locator("#thread-root .text")).to_be_hidden()
    await expect(panel.locator("#thread-replies .file a")).to_contain_text("report.pdf")
    root = bob.locator(".message").first
    await start_reply(root)
    await bob.set_input_files("#file-input", [payload("notes.pdf", PDF, "application/pdf")])
    await send(bob, "and the notes")
    await expect(panel.locator("#thread-replies .file a")).to_have_count(2)
    await expect(panel.locator("#thread-replies .file a").last).to_contain_text("notes.pdf")
    assert await violations(alice) == [], "a thread with files"


async def test_files_are_attached_in_the_thread_panel_too(
    server: LiveServer, new_context: NewContext
) -> None:
    alice = await join(new_context, server, "alice", "lobby")
    bob = await join(new_context, server, "bob", "lobby")
    await send(alice, "send me the slides")
    await send(bob, "here")  # a reply in the thread comes from the panel below
    first = alice.locator(".message").first
    await start_reply(first)
    await send(alice, "reminder")
    await expect(alice.locator(".message").first.locator(".replies")).to_contain_text("1 reply")
    await bob.locator(".message").first.locator(".replies").click()
    panel = bob.locator("#thread-panel")
    await expect(panel.locator("#thread-replies .text")).to_have_text(["reminder"])
    # An empty reply is refused with words; files alone are a reply.
    await bob.locator("#thread-text").press("Enter")
    await expect(bob.locator("#thread-error")).to_have_text("A reply cannot be empty.")
    await bob.set_input_files(
        "#thread-file-input",
        [
            payload("slides.pdf", PDF, "application/pdf"),
            payload("cover.png", image("PNG", (200, 100)), "image/png"),
        ],
    )
    chips = panel.locator("#thread-attached .chip-name")
    await expect(chips).to_have_text(["slides.pdf", "cover.png"])
    await expect(bob.locator("#thread-error")).to_be_hidden()
    await expect(bob.locator("#thread-attach-status")).to_have_text("2 files ready to send.")
    # The room's own composer has none of them.
    await expect(bob.locator("#attached")).to_be_hidden()
    await panel.locator("#thread-attached button[aria-label='Remove cover.png']").click()
    await expect(chips).to_have_text(["slides.pdf"])
    await bob.locator("#thread-text").press("Enter")
    await expect(panel.locator("#thread-attached")).to_be_hidden()
    await expect(panel.locator("#thread-replies .file a")).to_contain_text("slides.pdf")
    # Everyone sees the reply, its file, and the thread's count, live.
    for page in (alice, bob):
        reply = page.locator(".message").last
        await expect(reply.locator(".file a")).to_contain_text("slides.pdf")
        await expect(page.locator(".message").first.locator(".replies")).to_contain_text(
            "2 replies"
        )
    await alice.locator(".message").first.locator(".replies").click()
    await expect(alice.locator("#thread-replies .file a")).to_contain_text("slides.pdf")
    # With text, and by the panel's Attach button and its file chooser.
    async with bob.expect_file_chooser() as chooser:
        await panel.locator("#thread-attach").click()
    await (await chooser.value).set_files([payload("notes.pdf", PDF, "application/pdf")])
    await bob.locator("#thread-text").fill("and my notes")
    await panel.locator("#thread-send").click()
    for page in (alice, bob):
        last = page.locator("#thread-replies > li").last
        await expect(last.locator(".text")).to_have_text("and my notes")
        await expect(last.locator(".file a")).to_contain_text("notes.pdf")
    await expect(bob.locator("#thread-send")).to_have_text("Reply")
    assert await violations(bob) == [], "a thread panel with files"
