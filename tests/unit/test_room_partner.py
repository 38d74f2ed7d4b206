"""rooms.room: the computer partner's seat (add, remove, the rules, finish, snapshots)."""

from __future__ import annotations

import pytest

from rooms.errors import RoomError
from rooms.notes import NoteEvent
from rooms.room import Room
from tests.unit.test_room import NOW, join, make_room


def add(room: Room, part: str | None = "Bass", user: str = "host", follow: bool = True):
    return room.add_partner(user, part, follow=follow, now_ms=NOW)


def test_the_partner_is_a_bot_member_holding_its_part():
    room = make_room("duet")
    join(room, "host", "Soprano")
    seat = add(room)
    assert (seat.part, seat.follow) == ("Bass", True)
    members = {m["user_id"]: m for m in room.state(NOW)["members"]}
    assert members[seat.user_id]["bot"] is True and members["host"]["bot"] is False
    assert room.parts_taken()["Bass"] == seat.user_id
    assert room.players_present() == ["host"]  # people only
    with pytest.raises(RoomError) as info:
        join(room, "other", "Alto")
    assert info.value.code == "room_full"  # a duet: the host and the partner


@pytest.mark.parametrize(
    "setup, call, code",
    [
        (lambda r: None, lambda r: add(r, user="other"), "not_host"),
        (lambda r: None, lambda r: add(r, "Soprano"), "part_taken"),
        (lambda r: None, lambda r: add(r, "Kazoo"), "unknown_part"),
        (lambda r: add(r), lambda r: add(r, "Alto"), "partner_exists"),
        (lambda r: r.start("host", NOW), lambda r: add(r), "already_started"),
        (lambda r: None, lambda r: r.remove_partner("host", NOW), "no_partner"),
        (lambda r: add(r), lambda r: r.remove_partner("other", NOW), "not_host"),
    ],
)
def test_refusals_change_nothing(setup, call, code):
    room = make_room("ensemble")
    join(room, "host", "Soprano")
    setup(room)
    before = (room.state(NOW), room.snapshot())
    with pytest.raises(RoomError) as info:
        call(room)
    assert info.value.code == code
    assert (room.state(NOW), room.snapshot()) == before


def test_no_partner_in_a_free_jam():
    room = make_room("free")
    join(room, "host")
    with pytest.raises(RoomError) as info:
        add(room, None)
    assert info.value.code == "partner_in_free_jam"


def test_removed_before_the_start_frees_the_part_and_null_takes_the_first_free():
    room = make_room("ensemble")
    join(room, "host", "Soprano")
    add(room)
    room.remove_partner("host", NOW)
    assert room.partner is None and "Bass" not in room.parts_taken()
    assert add(room, None).part == "Alto"


def test_a_partner_alone_neither_keeps_a_room_nor_hosts_it():
    room = make_room("ensemble")
    join(room, "host", "Soprano")
    join(room, "other", "Alto")
    add(room)
    room.leave("host", NOW)
    assert room.host == "other"  # not the partner
    room.leave("other", NOW)
    assert room.is_empty and room.partner is None  # gone with the last person


def test_finish_reports_the_partner_apart_and_counts_it_for_asynchrony():
    room = make_room("duet")
    join(room, "host", "Soprano")
    seat = add(room, follow=False)
    start = room.start("host", NOW)
    soprano = room.piece.part("Soprano").notes[0]
    bass = room.piece.part("Bass").notes[0]
    assert soprano.onset_tick == bass.onset_tick
    room.accept("host", [NoteEvent("on", soprano.pitch, 80, start + 0.0)], start)
    room.accept(seat.user_id, [NoteEvent("on", bass.pitch, 80, start + 30.0)], start)
    finished = room.finish("host_ended", start + 100, "s1")
    assert [p.user_id for p in finished.players] == ["host"]
    assert finished.asynchrony_ms == pytest.approx(30.0)
    assert finished.partner["user_id"] == seat.user_id
    assert finished.partner["follow"] is False and finished.partner["part"] == "Bass"
    assert finished.partner["result"]["asynchrony_ms"] == pytest.approx(30.0)


def test_a_snapshot_keeps_the_partner():
    room = make_room("duet")
    join(room, "host", "Soprano")
    seat = add(room)
    copy = Room.from_snapshot(room.snapshot(), room.piece)
    assert copy.partner == seat
    assert copy.state(NOW)["members"] == room.state(NOW)["members"]
