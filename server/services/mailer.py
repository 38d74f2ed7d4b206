"""Outgoing mail (login links): SMTP when configured, else a local outbox folder.

With ``smtp_host`` set, :class:`Mailer` sends through that server with
aiosmtplib: STARTTLS is required unless ``smtp_starttls`` is false, port 465
means implicit TLS (RFC 8314 §3.3), and ``smtp_username``/``smtp_password``
log in when given. Without ``smtp_host`` (a server on one's own machine) each
message is written as an RFC 5322 file ``DATA_DIR/outbox/<UTC timestamp>-<id>.eml``
and the login link is logged at INFO, so a local user can open it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

import aiosmtplib

from server.config import Settings

log = logging.getLogger("tutti.mailer")

SMTP_TIMEOUT_S = 20.0
"""How long one SMTP conversation may take before it fails, s."""


class MailError(Exception):
    """The message could not be handed to the SMTP server (``__cause__`` says why)."""


class Mailer:
    """Sends Tutti's mail according to ``settings`` (see the module docstring)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @property
    def outbox(self) -> Path:
        """The folder of written messages when no SMTP server is configured."""
        return Path(self.settings.data_dir) / "outbox"

    def login_message(self, email: str, link: str, ttl_s: int) -> EmailMessage:
        """The login mail to ``email``: a plain-text body with ``link`` (valid ``ttl_s`` s)."""
        minutes = max(1, round(ttl_s / 60))
        message = EmailMessage()
        message["From"] = self.settings.smtp_from
        message["To"] = email
        message["Subject"] = "Your Tutti login link"
        message["Date"] = format_datetime(datetime.now(UTC))
        message["Message-ID"] = make_msgid(domain=self.settings.smtp_from.rpartition("@")[2])
        message.set_content(
            "Open this link to log in to Tutti:\n\n"
            f"{link}\n\n"
            f"It works once, for {minutes} minute{'s' if minutes != 1 else ''}. "
            "If you did not ask for it, ignore this mail.\n"
        )
        return message

    async def send_login_link(self, email: str, link: str, ttl_s: int) -> None:
        """Send the login mail; raises :class:`MailError` when SMTP fails."""
        message = self.login_message(email, link, ttl_s)
        if self.settings.smtp_host:
            await self.send_smtp(message)
            log.info("login link for %s sent via %s", email, self.settings.smtp_host)
        else:
            path = await asyncio.to_thread(self.write_outbox, message)
            # The link logs its reader in: it stays in the (private) outbox, not in the log.
            log.info("login link for %s written to %s", email, path)

    async def send_smtp(self, message: EmailMessage) -> None:
        """Hand ``message`` to ``smtp_host``; raises :class:`MailError` on any SMTP failure."""
        s = self.settings
        implicit_tls = s.smtp_port == 465
        try:
            await aiosmtplib.send(
                message,
                hostname=s.smtp_host,
                port=s.smtp_port,
                username=s.smtp_username or None,
                password=s.smtp_password or None,
                use_tls=implicit_tls,
                start_tls=False if implicit_tls else s.smtp_starttls,
                timeout=SMTP_TIMEOUT_S,
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise MailError(f"could not send mail via {s.smtp_host}:{s.smtp_port}: {exc}") from exc

    def write_outbox(self, message: EmailMessage) -> Path:
        """Write ``message`` to a new ``.eml`` file in :attr:`outbox`; returns its path.

        The file appears complete or not at all (written aside, then renamed).
        Names sort by creation time: ``20250131T180405123456Z-<32 hex>.eml``.
        """
        self.outbox.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.outbox, 0o700)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        path = self.outbox / f"{stamp}-{uuid.uuid4().hex}.eml"
        partial = path.with_suffix(".part")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # a login link
        with os.fdopen(fd, "wb") as out:
            out.write(message.as_bytes(policy=policy.SMTP))  # CRLF line ends
        os.replace(partial, path)
        return path
