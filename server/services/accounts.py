"""Accounts: magic login links, refresh-token rotation, and a guest's data moving to an account.

Login (no passwords): :func:`create_login_link` stores a single-use link for
an e-mail address; :func:`verify_login_link` turns it into the account (found
or created by e-mail) and the first refresh token of a new rotation family;
:func:`rotate_refresh_token` trades a refresh token for a new one;
:func:`revoke_refresh_family` ends a login (logout). The access tokens (JWTs)
themselves are issued by :mod:`server.services.auth`.

Secrets: link and refresh tokens are ``secrets.token_urlsafe(32)`` (256 random
bits, 43 characters); only their SHA-256 (64 hex characters) is stored, so a
copy of the database logs nobody in. A token is found by the hash of what was
presented: the lookup's timing depends on the hash, which tells an attacker
nothing about any stored token, and the hashes are compared again with
:func:`hmac.compare_digest`.

Refresh tokens rotate on every use and a reused one revokes its whole family,
as the OAuth 2.0 Security Best Current Practice advises for public clients
(RFC 9700 §4.14.2): whoever replays a rotated token — the thief or the
rightful device — ends the login for both, and the rightful device logs in again.

Every public function here that takes the session factory owns its transaction;
:func:`merge_guest` runs inside the caller's. Times are timezone-aware UTC
datetimes, lifetimes seconds. Refusals raise :class:`AccountError` (a stable
``code`` and the HTTP ``status`` to answer with) and change nothing — except
``refresh_reused``, whose revocation is committed before it is raised.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Text, cast, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rooms.errors import TuttiError
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
    new_id,
    utcnow,
)
from server.db.versions import next_version
from server.services.progress import merge_progress

TOKEN_BYTES = 32
"""Random bytes in a link or refresh token (``secrets.token_urlsafe(32)``: 43 characters)."""

LINK_WINDOW_S = 900
"""Window of the per-address limit on login links, s."""
MAX_LINKS_PER_WINDOW = 5
"""Login links one e-mail address may be sent within :data:`LINK_WINDOW_S`."""

EMAIL_MAX = 320
"""Longest e-mail address (RFC 3696 erratum 1690: 64 + 1 + 255)."""
DISPLAY_NAME_MAX = 100

try:  # pydantic's EmailStr needs the optional email-validator package
    import email_validator  # noqa: F401
    from pydantic import EmailStr, TypeAdapter, ValidationError

    _EMAIL_ADAPTER: TypeAdapter[str] | None = TypeAdapter(EmailStr)
except ImportError:  # pragma: no cover - email-validator is a dependency
    _EMAIL_ADAPTER = None
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


ACCOUNT_DELETED = "this account was deleted; its data is purged soon"


class AccountError(TuttiError):
    """A refused account operation: ``code`` (stable, snake_case), ``message``, HTTP ``status``
    (400 unless the raise says otherwise)."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(code, message, status)


@dataclass(frozen=True)
class UserInfo:
    """What the API tells about a user."""

    id: str
    display_name: str
    email: str | None
    is_guest: bool

    @classmethod
    def of(cls, user: User) -> UserInfo:
        return cls(user.id, user.display_name, user.email, bool(user.is_guest))

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "display_name": self.display_name,
            "email": self.email,
            "is_guest": self.is_guest,
        }


@dataclass(frozen=True)
class LoginResult:
    """A verified login: the account, its new refresh token and what moved from the guest.

    ``merged`` is ``None`` when the link carried no (remaining) guest, else
    counts of moved rows per table (see :func:`merge_guest`); ``guest_id``
    is then the guest, now deleted.
    """

    user: UserInfo
    refresh_token: str
    merged: dict[str, int] | None = None
    guest_id: str | None = None


# --------------------------------------------------------------------------- tokens, e-mail


def new_token() -> str:
    """A fresh link or refresh token: 256 random bits, URL-safe base64 (43 characters)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(token: str) -> str:
    """SHA-256 of ``token`` (UTF-8) as 64 lowercase hex characters: what is stored."""
    return hashlib.sha256(token.encode()).hexdigest()


def normalise_email(raw: str) -> str:
    """``raw`` stripped and lowercased, when it is a valid address.

    Validated with pydantic's ``EmailStr`` (the email-validator package, no
    DNS look-up) or, without that package, a simple ``local@domain.tld``
    pattern. Raises :class:`AccountError` ``invalid_email`` (400).
    """
    email = raw.strip().lower()
    if not email or len(email) > EMAIL_MAX:
        raise AccountError("invalid_email", f"an e-mail address has 3-{EMAIL_MAX} characters")
    if _EMAIL_ADAPTER is not None:
        try:
            email = _EMAIL_ADAPTER.validate_python(email).lower()
        except ValidationError as exc:
            reason = exc.errors(include_url=False)[0]["msg"]
            raise AccountError("invalid_email", f"not a valid e-mail address: {reason}") from None
    elif not _EMAIL_RE.match(email):
        raise AccountError("invalid_email", "not a valid e-mail address")
    return email


def display_name_for(email: str) -> str:
    """A new account's display name: the address's local part without a ``+tag``."""
    local = email.partition("@")[0].partition("+")[0] or email.partition("@")[0]
    return local[:DISPLAY_NAME_MAX]


async def _by_hash(db: AsyncSession, model: type[LoginLink] | type[RefreshToken], token: str):
    digest = token_hash(token)
    row = await db.scalar(select(model).where(model.token_hash == digest))
    if row is None or not hmac.compare_digest(row.token_hash, digest):
        return None
    return row


# --------------------------------------------------------------------------- login links


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
        link = await _by_hash(db, LoginLink, token)
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
        refresh = await _issue_refresh(
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


# --------------------------------------------------------------------------- refresh tokens


async def _issue_refresh(
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
        row = await _by_hash(db, RefreshToken, token)
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
            new = await _issue_refresh(
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
        row = await _by_hash(db, RefreshToken, token)
        if row is None:
            raise AccountError("invalid_refresh_token", "this refresh token is not valid", 401)
        await _revoke_family(db, row.family_id, now)


async def get_user_info(
    sessionmaker: async_sessionmaker[AsyncSession], user_id: str
) -> UserInfo | None:
    """The user with ``user_id``, or ``None`` when there is none (any more)."""
    async with sessionmaker() as db:
        user = await db.get(User, user_id)
        return UserInfo.of(user) if user is not None else None


# --------------------------------------------------------------------------- guest merge

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
