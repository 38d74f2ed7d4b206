"""Tutti's one error type: a stable machine-readable code, a message for people, an HTTP status.

Raised by the domain (``rooms``), the services and the REST layer alike, and
sent to clients as ``{"error": {"code", "message"}}``: in a REST answer with
:attr:`TuttiError.status` (one mapping, :data:`STATUS`), in a Socket.IO error
ack as it is. Nothing was changed when one is raised.
"""

from __future__ import annotations

# code → HTTP status, for every code that is not a plain 400 (bad request).
# An error raised with an explicit ``status`` keeps it.
STATUS: dict[str, int] = {
    # the caller: 401 unauthenticated, 403 refused
    "missing_token": 401,
    "invalid_token": 401,
    "token_expired": 401,
    "unknown_user": 401,
    "account_deleted": 403,
    "forbidden": 403,  # e.g. a recorded take of a session the caller was not in
    # what was asked for is not there
    "not_found": 404,
    "no_take": 404,  # no recorded take of that player in that session (rooms.takes)
    "unknown_piece": 404,
    "unknown_instrument": 404,
    "notation_unavailable": 404,  # the piece plays, but has no score (server.services.notation)
    # it conflicts with what is there
    "already_exists": 409,
    "already_ended": 409,
    # too big, or not available in this installation
    "too_large": 413,
    "piece_too_large": 413,  # over a cap on notes, MIDI events or a MusicXML zip's size
    "musicxml_unavailable": 501,
    # audio (server.rest.audio): a body that is no audio, a broken one, silence, too long
    "not_audio": 415,
    "corrupt_audio": 400,
    "no_notes_detected": 422,
    "audio_too_long": 413,
    "too_many_jobs": 429,
    "internal_error": 500,
    "audio_unavailable": 501,
    "database_unavailable": 503,  # away, locked or read-only for now: retry (Retry-After)
}


class TuttiError(Exception):
    """A refused operation: ``code`` (stable snake_case), ``message``, HTTP ``status``.

    ``status`` defaults to :data:`STATUS` of the code, else 400. ``str(error)``
    is the message. Subclasses only narrow where an error comes from.
    """

    def __init__(self, code: str, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status if status is not None else STATUS.get(code, 400)

    def __str__(self) -> str:
        return self.message

    def to_dict(self) -> dict[str, str]:
        """The wire form: ``{"code", "message"}``."""
        return {"code": self.code, "message": self.message}

    def __reduce__(self):
        # Pickles (a worker process raises it): the same class, code, message, status.
        return _rebuild, (type(self), dict(self.__dict__))


def _rebuild(cls: type[TuttiError], state: dict) -> TuttiError:
    error = cls.__new__(cls)
    Exception.__init__(error, state.get("message", ""))
    error.__dict__.update(state)
    return error


class RoomError(TuttiError):
    """A refused room operation (join, start, note, finish…)."""
