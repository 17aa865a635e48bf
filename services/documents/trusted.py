"""Trusted documents: the only GraphQL documents a caller may run when the gateway enforces them.

Operators register documents for every caller (a storefront's app ships its queries) or for
one partner's key. Each process keeps them all in memory, since it consults them before
every request: a change is announced on the broker and read again at once, and the list is
read again at least every `refresh_seconds` whatever the broker lost.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from broker import Broker
from broker.follow import follow
from models import TrustedDocument
from services.core.database import Database, log_failure, rows_changed, unreachable

log = logging.getLogger("quanyi.documents")

TRUSTED_DOCUMENTS_CHANGED = "documents.trusted"
EVERYONE = ""  # the key_prefix of a document registered for every caller
RETRY_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Document:
    digest: str  # SHA-256 of the exact text, lower-case hex
    body: str
    name: str = ""


async def register(
    session: AsyncSession, documents: Sequence[Document], *, key_prefix: str, actor: str
) -> list[TrustedDocument]:
    """Register the documents for the key (EVERYONE: for all); one already registered stays as it is."""
    digests = [document.digest for document in documents]
    existing = {
        row.digest: row
        for row in await session.scalars(
            select(TrustedDocument).where(TrustedDocument.key_prefix == key_prefix, TrustedDocument.digest.in_(digests))
        )
    }
    rows: list[TrustedDocument] = []
    for document in documents:
        row = existing.get(document.digest)
        if row is None:
            row = existing[document.digest] = TrustedDocument(
                digest=document.digest, key_prefix=key_prefix, body=document.body,
                name=document.name[:120], created_by=actor[:64],
            )
            session.add(row)
        rows.append(row)
    await session.flush()
    return rows


async def remove(session: AsyncSession, digests: Sequence[str], *, key_prefix: str) -> int:
    result = await session.execute(
        delete(TrustedDocument).where(TrustedDocument.key_prefix == key_prefix, TrustedDocument.digest.in_(list(digests)))
    )
    return rows_changed(result)


async def listed(session: AsyncSession, *, key_prefix: str | None, limit: int) -> list[TrustedDocument]:
    """Registered documents, newest first: of one key (EVERYONE: the global ones), or all (None)."""
    query = select(TrustedDocument).order_by(TrustedDocument.id.desc()).limit(limit)
    if key_prefix is not None:
        query = query.where(TrustedDocument.key_prefix == key_prefix)
    return list(await session.scalars(query))


class TrustedDocuments:
    """This process's copy of the registered documents."""

    def __init__(self, db: Database, broker: Broker, *, refresh_seconds: float = 30.0) -> None:
        self._db = db
        self._broker = broker
        self._refresh = refresh_seconds
        self._bodies: dict[tuple[str, str], str] = {}
        self._loaded_at: float | None = None
        self._generation = 0  # counts announced changes
        self._lock = asyncio.Lock()

    async def body(self, digest: str, key_prefix: str | None) -> str | None:
        """The document's text if it is trusted for this key (None: a caller without one)."""
        if self._loaded_at is None or time.monotonic() - self._loaded_at >= self._refresh:
            await self._load()
        found = self._bodies.get((EVERYONE, digest))
        if found is None and key_prefix:
            found = self._bodies.get((key_prefix, digest))
        return found

    async def _load(self) -> None:
        async with self._lock:
            if self._loaded_at is not None and time.monotonic() - self._loaded_at < self._refresh:
                return  # another request loaded them while this one waited
            started, generation = time.monotonic(), self._generation
            try:
                async with self._db.fresh_sessions() as session:  # a replica may not have the newest yet
                    rows = (await session.execute(
                        select(TrustedDocument.key_prefix, TrustedDocument.digest, TrustedDocument.body)
                    )).all()
            except Exception as error:
                if self._loaded_at is None or not unreachable(error):
                    raise
                # The database is away: the list read last stays in force; try again in a few seconds.
                log_failure(log, "could not read the trusted documents again; keeping the last list", error)
                self._loaded_at = started - self._refresh + RETRY_SECONDS
                return
            self._bodies = {(prefix, digest): body for prefix, digest, body in rows}
            # A change announced while reading may not be in what was read: read again next time.
            self._loaded_at = started if generation == self._generation else -self._refresh

    def forget(self) -> None:
        """Read the list again before the next use (the last one stays if that read fails)."""
        self._generation += 1
        if self._loaded_at is not None:
            self._loaded_at = -self._refresh

    def on_event(self, topic: str) -> None:
        """This process's own changes, heard before they go out on the broker."""
        if topic == TRUSTED_DOCUMENTS_CHANGED:
            self.forget()

    async def follow(self) -> None:
        await follow(self._broker, TRUSTED_DOCUMENTS_CHANGED, lambda _: self.forget(), on_lost=self.forget,
                     what="trusted document changes")
