"""Audio: a recording scored afterwards, a piece transcribed from audio, and the jobs.

========================================  ===============================================
route                                     does
========================================  ===============================================
``POST /api/performances``                an audio body (WAV, FLAC, OGG, MP3, its
                                          ``Content-Type``), ``?piece_id=ID&part=NAME``
                                          (no ``part``: the whole piece), optional
                                          ``tempo_bpm``, ``instrument`` → ``202
                                          {"job_id"}``; the job scores it as a room player
                                          and saves a session (:mod:`server.services.audio_jobs`)
``GET /api/jobs/{job_id}``                ``{"job_id", "status", "stage", "fraction",
                                          "session_id"?, "error"?}``, for its uploader only
                                          (anyone else ``404 not_found``)
``POST /api/pieces`` (audio body)         a one-part piece transcribed from the recording,
                                          ``source_type`` ``"transcribed"`` → 201, the
                                          piece (:func:`import_piece`)
========================================  ===============================================

Refused before a job is made (4xx, nothing kept): ``415 not_audio`` (the
``Content-Type`` or the first bytes are no audio format we read), ``400
corrupt_audio`` (no readable header, a truncated WAV file), ``413
audio_too_long`` (over ``--max-audio-seconds`` by the header), ``413
too_large`` (over ``--max-audio-bytes``), ``404 unknown_piece``, ``400
unknown_part``, ``429 too_many_jobs`` (``--max-audio-jobs-per-user`` queued or
running), ``501 audio_unavailable`` (the ``audio`` extra is not installed).
Known only once the job runs, so a failed job (``job:failed``): ``corrupt_audio``
(the stream breaks while decoding), ``no_notes_detected`` (silence),
``internal_error`` (a crash). A piece import waits for its job and answers
those as 4xx/500 itself.

Progress goes to every device of the uploader (the ``user:{id}`` Socket.IO
room): ``job:progress``, ``job:finished``, ``job:failed``.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from rooms.errors import TuttiError
from rooms.room_types import MAX_BPM, MIN_BPM
from server.appkeys import AUDIO_JOBS as JOBS
from server.appkeys import SESSIONMAKER, SETTINGS, SIO
from server.db import repository
from server.realtime.saving import SessionSaver
from server.rest.apidoc import MIDI, Op, Out, Query
from server.rest.common import caller as _caller
from server.rest.common import error, json_response, read_limited
from server.services import audio_decode, audio_work, basic_pitch, intake
from server.services.audio_jobs import AudioJobs, Performance
from server.services.pieces import PieceLimits
from server.services.sync import user_room

routes = web.RouteTableDef()


def install(app: web.Application, saver: SessionSaver) -> None:
    """Add the routes and the job registry; finished performances go through ``saver``."""
    settings = app[SETTINGS]
    sio = app[SIO]

    async def notify(user_id: str, event: str, payload: dict) -> None:
        await sio.emit(event, payload, room=user_room(user_id))

    jobs = AudioJobs(
        max_running=settings.resolved_max_audio_jobs(),
        max_per_user=settings.max_audio_jobs_per_user,
        max_seconds=settings.max_audio_seconds,
        notify=notify,
        save=saver.save_and_wait,
    )
    app[JOBS] = jobs
    app.add_routes(routes)

    async def stop(app: web.Application) -> None:
        await jobs.close()

    app.on_shutdown.append(stop)


async def _read_audio(request: web.Request) -> tuple[bytes, str | None]:
    """The audio body and its ``Content-Type``, checked from its header (see the module
    docstring); ``501 audio_unavailable`` without the ``audio`` extra."""
    if not basic_pitch.available():
        raise error(
            501,
            "audio_unavailable",
            "audio needs the audio extra: pip install 'tutti[audio]' (ONNX Runtime, soundfile, "
            "soxr)",
        )
    settings = request.app[SETTINGS]
    content_type = request.headers.get("Content-Type")
    if audio_decode.media_format(content_type) is None:
        audio_decode.check_format(b"", content_type)  # raises not_audio with the message
    data = await read_limited(request, settings.max_audio_bytes, "an audio upload")
    await asyncio.to_thread(audio_work.probe, data, content_type, settings.max_audio_seconds)
    return data, content_type


def _one(request: web.Request, name: str) -> str | None:
    values = request.rel_url.query.getall(name, [])
    if len(values) > 1:
        raise error(400, "duplicate_parameter", f"query parameter {name!r} is given twice")
    return values[0] if values else None


@routes.post("/api/performances")
async def post_performance(request: web.Request) -> web.Response:
    """Score a recording of ``part`` of piece ``piece_id``: ``202 {"job_id"}``."""
    caller = _caller(request)
    piece_id = _one(request, "piece_id")
    if not piece_id:
        raise error(400, "invalid_value", "piece_id is required")
    part = _one(request, "part") or None
    tempo = _one(request, "tempo_bpm")
    tempo_bpm = None
    if tempo is not None:
        try:
            tempo_bpm = float(tempo)
        except ValueError:
            raise error(400, "invalid_value", "tempo_bpm must be a number") from None
        if not MIN_BPM <= tempo_bpm <= MAX_BPM:
            raise error(400, "invalid_tempo", f"tempo_bpm must be {MIN_BPM:g}-{MAX_BPM:g}")
    instrument = _one(request, "instrument")
    if instrument is not None and len(instrument) > 64:
        raise error(400, "invalid_value", "instrument must be at most 64 characters")
    async with request.app[SESSIONMAKER]() as db:
        row = await repository.get_piece(db, piece_id)
        if row is None:
            raise error(404, "unknown_piece", f"no piece with id {piece_id!r}")
        names = [p["name"] for p in row.parts]
        if part is not None and part not in names:
            raise error(
                400, "unknown_part", f"no part {part!r} in {row.title!r}; parts: {', '.join(names)}"
            )
        midi = row.midi_data
    data, content_type = await _read_audio(request)
    target = Performance(
        midi=midi,
        part=part,
        piece_id=piece_id,
        display_name=str(caller.get("name") or "Player"),
        tempo_bpm=tempo_bpm,
        instrument=instrument,
    )
    job = request.app[JOBS].submit_performance(caller["sub"], data, content_type, target)
    return json_response({"job_id": job.job_id}, status=202)


@routes.get("/api/jobs/{job_id}")
async def get_job(request: web.Request) -> web.Response:
    """The caller's job (:meth:`server.services.audio_jobs.Job.to_dict`)."""
    caller = _caller(request)
    job = request.app[JOBS].get(request.match_info["job_id"], caller["sub"])
    return json_response(job.to_dict())


