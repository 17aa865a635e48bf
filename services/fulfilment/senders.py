"""Delivery channels behind one protocol: the in-app inbox, SMS and email.

The inbox is always on: it writes a row for the order (never the secret: the buyer reveals
codes through `OrderLine.codes(reveal: true)`) and a log line. SMS and email carry the codes
to the buyer's phone or address and are used only when configured; a send to them is
at-least-once (a crash after the provider accepted and before we recorded it sends again).
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Protocol

import httpx
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from models import InboxMessage

log = logging.getLogger("quanyi.delivery")

INBOX, SMS, EMAIL = "INBOX", "SMS", "EMAIL"
_INBOX = insert(InboxMessage.__table__)


@dataclass(frozen=True, slots=True)
class Message:
    order_id: int
    order_number: str
    line_id: int | None
    subject: str
    body: str  # safe to store and log: no secrets
    phone: str | None = None
    email: str | None = None
    codes: list[str] = field(default_factory=list)  # "number secret" lines, for channels that carry codes


class Sender(Protocol):
    channel: str
    # True when `send` only writes rows through the session: it can then run inside the
    # transaction that decides the order, instead of in a job of its own.
    local: bool

    def accepts(self, message: Message) -> bool:
        """Whether the buyer can be reached on this channel."""
        ...

    async def send(self, session: AsyncSession, message: Message) -> None:
        """Send, or raise; `session` is the transaction that records the delivery."""
        ...


class InboxSender:
    channel = INBOX
    local = True

    def accepts(self, message: Message) -> bool:
        return True

    async def send(self, session: AsyncSession, message: Message) -> None:
        # A Core INSERT on the session's connection: written now, no ORM object to flush.
        await (await session.connection()).execute(_INBOX, {
            "order_id": message.order_id, "line_id": message.line_id, "subject": message.subject[:200],
            "body": message.body[:2000], "created_at": datetime.now(UTC),
        })
        log.info("inbox message for order %s: %s", message.order_number, message.subject)


class SmsSender:
    """Posts `{phone, text}` as JSON to an SMS gateway's HTTP API with a bearer token."""

    channel = SMS
    local = False

    def __init__(self, url: str, token: str, timeout: float = 5.0) -> None:
        self._url, self._token, self._timeout = url, token, timeout

    def accepts(self, message: Message) -> bool:
        return bool(message.phone)

    async def send(self, session: AsyncSession, message: Message) -> None:
        text = "\n".join([message.subject, *message.codes])
        async with httpx.AsyncClient(timeout=self._timeout) as client:
            response = await client.post(self._url, json={"phone": message.phone, "text": text},
                                         headers={"Authorization": f"Bearer {self._token}"})
        response.raise_for_status()


class EmailSender:
    """Sends through an SMTP relay (STARTTLS when asked)."""

    channel = EMAIL
    local = False

    def __init__(self, host: str, port: int, sender: str, *, username: str | None = None,
                 password: str | None = None, starttls: bool = True) -> None:
        self._host, self._port, self._from = host, port, sender
        self._username, self._password, self._starttls = username, password, starttls

    def accepts(self, message: Message) -> bool:
        return bool(message.email)

    async def send(self, session: AsyncSession, message: Message) -> None:
        mail = EmailMessage()
        mail["From"], mail["To"], mail["Subject"] = self._from, message.email or "", message.subject
        mail.set_content("\n".join([message.body, "", *message.codes]))
        await asyncio.to_thread(self._deliver, mail)

    def _deliver(self, mail: EmailMessage) -> None:
        with smtplib.SMTP(self._host, self._port, timeout=10) as smtp:
            if self._starttls:
                smtp.starttls()
            if self._username:
                smtp.login(self._username, self._password or "")
            smtp.send_message(mail)
