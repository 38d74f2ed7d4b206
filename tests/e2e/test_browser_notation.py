"""The room's score in a real browser: Verovio (static/vendor) engraves the piece's MusicXML
as SVG in the room view. The time from the room's piece being known to the SVG in the page
is measured with the Performance API and printed (``-s`` shows it), never asserted.
"""

from __future__ import annotations

import json
from importlib import resources

from tests.browser import launch_chromium, open_page, sign_in_guest


def starter(corpus_path: str) -> dict:
    text = resources.files("server.music.starter").joinpath("manifest.json").read_text("utf-8")
    return next(e for e in json.loads(text)["pieces"] if e["corpus_path"] == corpus_path)


def open_room_on(page, piece_id: str, part: str) -> None:
    page.wait_for_function(
        "(id) => [...document.getElementById('create-piece').options].some(o => o.value === id)",
        arg=piece_id,
    )
    page.select_option("#create-piece", piece_id)
    page.select_option("#create-mode", "duet")
    page.select_option("#create-part", part)
    page.fill("#create-name", "Score test")
    page.click("#create-form button[type=submit]")
    page.wait_for_selector("html[data-view=room]", state="attached")


def timings(page) -> dict:
    return page.evaluate(
        """() => Object.fromEntries(performance.getEntriesByType('measure')
             .filter(m => m.name.startsWith('tutti:notation'))
             .map(m => [m.name, m.duration]))"""
    )


def test_the_room_shows_the_score_as_svg(fresh_server):
    server = fresh_server(starter_library=True)
    with launch_chromium() as browser:
        cold = {}
        for corpus_path in ("bach/bwv66.6", "joplin/maple_leaf_rag"):
            page = open_page(browser, server.url)
            sign_in_guest(page, "Reader")
            entry = starter(corpus_path)
            open_room_on(page, entry["id"], entry["parts"][0])
            page.wait_for_selector("#notation svg", timeout=60_000)
            # Every part is engraved: Verovio draws one g.staff per staff in each measure.
            staves = page.evaluate(
                "() => document.querySelector('#notation g.measure')"
                ".querySelectorAll(':scope > g.staff').length"
            )
            assert staves == (4 if corpus_path == "bach/bwv66.6" else 2)
            mine = page.locator("#notation g.staff.mine")
            assert mine.count() > 0  # the own part, coloured
            assert page.evaluate("window.Tutti.score.error") is None
            assert page.errors == []
            measured = timings(page)
            pages = page.evaluate("window.Tutti.score.pages")
            # A second rendering on the same page: the toolkit is loaded (warm).
            page.set_viewport_size({"width": 900, "height": 900})
            page.wait_for_function(
                "() => performance.getEntriesByName('tutti:notation-render').length >= 2"
            )
            warm = page.evaluate(
                "() => performance.getEntriesByName('tutti:notation-render').at(-1).duration"
            )
            cold[corpus_path] = (measured, pages, warm)
            page.context.close()
    for corpus_path, (measured, pages, warm) in cold.items():
        print(
            f"\n{corpus_path}: {pages} page(s); room's piece → SVG "
            f"{measured['tutti:notation']:.0f} ms (Verovio compiling from the page's load on); "
            f"Verovio layout + SVG {measured['tutti:notation-render']:.0f} ms; "
            f"re-layout after a resize {warm:.0f} ms"
        )
