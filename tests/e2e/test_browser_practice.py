"""Practice tools in a real browser (Playwright + the machine's Chromium) against a real
``tutti serve``: the host of a duet on Bach's chorale BWV 66.6 (music21 corpus) adds a
computer partner, is refused a loop outside the piece (the page says so), loops bar 2 with a
tempo ladder at a fast tempo, plays each pass with the computer keyboard on the grid
``room:pass`` announces, sees the current pass, and gets the passes table and chart in the
results, with the server's pass count and tempos. Wait mode: the page says which notes the
room waits for, and goes on when they are played.

``TUTTI_SCREENSHOTS=1`` also updates static/screenshots/practice.png and passes.png (the
README's Practice tools).
"""

from __future__ import annotations

import os
import shutil
import time
import uuid

import pytest

from rooms.piece import load_midi
from rooms.practice import Loop, section
from tests.browser import (
    SCREENSHOTS,
    expect,
    launch_chromium,
    open_page,
    sign_in_guest,
    tab_to,
    unnamed_controls,
)
from tests.e2e.test_browser import create_duet, key_for, upload_and_create_duet, upload_in_lobby
from tests.music import chorale_midi

PIECE = load_midi(chorale_midi())  # what the page uploads: 96 BPM, 9 bars of 4/4
TEMPO = 200  # BPM at 100 %: the ladder's 100-150 % passes of one bar take 1.2-0.8 s
LADDER = {"start": 100, "step": 25, "target": 150, "accuracy": 25}  # %
REPEATS = 4


@pytest.fixture(scope="module")
def browser():
    with launch_chromium() as chromium:
        yield chromium


def fill(page, values: dict[str, object]) -> None:
    for selector, value in values.items():
        page.fill(selector, str(value))


def play_bar(page, bar: int, nxt: dict) -> None:
    """Press the Soprano's notes of ``bar`` on the grid of the pass ``nxt`` (room:pass)."""
    scale = PIECE.bpm / nxt["tempo_bpm"] * 1000.0
    notes = section(PIECE, Loop(bar, bar)).notes(PIECE.part("Soprano").notes)
    for n in notes:
        wait = (nxt["start_at"] + n.onset_s * scale - time.time() * 1000) / 1000
        if wait > 0:  # one machine: the server's clock is ours
            time.sleep(wait)
        key = key_for(n.pitch, 4)
        page.keyboard.down(key)
        page.keyboard.up(key)


def announced(page, k: int, side: str) -> dict:
    """The room:pass event whose ``side`` ("next"/"previous") is pass ``k``, once it came."""
    find = "([k, s]) => window.Tutti.state.passes.find((p) => p[s] && p[s].pass === k) || null"
    page.wait_for_function(find, arg=[k, side], timeout=20_000)
    return page.evaluate(find, [k, side])


