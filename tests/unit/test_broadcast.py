"""RoomBroadcast.missed: what a reconnecting member is sent from the recovery stream."""

from types import SimpleNamespace

from server.realtime.broadcast import RoomBroadcast
from server.realtime.recovery import LocalStreams


def _note(user_id: str, seq: int, pitch: int = 60) -> dict:
    return {
        "room_id": "r1",
        "user_id": user_id,
        "part": "Soprano",
        "type": "note_on",
        "pitch": pitch,
        "velocity": 80,
        "t": 1000.0 + seq,
        "seq": seq,
    }


async def _missed(entries: list[tuple[str, dict]], user_id: str = "bass") -> list[dict]:
    streams = LocalStreams()
    broadcast = RoomBroadcast(sio=None, streams=streams)
    epoch, offset = await streams.append("r1", "room:state", {"room_id": "r1"})
    for event, data in entries:
        await streams.append("r1", event, data)
    missed = await broadcast.missed("r1", user_id, SimpleNamespace(epoch=epoch, offset=offset))
    assert missed is not None
    return missed


async def test_own_notes_are_left_out_and_other_events_kept_in_order():
    missed = await _missed(
        [
            ("note", _note("bass", 1)),
            ("note", _note("soprano", 2)),
            ("score:update", {"room_id": "r1", "user_id": "soprano"}),
            ("note", _note("soprano", 3, pitch=62)),
        ]
    )
    assert [(m["event"], m["data"].get("seq")) for m in missed] == [
        ("note", 2),
        ("score:update", None),
        ("note", 3),
    ]
