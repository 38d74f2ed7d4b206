"""Polyphonic transcription: Spotify's Basic Pitch model through ONNX Runtime, audio → notes.

The model (Bittner et al., "A Lightweight Instrument-Agnostic Model for
Polyphonic Note Transcription and Multipitch Estimation", ICASSP 2022) ships in
this package as ``server/music/basic_pitch/nmp.onnx`` (230 kB, Apache-2.0,
copied from the ``basic-pitch`` 0.4.0 wheel with its LICENSE and NOTICE): no
download at run time. Its input is mono audio at 22 050 Hz in windows of
43 844 samples (2 s less one hop); for each window it gives 172 frames
(86.13 frames/s, hop 256 samples) × 88 piano keys (A0 = MIDI 21 … C8 = 108) of
note (frame) and onset activations, and 264 contour bins (unused here).

:func:`activations` windows the audio as ``basic_pitch.inference.run_inference``
does (30 frames of overlap, half of them trimmed from each side of each window);
:func:`notes_from_activations` is ``basic_pitch.note_creation.output_to_notes_polyphonic``
(onsets also inferred from jumps of the frame activations, peak picking,
energy-tracked note ends, the "Melodia trick" for notes without a clear onset)
and ``model_frames_to_time``, with the package's default thresholds (onset
0.5, frame 0.3, minimum note length 127.7 ms). Ported rather than imported:
the ``basic-pitch`` package pulls in TensorFlow and librosa.

Needs the ``audio`` extra (``onnxruntime``, ``numpy``); without it
:func:`available` is false. Runs in a worker process
(:mod:`server.services.process_pool`): blocking, CPU-bound.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

SAMPLE_RATE = 22050
"""Hz, the model's input rate."""
FFT_HOP = 256
WINDOW_SAMPLES = SAMPLE_RATE * 2 - FFT_HOP  # 43 844
FRAMES_PER_WINDOW = 172
FRAMES_PER_S = SAMPLE_RATE // FFT_HOP  # 86, as basic_pitch.constants.ANNOTATIONS_FPS
OVERLAP_FRAMES = 30
OVERLAP_SAMPLES = OVERLAP_FRAMES * FFT_HOP
HOP_SAMPLES = WINDOW_SAMPLES - OVERLAP_SAMPLES
LOWEST_PITCH = 21  # A0, the model's first key
N_KEYS = 88
ONSET_THRESHOLD = 0.7
FRAME_THRESHOLD = 0.3
MIN_NOTE_MS = 58.0
ENERGY_TOLERANCE = 11  # frames below the frame threshold that end a note

INPUT = "serving_default_input_2:0"
OUTPUT_NOTE, OUTPUT_ONSET = "StatefulPartitionedCall:1", "StatefulPartitionedCall:2"

_session: Any = None


@functools.cache
def available() -> bool:
    """Whether the ``audio`` extra is installed: ONNX Runtime is there (imported by the
    workers only) and soundfile, soxr and numpy import (the server probes uploads)."""
    if importlib.util.find_spec("onnxruntime") is None:
        return False
    try:
        import numpy  # noqa: F401
        import soundfile  # noqa: F401
        import soxr  # noqa: F401
    except (ImportError, OSError):  # OSError: soundfile without its libsndfile
        return False
    return True


@dataclass(frozen=True, slots=True)
class TranscribedNote:
    """One transcribed note: ``onset_s``/``offset_s`` from the start of the audio (s),
    ``pitch`` a MIDI note number, ``amplitude`` the mean frame activation (0–1)."""

    onset_s: float
    offset_s: float
    pitch: int
    amplitude: float

    @property
    def velocity(self) -> int:
        """MIDI velocity 1–127 from the amplitude (as basic-pitch: ``round(127 × amplitude)``)."""
        return max(1, min(127, round(127 * self.amplitude)))


def _model() -> Any:
    global _session
    if _session is None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1  # one core per job: --max-audio-jobs sets the spread
        options.inter_op_num_threads = 1
        path = files("server.music.basic_pitch").joinpath("nmp.onnx")
        _session = onnxruntime.InferenceSession(
            path.read_bytes(), options, providers=["CPUExecutionProvider"]
        )
    return _session


