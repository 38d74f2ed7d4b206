"""Phoenix-style presence, pure (:mod:`rooms.presence`): diffs, applying them, the tracker."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rooms.presence import (
    STATUSES,
    Tracker,
    apply_diff,
    canonical,
    device_diffs,
    diff,
    is_empty,
    make_meta,
    room_topic,
    topic_state,
    user_topic,
)


def meta(device_id: str, ref: str, room_id: str | None = None, status: str = "idle") -> dict:
    return make_meta(
        device_id=device_id,
        device_name=device_id.title(),
        online_at=1_700_000_000_000,
        room_id=room_id,
        status=status,
        ref=ref,
    )


# -- examples ---------------------------------------------------------------------------------


def test_join_of_a_second_device_lists_only_that_device():
    phone, laptop = meta("phone", "1"), meta("laptop", "2")
    before = {"u": {"metas": [phone]}}
    after = {"u": {"metas": [phone, laptop]}}
    change = diff(before, after)
    assert change == {"joins": {"u": {"metas": [laptop]}}, "leaves": {}}
    assert apply_diff(before, change) == canonical(after)


def test_update_is_a_leave_of_the_old_meta_and_a_join_of_the_new_one():
    old, new = meta("laptop", "1"), meta("laptop", "2", room_id="r1", status="practicing")
    diffs = device_diffs("u", old, new)
    assert diffs[user_topic("u")] == {
        "joins": {"u": {"metas": [new]}},
        "leaves": {"u": {"metas": [old]}},
    }
    # The room topic had no old meta: only a join.
    assert diffs[room_topic("r1")] == {"joins": {"u": {"metas": [new]}}, "leaves": {}}
    # And back out of the room: the room topic only sees the leave.
    newer = meta("laptop", "3")
    back = device_diffs("u", new, newer)
    assert back[room_topic("r1")] == {"joins": {}, "leaves": {"u": {"metas": [new]}}}
    assert set(back) == {user_topic("u"), room_topic("r1")}
    assert device_diffs("u", new, new) == {}


def test_a_user_leaves_only_when_the_last_device_leaves():
    phone, laptop = meta("phone", "1"), meta("laptop", "2")
    state = {"u": {"metas": [phone, laptop]}, "p": {"metas": [meta("desk", "3")]}}
    state = apply_diff(state, {"joins": {}, "leaves": {"u": {"metas": [laptop]}}})
    assert state["u"] == {"metas": [phone]}
    state = apply_diff(state, {"joins": {}, "leaves": {"u": {"metas": [phone]}}})
    assert "u" not in state and "p" in state


def test_apply_diff_tolerates_repeats_and_unknown_leaves_and_does_not_mutate():
    phone = meta("phone", "1")
    state = {"u": {"metas": [phone]}}
    again = apply_diff(state, {"joins": {"u": {"metas": [phone]}}, "leaves": {}})
    assert again == state
    gone = apply_diff(state, {"joins": {}, "leaves": {"x": {"metas": [meta("a", "9")]}}})
    assert gone == state
    apply_diff(state, {"joins": {}, "leaves": {"u": {"metas": [phone]}}})
    assert state == {"u": {"metas": [phone]}}


def test_diff_of_a_state_with_itself_is_empty():
    state = {"u": {"metas": [meta("phone", "1")]}}
    assert is_empty(diff(state, state))
    assert not is_empty(diff(state, {}))


def test_topic_state_groups_devices_by_user_and_room():
    phone = meta("phone", "1")
    laptop = meta("laptop", "2", room_id="r1", status="practicing")
    desk = meta("desk", "3", room_id="r1", status="listening")
    entries = [("u", phone), ("u", laptop), ("p", desk)]
    assert topic_state(entries, user_topic("u")) == {"u": {"metas": [phone, laptop]}}
    assert topic_state(entries, user_topic("p")) == {"p": {"metas": [desk]}}
    assert topic_state(entries, room_topic("r1")) == {
        "u": {"metas": [laptop]},
        "p": {"metas": [desk]},
    }
    assert topic_state(entries, room_topic("r2")) == {}


def test_make_meta_refuses_an_unknown_status():
    with pytest.raises(ValueError):
        meta("phone", "1", status="sleeping")


# -- properties ---------------------------------------------------------------------------------

KEYS = st.sampled_from(["u1", "u2", "u3"])
DEVICES = st.sampled_from(["phone", "laptop", "tablet"])
ROOMS = st.sampled_from([None, "r1", "r2"])


@st.composite
def two_states(draw):
    """Two states drawn from one pool of metas, each with its own ref (as refs are)."""
    pool = draw(st.lists(st.tuples(KEYS, DEVICES, ROOMS, st.sampled_from(STATUSES)), max_size=14))
    metas = [(k, meta(d, f"r{i}", room, s)) for i, (k, d, room, s) in enumerate(pool)]
    states = []
    for _ in range(2):
        mask = draw(st.lists(st.booleans(), min_size=len(metas), max_size=len(metas)))
        state: dict = {}
        for (key, m), keep in zip(metas, mask, strict=True):
            if keep:
                state.setdefault(key, {"metas": []})["metas"].append(m)
        states.append(state)
    return states


@given(two_states())
def test_applying_diff_a_b_to_a_gives_b(states):
    a, b = states
    change = diff(a, b)
    assert apply_diff(a, change) == canonical(b)
    # Only changed metas travel, never one both joining and leaving.
    for key in change["joins"].keys() & change["leaves"].keys():
        joined = {m["ref"] for m in change["joins"][key]["metas"]}
        left = {m["ref"] for m in change["leaves"][key]["metas"]}
        assert not joined & left


@given(two_states())
def test_diff_back_undoes_diff(states):
    a, b = states
    assert apply_diff(apply_diff(a, diff(a, b)), diff(b, a)) == canonical(a)


OPS = st.lists(
    st.tuples(st.sampled_from(["put", "remove"]), KEYS, DEVICES, ROOMS, st.sampled_from(STATUSES)),
    max_size=40,
)


@settings(max_examples=200)
@given(OPS)
def test_clients_applying_the_trackers_diffs_see_its_state(ops):
    """A subscriber of each topic that starts from an empty state and applies every
    diff the tracker produces always holds the tracker's state of that topic."""
    tracker = Tracker()
    topics = [user_topic(k) for k in ("u1", "u2", "u3")] + [room_topic("r1"), room_topic("r2")]
    seen = {topic: {} for topic in topics}
    for i, (op, user, device, room, status) in enumerate(ops):
        if op == "put":
            old, diffs = tracker.put(user, meta(device, f"ref{i}", room, status))
        else:
            old, diffs = tracker.remove(user, device)
            if old is None:
                assert diffs == {}
        for topic, change in diffs.items():
            assert not is_empty(change)
            seen[topic] = apply_diff(seen[topic], change)
        for topic in topics:
            assert seen[topic] == tracker.state(topic)
        # A user is in their topic exactly while one of their devices is tracked.
        for key in ("u1", "u2", "u3"):
            devices = [m for u, m in tracker.entries() if u == key]
            assert (key in seen[user_topic(key)]) == bool(devices)
            if devices:
                assert len(seen[user_topic(key)][key]["metas"]) == len(devices)