def test_a_computer_partner_and_a_looped_tempo_ladder(server, browser, tmp_path):
    page = open_page(browser, server.url)
    ada = sign_in_guest(page, "Ada")
    page.fill("#create-count-in", "1")
    upload_and_create_duet(page, f"Chorale {uuid.uuid4().hex[:6]}", "Soprano", tempo=TEMPO)
    expect(page.locator("#practice-controls")).to_be_visible()
    assert unnamed_controls(page) == []  # the practice card's controls have names

    # Bars outside the piece: refused, said in plain words in the page, nothing changed.
    fill(page, {"#loop-from": 2, "#loop-to": 20, "#loop-repeats": 2})
    page.focus("#loop-repeats")
    page.keyboard.press("Enter")  # submits the form, as a keyboard user does
    message = page.locator("#practice-message")
    expect(message).to_contain_text("Those bars are not in the piece")
    expect(message).to_contain_text("bars 1-9")
    assert page.evaluate("window.Tutti.state.room.practice.loop") is None

    # A computer partner on the Bass that follows, added with the keyboard.
    page.select_option("#partner-part", "Bass")
    tab_to(page, "#partner-add")
    page.keyboard.press("Enter")
    bot = page.locator("#members-table tr[data-bot=true]")
    expect(bot).to_contain_text("Computer partner")
    expect(bot).to_contain_text("computer (follows you)")
    expect(bot).to_contain_text("Bass")
    expect(page.locator("#partner-remove")).to_be_visible()

    # Loop bar 2 with a ladder 100 → 150 % by 25 %, climbing at 25 % accuracy.
    fill(page, {"#loop-from": 2, "#loop-to": 2, "#loop-repeats": REPEATS})
    page.focus("#ladder-on")
    page.keyboard.press("Space")
    fill(
        page,
        {
            "#ladder-start": LADDER["start"],
            "#ladder-step": LADDER["step"],
            "#ladder-target": LADDER["target"],
            "#ladder-accuracy": LADDER["accuracy"],
        },
    )
    page.focus("#ladder-accuracy")
    page.keyboard.press("Enter")
    expect(page.locator("#practice-summary")).to_contain_text("loop bars 2–2")
    expect(page.locator("#practice-summary")).to_contain_text("ladder 100 → 150 % by 25 %")
    practice = page.evaluate("window.Tutti.state.room.practice")
    assert practice["loop"] == {"from_bar": 2, "to_bar": 2, "repeats": REPEATS}
    assert practice["ladder"] == {
        "start_pct": 100,
        "step_pct": 25,
        "target_pct": 150,
        "min_accuracy": 0.25,
    }
    page.locator("#practice-card").screenshot(path=tmp_path / "practice.png")

    page.click("#start-btn")
    page.evaluate("document.activeElement.blur()")  # keys go to the piano, not a field
    expect(page.locator("#practice-controls")).to_be_hidden()
    shown = []
    for k in range(1, REPEATS + 1):
        nxt = announced(page, k, "next")["next"]
        expect(page.locator("#pass-status")).to_have_attribute("data-pass", str(k))
        shown.append(page.inner_text("#pass-status"))
        play_bar(page, 2, nxt)
        if announced(page, k, "previous")["next"] is None:
            break
    announcements = [p["next"] for p in page.evaluate("window.Tutti.state.passes") if p["next"]]
    assert shown[0].startswith(f"Pass 1 at 100 % ({TEMPO} BPM), bars 2–2")

    page.wait_for_selector("#results-card", state="visible", timeout=30_000)
    finished = page.evaluate("window.Tutti.state.finished")
    passes = finished["results"][ada["id"]]["passes"]
    print(
        "passes (pass, tempo %, accuracy):",
        [(p["pass"], p["tempo_pct"], p["accuracy"]) for p in passes],
    )
    # The server's passes: as many as announced, at the announced tempos, climbing by the rule.
    assert [(p["pass"], p["tempo_pct"]) for p in passes] == [
        (a["pass"], a["tempo_pct"]) for a in announcements
    ]
    assert passes[0]["tempo_pct"] == 100
    for here, after in zip(passes, passes[1:], strict=False):
        met = here["accuracy"] >= 0.25
        assert after["tempo_pct"] == (
            min(here["tempo_pct"] + 25, 150) if met else here["tempo_pct"]
        )
    last = passes[-1]
    assert len(passes) == REPEATS or (last["tempo_pct"] == 150 and last["accuracy"] >= 0.25)
    assert finished["partner"]["part"] == "Bass" and finished["partner"]["follow"] is True

    # The page's table and chart hold exactly those passes.
    rows = page.locator(f'#results-passes table[data-user="{ada["id"]}"] tbody tr')
    expect(rows).to_have_count(len(passes))
    table = [
        (int(r.get_attribute("data-pass")), float(r.get_attribute("data-tempo-pct")))
        for r in rows.all()
    ]
    assert table == [(p["pass"], p["tempo_pct"]) for p in passes]
    assert rows.nth(0).locator("td").nth(0).inner_text() == "100 %"
    assert rows.nth(0).locator("td").nth(1).inner_text() == str(TEMPO)
    chart = page.locator(f'#results-passes svg[data-user="{ada["id"]}"]')
    assert chart.locator("rect[data-pass]").count() == len(passes)
    dots = chart.locator("circle[data-pass]")
    assert [float(d.get_attribute("data-tempo-pct")) for d in dots.all()] == [
        p["tempo_pct"] for p in passes
    ]
    expect(page.locator("#results-summary")).to_contain_text("Computer partner played Bass")
    page.evaluate("document.querySelector('.topbar').style.position = 'static'")  # not over it
    page.locator("#results-passes").screenshot(path=tmp_path / "passes.png")
    if os.environ.get("TUTTI_SCREENSHOTS"):
        SCREENSHOTS.mkdir(exist_ok=True)
        for name in ("practice.png", "passes.png"):
            shutil.copy(tmp_path / name, SCREENSHOTS / name)
    assert page.errors == []
    page.context.close()


def test_wait_mode_says_what_it_waits_for(server, browser):
    page = open_page(browser, server.url)
    sign_in_guest(page, "Wim")
    title = f"Chorale {uuid.uuid4().hex[:6]}"
    upload_in_lobby(page, title)
    page.focus("#create-wait")
    page.keyboard.press("Space")  # wait mode, by keyboard, as the room is created
    create_duet(page, title, "Soprano", TEMPO)
    expect(page.locator("#practice-summary")).to_contain_text("wait mode")
    # Slowing a wait-mode room down keeps wait mode (the server used to drop it).
    page.fill("#practice-tempo", "50")
    page.focus("#practice-tempo")
    page.keyboard.press("Enter")
    expect(page.locator("#practice-summary")).to_contain_text("tempo 50 % (100 BPM)")
    expect(page.locator("#practice-summary")).to_contain_text("wait mode")
    # A loop cannot join wait mode: refused in plain words.
    fill(page, {"#loop-from": 1, "#loop-to": 2, "#loop-repeats": 2})
    page.focus("#loop-repeats")
    page.keyboard.press("Enter")
    expect(page.locator("#practice-message")).to_contain_text("Wait mode cannot be combined")

    page.click("#start-btn")
    page.evaluate("document.activeElement.blur()")
    soprano = PIECE.part("Soprano").notes
    status = page.locator("#wait-status")
    expect(status).to_contain_text(f"chord 1 of {len(soprano)}")
    expect(status).to_contain_text("Waiting for you")
    page.wait_for_function(
        "() => Date.now() > window.Tutti.state.started.start_at"
    )  # notes before the start are the warm-up
    for n in soprano[:2]:
        key = key_for(n.pitch, 4)
        page.keyboard.down(key)
        page.keyboard.up(key)
    expect(status).to_contain_text(f"chord 3 of {len(soprano)}")
    tab_to(page, "#end-btn")
    page.keyboard.press("Enter")
    page.wait_for_selector("#results-card", state="visible")
    expect(page.locator("#results-passes .wait-result")).to_contain_text(f"2/{len(soprano)} chords")
    assert page.errors == []
    page.context.close()
