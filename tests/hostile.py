"""Hostile piece files, made in the test, and a watchdog that measures event-loop stalls.

* :func:`many_tracks_midi`: a type 1 MIDI file of ``tracks`` tracks of one note
  each, named ``T0``…``T9`` over and over (5 000 tracks ≈ 125 KB), so that
  nearly every part name repeats: what made part naming cubic.
* :func:`dense_midi`: a type 0 MIDI file of ``notes`` short notes on one
  channel, written with running status (≈ 6 bytes a note: 833 000 notes fit in
  a 5 MB upload).
* :func:`zip_bomb_mxl`: a ``.mxl`` (zip) whose score inflates to ``inflated``
  bytes of XML whitespace from about a thousandth of that.
* :class:`Watchdog`: a thread that times ``GET /api/health`` over and over
  while a test runs something else; :attr:`Watchdog.worst_s` is the longest
  answer, in seconds. A blocked event loop answers nothing until it is free
  again, so the worst latency is at least the longest stall.
"""

from __future__ import annotations

import http.client
import io
import struct
import threading
import time
import zipfile
from urllib.parse import urlsplit

import mido


def many_tracks_midi(tracks: int = 5000, names: int = 10) -> bytes:
    """A type 1 file: ``tracks`` tracks, each named ``T{i % names}`` with one note."""
    midi = mido.MidiFile(type=1, ticks_per_beat=480)
    for index in range(tracks):
        track = mido.MidiTrack()
        track.append(mido.MetaMessage("track_name", name=f"T{index % names}", time=0))
        track.append(mido.Message("note_on", note=60 + index % 12, velocity=64, time=0))
        track.append(mido.Message("note_off", note=60 + index % 12, velocity=0, time=240))
        midi.tracks.append(track)
    buffer = io.BytesIO()
    midi.save(file=buffer)
    return buffer.getvalue()


def dense_midi(notes: int) -> bytes:
    """A type 0 file of ``notes`` notes (pitches 48–83, one tick each) on channel 0."""
    body = bytearray(b"\x00\xff\x51\x03\x07\xa1\x20")  # set_tempo 500000 µs (120 BPM)
    body += b"\x00\x90"  # note_on, channel 0; running status from here on
    for index in range(notes):
        pitch = 48 + index % 36
        body += bytes((pitch, 64, 1, pitch, 0, 0))  # on, 1 tick, off (velocity 0), delta 0
    body += b"\xff\x2f\x00"  # end of track (its delta 0 ends the last note)
    header = b"MThd" + struct.pack(">LHHH", 6, 0, 1, 480)
    return header + b"MTrk" + struct.pack(">L", len(body)) + bytes(body)


CONTAINER = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<container><rootfiles><rootfile full-path="score.xml"/></rootfiles></container>\n'
)
SCORE_HEAD = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<score-partwise version="3.1"><part-list><score-part id="P1"><part-name>Bomb</part-name>'
    b'</score-part></part-list><part id="P1"><measure number="1"><note><pitch><step>C</step>'
    b"<octave>4</octave></pitch><duration>1</duration><type>quarter</type></note>"
)
SCORE_TAIL = b"</measure></part></score-partwise>\n"


def zip_bomb_mxl(inflated: int = 800_000_000) -> bytes:
    """A ``.mxl`` whose ``score.xml`` is a one-note score padded to ``inflated`` bytes."""
    buffer = io.BytesIO()
    chunk = b" " * (1 << 20)
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr("META-INF/container.xml", CONTAINER)
        with zf.open("score.xml", "w", force_zip64=True) as entry:
            entry.write(SCORE_HEAD)
            left = inflated - len(SCORE_HEAD) - len(SCORE_TAIL)
            while left > 0:
                entry.write(chunk[: min(left, len(chunk))])
                left -= len(chunk)
            entry.write(SCORE_TAIL)
    return buffer.getvalue()


class Watchdog:
    """Times ``GET /api/health`` on ``url`` every ``interval_s`` from a thread of its own.

    Use as a context manager around what may stall the server; afterwards
    :attr:`latencies` holds every answer's time (s) and :attr:`worst_s` the
    longest. A request that fails counts as ``timeout_s``.
    """

    def __init__(self, url: str, interval_s: float = 0.02, timeout_s: float = 120.0) -> None:
        parts = urlsplit(url)
        self._host, self._port = parts.hostname, parts.port
        self.interval_s, self.timeout_s = interval_s, timeout_s
        self.latencies: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="watchdog", daemon=True)

    def _run(self) -> None:
        conn = http.client.HTTPConnection(self._host, self._port, timeout=self.timeout_s)
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                conn.request("GET", "/api/health")
                resp = conn.getresponse()
                resp.read()
                ok = resp.status == 200
            except (OSError, http.client.HTTPException):
                ok = False
                conn.close()
                conn = http.client.HTTPConnection(self._host, self._port, timeout=self.timeout_s)
            self.latencies.append(time.monotonic() - started if ok else self.timeout_s)
            self._stop.wait(self.interval_s)
        conn.close()

    def __enter__(self) -> Watchdog:
        self._thread.start()
        time.sleep(0.2)  # a few answers before the load starts
        return self

    def __exit__(self, *exc) -> None:
        time.sleep(0.2)
        self._stop.set()
        self._thread.join()

    @property
    def worst_s(self) -> float:
        """The longest ``/api/health`` answer, in seconds (0.0 before any)."""
        return max(self.latencies, default=0.0)
