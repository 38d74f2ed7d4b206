"""Helpers for the browser tests: Playwright driving the machine's Chromium (no browser
download: Debian's ``chromium`` package, launched by executable path) against a real
``tutti serve``."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = next(
    (p for p in ("/usr/bin/chromium", "/usr/bin/chromium-browser") if Path(p).exists()), None
)
SCREENSHOTS = Path(__file__).resolve().parent.parent / "static" / "screenshots"

try:
    from playwright.sync_api import Browser, Page, expect, sync_playwright
except ImportError:  # the dev extra is not installed
    sync_playwright = expect = None


def launch_chromium(*args: str):
    """A context manager yielding a headless Chromium (with more command-line ``args``),
    or skipping with the reason."""
    if sync_playwright is None:
        pytest.skip("playwright is not installed: pip install -e '.[dev]'")
    if CHROMIUM is None:
        pytest.skip("no /usr/bin/chromium: tests/install-test-deps.sh installs it")
    return _launch(args)


class _launch:
    def __init__(self, args: tuple[str, ...] = ()) -> None:
        self.args = list(args)

    def __enter__(self) -> Browser:
        self.pw = sync_playwright().start()
        # --no-sandbox: CI containers run as root; autoplay: the page's Web Audio may start.
        self.browser = self.pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required", *self.args],
        )
        return self.browser

    def __exit__(self, *exc: object) -> None:
        self.browser.close()
        self.pw.stop()


def open_page(browser: Browser, url: str, path: str = "/") -> Page:
    """A page of its own browser context (one person's browser: its own storage)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.errors = []  # uncaught errors of the page; tests assert there are none
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    page.goto(url + path)
    page.wait_for_selector("html[data-app=ready]", state="attached")
    return page


def sign_in_guest(page: Page, name: str) -> dict:
    """Play as a guest; returns ``{"id", "display_name"}`` once connected in the lobby."""
    page.fill("#display-name", name)
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("html[data-view=lobby]", state="attached")
    page.wait_for_selector("#conn-status[data-state=online]")
    return page.evaluate("window.Tutti.state.user")


def rest(url: str, method: str, path: str, body: Any = None, token: str | None = None):
    """A JSON request: ``(status, body)``, for errors too."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def login_link(server, email: str, guest_token: str | None = None) -> str:
    """Ask for a login link and take its token from the server's outbox (no SMTP in tests)."""
    outbox = server.data_dir / "outbox"
    before = set(outbox.glob("*.eml")) if outbox.exists() else set()
    status, body = rest(server.url, "POST", "/api/auth/login", {"email": email}, guest_token)
    assert status == 200 or status == 202, body
    deadline = time.monotonic() + 10
    while not (new := set(outbox.glob("*.eml")) - before):
        assert time.monotonic() < deadline, "no mail in the outbox"
        time.sleep(0.05)
    [mail] = new
    return re.search(r"#login=([A-Za-z0-9_-]+)", mail.read_text()).group(1)


def token_of(page: Page) -> str:
    """The page's access token (a guest's in sessionStorage, an account's in localStorage)."""
    return page.evaluate("window.Tutti.state.auth.access")


def tab_to(page: Page, selector: str, presses: int = 120) -> None:
    """Press Tab until the focused element matches ``selector`` (keyboard-only navigation)."""
    for _ in range(presses):
        if page.evaluate("(s) => !!document.activeElement?.matches(s)", selector):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"{selector} cannot be reached with the Tab key")


def unnamed_controls(page: Page) -> list[str]:
    """Controls the browser's accessibility tree shows without an accessible name."""
    cdp = page.context.new_cdp_session(page)
    tree = cdp.send("Accessibility.getFullAXTree")["nodes"]
    roles = {"button", "textbox", "combobox", "checkbox", "slider", "spinbutton"}
    roles |= {"searchbox", "radio", "switch", "listbox", "link"}
    bad = []
    for node in tree:
        if node.get("ignored"):
            continue
        role = node.get("role", {}).get("value")
        name = (node.get("name") or {}).get("value", "")
        if role in roles and not str(name).strip():
            described = cdp.send("DOM.describeNode", {"backendNodeId": node["backendDOMNodeId"]})
            attrs = described["node"].get("attributes", [])
            bad.append(f"{role} <{described['node']['localName']} {' '.join(attrs)}>")
    cdp.detach()
    return bad
