"""A guest's data moved into the account it signs in to: logs, goals, repertoire, templates,
progress."""

from __future__ import annotations

from sqlalchemy import Text, cast, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.models import (
    ClientMutation,
    Goal,
    LoginLink,
    PracticeLog,
    PracticeSession,
    PracticeTemplate,
    RefreshToken,
    RepertoireItem,
    SheetMusic,
    User,
    UserPreferences,
    UserSync,
)
from server.db.versions import next_version
from server.services.progress import merge_progress

_SYNCED_ROWS = (PracticeLog, Goal, RepertoireItem, PracticeTemplate)


async def merge_guest(db: AsyncSession, guest_id: str, account_id: str) -> dict[str, int] | None:
    """Move everything of guest ``guest_id`` to account ``account_id``, then delete the guest.

    Runs in the caller's transaction: all of it happens or none. Returns
    counts per table (``practice_logs``, ``practice_logs_dropped``,
    ``goals``, ``repertoire_items``, ``practice_templates``,
    ``user_preferences``, ``sheet_music``, ``practice_sessions``,
    ``client_mutations``), or ``None`` — nothing to do — when ``guest_id`` is
    not (any more) a guest or is the account itself. So a second merge of the
    same guest moves nothing twice.

    * ``practice_logs``, ``goals``, ``repertoire_items``,
      ``practice_templates`` (tombstones too) get ``user_id`` = the account
      and each a new version from :func:`next_version` of the account, so the
      account's other devices pull them; ``updated_at`` is kept. A guest log
      of a session the account also has a log of (UNIQUE(session_id,
      user_id)) is dropped: the account's row stays.
    * ``user_preferences``: merged key by key, the account's keys winning;
      the result takes a new version.
    * ``sheet_music.uploaded_by``, ``practice_sessions.host_user_id`` and
      the ``user_id`` of the guest's entries in ``practice_sessions.participants``.
    * ``client_mutations``: moved; where the account already has the same
      ``client_id`` it keeps the larger ``last_mutation_id``. A device that
      re-pushes, as the account, mutations it pushed as the guest (same
      client id and mutation ids) is thus recognised as already applied.
    * Progress: achievements (earliest unlock wins), stars and the time zone move;
      the account's progress is recomputed (:func:`server.services.progress.merge_progress`).
    * The guest's refresh tokens, ``user_sync`` row and user row are deleted.
    """
    guest = await db.get(User, guest_id)
    if guest is None or not guest.is_guest or guest_id == account_id:
        return None
    report: dict[str, int] = {}

    account_sessions = select(PracticeLog.session_id).where(
        PracticeLog.user_id == account_id, PracticeLog.session_id.is_not(None)
    )
    dropped = await db.execute(
        delete(PracticeLog).where(
            PracticeLog.user_id == guest_id, PracticeLog.session_id.in_(account_sessions)
        )
    )
    report["practice_logs_dropped"] = dropped.rowcount
    for model in _SYNCED_ROWS:
        ids = (
            await db.scalars(
                select(model.id).where(model.user_id == guest_id).order_by(model.version, model.id)
            )
        ).all()
        for row_id in ids:
            version = await next_version(db, account_id)
            await db.execute(
                update(model)
                .where(model.id == row_id)
                .values(user_id=account_id, version=version, updated_at=model.updated_at)
            )
        report[model.__tablename__] = len(ids)

    report["user_preferences"] = 0
    guest_prefs = await db.get(UserPreferences, guest_id)
    if guest_prefs is not None:
        account_prefs = await db.get(UserPreferences, account_id)
        version = await next_version(db, account_id)
        if account_prefs is None:
            data = dict(guest_prefs.data or {})
            db.add(UserPreferences(user_id=account_id, data=data, version=version))
        else:
            account_prefs.data = {**(guest_prefs.data or {}), **(account_prefs.data or {})}
            account_prefs.version = version
        await db.delete(guest_prefs)
        await db.flush()
        report["user_preferences"] = 1

    moved = await db.execute(
        update(SheetMusic).where(SheetMusic.uploaded_by == guest_id).values(uploaded_by=account_id)
    )
    report["sheet_music"] = moved.rowcount
    await db.execute(
        update(PracticeSession)
        .where(PracticeSession.host_user_id == guest_id)
        .values(host_user_id=account_id)
    )
    sessions = (
        await db.scalars(
            select(PracticeSession).where(
                cast(PracticeSession.participants, Text).contains(guest_id)
            )
        )
    ).all()
    touched = 0
    for session in sessions:
        participants = session.participants or []
        if any(p.get("user_id") == guest_id for p in participants):
            # A new list: the JSON column does not track changes inside the old one.
            session.participants = [
                {**p, "user_id": account_id} if p.get("user_id") == guest_id else p
                for p in participants
            ]
            touched += 1
    await db.flush()
    report["practice_sessions"] = touched

    mutations = (
        await db.execute(
            select(ClientMutation.client_id, ClientMutation.last_mutation_id).where(
                ClientMutation.user_id == guest_id
            )
        )
    ).all()
    for client_id, last in mutations:
        existing = await db.scalar(
            select(ClientMutation.last_mutation_id).where(
                ClientMutation.user_id == account_id, ClientMutation.client_id == client_id
            )
        )
        if existing is None:
            await db.execute(
                update(ClientMutation)
                .where(ClientMutation.user_id == guest_id, ClientMutation.client_id == client_id)
                .values(user_id=account_id)
            )
        else:
            await db.execute(
                update(ClientMutation)
                .where(ClientMutation.user_id == account_id, ClientMutation.client_id == client_id)
                .values(last_mutation_id=max(existing, last))
            )
            await db.execute(
                delete(ClientMutation).where(
                    ClientMutation.user_id == guest_id, ClientMutation.client_id == client_id
                )
            )
    report["client_mutations"] = len(mutations)

    await merge_progress(db, guest_id, account_id)
    await db.execute(delete(RefreshToken).where(RefreshToken.user_id == guest_id))
    await db.execute(delete(UserSync).where(UserSync.user_id == guest_id))
    await db.execute(
        update(LoginLink).where(LoginLink.guest_user_id == guest_id).values(guest_user_id=None)
    )
    db.expunge(guest)
    await db.execute(delete(User).where(User.id == guest_id))
    return report
