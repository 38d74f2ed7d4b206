"""orjson as the JSON codec of python-socketio (faster than the stdlib json)."""

from __future__ import annotations

import orjson


def dumps(obj, **_ignored) -> str:
    # socketio passes json.dumps-style keyword arguments (separators); orjson is compact anyway.
    return orjson.dumps(obj).decode()


def loads(data, **_ignored):
    return orjson.loads(data)
