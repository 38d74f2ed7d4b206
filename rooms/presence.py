"""Phoenix-style presence, pure: topic states, diffs, applying diffs, a device tracker.

The semantics are those of Phoenix.Presence
(https://hexdocs.pm/phoenix/Phoenix.Presence.html) and of its JavaScript
client's ``Presence.syncState`` / ``Presence.syncDiff``
(https://hexdocs.pm/phoenix/js/ — ``assets/js/phoenix/presence.js``), built on
Phoenix.Tracker (https://hexdocs.pm/phoenix_pubsub/Phoenix.Tracker.html):

* A **topic's state** maps a key to ``{"metas": [meta, ...]}``, one meta per
  tracked presence. Here the key is a user id and there is one meta per device
  of that user: ``{"device_id", "device_name", "online_at", "room_id",
  "status", "ref"}``.
* Every meta carries a **ref** unique to it (Phoenix: ``phx_ref``). A ref names
  one immutable meta: a changed meta is a new meta with a new ref.
* A change is broadcast as a **diff** ``{"joins": state, "leaves": state}``
  holding only the metas that joined and that left.
* **Updating** a meta (``Phoenix.Tracker.update/4``) gives it a new ref and is
  broadcast as a leave of the old meta plus a join of the new one.
* A client **applies a diff** by dropping the metas whose refs left and adding
  the metas that joined (a joined ref already present is not added twice; a
  left ref not present is ignored). A key is removed once it has no metas left
  — so a user leaves a topic only when their last device leaves it, even though
  every device's leave is listed in a diff.

Topics: ``user:{user_id}`` (every device of a user, seen by that user's
devices) and ``room:{room_id}`` (each member's devices that are in the room,
seen by the room's members).

States here are kept **canonical**: metas of a key sorted by ref, no key with
an empty list. The order of metas carries no meaning (the Phoenix client
prepends joined metas); canonical states compare with ``==``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

STATUSES = ("idle", "practicing", "listening")
META_FIELDS = ("device_id", "device_name", "online_at", "room_id", "status", "ref")

Meta = dict[str, Any]
State = dict[str, dict[str, list[Meta]]]  # key -> {"metas": [meta, ...]}
Diff = dict[str, State]  # {"joins": State, "leaves": State}


def status_of(room: Any, role: str) -> str:
    """A room member's status: ``listening`` (spectator), ``practicing`` (the
    room ``room``, a :class:`rooms.room.Room`, has started) or ``idle``."""
    if role == "spectator":
        return "listening"
    return "idle" if room.start_at_ms is None else "practicing"


def user_topic(user_id: str) -> str:
    """The topic of every device of ``user_id``."""
    return f"user:{user_id}"


def room_topic(room_id: str) -> str:
    """The topic of the members of ``room_id`` (their devices that are in the room)."""
    return f"room:{room_id}"


def make_meta(
    *,
    device_id: str,
    device_name: str,
    online_at: int,
    room_id: str | None,
    status: str,
    ref: str,
) -> Meta:
    """One device's meta. ``online_at``: epoch ms when the device came online."""
    if status not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}, got {status!r}")
    return {
        "device_id": device_id,
        "device_name": device_name,
        "online_at": online_at,
        "room_id": room_id,
        "status": status,
        "ref": ref,
    }


def empty_diff() -> Diff:
    return {"joins": {}, "leaves": {}}


def is_empty(diff: Mapping[str, State]) -> bool:
    """True when ``diff`` neither joins nor leaves anything."""
    return not diff.get("joins") and not diff.get("leaves")


def canonical(state: Mapping[str, Mapping[str, Iterable[Meta]]]) -> State:
    """A deep copy of ``state`` with metas sorted by ref and no empty keys."""
    out: State = {}
    for key, presence in state.items():
        metas = sorted((copy.deepcopy(m) for m in presence["metas"]), key=lambda m: m["ref"])
        if metas:
            out[key] = {"metas": metas}
    return out


def diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> Diff:
    """The diff that turns ``old`` into ``new`` (the joins and leaves of Phoenix's syncState).

    For each key, the metas of ``new`` whose refs are not in ``old`` join and
    the metas of ``old`` whose refs are not in ``new`` leave.
    """
    joins: State = {}
    leaves: State = {}
    for key, presence in old.items():
        new_refs = {m["ref"] for m in new[key]["metas"]} if key in new else set()
        left = [m for m in presence["metas"] if m["ref"] not in new_refs]
        if left:
            leaves[key] = {"metas": left}
    for key, presence in new.items():
        old_refs = {m["ref"] for m in old[key]["metas"]} if key in old else set()
        joined = [m for m in presence["metas"] if m["ref"] not in old_refs]
        if joined:
            joins[key] = {"metas": joined}
    return {"joins": canonical(joins), "leaves": canonical(leaves)}


