"""Accounts: the user and token basics shared by login links (:mod:`server.services.login_links`),
refresh tokens (:mod:`server.services.refresh_tokens`) and the guest merge
(:mod:`server.services.guest_merge`).

Login (no passwords): :func:`~server.services.login_links.create_login_link` stores a single-use
link for an e-mail address; :func:`~server.services.login_links.verify_login_link` turns it into
the account (found or created by e-mail) and the first refresh token of a new rotation family;
:func:`~server.services.refresh_tokens.rotate_refresh_token` trades a refresh token for a new one;
:func:`~server.services.refresh_tokens.revoke_refresh_family` ends a login (logout). The access
tokens (JWTs) themselves are issued by :mod:`server.services.auth`.

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
:func:`~server.services.guest_merge.merge_guest` runs inside the caller's. Times are timezone-aware
UTC datetimes, lifetimes seconds. Refusals raise :class:`AccountError` (a stable ``code`` and the
HTTP ``status`` to answer with) and change nothing — except ``refresh_reused``, whose revocation is
committed before it is raised."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rooms.errors import TuttiError
from server.db.models import (
    LoginLink,
    RefreshToken,
    User,
)

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


async def find_by_token(db: AsyncSession, model: type[LoginLink] | type[RefreshToken], token: str):
    digest = token_hash(token)
    row = await db.scalar(select(model).where(model.token_hash == digest))
    if row is None or not hmac.compare_digest(row.token_hash, digest):
        return None
    return row


# --------------------------------------------------------------------------- login links


# --------------------------------------------------------------------------- refresh tokens


async def get_user_info(
    sessionmaker: async_sessionmaker[AsyncSession], user_id: str
) -> UserInfo | None:
    """The user with ``user_id``, or ``None`` when there is none (any more)."""
    async with sessionmaker() as db:
        user = await db.get(User, user_id)
        return UserInfo.of(user) if user is not None else None


# --------------------------------------------------------------------------- guest merge
