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


async def test_a_repeated_relay_is_sent_once():
    missed = await _missed([("note", _note("soprano", 74)), ("note", _note("soprano", 74))])
    assert [m["data"]["seq"] for m in missed] == [74]


async def test_a_batch_keeps_only_its_new_notes_and_one_with_none_is_left_out():
    batch = {"room_id": "r1", "user_id": "soprano", "part": "Soprano"}
    repeated = {**batch, "events": [_note("soprano", 1), _note("soprano", 2)]}
    newer = {**batch, "events": [_note("soprano", 2), _note("soprano", 3)]}
    missed = await _missed(
        [
            ("note", _note("soprano", 1)),
            ("note", _note("soprano", 2)),
            ("notes", repeated),
            ("notes", newer),
        ]
    )
    assert [m["event"] for m in missed] == ["note", "note", "notes"]
    assert [e["seq"] for e in missed[-1]["data"]["events"]] == [3]


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


async def test_notes_without_a_seq_are_never_taken_for_repeats():
    plain = {k: v for k, v in _note("soprano", 0).items() if k != "seq"}
    missed = await _missed([("note", plain), ("note", plain)])
    assert len(missed) == 2