def is_audio(request: web.Request) -> bool:
    """Whether a ``POST /api/pieces`` body is audio (its ``Content-Type`` says so)."""
    return audio_decode.media_format(request.headers.get("Content-Type")) is not None


async def import_piece(request: web.Request, caller: dict) -> web.Response:
    """``POST /api/pieces`` with an audio body: transcribe (waiting for the job), store
    the notes as a one-part piece (``source_type`` ``"transcribed"``) → 201, the piece.
    Query: ``title`` (default "Transcribed recording"), ``composer``, ``instrument``."""
    query = request.rel_url.query
    title = query.get("title") or "Transcribed recording"
    if len(title) > 200:
        raise error(400, "invalid_value", "title must be at most 200 characters")
    instrument = query.get("instrument") or None
    if instrument is not None and len(instrument) > 64:
        raise error(400, "invalid_value", "instrument must be at most 64 characters")
    data, content_type = await _read_audio(request)
    try:
        notes = await request.app[JOBS].transcribe_now(caller["sub"], data, content_type)
    except TuttiError as exc:
        if exc.code == "internal_error":
            raise error(500, exc.code, exc.message) from None
        raise
    source = intake.PieceFile(
        audio_work.notes_to_midi(notes),
        title=title,
        composer=query.get("composer") or None,
        instrument=instrument,
        source_type="transcribed",
    )
    added = await intake.add_piece(
        request.app[SESSIONMAKER],
        source,
        limits=PieceLimits.from_settings(request.app[SETTINGS]),
        uploaded_by=caller["sub"],
    )
    return json_response(added.piece, status=201)


# --------------------------------------------------------------------------- the document


class JobAccepted(Out):
    job_id: str


class JobOut(Out):
    job_id: str
    status: str
    stage: str | None
    fraction: float


AUDIO = MIDI  # a binary body
OPERATIONS = [
    Op("POST", "/api/performances", "Score a recording of a part (a job)", "audio", JobAccepted,
       202, AUDIO, body_type="audio/wav", errors=(404, 413, 415, 429, 501), query=(
           Query("piece_id", description="the piece played"),
           Query("part", description="the part played; none: the whole piece"),
           Query("tempo_bpm", schema={"type": "number", "minimum": MIN_BPM, "maximum": MAX_BPM}),
           Query("instrument", schema={"type": "string", "maxLength": 64}),
       )),
    Op("GET", "/api/jobs/{job_id}", "One of the caller's audio jobs", "audio", JobOut),
]  # fmt: skip
"""The document's operations of this module (:mod:`server.rest.apidoc`); the audio body
of ``POST /api/pieces`` is documented with that route."""
