"""Tutti's Socket.IO encoding: orjson as the JSON codec and a cheaper packet class.

* :func:`dumps` / :func:`loads`: orjson (faster than the stdlib json).
* :class:`Packet`: python-socketio's ``socketio.packet.Packet`` with a
  faster ``data_is_binary``. The stock one walks every emitted payload with
  ``functools.reduce`` over a freshly built list at each level; the relay
  benchmark's profile (``loadtests/bench/relay.py``, py-spy) showed it at
  13–20 % of the server's CPU under load (every ``note`` relay, ``score:update``
  and ack builds a packet). This one gives the same answer (bytes/bytearray
  anywhere inside lists and dict values) with an early exit and no
  allocations. Passed to ``socketio.AsyncServer(serializer=Packet)``.
  An event packet whose data is not JSON orjson accepts (lone surrogates,
  ``NaN``, truncated text) or not ``[name, ...]`` decodes to
  ``[UNDECODABLE]``, keeping its ack id: the namespace answers it
  ``invalid_value`` instead of the packet being dropped unanswered.
* :func:`ack_text`: an ACK packet's text in one step (python-socketio's
  ``Packet(ACK, ...).encode()`` without building the packet object and its
  separate binary check), for the note path's acks
  (:class:`server.realtime.fastpath.InlineEvents`).
"""

from __future__ import annotations

import orjson
from socketio import packet as _packet


def dumps(obj, **_ignored) -> str:
    # socketio passes json.dumps-style keyword arguments (separators); orjson is compact anyway.
    return orjson.dumps(obj).decode()


def loads(data, **_ignored):
    return orjson.loads(data)


_LEAVES = frozenset((str, int, float, bool, type(None)))


def _has_binary(data) -> bool:
    kind = type(data)
    if kind in _LEAVES:
        return False
    if kind is dict or kind is list:
        for value in data.values() if kind is dict else data:
            if type(value) not in _LEAVES and _has_binary(value):
                return True
        return False
    # Subclasses and the rest, exactly as socketio.packet.Packet.data_is_binary.
    if isinstance(data, (bytes, bytearray)):
        return True
    if isinstance(data, list):
        return any(_has_binary(v) for v in data)
    if isinstance(data, dict):
        return any(_has_binary(v) for v in data.values())
    return False


def ack_text(namespace: str | None, ack_id: int, data: list) -> str | None:
    """The text of the Socket.IO ACK packet ``ack_id`` with ``data`` (the ack's arguments).

    The same string as ``Packet(ACK, namespace=namespace, id=ack_id, data=data).encode()``
    with this module as the packet's JSON codec (as ``server.app`` sets it); ``None`` when
    ``data`` holds bytes (a BINARY_ACK: take the stock packet).
    """
    if _has_binary(data):
        return None
    head = "3" if namespace is None or namespace == "/" else "3" + namespace + ","
    return head + str(ack_id) + dumps(data)


class _Undecodable:
    """The event name of a client event whose data could not be decoded."""

    def __repr__(self) -> str:
        return "<undecodable>"


UNDECODABLE = _Undecodable()


class MalformedPacket(ValueError):
    """A Socket.IO packet that cannot be read at all (its header, or a non-event payload)."""


class Packet(_packet.Packet):
    """A Socket.IO packet whose binary check is cheap and whose bad events decode (see module).

    Anything else that does not decode raises :class:`MalformedPacket`.
    """

    def decode(self, encoded_packet):
        try:
            count = super().decode(encoded_packet)
        except orjson.JSONDecodeError as exc:
            if self.packet_type != _packet.EVENT:
                raise MalformedPacket(f"its payload is not JSON ({exc})") from None
            self.data = [UNDECODABLE]
            return 0
        except (ValueError, TypeError, IndexError) as exc:
            raise MalformedPacket(f"its header does not decode ({exc})") from None
        if self.packet_type == _packet.EVENT and not (
            isinstance(self.data, list) and self.data and isinstance(self.data[0], str)
        ):
            self.data = [UNDECODABLE]
        return count

    @classmethod
    def data_is_binary(cls, data) -> bool:
        return _has_binary(data)
