"""Audio bodies: what format a body is (``Content-Type`` and content), decoding to mono
float32 at the transcription rate, and the coded errors of bad audio.

Decoding is ``soundfile`` (libsndfile 1.1+: WAV, FLAC, OGG Vorbis/Opus, MP3),
resampling ``soxr`` (the SoX resampler, "HQ"). Blocking and CPU-bound: runs in
a worker process (:mod:`server.services.process_pool`).

Errors (:class:`rooms.errors.TuttiError`, nothing is kept):

* ``not_audio`` (415): the ``Content-Type`` is no audio type we read, or the
  body is none of WAV, FLAC, OGG, MP3 by its first bytes;
* ``corrupt_audio`` (400): it starts like one but does not decode, or a WAV
  file is shorter than its header says (truncated);
* ``audio_too_long`` (413): longer than ``max_seconds`` (told by the header,
  before decoding).
"""

from __future__ import annotations

import io
import struct
from typing import Any

from rooms.errors import TuttiError

MEDIA_TYPES = {
    "audio/wav": "wav",
    "audio/wave": "wav",
    "audio/x-wav": "wav",
    "audio/vnd.wave": "wav",
    "audio/flac": "flac",
    "audio/x-flac": "flac",
    "audio/ogg": "ogg",
    "audio/vorbis": "ogg",
    "audio/opus": "ogg",
    "application/ogg": "ogg",
    "audio/mpeg": "mp3",
    "audio/mp3": "mp3",
}
"""``Content-Type`` (without parameters) → format."""


def media_format(content_type: str | None) -> str | None:
    """The format a ``Content-Type`` names (``"wav"``, ``"flac"``, ``"ogg"``, ``"mp3"``),
    or ``None`` when it names no audio format we read."""
    if not content_type:
        return None
    return MEDIA_TYPES.get(content_type.split(";")[0].strip().lower())


def sniff(data: bytes) -> str | None:
    """The format of ``data`` by its first bytes, or ``None``."""
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "wav"
    if data[:4] == b"fLaC":
        return "flac"
    if data[:4] == b"OggS":
        return "ogg"
    if data[:3] == b"ID3" or (len(data) > 1 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0):
        return "mp3"
    return None


def check_format(data: bytes, content_type: str | None) -> str:
    """The format of an audio body; raises ``not_audio`` (see the module docstring)."""
    if media_format(content_type) is None:
        raise TuttiError(
            "not_audio",
            f"Content-Type {content_type or '(none)'!r} is not an audio type: send WAV "
            "(audio/wav), FLAC (audio/flac), OGG (audio/ogg) or MP3 (audio/mpeg)",
        )
    found = sniff(data)
    if found is None:
        raise TuttiError("not_audio", "the body is not a WAV, FLAC, OGG or MP3 file")
    return found


def _wav_truncated(data: bytes) -> bool:
    """Whether a RIFF/WAVE file's ``data`` chunk claims more bytes than there are."""
    pos = 12
    while pos + 8 <= len(data):
        chunk, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        if chunk == b"data":
            # 0 and 0xFFFFFFFF: a streamed file whose writer never knew its length.
            return size not in (0, 0xFFFFFFFF) and pos + 8 + size > len(data)
        pos += 8 + size + (size & 1)
    return False


def probe(data: bytes, content_type: str | None, max_seconds: float) -> float:
    """Duration (s) of an audio body from its header (0.0 when the header does not
    tell, as some MP3 files). Raises ``not_audio``, ``corrupt_audio`` (no header, a
    truncated WAV file) or ``audio_too_long``. Cheap, header only; libsndfile
    releases the GIL, so a thread will do."""
    import soundfile

    fmt = check_format(data, content_type)
    if fmt == "wav" and _wav_truncated(data):
        raise TuttiError("corrupt_audio", "the WAV file is truncated: it ends before its data")
    try:
        info = soundfile.info(io.BytesIO(data))
    except (soundfile.SoundFileError, RuntimeError, EOFError) as exc:
        raise _undecodable(fmt, exc) from None
    if info.samplerate <= 0:
        raise TuttiError("corrupt_audio", f"the {fmt.upper()} file has no sample rate")
    seconds = max(0, info.frames) / info.samplerate
    _check_length(seconds, max_seconds)
    return seconds


def _undecodable(fmt: str, exc: Exception) -> TuttiError:
    return TuttiError("corrupt_audio", f"the {fmt.upper()} file does not decode: {exc}")


def _check_length(seconds: float, max_seconds: float) -> None:
    if seconds > max_seconds:
        raise TuttiError(
            "audio_too_long",
            f"the recording lasts {seconds:.0f} s; at most {max_seconds:g} s is accepted",
        )


def decode(data: bytes, content_type: str | None, max_seconds: float, rate: int) -> Any:
    """``data`` as a mono float32 numpy array at ``rate`` Hz (channels averaged).

    Raises ``not_audio``, ``corrupt_audio`` or ``audio_too_long``.
    """
    import numpy as np
    import soundfile
    import soxr

    probe(data, content_type, max_seconds)
    try:
        samples, sr = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (soundfile.SoundFileError, RuntimeError, EOFError) as exc:
        raise _undecodable(sniff(data) or "audio", exc) from None
    _check_length(len(samples) / sr, max_seconds)  # MP3 headers may not tell the length
    if len(samples) == 0:
        raise TuttiError("corrupt_audio", "the file holds no audio")
    mono = samples.mean(axis=1, dtype=np.float32)
    if sr != rate:
        mono = soxr.resample(mono, sr, rate, quality="HQ").astype(np.float32, copy=False)
    return np.ascontiguousarray(mono)
