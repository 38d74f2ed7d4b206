"""The logbook, accounts and presence in a real browser (Playwright + the machine's Chromium):
two devices of one user see each other's changes without a reload; a write made offline is kept
in IndexedDB and syncs when the browser is back online; the service worker opens the page
offline; a login link moves a guest's practice; presence of a user's devices."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid

import pytest

from server.clients.room_client import TuttiClient
from tests.browser import (
    expect,
    launch_chromium,
    login_link,
    open_page,
    rest,
    sign_in_guest,
    token_of,
)


@pytest.fixture(scope="module")
def browser():
    with launch_chromium() as chromium:
        yield chromium


def log_text(page) -> str:
    return page.inner_text("#log-list")


def quick_log(page, minutes: int, notes: str) -> None:
    page.fill("#log-minutes", str(minutes))
    page.fill("#log-notes", notes)
    page.click("#quick-log-form button[type=submit]")


def account_page(browser, server, email: str):
    page = open_page(browser, server.url, "/#login=" + login_link(server, email))
    page.wait_for_selector("html[data-view=lobby]", state="attached")
    page.wait_for_selector("#conn-status[data-state=online]")
    page.wait_for_selector("#sync-status[data-state=synced]")
    return page


def pulled(server, token: str) -> dict:
    """The user's rows on the server (REST pull from 0): ``{(entity, id): fields}``."""
    status, body = rest(server.url, "GET", "/api/sync/pull?cursor=0&limit=1000", token=token)
    assert status == 200, body
    return {(c["entity"], c["id"]): c["fields"] for c in body["changes"] if not c["deleted"]}


def test_two_devices_of_one_user_see_each_others_changes(server, browser):
    email = f"clara-{uuid.uuid4().hex[:8]}@example.com"
    laptop = account_page(browser, server, email)
    phone = account_page(browser, server, email)
    assert laptop.evaluate("window.Tutti.state.user.id") == phone.evaluate(
        "window.Tutti.state.user.id"
    )
    note = f"Popper no. 2, slowly {uuid.uuid4().hex[:4]}"
    quick_log(laptop, 25, note)
    phone.wait_for_function(
        "(t) => document.getElementById('log-list').innerText.includes(t)", arg=note
    )
    assert "25 min" in log_text(phone)

    goal = f"Chorale at 80 BPM {uuid.uuid4().hex[:4]}"
    phone.fill("#goal-title", goal)
    phone.click("#goal-form button[type=submit]")
    laptop.wait_for_selector(f"#goal-list li:has-text('{goal}')")
    laptop.check(f"#goal-list li:has-text('{goal}') input[type=checkbox]")  # done
    phone.wait_for_selector(f"#goal-list li.done:has-text('{goal}')")

    phone.fill("#rep-title", "Cello Suite no. 1")
    phone.fill("#rep-composer", "Bach")
    phone.click("#repertoire-form button[type=submit]")
    item = "#repertoire-list li:has-text('Cello Suite no. 1') select"
    laptop.wait_for_selector(item)
    laptop.select_option(item, "polished")
    expect(phone.locator(item)).to_have_value("polished")
    # The practice chart and streak count today's entry.
    assert "Streak: 1 day" in phone.inner_text("#streak")
    for page in (laptop, phone):
        assert page.errors == []
        page.context.close()


def test_offline_writes_are_kept_and_synced_and_the_page_opens_offline(server, browser):
    page = open_page(browser, server.url)
    sign_in_guest(page, "Offline Olga")
    token = token_of(page)
    page.wait_for_selector("#sync-status[data-state=synced]")
    # The service worker controls the page and holds every static asset.
    page.wait_for_function("() => !!navigator.serviceWorker.controller")
    page.wait_for_function(
        "() => caches.open('tutti-static-v1').then((c) => c.keys()).then((k) => k.length >= 19)"
    )

    page.context.set_offline(True)
    page.wait_for_function("() => !navigator.onLine")
    note = f"scales in the train {uuid.uuid4().hex[:4]}"
    quick_log(page, 10, note)
    entry = f"#log-list li:has-text('{note}')"
    page.wait_for_selector(f"{entry}[data-pending=true]")
    page.wait_for_selector("#sync-status[data-state=offline]")
    assert not any(f.get("notes") == note for f in pulled(server, token).values())

    # Reloaded while offline: the service worker serves the page, IndexedDB still has the entry.
    assert page.evaluate("fetch('/api/health').then(() => 'reached', () => 'offline')") == "offline"
    assert page.reload().from_service_worker
    page.wait_for_selector("html[data-app=ready]", state="attached")
    page.wait_for_selector(f"{entry}[data-pending=true]")

    page.context.set_offline(False)
    page.wait_for_selector(f"{entry}[data-pending=false]", timeout=20000)
    page.wait_for_selector("#sync-status[data-state=synced]")
    [fields] = [f for f in pulled(server, token).values() if f.get("notes") == note]
    assert fields["duration_seconds"] == 600 and fields["source"] == "quick_log"
    assert page.errors == []
    page.context.close()


def test_login_link_moves_a_guests_practice(server, browser):
    _, guest = rest(server.url, "POST", "/api/auth/guest", {"display_name": "Dora"})
    log = {"activity_type": "scales", "duration_seconds": 600, "notes": "thirds, slowly"}
    status, _ = rest(server.url, "POST", "/api/practice/quick-log", log, guest["access_token"])
    assert status == 201
    email = f"dora-{time.time_ns()}@example.com"
    token = login_link(server, email, guest_token=guest["access_token"])

    page = open_page(browser, server.url, f"/#login={token}")
    page.wait_for_selector("html[data-view=lobby]", state="attached")
    assert page.inner_text("#account-email") == email
    page.wait_for_selector("#log-list li:has-text('thirds, slowly')")

    # The link works once: a second browser is told so, on the login screen.
    again = open_page(browser, server.url, f"/#login={token}")
    again.wait_for_selector("#login-message:has-text('already been used')")
    assert again.evaluate("document.documentElement.dataset.view") == "login"
    for p in (page, again):
        p.context.close()


def test_presence_of_a_users_devices(server, browser):
    page = open_page(browser, server.url)
    sign_in_guest(page, "Ada")
    page.wait_for_selector("#devices-list li:has-text('(this device)')")
    connected, leave = threading.Event(), threading.Event()

    async def phone() -> None:  # another device of Ada's, a real Socket.IO client
        client = TuttiClient(server.url)
        client.token = token
        await client.connect(device_id="phone", device_name="Ada's phone")
        connected.set()
        await asyncio.to_thread(leave.wait, 30)
        await client.sio.disconnect()

    token = token_of(page)
    thread = threading.Thread(target=asyncio.run, args=(phone(),))
    thread.start()
    try:
        assert connected.wait(15)
        page.wait_for_selector('#devices-list li:has-text("Ada\'s phone")')
    finally:
        leave.set()
        thread.join(30)
    page.wait_for_function(
        "() => !document.getElementById('devices-list').innerText.includes(\"Ada's phone\")"
    )
    assert page.errors == []
    page.context.close()
