"""Magic-link login: a one-time link mailed to an address, verified into an account and tokens."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.db.models import (
    LoginLink,
    User,
    new_id,
    utcnow,
)
from server.services.accounts import (
    ACCOUNT_DELETED,
    LINK_WINDOW_S,
    MAX_LINKS_PER_WINDOW,
    AccountError,
    LoginResult,
    UserInfo,
    display_name_for,
    find_by_token,
    new_token,
    token_hash,
)
from server.services.guest_merge import merge_guest
from server.services.refresh_tokens import issue_refresh_token


async def create_login_link(
    sessionmaker: async_sessionmaker[AsyncSession],
    email: str,
    *,
    ttl_s: int,
    guest_user_id: str | None = None,
    now: datetime | None = None,
) -> str:
    """Store a login link for ``email`` (already normalised) valid ``ttl_s`` s; return its token.

    ``guest_user_id`` is remembered (whose data moves on verification) only
    while that user exists and is a guest. Raises :class:`AccountError`
    ``too_many_links`` (429) after :data:`MAX_LINKS_PER_WINDOW` links to the
    same address within :data:`LINK_WINDOW_S`.
    """
    now = now or utcnow()
    token = new_token()
    async with sessionmaker.begin() as db:
        recent = await db.scalar(
            select(func.count())
            .select_from(LoginLink)
            .where(
                LoginLink.email == email,
                LoginLink.created_at > now - timedelta(seconds=LINK_WINDOW_S),
            )
        )
        if await db.scalar(
            select(User.id).where(User.email == email, User.deactivated_at.is_not(None))
        ):
            raise AccountError("account_deleted", ACCOUNT_DELETED, 403)
        if recent >= MAX_LINKS_PER_WINDOW:
            raise AccountError(
                "too_many_links",
                f"at most {MAX_LINKS_PER_WINDOW} login links per address in "
                f"{LINK_WINDOW_S // 60} minutes; use one already sent or wait",
                429,
            )
        if guest_user_id is not None:
            guest = await db.get(User, guest_user_id)
            if guest is None or not guest.is_guest:
                guest_user_id = None
        db.add(
            LoginLink(
                id=new_id(),
                email=email,
                token_hash=token_hash(token),
                guest_user_id=guest_user_id,
                created_at=now,
                expires_at=now + timedelta(seconds=ttl_s),
            )
        )
    return token


async def discard_login_link(sessionmaker: async_sessionmaker[AsyncSession], token: str) -> None:
    """Delete the link of ``token`` (its mail could not be sent): it does not count
    against the address's limit and can never be used."""
    async with sessionmaker.begin() as db:
        await db.execute(delete(LoginLink).where(LoginLink.token_hash == token_hash(token)))


async def verify_login_link(
    sessionmaker: async_sessionmaker[AsyncSession],
    token: str,
    *,
    refresh_ttl_s: int,
    device_id: str | None = None,
    can_merge: Callable[[str], bool] | None = None,
    now: datetime | None = None,
) -> LoginResult:
    """Use a login link: find or create the account, move the guest's data, start a login.

    In one transaction: the link is marked used (a conditional ``UPDATE …
    WHERE used_at IS NULL``, so of two concurrent uses one wins); the user
    with the link's e-mail is found or created (``is_guest`` false, display
    name from the address); when the link names a guest who still exists,
    :func:`merge_guest` moves its data; a refresh token of a new family is
    issued (``refresh_ttl_s`` s, tagged with ``device_id``).

    ``can_merge(guest_id)`` false (the guest is in a room still being
    played, whose save needs the guest) refuses with ``guest_in_room`` (409)
    and leaves the link unused. Other refusals (:class:`AccountError`, 401):
    ``invalid_link`` (unknown token), ``link_used``, ``link_expired``.
    """
    now = now or utcnow()
    async with sessionmaker.begin() as db:
        link = await find_by_token(db, LoginLink, token)
        if link is None:
            raise AccountError("invalid_link", "this login link is not valid", 401)
        if link.used_at is not None:
            raise AccountError(
                "link_used", "this login link was already used; ask for a new one", 401
            )
        if link.expires_at <= now:
            raise AccountError(
                "link_expired", "this login link has expired; ask for a new one", 401
            )
        guest_id = link.guest_user_id
        if guest_id is not None and can_merge is not None and not can_merge(guest_id):
            raise AccountError(
                "guest_in_room",
                "the guest is still in a room; open the link again when the room has finished",
                409,
            )
        marked = await db.execute(
            update(LoginLink)
            .where(LoginLink.id == link.id, LoginLink.used_at.is_(None))
            .values(used_at=now)
        )
        if marked.rowcount != 1:
            raise AccountError(
                "link_used", "this login link was already used; ask for a new one", 401
            )
        user = await _find_or_create_account(db, link.email)
        if user.deactivated_at is not None:
            raise AccountError("account_deleted", ACCOUNT_DELETED, 403)
        merged = None
        if guest_id is not None and guest_id != user.id:
            merged = await merge_guest(db, guest_id, user.id)
        refresh = await issue_refresh_token(
            db, user.id, family_id=new_id(), device_id=device_id, ttl_s=refresh_ttl_s, now=now
        )
        return LoginResult(
            UserInfo.of(user), refresh, merged, guest_id if merged is not None else None
        )


async def _find_or_create_account(db: AsyncSession, email: str) -> User:
    user = await db.scalar(select(User).where(User.email == email))
    if user is None:
        try:
            async with db.begin_nested():
                user = User(
                    id=new_id(), display_name=display_name_for(email), email=email, is_guest=False
                )
                db.add(user)
        except IntegrityError:  # a concurrent verification created it first
            user = await db.scalar(select(User).where(User.email == email))
            if user is None:
                raise
    if user.is_guest:
        user.is_guest = False
    await db.flush()
    return user
