"""rooms.admission: private rooms' invites and the spectator cap, on a bare Room."""

from __future__ import annotations

import pytest

from rooms.admission import admit, new_invite_code
from rooms.errors import RoomError
from rooms.room import Room, RoomSettings

NOW = 1_700_000_000_000


def free_room(invite_code: str | None = None, max_spectators: int = 1000) -> Room:
    return Room(
        "r1",
        name="jam",
        mode="free",
        host_user_id="host",
        settings=RoomSettings(max_spectators=max_spectators),
        invite_code=invite_code,
    )


def refusal(room: Room, user_id: str, role: str = "player", invite: str | None = None) -> str:
    with pytest.raises(RoomError) as info:
        admit(room, user_id, role, invite)
    return info.value.code


def test_invite_codes_are_11_url_safe_characters_and_differ() -> None:
    codes = {new_invite_code() for _ in range(50)}
    assert len(codes) == 50
    assert all(len(c) == 11 and c.replace("-", "").replace("_", "").isalnum() for c in codes)


def test_a_public_room_admits_anyone() -> None:
    room = free_room()
    assert not room.is_private
    admit(room, "guest", "player", None)
    admit(room, "guest", "player", "whatever")


def test_a_private_room_needs_its_code_except_for_the_host_and_members() -> None:
    room = free_room("s3cret-code")
    assert room.is_private
    assert refusal(room, "guest") == "invite_required"
    assert refusal(room, "guest", invite="wrong") == "invalid_invite"
    admit(room, "guest", "player", "s3cret-code")
    admit(room, "host", "player", None)  # the host needs none
    room.join("guest", "Guest", role="player", part=None, instrument=None, now_ms=NOW)
    admit(room, "guest", "player", None)  # a rejoin keeps its place


def test_the_invite_travels_with_the_snapshot_but_not_the_state() -> None:
    room = free_room("s3cret-code")
    assert "s3cret-code" not in repr(room.state(NOW))
    replica = Room.from_snapshot(room.snapshot(), None)
    assert replica.invite_code == "s3cret-code"


def test_spectators_are_capped_players_are_not() -> None:
    room = free_room(max_spectators=1)
    admit(room, "fan", "spectator", None)
    room.join("fan", "Fan", role="spectator", part=None, instrument=None, now_ms=NOW)
    assert refusal(room, "late", role="spectator") == "room_full"
    admit(room, "late", "player", None)
    admit(room, "fan", "spectator", None)  # already in
