"""Live cursors and the coloured score in real browsers (Playwright + the machine's Chromium)
against a real ``tutti serve`` with the starter library: a two-guest duet on a Bach chorale
played with the computer keyboard. Both see the notation, both cursors move in both pages,
and after the piece every note of the score is coloured by the server's per-note judgement;
a note shows its expected and played time by mouse and by keyboard.

Timings (Performance API) and frames over 50 ms are printed (``-s``), never asserted.
``TUTTI_SCREENSHOTS=1`` also updates static/screenshots/score-room.png and score-results.png
(the README's Notation section).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import statistics
import time

from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.browser import (
    SCREENSHOTS,
    launch_chromium,
    open_page,
    rest,
    sign_in_guest,
    tab_to,
    unnamed_controls,
)
from tests.e2e.test_browser import duet_events, join_from_lobby, performance, play_events
from tests.e2e.test_browser_notation import open_room_on, starter
from tests.servers import start_server

TEMPO = 72  # BPM: bwv66.6 (22.5 s at 96 BPM) takes 30 s, the "30 s duet"

FRAMES = """() => {
  window.__frames = []; window.__long = [];
  let last = null;
  const f = (t) => {
    if (last !== null) window.__frames.push(t - last);
    last = t;
    requestAnimationFrame(f);
  };
  requestAnimationFrame(f);
  try {
    new PerformanceObserver((l) => window.__long.push(...l.getEntries().map((e) => e.duration)))
      .observe({ type: "longtask" });
  } catch (e) {}
}"""

# Per part played: the data-judgement of each piece note's engraved element (null: unmapped).
PAINTED = """(part) => {
  const names = window.Tutti.state.room.parts.map((p) => p.name);
  const nodes = window.Tutti.score.parts[names.indexOf(part)] || [];
  return nodes.map((n) => (n ? n.dataset.judgement || "" : null));
}"""


def painted_as(page, part: str, expected: list[str], timeout_ms: int = 30_000) -> list:
    """The part's painted judgements once they equal ``expected``, or as they are after
    ``timeout_ms``: the results score is painted after its note map, and a layout
    started meanwhile (the score moving into the results card) maps and paints again."""
    with contextlib.suppress(PlaywrightTimeout):
        page.wait_for_function(
            f"([part, want]) => JSON.stringify(({PAINTED})(part)) === JSON.stringify(want)",
            arg=[part, expected],
            timeout=timeout_ms,
        )
    return page.evaluate(PAINTED, part)


def cursor_index(page, user_id: str) -> int:
    return page.evaluate(
        "(u) => { const c = document.querySelector(`#notation .cursor[data-user='${u}']`);"
        " return c ? Number(c.dataset.index) : -1; }",
        user_id,
    )


def wait_warm(page) -> None:
    """The page compiles Verovio when idle after it opens: a room opened later finds it ready."""
    page.wait_for_function(
        "() => performance.getEntriesByName('tutti:verovio-warm').length > 0", timeout=60_000
    )


def measured(page, name: str) -> float:
    return page.evaluate("(n) => performance.getEntriesByName(n).at(-1).duration", name)


def test_a_duet_shows_cursors_and_a_coloured_score(tmp_path):
    server = start_server(tmp_path / "data", starter_library=True)
    entry = starter("bach/bwv66.6")
    agreed = {}
    try:
        with launch_chromium() as browser:
            ada = open_page(browser, server.url)
            bo = open_page(browser, server.url)
            ada_user = sign_in_guest(ada, "Ada")
            bo_user = sign_in_guest(bo, "Bo")
            for page in (ada, bo):
                wait_warm(page)
            ada.fill("#create-tempo", str(TEMPO))
            open_room_on(ada, entry["id"], "Soprano")
            room_id = ada.evaluate("window.Tutti.state.roomId")
            join_from_lobby(bo, room_id, "Tenor")
            for page in (ada, bo):
                page.wait_for_selector("#notation[data-ready=true]", timeout=60_000)
                assert page.evaluate("window.Tutti.score.unmapped") == 0  # every note found
            opened = {
                name: measured(page, "tutti:room-to-notation")
                for name, page in (("Ada (create)", ada), ("Bo (join)", bo))
            }
            ada.wait_for_function("() => window.Tutti.state.room.members.length === 2")
            bo.keyboard.press("KeyZ")  # the tenor lies an octave lower: keys from C3
            for page in (ada, bo):
                page.evaluate(FRAMES)
            ada.click("#start-btn")
            for page in (ada, bo):
                page.wait_for_function("() => !!window.Tutti.state.started")
            start_at = ada.evaluate("window.Tutti.state.started.start_at")
            events = duet_events(server.url, entry["id"], start_at, TEMPO, ada, bo)
            seen_mid = {}

            def at_middle():
                time.sleep(0.3)  # a score:update on its way
                ada.locator("#notation-card").screenshot(path=tmp_path / "score-room.png")
                seen_mid.update(
                    {
                        (who, user["id"]): cursor_index(page, user["id"])
                        for who, page in (("ada", ada), ("bo", bo))
                        for user in (ada_user, bo_user)
                    }
                )

            play_events(events, at_middle)
            # Both cursors are in both pages, and they moved on after the middle.
            for who, page in (("ada", ada), ("bo", bo)):
                for user in (ada_user, bo_user):
                    page.wait_for_function(
                        "([u, k]) => { const c = document.querySelector(`#notation"
                        " .cursor[data-user='${u}']`); return c && +c.dataset.index > k; }",
                        arg=[user["id"], seen_mid[(who, user["id"])]],
                    )
                    assert seen_mid[(who, user["id"])] >= 0
            frames = {
                name: page.evaluate("() => [window.__frames, window.__long]")
                for name, page in (("Ada", ada), ("Bo", bo))
            }
            live = {part: ada.evaluate(PAINTED, part) for part in ("Soprano", "Tenor")}

            for page in (ada, bo):
                page.wait_for_selector("#results-card", state="visible", timeout=60_000)
                page.wait_for_selector("#results-score #notation g.note[role=button]")
                finished = page.evaluate("window.Tutti.state.finished")
                for user, part in ((ada_user, "Soprano"), (bo_user, "Tenor")):
                    result = finished["results"][user["id"]]
                    expected = [
                        "wrong_pitch" if "played_pitch" in n else n["judgement"]
                        for n in result["notes"]
                    ]
                    assert painted_as(page, part, expected) == expected
                    if page is ada:  # while playing, from score:update marks
                        coloured = [(c, e) for c, e in zip(live[part], expected, strict=True) if c]
                        assert len(coloured) > len(expected) // 2
                        agreed[part] = (sum(c == e for c, e in coloured), len(expected))
                assert unnamed_controls(page) == []

            # A note by mouse, then the next by keyboard: expected, played, deviation.
            first = ada.locator("#results-score g.note[tabindex='0']")
            first.click()
            detail = ada.locator("#note-detail").inner_text()
            assert "expected at" in detail and " ms" in detail and "Ada" in detail
            tab_to(ada, "#results-score g.note[tabindex='0']")
            ada.keyboard.press("ArrowRight")
            after = ada.locator("#note-detail").inner_text()
            assert after != detail and "expected at" in after
            name = ada.evaluate("document.activeElement.getAttribute('aria-label')")
            assert name == after
            ada.locator("#results-card").screenshot(path=tmp_path / "score-results.png")
            assert ada.errors == [] and bo.errors == []
    finally:
        server.stop()
    if os.environ.get("TUTTI_SCREENSHOTS"):
        SCREENSHOTS.mkdir(exist_ok=True)
        for shot in ("score-room.png", "score-results.png"):
            shutil.copy(tmp_path / shot, SCREENSHOTS / shot)
    print("\nroom opened → chorale notation shown (Verovio compiled while idle):")
    for name, ms in opened.items():
        print(f"  {name}: {ms:.0f} ms")
    print("notes coloured live (Ada's page, after the last note) = the final judgement:")
    for part, (same, total) in agreed.items():
        print(f"  {part}: {same} of {total}")
    print("frames during the 30 s duet with cursors moving:")
    for name, (deltas, long) in frames.items():
        over = [d for d in deltas if d > 50]
        print(
            f"  {name}: {len(deltas)} frames, median {statistics.median(deltas):.1f} ms, "
            f"{len(over)} over 50 ms (max {max(deltas):.0f} ms); long tasks: {len(long)}"
        )


def test_notation_timings(tmp_path):
    """Room opened → first page shown, for the chorale and a long piece, several times."""
    server = start_server(tmp_path / "data", starter_library=True)
    rows = []
    try:
        with launch_chromium() as browser:
            for corpus_path, width, runs in (
                ("bach/bwv66.6", 1280, 3),
                ("haydn/opus1no1/movement3", 1280, 2),
                ("haydn/opus1no1/movement3", 700, 2),
            ):
                entry = starter(corpus_path)
                for _ in range(runs):
                    page = open_page(browser, server.url)
                    page.set_viewport_size({"width": width, "height": 900})
                    sign_in_guest(page, "Reader")
                    wait_warm(page)
                    open_room_on(page, entry["id"], entry["parts"][0])
                    page.wait_for_selector("#notation[data-ready=true]", timeout=60_000)
                    row = [corpus_path, width, page.evaluate("window.Tutti.score.pages")]
                    for name in (
                        "tutti:room-to-notation",
                        "tutti:notation-render",
                        "tutti:notation-pages",
                        "tutti:notation-map",
                        "tutti:verovio",
                    ):
                        row.append(measured(page, name))
                    rows.append(row)
                    assert page.errors == []
                    page.context.close()
    finally:
        server.stop()
    print(
        "\npiece | width px | pages | room → first page ms | layout + page 1 ms"
        " | all pages ms | note map ms | Verovio load (idle) ms"
    )
    for piece, width, pages, *ms in rows:
        print(f"{piece} | {width} | {pages} | " + " | ".join(f"{m:.0f}" for m in ms))


WIDER_THAN_THE_SCREEN = """() => [...document.querySelectorAll('body *')]
  .filter((e) => e.offsetParent !== null && e.getBoundingClientRect().right > innerWidth + 1
    && !e.closest('.card table, .piano-box, #notation'))
  .map((e) => e.tagName + (e.id ? '#' + e.id : '') + '.' + e.className).slice(0, 5)"""


def test_the_score_on_a_phone(tmp_path):
    """390×844: the room's score fits the width, a cursor moves, the results colour the notes."""
    server = start_server(tmp_path / "data", starter_library=True)
    entry = starter("bach/bwv66.6")
    try:
        with launch_chromium() as browser:
            context = browser.new_context(
                viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
            )
            page = context.new_page()
            page.errors = []
            page.on("pageerror", lambda exc: page.errors.append(str(exc)))
            page.goto(server.url + "/")
            page.wait_for_selector("html[data-app=ready]", state="attached")
            user = sign_in_guest(page, "Pia")
            wait_warm(page)
            page.fill("#create-tempo", "160")
            open_room_on(page, entry["id"], "Soprano")
            page.wait_for_selector("#notation[data-ready=true]", timeout=60_000)
            width = page.evaluate("document.querySelector('#notation svg').getBoundingClientRect()")
            assert width["right"] <= 390 and width["width"] > 300  # the page's width, no wider
            assert page.evaluate("document.scrollingElement.scrollWidth") <= 390
            page.click("#start-btn")
            page.wait_for_function("() => !!window.Tutti.state.started")
            start_at = page.evaluate("window.Tutti.state.started.start_at")
            _, notes = rest(server.url, "GET", f"/api/pieces/{entry['id']}/notes")
            soprano = {p["name"]: p["notes"] for p in notes["parts"]}["Soprano"][:12]
            events = sorted(performance(soprano, start_at, notes["tempo_bpm"] / 160, page, 4))
            play_events(events)
            page.wait_for_function(
                "(u) => {"
                " const c = document.querySelector(`#notation .cursor[data-user='${u}']`);"
                " return c && +c.dataset.index >= 6; }",
                arg=user["id"],
            )
            page.locator("#notation-card").screenshot(path=tmp_path / "phone-room.png")
            page.click("#end-btn")
            page.wait_for_selector("#results-score #notation g.note[role=button]")
            painted = page.evaluate(PAINTED, "Soprano")
            assert painted[:3] != ["", "", ""] and painted[-1] == "miss"  # the rest unplayed
            assert page.evaluate("document.scrollingElement.scrollWidth") <= 390
            assert page.evaluate(WIDER_THAN_THE_SCREEN) == []
            page.locator("#results-score g.note[tabindex='0']").tap()
            assert "expected at" in page.locator("#note-detail").inner_text()
            page.screenshot(path=tmp_path / "phone-results.png", full_page=False)
            assert page.errors == []
    finally:
        server.stop()
    if os.environ.get("TUTTI_SCREENSHOTS"):
        for shot in ("phone-room.png", "phone-results.png"):
            shutil.copy(tmp_path / shot, SCREENSHOTS / shot)
