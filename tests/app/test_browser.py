"""Debian's Chromium driven by Playwright: a note posted in one page appears in another."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

import services
from helpers import WAIT, Server

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser():
    services.ensure_packages()
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing; install Debian's chromium package")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield browser
        browser.close()


def test_a_note_posted_in_one_page_appears_in_another(browser, tmp_path):
    # No migration here: `noticeboard serve` migrates a SQLite database itself (auto).
    url = f"sqlite:///{tmp_path / 'browser.db'}"
    attachment = tmp_path / "minutes.txt"
    attachment.write_bytes("Minutes of the meeting — ✓\n".encode() * 50)

    with Server(url, tmp_path / "data", workers=2, MIGRATE_ON_START="auto") as srv:
        problems: list[str] = []
        pages = []
        for _ in range(2):
            context = browser.new_context(accept_downloads=True)
            page = context.new_page()
            page.set_default_timeout(WAIT * 1000)
            page.on("console", lambda m: m.type == "error" and problems.append(m.text))
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.goto(srv.url + "/")
            expect(page.locator("body")).to_have_attribute("data-live", "true")
            pages.append(page)
        writer, reader = pages

        expect(reader.locator("#empty")).to_be_visible()
        writer.get_by_label("Title").fill("Fire drill")
        writer.get_by_role("textbox", name="Note", exact=True).fill(
            "Friday at ten.\nMeet at the car park."
        )
        writer.get_by_label("Attachment").set_input_files(str(attachment))
        writer.get_by_role("button", name="Post").click()

        note = reader.locator("#notes li").filter(has_text="Fire drill")
        expect(note).to_have_count(1)
        expect(note).to_contain_text("Meet at the car park.")
        expect(reader.locator("#empty")).to_be_hidden()
        expect(writer.locator("#notes li")).to_have_count(1)
        expect(writer.get_by_role("textbox", name="Note", exact=True)).to_have_value("")

        with reader.expect_download() as info:
            note.get_by_role("link", name="minutes.txt").click()
        download = info.value
        assert download.suggested_filename == "minutes.txt"
        assert Path(download.path()).read_bytes() == attachment.read_bytes()

        reader.get_by_role("button", name="Delete note: Fire drill").click()
        expect(writer.locator("#notes li")).to_have_count(0)
        expect(writer.locator("#empty")).to_be_visible()

        writer.get_by_role("button", name="Post").click()
        expect(writer.locator("#notes li")).to_have_count(0)

        assert problems == []


NO_SIDEWAYS_SCROLL = (
    "() => document.documentElement.scrollWidth <= document.documentElement.clientWidth"
)


def test_whatever_was_stored_never_pushes_the_page_sideways(browser, tmp_path):
    """A long unbroken word, a long file name and right-to-left text, on a phone's width."""
    url = f"sqlite:///{tmp_path / 'wide.db'}"
    word = "W" * 300
    # Hebrew and Arabic, and a file name as long as sanitising keeps (120 characters).
    rtl = "שלום עולם، مرحبا بالعالم"
    attachment = tmp_path / ("דוח-" + "n" * 150 + ".txt")
    attachment.write_bytes(b"minutes\n")

    with Server(url, tmp_path / "data", workers=1, MIGRATE_ON_START="auto") as srv:
        context = browser.new_context(viewport={"width": 360, "height": 740})
        page = context.new_page()
        page.set_default_timeout(WAIT * 1000)
        page.goto(srv.url + "/")
        page.get_by_label("Title").fill(rtl + " " + "T" * 150)
        page.get_by_role("textbox", name="Note", exact=True).fill(f"{rtl} {word} {rtl}")
        page.get_by_label("Attachment").set_input_files(str(attachment))
        page.get_by_role("button", name="Post").click()

        # Drawn by the page's script, then by the server's template after a reload.
        note = page.locator("#notes li")
        expect(note).to_have_count(1)
        expect(note.get_by_role("link")).to_contain_text("nnnn")
        assert page.evaluate(NO_SIDEWAYS_SCROLL), page.evaluate(
            "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
        )
        page.reload()
        expect(page.locator("#notes li")).to_have_count(1)
        assert page.evaluate(NO_SIDEWAYS_SCROLL), page.evaluate(
            "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
        )
        context.close()


def test_an_admin_signs_in_through_the_page_posts_and_signs_out(browser, tmp_path):
    """AUTH_MODE=accounts; the first admin comes from the settings when serve migrates."""
    url = f"sqlite:///{tmp_path / 'accounts.db'}"
    password = "Admin-pass-0f-the-board"
    with Server(
        url,
        tmp_path / "data",
        workers=1,
        MIGRATE_ON_START="auto",
        AUTH_MODE="accounts",
        ADMIN_USERNAME="ada",
        ADMIN_PASSWORD=password,
    ) as srv:
        problems: list[str] = []
        context = browser.new_context()
        page = context.new_page()
        page.set_default_timeout(WAIT * 1000)
        # A refused sign-in is a 401, which Chromium reports on the console by itself.
        page.on(
            "console",
            lambda m: m.type == "error" and "401" not in m.text and problems.append(m.text),
        )
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.goto(srv.url + "/")
        expect(page.locator("#notes")).to_have_count(0)
        page.get_by_label("Username").fill("ada")
        page.get_by_label("Password").fill("not-the-password")
        page.get_by_role("button", name="Sign in").click()
        expect(page.locator("#sign-in-message")).to_contain_text("wrong")

        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        expect(page.locator("#access")).to_contain_text("Signed in as ada (admin)")
        expect(page.locator("body")).to_have_attribute("data-live", "true")
        (cookie,) = [c for c in context.cookies() if c["name"] == "noticeboard_session"]
        assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"

        page.get_by_role("textbox", name="Note", exact=True).fill("Signed in and posted")
        page.get_by_role("button", name="Post").click()
        expect(page.locator("#notes li")).to_have_count(1)
        expect(page.locator("#notes li")).to_contain_text("Signed in and posted")
        page.reload()
        expect(page.locator("#notes li")).to_have_count(1)

        page.get_by_role("button", name="Sign out").click()
        expect(page.get_by_role("button", name="Sign in")).to_be_visible()
        expect(page.locator("#notes")).to_have_count(0)
        context.close()
        assert problems == []
