"""Audio jobs: a recording transcribed and scored in worker processes, with progress.

A job (:class:`Job`) goes ``queued`` → ``running`` → ``done`` or ``failed``.
At most ``max_running`` jobs run at once (the ``"audio"`` lane of
:mod:`server.services.process_pool` has as many workers); the rest wait in
order. A user may have at most ``max_per_user`` jobs queued or running
(``429 too_many_jobs``). Stages, each a worker call or several
(:mod:`server.services.audio_work`), and the share of ``fraction`` (0–1,
over the whole job) each takes:

========================  ==========  ==============================================
stage                     fraction    does
========================  ==========  ==============================================
``decoding``              0 – 0.05    decode and resample (``corrupt_audio``)
``transcribing``          0.05 – 0.85 Basic Pitch, a batch of model windows per call
``scoring``               0.85 – 0.95 frames → notes (``no_notes_detected``), scored as
                                      a room player (:mod:`rooms.recorded`)
``saving``                0.95 – 1    the finished room through the room's saver
========================  ==========  ==============================================

Every change is told with ``notify(user_id, event, payload)``: ``job:progress
{"job_id", "stage", "fraction"}``, then ``job:finished {"job_id",
"session_id"}`` or ``job:failed {"job_id", "error": {"code", "message"}}``. A
step that raises a :class:`~rooms.errors.TuttiError` fails the job with its
code; anything else (a worker that crashed, a bug) with ``internal_error``,
logged; nothing is saved by a failed job. Jobs live in this process's memory
and are forgotten ``retention_s`` after they end.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from rooms.errors import TuttiError
from rooms.finished import FinishedRoom
from rooms.recorded import TranscribedNote
from server.services import audio_work, basic_pitch, process_pool

log = logging.getLogger("tutti.audio")

LANE = "audio"
STAGES = {  # stage → (fraction at its start, at its end)
    "decoding": (0.0, 0.05),
    "transcribing": (0.05, 0.85),
    "scoring": (0.85, 0.95),
    "saving": (0.95, 1.0),
}

Notify = Callable[[str, str, dict[str, Any]], Awaitable[None]]
Save = Callable[[FinishedRoom], Awaitable[None]]


@dataclass(slots=True)
class Job:
    """One audio job; :meth:`to_dict` is ``GET /api/jobs/{id}``."""

    job_id: str
    user_id: str
    status: str = "queued"  # queued | running | done | failed
    stage: str | None = None
    fraction: float = 0.0
    session_id: str | None = None
    error: dict[str, str] | None = None
    created_at: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        """``{"job_id", "status", "stage", "fraction", "session_id"?, "error"?}``."""
        out: dict[str, Any] = {
            "job_id": self.job_id,
            "status": self.status,
            "stage": self.stage,
            "fraction": round(self.fraction, 4),
        }
        if self.session_id is not None:
            out["session_id"] = self.session_id
        if self.error is not None:
            out["error"] = self.error
        return out


@dataclass(frozen=True, slots=True)
class Performance:
    """What a performance job scores against: the piece's MIDI, a part (``None``: the
    whole piece) and the keyword arguments of :func:`rooms.recorded.score_recording`."""

    midi: bytes
    part: str | None
    piece_id: str
    display_name: str
    tempo_bpm: float | None = None
    instrument: str | None = None


class AudioJobs:
    """The jobs of this process. ``notify`` tells a user's devices, ``save`` stores a
    finished room (the room service's saver) and returns once it is in the database."""

    def __init__(
        self,
        *,
        max_running: int,
        max_per_user: int,
        max_seconds: float,
        notify: Notify,
        save: Save,
        retention_s: float = 3600.0,
    ) -> None:
        self.max_running = max(1, max_running)
        self.max_per_user = max_per_user
        self.max_seconds = max_seconds
        self.notify = notify
        self.save = save
        self.retention_s = retention_s
        self.jobs: dict[str, Job] = {}
        self._slots = asyncio.Semaphore(self.max_running)
        self._tasks: set[asyncio.Task] = set()
        process_pool.LANES[LANE] = self.max_running

    # -- reading ----------------------------------------------------------------------

    def get(self, job_id: str, user_id: str) -> Job:
        """The job, for its owner only; anyone else, or an unknown id, ``404 not_found``."""
        self._forget_old()
        job = self.jobs.get(job_id)
        if job is None or job.user_id != user_id:
            raise TuttiError("not_found", f"no job {job_id!r} of yours")
        return job

    def active(self, user_id: str) -> int:
        """The user's jobs queued or running."""
        live = ("queued", "running")
        return sum(1 for j in self.jobs.values() if j.user_id == user_id and j.status in live)

    def _forget_old(self) -> None:
        cutoff = time.time() - self.retention_s
        for job_id in [
            j.job_id
            for j in self.jobs.values()
            if j.status in ("done", "failed") and j.created_at < cutoff
        ]:
            del self.jobs[job_id]

    def _new(self, user_id: str) -> Job:
        if self.active(user_id) >= self.max_per_user:
            raise TuttiError(
                "too_many_jobs",
                f"you have {self.max_per_user} audio jobs queued or running: wait for one to end",
            )
        job = Job(uuid.uuid4().hex, user_id)
        self.jobs[job.job_id] = job
        return job

    # -- running ----------------------------------------------------------------------

    def submit_performance(
        self, user_id: str, data: bytes, content_type: str | None, target: Performance
    ) -> Job:
        """Queue a recording to score against ``target``; the job, ``queued``.
        Raises ``too_many_jobs``."""
        job = self._new(user_id)
        received_ms = int(time.time() * 1000)
        task = asyncio.get_running_loop().create_task(
            self._guarded(job, self._performance(job, data, content_type, target, received_ms))
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return job

    async def transcribe_now(
        self, user_id: str, data: bytes, content_type: str | None
    ) -> list[TranscribedNote]:
        """Transcribe a recording and return its notes (a piece import waits for them):
        a job like the others for the limits, told over Socket.IO too. Raises the
        job's error (``corrupt_audio``, ``no_notes_detected``, ``internal_error``…)."""
        job = self._new(user_id)
        out: list[TranscribedNote] = []

        async def work() -> None:
            notes, _ = await self._transcribe(job, data, content_type)
            out.extend(notes)

        await self._guarded(job, work())
        if job.error is not None:
            raise TuttiError(job.error["code"], job.error["message"])
        return out

    async def _guarded(self, job: Job, work: Awaitable[None]) -> None:
        try:
            async with self._slots:
                job.status = "running"
                await work
            job.status, job.fraction = "done", 1.0
            await self._tell(job, "job:finished", {"session_id": job.session_id})
        except TuttiError as exc:
            await self._fail(job, exc.code, exc.message)
        except asyncio.CancelledError:
            await self._fail(job, "internal_error", "the server stopped during the job")
            raise
        except Exception:  # noqa: BLE001 - a crashed worker or a bug: the job fails, not us
            log.exception("audio job %s crashed", job.job_id)
            await self._fail(job, "internal_error", "the audio job failed unexpectedly")

    async def _fail(self, job: Job, code: str, message: str) -> None:
        job.status, job.error = "failed", {"code": code, "message": message}
        await self._tell(job, "job:failed", {"error": job.error})

    async def _tell(self, job: Job, event: str, payload: dict[str, Any]) -> None:
        try:
            await self.notify(job.user_id, event, {"job_id": job.job_id, **payload})
        except Exception as exc:  # noqa: BLE001 - a lost event must not fail the job
            log.warning("audio job %s: %s not sent: %s", job.job_id, event, exc)

    async def _stage(self, job: Job, stage: str, within: float = 0.0) -> None:
        lo, hi = STAGES[stage]
        job.stage, job.fraction = stage, lo + (hi - lo) * within
        await self._tell(job, "job:progress", {"stage": stage, "fraction": round(job.fraction, 4)})

    async def _transcribe(
        self, job: Job, data: bytes, content_type: str | None
    ) -> tuple[list[TranscribedNote], float]:
        """Decode and transcribe: the notes and the audio's duration (s)."""
        import numpy as np

        await self._stage(job, "decoding")
        audio = await process_pool.run_in(
            LANE, audio_work.decode, data, content_type, self.max_seconds
        )
        n_samples = len(audio)
        padded = audio_work.pad(audio)
        del audio
        total = basic_pitch.window_count(n_samples)
        await self._stage(job, "transcribing")
        notes, onsets = [], []
        for first in range(0, total, audio_work.WINDOWS_PER_STEP):
            count = min(audio_work.WINDOWS_PER_STEP, total - first)
            frames = await process_pool.run_in(
                LANE, audio_work.transcribe_step, audio_work.segment(padded, first), count
            )
            notes.append(frames[0])
            onsets.append(frames[1])
            await self._stage(job, "transcribing", (first + count) / total)
        await self._stage(job, "scoring")
        found = await process_pool.run_in(
            LANE, audio_work.notes_of, np.concatenate(notes), np.concatenate(onsets), n_samples
        )
        return found, n_samples / basic_pitch.SAMPLE_RATE

    async def _performance(
        self,
        job: Job,
        data: bytes,
        content_type: str | None,
        target: Performance,
        received_ms: int,
    ) -> None:
        notes, seconds = await self._transcribe(job, data, content_type)
        finished = await process_pool.run_in(
            LANE,
            audio_work.score,
            target.midi,
            target.part,
            notes,
            session_id=uuid.uuid4().hex,
            room_id=job.job_id,
            user_id=job.user_id,
            display_name=target.display_name,
            recorded_at_ms=received_ms - round(seconds * 1000),
            piece_id=target.piece_id,
            tempo_bpm=target.tempo_bpm,
            instrument=target.instrument,
        )
        await self._stage(job, "saving")
        await self.save(finished)
        job.session_id = finished.session_id

    async def close(self) -> None:
        """Stop every job (shutdown): they end ``failed``, nothing of them is saved."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