def apply_diff(state: Mapping[str, Any], change: Mapping[str, Any]) -> State:
    """``state`` after ``change`` (Phoenix's syncDiff), as a new canonical state.

    Joins first, then leaves, as Phoenix does: a meta joins unless its ref is
    already there; a leaving ref is dropped if present; a key with no metas left
    is gone. ``state`` is not modified.
    """
    out = canonical(state)
    for key, presence in change.get("joins", {}).items():
        metas = out.setdefault(key, {"metas": []})["metas"]
        refs = {m["ref"] for m in metas}
        metas.extend(copy.deepcopy(m) for m in presence["metas"] if m["ref"] not in refs)
    for key, presence in change.get("leaves", {}).items():
        if key not in out:
            continue
        gone = {m["ref"] for m in presence["metas"]}
        out[key]["metas"] = [m for m in out[key]["metas"] if m["ref"] not in gone]
    return canonical(out)


def topics_of(meta: Meta | None, user_id: str) -> list[str]:
    """The topics a device with ``meta`` is present in: its user's, and its room's if any."""
    if meta is None:
        return []
    topics = [user_topic(user_id)]
    if meta.get("room_id"):
        topics.append(room_topic(meta["room_id"]))
    return topics


def device_diffs(user_id: str, old: Meta | None, new: Meta | None) -> dict[str, Diff]:
    """The diff of each topic when a device of ``user_id`` goes from meta ``old`` to ``new``.

    ``old`` None: the device joins; ``new`` None: it leaves; both: an update,
    i.e. a leave of ``old`` in its topics and a join of ``new`` in its topics
    (a device moving out of a room only leaves the room's topic). Topics
    whose diff would be empty are left out; ``old`` and ``new`` with the same
    ref are no change.
    """
    if old is not None and new is not None and old["ref"] == new["ref"]:
        return {}
    out: dict[str, Diff] = {}
    for topic in topics_of(old, user_id):
        out.setdefault(topic, empty_diff())["leaves"][user_id] = {"metas": [copy.deepcopy(old)]}
    for topic in topics_of(new, user_id):
        out.setdefault(topic, empty_diff())["joins"][user_id] = {"metas": [copy.deepcopy(new)]}
    return out


def topic_state(entries: Iterable[tuple[str, Meta]], topic: str) -> State:
    """The state of ``topic`` from ``(user_id, meta)`` pairs of every tracked device."""
    state: State = {}
    for user_id, meta in entries:
        if topic in topics_of(meta, user_id):
            state.setdefault(user_id, {"metas": []})["metas"].append(meta)
    return canonical(state)


class Tracker:
    """Every tracked device, ``(user_id, device_id) -> meta``, and the diffs of each change.

    A small Phoenix.Tracker for one process: :meth:`put` tracks a device or
    updates its meta (a new ref, so a leave and a join), :meth:`remove` untracks
    it. Both return the previous meta and the diff of every topic concerned.
    Devices are indexed by topic, so a topic's state costs its own size.
    """

    def __init__(self) -> None:
        self._devices: dict[tuple[str, str], Meta] = {}
        self._topics: dict[str, dict[tuple[str, str], Meta]] = {}

    def get(self, user_id: str, device_id: str) -> Meta | None:
        meta = self._devices.get((user_id, device_id))
        return copy.deepcopy(meta) if meta is not None else None

    def put(self, user_id: str, meta: Meta) -> tuple[Meta | None, dict[str, Diff]]:
        key = (user_id, meta["device_id"])
        old = self._drop(user_id, key)
        meta = copy.deepcopy(meta)
        self._devices[key] = meta
        for topic in topics_of(meta, user_id):
            self._topics.setdefault(topic, {})[key] = meta
        return old, device_diffs(user_id, old, meta)

    def remove(self, user_id: str, device_id: str) -> tuple[Meta | None, dict[str, Diff]]:
        old = self._drop(user_id, (user_id, device_id))
        return old, device_diffs(user_id, old, None)

    def _drop(self, user_id: str, key: tuple[str, str]) -> Meta | None:
        old = self._devices.pop(key, None)
        for topic in topics_of(old, user_id):
            members = self._topics[topic]
            del members[key]
            if not members:
                del self._topics[topic]
        return old

    def entries(self) -> list[tuple[str, Meta]]:
        """``(user_id, meta)`` of every tracked device."""
        return [(user_id, copy.deepcopy(m)) for (user_id, _), m in self._devices.items()]

    def state(self, topic: str) -> State:
        """The current state of ``topic``."""
        members = self._topics.get(topic, {})
        return topic_state(((user_id, m) for (user_id, _), m in members.items()), topic)

    def __len__(self) -> int:
        return len(self._devices)
