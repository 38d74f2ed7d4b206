"""The errors of loading a piece: :class:`PieceError` and one subclass per kind of failure.

Each has a stable machine-readable ``code`` (its class's, unless given) and a
message for people; all are :class:`rooms.errors.TuttiError` and ``ValueError``.
They survive pickling (a worker process raises them, the server answers them).
"""

from __future__ import annotations

from collections.abc import Iterable

from rooms.errors import TuttiError


def _rebuild(cls: type[PieceError], state: dict) -> PieceError:
    error = cls.__new__(cls)
    Exception.__init__(error, state.get("message", ""))
    error.__dict__.update(state)
    return error


class PieceError(TuttiError, ValueError):
    """A MIDI file or a request about a piece cannot be handled.

    ``code`` is a stable machine-readable string (a subclass's, else
    ``invalid_piece``); ``str(error)`` is a message for people that names the problem.
    """

    code = "invalid_piece"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(code or type(self).code, message)

    def __reduce__(self):
        # The same class with the same code, message, status and attributes.
        return _rebuild, (type(self), dict(self.__dict__))


class NotMidiError(PieceError):
    """The data is not a Standard MIDI File (empty, or no ``MThd`` header)."""

    code = "not_midi"


class TruncatedMidiError(PieceError):
    """The MIDI file ends before the data its headers announce."""

    code = "truncated_midi"


class CorruptMidiError(PieceError):
    """The MIDI file has a valid header but its track data cannot be decoded."""

    code = "corrupt_midi"


class UnsupportedMidiError(PieceError):
    """A valid MIDI file this module does not handle (type 2, SMPTE timing).

    ``code`` is ``"unsupported_midi_type"`` or ``"unsupported_time_division"``.
    """

    code = "unsupported_midi_type"


class NoNotesError(PieceError):
    """The MIDI file contains no notes."""

    code = "no_notes"


class PieceTooLargeError(PieceError):
    """The piece is over a size limit: notes in all, notes of one part, MIDI events,
    or (MusicXML) the unpacked size or entry count of its zip. HTTP 413."""

    code = "piece_too_large"


class UnknownPartError(PieceError, KeyError):
    """No part has the requested name; ``available`` lists the part names."""

    code = "unknown_part"

    def __init__(self, name: str, available: Iterable[str]) -> None:
        self.name = name
        self.available = tuple(available)
        listed = ", ".join(repr(n) for n in self.available) or "none"
        super().__init__(f"no part named {name!r}; available parts: {listed}")


class SplitError(PieceError):
    """:meth:`Piece.split_hands` cannot split as asked."""

    code = "invalid_split"
