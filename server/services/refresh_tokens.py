"""Refresh tokens: issued in families, rotated on every use; a reused one revokes its family
(OAuth 2.0 Security BCP, RFC 9700 §4.14)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.db.models import (
    RefreshToken,
    User,
    new_id,
    utcnow,
)
from server.services.accounts import (
    ACCOUNT_DELETED,
    AccountError,
    UserInfo,
    find_by_token,
    new_token,
    token_hash,
)


async def issue_refresh_token(
    db: AsyncSession,
    user_id: str,
    *,
    family_id: str,
    device_id: str | None,
    ttl_s: int,
    now: datetime,
) -> str:
    token = new_token()
    db.add(
        RefreshToken(
            id=new_id(),
            user_id=user_id,
            family_id=family_id,
            token_hash=token_hash(token),
            device_id=device_id,
            created_at=now,
            expires_at=now + timedelta(seconds=ttl_s),
        )
    )
    await db.flush()
    return token


async def _revoke_family(db: AsyncSession, family_id: str, now: datetime) -> int:
    result = await db.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return result.rowcount


async def rotate_refresh_token(
    sessionmaker: async_sessionmaker[AsyncSession],
    token: str,
    *,
    ttl_s: int,
    now: datetime | None = None,
) -> tuple[UserInfo, str]:
    """Trade a refresh token for a new one of the same family (valid ``ttl_s`` s).

    Returns the user and the new token; the presented token gets ``used_at``
    (a conditional ``UPDATE … WHERE used_at IS NULL``: of two concurrent uses
    exactly one rotates, the other counts as reuse). Refusals
    (:class:`AccountError`, 401): ``invalid_refresh_token`` (unknown),
    ``refresh_revoked`` (its family was revoked: logout or reuse),
    ``refresh_expired``, and ``refresh_reused`` — a token that was already
    rotated: the whole family is revoked (committed) before the refusal
    (RFC 9700 §4.14.2).
    """
    now = now or utcnow()
    reused = False
    async with sessionmaker.begin() as db:
        row = await find_by_token(db, RefreshToken, token)
        if row is None:
            raise AccountError("invalid_refresh_token", "this refresh token is not valid", 401)
        owner = await db.get(User, row.user_id)
        if owner is not None and owner.deactivated_at is not None:
            raise AccountError("account_deleted", ACCOUNT_DELETED, 403)
        if row.revoked_at is not None:
            raise AccountError("refresh_revoked", "this login has ended; log in again", 401)
        if row.used_at is None and row.expires_at <= now:
            raise AccountError("refresh_expired", "this login has expired; log in again", 401)
        if row.used_at is None:
            marked = await db.execute(
                update(RefreshToken)
                .where(
                    RefreshToken.id == row.id,
                    RefreshToken.used_at.is_(None),
                    RefreshToken.revoked_at.is_(None),
                )
                .values(used_at=now)
            )
            reused = marked.rowcount != 1
        else:
            reused = True
        if reused:
            await _revoke_family(db, row.family_id, now)
        else:
            user = await db.get(User, row.user_id)
            new = await issue_refresh_token(
                db,
                row.user_id,
                family_id=row.family_id,
                device_id=row.device_id,
                ttl_s=ttl_s,
                now=now,
            )
            info = UserInfo.of(user)
    if reused:
        raise AccountError(
            "refresh_reused",
            "this refresh token was already used; the login is ended for safety, log in again",
            401,
        )
    return info, new


async def revoke_refresh_family(
    sessionmaker: async_sessionmaker[AsyncSession],
    token: str,
    *,
    now: datetime | None = None,
) -> None:
    """Log out: revoke every token of ``token``'s family (any token of it, used or not).

    Idempotent for a known token. Raises :class:`AccountError`
    ``invalid_refresh_token`` (401) for an unknown one.
    """
    now = now or utcnow()
    async with sessionmaker.begin() as db:
        row = await find_by_token(db, RefreshToken, token)
        if row is None:
            raise AccountError("invalid_refresh_token", "this refresh token is not valid", 401)
        await _revoke_family(db, row.family_id, now)
