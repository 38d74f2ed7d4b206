"""server.realtime.codec.ack_text: the same ACK text as python-socketio's packet (no server)."""

from __future__ import annotations

import pytest
from socketio import packet

from server.realtime import codec
from server.realtime.codec import ack_text


class StockPacket(packet.Packet):
    json = codec  # as server.app configures python-socketio


CASES = [
    ("/", 0, [{"accepted": 1, "seq": 12}]),
    (None, 7, [{"error": {"code": "rate_limited", "message": "é ✓", "retry_after": 0.25}}]),
    ("/", 123456, []),
    ("/room", 3, [{"t0": 1.5, "t1": 2.0, "t2": 2.25}]),
    ("/", 1, [None, [1, "two", {"three": [3.0]}]]),
]


@pytest.mark.parametrize(("namespace", "ack_id", "data"), CASES)
def test_ack_text_is_the_packets_encoding(namespace, ack_id, data):
    stock = StockPacket(packet.ACK, namespace=namespace, id=ack_id, data=data).encode()
    assert ack_text(namespace, ack_id, data) == stock


def test_binary_ack_is_left_to_the_stock_packet():
    assert ack_text("/", 1, [{"blob": b"\x00\x01"}]) is None
