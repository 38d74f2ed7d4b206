"""Note data shared by pieces, scoring and recording.

Small immutable value objects in the spirit of ``mido.Message``: every field is
checked on construction and a bad value raises ``ValueError`` naming the field.
"""

from __future__ import annotations

from dataclasses import dataclass

PITCH_MIN, PITCH_MAX = 0, 127
VELOCITY_MIN, VELOCITY_MAX = 1, 127


def check_pitch(pitch: int) -> int:
    """Return ``pitch`` if it is a MIDI note number 0–127, else raise ``ValueError``."""
    if not isinstance(pitch, int) or isinstance(pitch, bool) or not PITCH_MIN <= pitch <= PITCH_MAX:
        raise ValueError(f"pitch must be a MIDI note number 0-127, got {pitch!r}")
    return pitch


def check_velocity(velocity: int) -> int:
    """Return ``velocity`` if it is a note-on velocity 1–127, else raise ``ValueError``."""
    if (
        not isinstance(velocity, int)
        or isinstance(velocity, bool)
        or not VELOCITY_MIN <= velocity <= VELOCITY_MAX
    ):
        raise ValueError(f"velocity must be 1-127, got {velocity!r}")
    return velocity


@dataclass(frozen=True, slots=True)
class Note:
    """One note of a reference part, at the tempo written in the file.

    ``onset_s``/``offset_s`` are seconds from time 0 of the MIDI file through its
    tempo map; ``onset_beat``/``offset_beat`` are quarter-note beats from time 0;
    ``onset_tick`` is the absolute tick, used to decide exactly whether two notes
    of different parts sound together in the score.
    """

    pitch: int
    velocity: int
    onset_s: float
    offset_s: float
    onset_beat: float
    offset_beat: float
    onset_tick: int

    def __post_init__(self) -> None:
        check_pitch(self.pitch)
        check_velocity(self.velocity)
        if self.offset_s < self.onset_s:
            raise ValueError(f"offset {self.offset_s} s is before onset {self.onset_s} s")


@dataclass(frozen=True, slots=True)
class NoteEvent:
    """A note-on or note-off played by a member, stamped on the server clock.

    ``t_ms`` is Unix epoch milliseconds on the server clock (the client converts
    its own clock with the offset from :mod:`rooms.clock`). ``velocity`` is 1–127
    for ``"on"`` and 0–127 for ``"off"`` (release velocity).
    """

    type: str  # "on" | "off"
    pitch: int
    velocity: int
    t_ms: float

    def __post_init__(self) -> None:
        if self.type not in ("on", "off"):
            raise ValueError(f"type must be 'on' or 'off', got {self.type!r}")
        check_pitch(self.pitch)
        if self.type == "on":
            check_velocity(self.velocity)
        elif not 0 <= self.velocity <= VELOCITY_MAX:
            raise ValueError(f"release velocity must be 0-127, got {self.velocity!r}")
