"""The microphone as an instrument, in a real browser: Chromium plays a WAV file as its
microphone (``--use-file-for-fake-audio-capture``), rendered by FluidSynth from the
chorale's soprano (flute, and choir "aahs"); static/microphone.js tracks its pitch and
sends notes into a duet room on a real server, which scores them."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
import soundfile

from tests import audio
from tests.browser import launch_chromium, open_page, sign_in_guest
from tests.e2e.test_browser import upload_and_create_duet
from tests.music import chorale_midi

pytestmark = pytest.mark.skipif(not audio.available(), reason="needs fluidsynth and its soundfont")

MARK_S = 4.0  # a noise burst at 0 s (heard, never a note); the music starts this long after
COUNT_IN_MS = 4 * 625 + 300  # the room's count-in (4 beats at 96 BPM) and start delay (FAST)


def microphone_wav(tmp_path, program: int) -> str:
    rendered = audio.render(audio.part_only(chorale_midi(), "Soprano"), program=program)
    samples, rate = soundfile.read(io.BytesIO(rendered), dtype="float32")
    lead = np.zeros((int(MARK_S * rate), samples.shape[1]), np.float32)
    burst = np.random.default_rng(1).uniform(-0.5, 0.5, (int(0.03 * rate), samples.shape[1]))
    lead[: len(burst)] = burst
    tail = np.zeros((8 * rate, samples.shape[1]), np.float32)
    path = tmp_path / f"mic-{program}.wav"
    soundfile.write(path, np.concatenate([lead, samples, tail]), rate, subtype="PCM_16")
    return str(path)


CHOIR = pytest.mark.xfail(
    reason="choir aahs (slow attack, vibrato) lose the pitch tracker: accuracy 0.3-0.56 measured",
    strict=False,
)


@pytest.mark.realtime
@pytest.mark.parametrize("program", [73, pytest.param(52, marks=CHOIR)], ids=["flute", "choir"])
def test_a_part_played_into_the_microphone_is_scored(server, tmp_path, program):
    wav = microphone_wav(tmp_path, program)
    args = (
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={wav}",
    )
    with launch_chromium(*args) as browser:
        page = open_page(browser, server.url)
        page.context.grant_permissions(["microphone"], origin=server.url)
        user = sign_in_guest(page, "Flo")
        upload_and_create_duet(page, f"Chorale mic {program}", "Soprano", tempo=None)
        # The instrument's range (a flute, a soprano voice): C4 to C6.
        page.fill("#mic-low", "60")
        page.fill("#mic-high", "84")
        page.dispatch_event("#mic-low", "change")
        page.dispatch_event("#mic-high", "change")
        page.click("#mic-btn")
        page.wait_for_function(
            "() => document.getElementById('mic-status').textContent.startsWith('listening')"
        )
        status = page.inner_text("#mic-status")
        # Where the file is now: its noise burst, heard; start the room so that beat 1
        # falls where the music starts in the file (the player "starts on the downbeat").
        page.wait_for_function("() => window.Tutti.mic.onsets.length > 0", timeout=20000)
        mark = page.evaluate("window.Tutti.mic.onsets[0]")
        wait = (mark + MARK_S * 1000 - COUNT_IN_MS - time.time() * 1000) / 1000
        assert wait > 0.2, "the music started before the room could"
        time.sleep(wait)
        page.click("#start-btn")
        page.wait_for_function("() => !!window.Tutti.state.started")
        start_at = page.evaluate("window.Tutti.state.started.start_at")
        print(f"beat 1 is {start_at - (mark + MARK_S * 1000):+.0f} ms from the music's start")
        page.wait_for_selector("#results-card", state="visible", timeout=90000)
        result = page.evaluate("window.Tutti.state.finished")["results"][user["id"]]
        print(f"program {program}: {status}; accuracy {result['accuracy']}, onset median "
              f"{result['onset_median_ms']} ms, played {result['notes_played']}, "
              f"extra {result['extra']}, wrong {result['wrong_pitch']}")  # fmt: skip
        assert result["notes_expected"] == 36
        # 31 of 36 measured: the five the tracker cannot hear are notes repeated without a
        # gap (README, Audio: the microphone). Onsets: about +20 ms from beat 1, within the
        # alignment of the file to the room (printed above).
        assert result["accuracy"] >= 0.8, result
        assert abs(result["onset_median_ms"]) <= 100, result
        assert page.errors == []