def window_count(n_samples: int) -> int:
    """How many model windows :func:`activations` runs over ``n_samples`` samples."""
    padded = n_samples + OVERLAP_SAMPLES // 2
    return max(1, -(-padded // HOP_SAMPLES))


def activations(
    audio: Any, first: int = 0, count: int | None = None, batch: int = 4, padded: bool = False
) -> tuple[Any, Any]:
    """Model frames ``(note, onset)``, each ``(n_frames, 88)`` float32, for windows
    ``first`` … ``first + count`` of ``audio`` (mono float32 at :data:`SAMPLE_RATE`;
    ``padded``: it already starts with the ``OVERLAP_SAMPLES / 2`` zeros, and
    ``count`` must be given).

    Concatenating the results of consecutive calls over every window
    (:func:`window_count`) and trimming to ``n_samples × 86 / 22050`` frames
    (:func:`trim`) is ``basic_pitch.inference.run_inference``.
    """
    import numpy as np

    if padded:
        assert count is not None, "count must be given for padded audio"
    else:
        total = window_count(len(audio))
        count = total - first if count is None else min(count, total - first)
        audio = np.concatenate([np.zeros(OVERLAP_SAMPLES // 2, np.float32), audio])
    windows = []
    for w in range(first, first + count):
        chunk = audio[w * HOP_SAMPLES : w * HOP_SAMPLES + WINDOW_SAMPLES]
        if len(chunk) < WINDOW_SAMPLES:
            chunk = np.pad(chunk, (0, WINDOW_SAMPLES - len(chunk)))
        windows.append(chunk)
    session = _model()
    notes, onsets = [], []
    half = OVERLAP_FRAMES // 2
    for start in range(0, len(windows), batch):
        x = np.stack(windows[start : start + batch])[:, :, None].astype(np.float32)
        note, onset = session.run([OUTPUT_NOTE, OUTPUT_ONSET], {INPUT: x})
        notes.append(note[:, half:-half, :].reshape(-1, N_KEYS))
        onsets.append(onset[:, half:-half, :].reshape(-1, N_KEYS))
    if not notes:
        empty = np.zeros((0, N_KEYS), np.float32)
        return empty, empty
    return np.concatenate(notes), np.concatenate(onsets)


def trim(frames: Any, n_samples: int) -> Any:
    """The frames that cover ``n_samples`` of audio (``basic_pitch.inference.unwrap_output``)."""
    return frames[: int(n_samples * FRAMES_PER_S / SAMPLE_RATE)]


def _frame_times(n_frames: int) -> Any:
    """``basic_pitch.note_creation.model_frames_to_time``: frame → s, with the
    per-window correction its authors found (the "magic number" 0.0018 s)."""
    import numpy as np

    frames = np.arange(n_frames)
    original = frames * FFT_HOP / SAMPLE_RATE
    window_numbers = np.floor(frames / (FRAMES_PER_S * 2))
    offset = (FFT_HOP / SAMPLE_RATE) * (FRAMES_PER_S * 2 - WINDOW_SAMPLES / FFT_HOP) + 0.0018
    return original - offset * window_numbers


def _inferred_onsets(onsets: Any, frames: Any, n_diff: int = 2) -> Any:
    """``get_infered_onsets``: onsets where the frame activation jumps, scaled to the onsets'."""
    import numpy as np

    diffs = []
    for n in range(1, n_diff + 1):
        shifted = np.concatenate([np.zeros((n, frames.shape[1])), frames])
        diffs.append(shifted[n:, :] - shifted[:-n, :])
    frame_diff = np.min(diffs, axis=0)
    frame_diff[frame_diff < 0] = 0
    frame_diff[:n_diff, :] = 0
    peak = np.max(frame_diff)
    if peak > 0:
        frame_diff = np.max(onsets) * frame_diff / peak
    return np.max([onsets, frame_diff], axis=0)


def _argrelmax(x: Any) -> tuple[Any, Any]:
    """``scipy.signal.argrelmax(x, axis=0)`` (order 1, edges never a maximum): the
    indices where a value is above both neighbours in time."""
    import numpy as np

    inner = (x[1:-1] > x[:-2]) & (x[1:-1] > x[2:])
    t, f = np.nonzero(inner)
    return t + 1, f


def notes_from_activations(
    frames: Any, onsets: Any, *, melodia_trick: bool = True
) -> list[TranscribedNote]:
    """Notes from the model's frames (``(n, 88)`` each), sorted by onset then pitch.

    ``basic_pitch.note_creation.output_to_notes_polyphonic`` with its defaults
    (see the module docstring). An empty list for silence.
    """
    import numpy as np

    n_frames = frames.shape[0]
    if n_frames < 2:
        return []
    min_len = int(np.round(MIN_NOTE_MS / 1000 * (SAMPLE_RATE / FFT_HOP)))
    onsets = _inferred_onsets(onsets, frames)
    peaks_mat = np.zeros(onsets.shape)
    peaks = _argrelmax(onsets)
    peaks_mat[peaks] = onsets[peaks]
    onset_idx = np.where(peaks_mat >= ONSET_THRESHOLD)
    remaining = frames.astype(np.float64, copy=True)
    found: list[tuple[int, int, int, float]] = []
    top = N_KEYS - 1
    for start, key in zip(onset_idx[0][::-1], onset_idx[1][::-1], strict=True):
        if start >= n_frames - 1:
            continue
        i, k = start + 1, 0
        while i < n_frames - 1 and k < ENERGY_TOLERANCE:
            k = k + 1 if remaining[i, key] < FRAME_THRESHOLD else 0
            i += 1
        i -= k
        if i - start <= min_len:
            continue
        remaining[start:i, max(0, key - 1) : min(top, key + 1) + 1] = 0
        found.append((start, i, key, float(np.mean(frames[start:i, key]))))
    if melodia_trick:
        _melodia(frames, remaining, min_len, found)
    times = _frame_times(n_frames)
    notes = [
        TranscribedNote(float(times[s]), float(times[e]), int(key) + LOWEST_PITCH, amp)
        for s, e, key, amp in found
    ]
    notes.sort(key=lambda n: (n.onset_s, n.pitch))
    return notes


def _melodia(frames: Any, remaining: Any, min_len: int, found: list) -> None:
    """Notes grown from the strongest frames left over (forward, then backward)."""
    import numpy as np

    n_frames, top = frames.shape[0], N_KEYS - 1
    while np.max(remaining) > FRAME_THRESHOLD:
        mid, key = np.unravel_index(np.argmax(remaining), remaining.shape)
        remaining[mid, key] = 0
        lo, hi = max(0, key - 1), min(top, key + 1) + 1
        i, k = mid + 1, 0
        while i < n_frames - 1 and k < ENERGY_TOLERANCE:
            k = k + 1 if remaining[i, key] < FRAME_THRESHOLD else 0
            remaining[i, lo:hi] = 0
            i += 1
        end = i - 1 - k
        i, k = mid - 1, 0
        while i > 0 and k < ENERGY_TOLERANCE:
            k = k + 1 if remaining[i, key] < FRAME_THRESHOLD else 0
            remaining[i, lo:hi] = 0
            i -= 1
        start = i + 1 + k
        if start < 0 or end >= n_frames:
            raise ValueError("start and end must be inside the audio")
        if end - start <= min_len:
            continue
        found.append((int(start), int(end), int(key), float(np.mean(frames[start:end, key]))))


def transcribe(
    audio: Any, progress: Callable[[float], None] | None = None
) -> list[TranscribedNote]:
    """Every note of ``audio`` (mono float32 at :data:`SAMPLE_RATE`), in one call;
    ``progress(fraction)`` after each batch of windows (0–1)."""
    import numpy as np

    total = window_count(len(audio))
    notes, onsets = [], []
    step = 8
    for first in range(0, total, step):
        n, o = activations(audio, first, step)
        notes.append(n)
        onsets.append(o)
        if progress is not None:
            progress(min(1.0, (first + step) / total))
    frames = trim(np.concatenate(notes), len(audio))
    return notes_from_activations(frames, trim(np.concatenate(onsets), len(audio)))
