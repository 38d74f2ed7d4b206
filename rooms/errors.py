"""The domain's error type: a stable machine-readable code and a human message."""

from __future__ import annotations


class RoomError(Exception):
    """A refused room operation. Nothing was changed when it is raised.

    ``code`` is a stable snake_case identifier sent to clients in error acks
    (``{"error": {"code", "message"}}``); ``message`` says what was wrong.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}
