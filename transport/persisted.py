"""Which document a request runs: its text, a persisted query's hash, and whether it is trusted.

Automatic persisted queries, as Apollo's clients speak them: `extensions.persistedQuery
{ version: 1, sha256Hash }` over GET or POST. With the hash alone the document comes from
the trusted documents or the APQ store, or the answer is the error `PERSISTED_QUERY_NOT_FOUND`
("PersistedQueryNotFound"), on which the client sends the text with the hash once; a text
whose SHA-256 is not the hash is refused, so no one can file a document under another's hash.
The text is kept once it has validated (`remember`).

Trusted documents (QUANYI_TRUSTED_DOCUMENTS): `enforce` refuses, before it is parsed, any
document not registered for everyone or for the caller's key (`DOCUMENT_NOT_TRUSTED`); `log`
runs it and logs and counts it, to see what enforcing would refuse before turning it on.
Operators' keys are not held to the list: their consoles send their own documents.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter

from domain.access import Principal
from schema.errors import ErrorCode
from services.documents.persisted import PersistedQueries
from services.documents.trusted import TrustedDocuments
from transport.errors import MalformedRequest, RequestError

log = logging.getLogger("quanyi.documents")

MODES = ("off", "log", "enforce")
NOT_FOUND_MESSAGE = "PersistedQueryNotFound"  # Apollo's clients match this message
HEX = frozenset("0123456789abcdef")

UNTRUSTED = Counter(
    "quanyi_untrusted_documents_total",
    "Documents not among the trusted documents, by caller role and what was done (logged, refused).",
    ["role", "action"],
)


@dataclass(frozen=True, slots=True)
class Resolved:
    query: str
    digest: str | None  # the SHA-256 of the text, where it was needed
    keep: bool = False  # sent with its hash: keep it in the APQ store once it validates


def sha256_hex(query: str) -> str:
    return hashlib.sha256(query.encode()).hexdigest()


class PersistedDocuments:
    def __init__(self, store: PersistedQueries, trusted: TrustedDocuments, mode: str = "off") -> None:
        if mode not in MODES:
            raise ValueError(f"QUANYI_TRUSTED_DOCUMENTS: one of {', '.join(MODES)}, got {mode!r}")
        self._store = store
        self._trusted = trusted
        self.mode = mode

    def needs_caller(self, query: str | None) -> bool:
        """Whether `resolve` must know the caller: to hold it to the trusted documents, or to
        find a document registered for its key by the hash alone."""
        return self.mode != "off" or query is None

    async def resolve(
        self, query: str | None, extensions: dict[str, Any] | None, principal: Principal | None
    ) -> Resolved:
        """The document to run, or a RequestError saying why there is none. `principal` may be
        None where `needs_caller` says it is not needed."""
        asked = _asked_hash(extensions)
        if query is None:
            if asked is None:
                raise MalformedRequest("the request has no query")
            assert principal is not None
            found = await self._trusted.body(asked, principal.key_prefix) or await self._store.get(asked)
            if found is None:
                raise RequestError(NOT_FOUND_MESSAGE, ErrorCode.PERSISTED_QUERY_NOT_FOUND)
            resolved = Resolved(found, asked)
        else:
            digest = sha256_hex(query) if asked is not None or self.mode != "off" else None
            if asked is not None and digest != asked:
                raise RequestError("provided sha does not match query")
            resolved = Resolved(query, digest, keep=asked is not None)
        if self.mode != "off":
            assert principal is not None
            await self._check_trusted(resolved, principal)
        return resolved

    async def check(self, query: str, principal: Principal) -> None:
        """The trusted-documents rule alone, for a text sent without a hash (over WebSocket)."""
        if self.mode != "off":
            await self._check_trusted(Resolved(query, sha256_hex(query)), principal)

    async def remember(self, resolved: Resolved) -> None:
        if resolved.keep and resolved.digest is not None:
            await self._store.put(resolved.digest, resolved.query)

    async def close(self) -> None:
        await self._store.close()

    async def _check_trusted(self, resolved: Resolved, principal: Principal) -> None:
        if self.mode == "off" or principal.is_admin:
            return
        assert resolved.digest is not None
        if await self._trusted.body(resolved.digest, principal.key_prefix) is not None:
            return
        role = principal.role.value.lower() if principal.role else ("buyer" if principal.order_number else "anonymous")
        if self.mode == "enforce":
            UNTRUSTED.labels(role, "refused").inc()
            raise RequestError("only trusted documents run here: this one is not registered", ErrorCode.DOCUMENT_NOT_TRUSTED)
        UNTRUSTED.labels(role, "logged").inc()
        log.info("untrusted document %s run by %s", resolved.digest, principal.actor)


def _asked_hash(extensions: dict[str, Any] | None) -> str | None:
    """The hash of `extensions.persistedQuery`, checked; None when the request has none."""
    if not extensions or "persistedQuery" not in extensions:
        return None
    persisted = extensions["persistedQuery"]
    if not isinstance(persisted, dict):
        raise RequestError("extensions.persistedQuery must be an object")
    version = persisted.get("version")
    if type(version) is not int or version != 1:  # not True, not 1.0: the protocol's version 1
        raise RequestError("PersistedQueryNotSupported", ErrorCode.PERSISTED_QUERY_NOT_SUPPORTED)
    digest = persisted.get("sha256Hash")
    if not isinstance(digest, str) or len(digest) != 64 or not HEX.issuperset(digest.lower()):
        raise RequestError("extensions.persistedQuery.sha256Hash: the SHA-256 of the query, 64 hexadecimal digits")
    return digest.lower()
