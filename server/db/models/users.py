"""Users (accounts and guests) and their login links and refresh tokens."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    ForeignKey,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from server.db.models.base import (
    ID_LENGTH,
    Base,
    new_id,
    utcnow,
)


class User(Base):
    """A user: a registered account (``email`` set) or a guest (``is_guest``)."""

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True, default=new_id)
    display_name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str | None] = mapped_column(String(320), unique=True)
    is_guest: Mapped[bool] = mapped_column(Boolean, default=False)
    # IANA time zone (e.g. "Pacific/Honolulu") for streaks and daily analytics; None = UTC.
    time_zone: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # Set by DELETE /api/users/me: refused everywhere, purged later (server/services/privacy.py).
    deactivated_at: Mapped[datetime | None] = mapped_column(index=True)

    def __repr__(self) -> str:
        return f"User(id={self.id!r}, display_name={self.display_name!r})"


class LoginLink(Base):
    """A magic login link sent to ``email``: single use, expires after 10 minutes.

    Only the SHA-256 of the token is stored. ``guest_user_id`` is the guest
    who asked for the link, whose data moves to the account on verification.
    """

    __tablename__ = "login_links"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True, default=new_id)
    email: Mapped[str] = mapped_column(String(320), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    guest_user_id: Mapped[str | None] = mapped_column(
        String(ID_LENGTH), ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    used_at: Mapped[datetime | None] = mapped_column()


class RefreshToken(Base):
    """A refresh token (stored as its SHA-256), one of a rotation family.

    Each use rotates: the row gets ``used_at`` and a new row joins the same
    ``family_id``. Presenting a used token again revokes the whole family
    (``revoked_at`` on every row), as OAuth 2.0 Security BCP §4.14 advises.
    """

    __tablename__ = "refresh_tokens"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    family_id: Mapped[str] = mapped_column(String(ID_LENGTH), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    device_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    used_at: Mapped[datetime | None] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()
