"""A room's played notes, kept in arrival order and written out as a MIDI file.

:class:`Recording` collects :class:`RecordedEvent` s (note-ons and note-offs
stamped in server-clock epoch milliseconds) and :meth:`Recording.to_midi`
writes them as a type 1 Standard MIDI File at one fixed tempo: a conductor
track, then one track per player.
"""

from __future__ import annotations

import io
from collections import Counter
from dataclasses import dataclass

import mido

from rooms.notes import NoteEvent

CONDUCTOR_NAME = "Tutti session"
PLAYER_CHANNELS = tuple(c for c in range(16) if c != 9)  # MIDI channel 9 (10 in 1-based) is drums


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    """A note-on (``type="on"``, velocity 1–127) or note-off (``"off"``, 0–127).

    ``seq`` is the room's event sequence number, ``part`` the part the player
    had chosen (``None`` in free play), ``t_ms`` Unix epoch milliseconds on the
    server clock. Bad values raise ``ValueError`` as for
    :class:`rooms.notes.NoteEvent`.
    """

    seq: int
    user_id: str
    part: str | None
    type: str
    pitch: int
    velocity: int
    t_ms: float

    def __post_init__(self) -> None:
        NoteEvent(self.type, self.pitch, self.velocity, self.t_ms)  # validates the fields


class Recording:
    """Every note event of a room, in arrival order."""

    def __init__(self) -> None:
        self._events: list[RecordedEvent] = []

    def add(self, event: RecordedEvent) -> None:
        """Append ``event``."""
        self._events.append(event)

    @property
    def events(self) -> tuple[RecordedEvent, ...]:
        """The events so far, in arrival order."""
        return tuple(self._events)

    def __len__(self) -> int:
        return len(self._events)

    def to_midi(
        self,
        *,
        start_at_ms: float,
        tempo_bpm: float,
        track_names: dict[str, str],
        ticks_per_beat: int = 480,
    ) -> bytes:
        """The recording as type 1 Standard MIDI File bytes.

        Track 0 is a conductor track named ``"Tutti session"`` with one
        ``set_tempo`` at ``tempo_bpm`` (quarter notes per minute). Then one
        track per player in order of their first event, named
        ``track_names.get(user_id, user_id)``, each on its own channel 0, 1, …
        (skipping 9, drums; after 15 players channels are reused).

        An event at ``t_ms`` is placed at tick
        ``round((t_ms - start_at_ms) / 1000 s × beats per second × ticks_per_beat)``,
        0 for events before ``start_at_ms``; events are written in ``t_ms``
        order, keeping arrival order for equal times. A note-off with no
        sounding note of its pitch is dropped; a note still sounding after the
        player's last event is closed at that event's tick (zero length if the
        note-on is the player's last event).

        Raises ``ValueError`` for ``tempo_bpm`` ≤ 0 or ``ticks_per_beat`` not
        1–32767.
        """
        if not tempo_bpm > 0:
            raise ValueError(f"tempo_bpm must be positive, got {tempo_bpm!r}")
        if not 1 <= ticks_per_beat <= 32767:
            raise ValueError(f"ticks_per_beat must be 1-32767, got {ticks_per_beat!r}")
        us_per_beat = mido.bpm2tempo(tempo_bpm)
        ticks_per_ms = ticks_per_beat * 1000 / us_per_beat

        midi = mido.MidiFile(type=1, ticks_per_beat=ticks_per_beat)
        midi.tracks.append(
            mido.MidiTrack(
                [
                    mido.MetaMessage("track_name", name=CONDUCTOR_NAME, time=0),
                    mido.MetaMessage("set_tempo", tempo=us_per_beat, time=0),
                ]
            )
        )

        by_player: dict[str, list[RecordedEvent]] = {}
        for event in self._events:
            by_player.setdefault(event.user_id, []).append(event)

        for index, (user_id, events) in enumerate(by_player.items()):
            channel = PLAYER_CHANNELS[index % len(PLAYER_CHANNELS)]
            ordered = sorted(events, key=lambda e: e.t_ms)  # stable: arrival order on ties
            timed = [(max(0, round((e.t_ms - start_at_ms) * ticks_per_ms)), e) for e in ordered]
            messages: list[tuple[int, mido.Message]] = []
            sounding: Counter[int] = Counter()
            for tick, event in timed:
                if event.type == "on":
                    sounding[event.pitch] += 1
                    kind = "note_on"
                elif sounding[event.pitch] > 0:
                    sounding[event.pitch] -= 1
                    kind = "note_off"
                else:
                    continue
                message = mido.Message(
                    kind, channel=channel, note=event.pitch, velocity=event.velocity
                )
                messages.append((tick, message))
            end = timed[-1][0]
            for pitch, count in sorted(sounding.items()):
                messages += [(end, mido.Message("note_off", channel=channel, note=pitch))] * count

            track = mido.MidiTrack()
            track.append(
                mido.MetaMessage("track_name", name=track_names.get(user_id, user_id), time=0)
            )
            previous = 0
            for tick, message in messages:
                track.append(message.copy(time=tick - previous))
                previous = tick
            midi.tracks.append(track)

        buffer = io.BytesIO()
        midi.save(file=buffer)
        return buffer.getvalue()
