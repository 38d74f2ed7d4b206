"""The steps of an audio job that run in a worker process (the ``"audio"`` lane of
:mod:`server.services.process_pool`): probe, decode, transcribe a batch of model
windows, turn the model's frames into notes, score, and write a transcription as MIDI.

Each is a module-level function with picklable arguments and result, so the
job (:mod:`server.services.audio_jobs`) can report progress between steps:
the decoded audio comes back once, goes out again a batch of windows at a
time (:func:`segment`), and only the model's note/onset frames come back.
"""

from __future__ import annotations

from typing import Any

from rooms.errors import TuttiError
from rooms.finished import FinishedRoom
from rooms.piece import load_midi
from rooms.recorded import TranscribedNote, score_recording
from rooms.recording import RecordedEvent, Recording
from server.services import audio_decode, basic_pitch

WINDOWS_PER_STEP = 8
"""Model windows per worker call (about 14 s of audio): a progress report each."""


def probe(data: bytes, content_type: str | None, max_seconds: float) -> float:
    """:func:`server.services.audio_decode.probe` (a thread will do: header only)."""
    return audio_decode.probe(data, content_type, max_seconds)


def decode(data: bytes, content_type: str | None, max_seconds: float) -> Any:
    """Mono float32 samples at :data:`server.services.basic_pitch.SAMPLE_RATE`."""
    return audio_decode.decode(data, content_type, max_seconds, basic_pitch.SAMPLE_RATE)


def segment(audio: Any, first: int) -> Any:
    """The samples windows ``first`` … ``first + WINDOWS_PER_STEP`` of ``audio`` read,
    for :func:`transcribe_step` (``audio`` already padded: :func:`pad`)."""
    start = first * basic_pitch.HOP_SAMPLES
    end = start + (WINDOWS_PER_STEP - 1) * basic_pitch.HOP_SAMPLES + basic_pitch.WINDOW_SAMPLES
    return audio[start:end]


def pad(audio: Any) -> Any:
    """``audio`` with the half-overlap of silence Basic Pitch puts before the first window."""
    import numpy as np

    return np.concatenate([np.zeros(basic_pitch.OVERLAP_SAMPLES // 2, np.float32), audio])


def transcribe_step(samples: Any, windows: int) -> tuple[Any, Any]:
    """The model's ``(note, onset)`` frames of the first ``windows`` windows of ``samples``
    (a :func:`segment`)."""
    return basic_pitch.activations(samples, 0, windows, padded=True)


def notes_of(frames: Any, onsets: Any, n_samples: int) -> list[TranscribedNote]:
    """Notes from the concatenated frames of every step, as ``(onset_s, offset_s, pitch,
    velocity)``; raises ``no_notes_detected`` (422) when there is none."""
    found = basic_pitch.notes_from_activations(
        basic_pitch.trim(frames, n_samples), basic_pitch.trim(onsets, n_samples)
    )
    if not found:
        raise TuttiError("no_notes_detected", "no note was heard in the recording (is it silent?)")
    return [(n.onset_s, n.offset_s, n.pitch, n.velocity) for n in found]


def score(
    midi: bytes, part: str | None, notes: list[TranscribedNote], **identity: Any
) -> FinishedRoom:
    """:func:`rooms.recorded.score_recording` of ``notes`` against the piece in ``midi``;
    ``identity``: its keyword arguments (session, room, user ids, times, tempo)."""
    return score_recording(load_midi(midi), part, notes, **identity)


def notes_to_midi(notes: list[TranscribedNote], tempo_bpm: float = 120.0) -> bytes:
    """A transcription as a Standard MIDI File (type 1: a conductor track and one
    track, ``"Transcribed"``), written by :meth:`rooms.recording.Recording.to_midi`."""
    recording = Recording()
    events = []
    for onset_s, offset_s, pitch, velocity in notes:
        events.append(("on", pitch, velocity, onset_s * 1000.0))
        events.append(("off", pitch, 0, offset_s * 1000.0))
    events.sort(key=lambda e: (e[3], e[0] == "on"))
    for seq, (kind, pitch, velocity, t_ms) in enumerate(events, 1):
        recording.add(RecordedEvent(seq, "audio", None, kind, pitch, velocity, t_ms))
    return recording.to_midi(
        start_at_ms=0.0, tempo_bpm=tempo_bpm, track_names={"audio": "Transcribed"}
    )
