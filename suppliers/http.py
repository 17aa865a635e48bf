"""A supplier reached over HTTP with signed JSON (the wire format is in suppliers/wire.py).

An answer we cannot trust is UNKNOWN, never FAILED: a request that timed out or met a 5xx
may well have credited the account, and failing over on it would credit it twice. Only a
refusal the supplier states (a 4xx to a submission, or FAILED in a 2xx) is FAILED.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from datetime import datetime
from urllib.parse import quote

import httpx

from domain.money import Money
from suppliers import signing, wire
from suppliers.base import Outcome, Result, SignatureError, SupplierUnavailable, TopUp
from suppliers.connections import Answer, Connections, NoAnswer, OverHttpx, Pooled

log = logging.getLogger("quanyi.suppliers")

# Statuses that say "not now" rather than "no": the request may be retried, so the
# outcome is not known yet.
_TRY_AGAIN = {408, 425, 429}


class HttpSupplier:
    """The SupplierAdapter for a supplier speaking the signed JSON protocol."""

    def __init__(
        self,
        code: str,
        base_url: str,
        secret: str | bytes,
        *,
        timeout_seconds: float = 10.0,
        client: httpx.AsyncClient | None = None,
        signature_tolerance_seconds: int = signing.TOLERANCE_SECONDS,
    ) -> None:
        signing.digest(secret, 0, b"")  # an empty secret is refused here, not on first use
        self.code = code
        self._base_url = base_url.rstrip("/")
        self._secret = secret
        self._timeout = timeout_seconds
        self._tolerance = signature_tolerance_seconds
        # One pool per adapter, its connections kept alive between calls: as many kept as may be
        # open, so that a burst of submissions (a sale's worker runs 16 at once) reuses its
        # connections instead of closing some after each call and opening them again. A given
        # httpx client (a supplier in this process, a test's handler) carries them instead.
        self._connections: Connections = OverHttpx(client) if client is not None else Pooled(limit=50)

    def __repr__(self) -> str:  # no secret in a repr that reaches a log
        return f"HttpSupplier({self.code!r}, {self._base_url!r})"

    async def _send(self, method: str, path: str, body: bytes = b"") -> Answer:
        # A GET signs its path: see suppliers/signing.py.
        signature = signing.sign(self._secret, body or path.encode(), time.time())
        headers = {signing.HEADER: signature}
        if body:
            headers["Content-Type"] = "application/json"
        return await self._connections.request(method, self._base_url + path, body or None, headers, self._timeout)

    async def submit(self, topup: TopUp) -> Result:
        where = f"{topup.request_id} ({topup.product} to {wire.mask_account(topup.account)})"
        try:
            response = await self._send("POST", "/topups", wire.topup_body(topup))
        except NoAnswer as error:  # none in time, or the connection or protocol failed
            return self._unknown(topup.request_id, "submit", where, error.reason)
        status = response.status
        if 400 <= status < 500 and status not in _TRY_AGAIN:
            message = wire.message_of(response.content) or f"refused with HTTP {status}"
            log.info("supplier %s refused %s: %s", self.code, where, message)
            return Result(Outcome.FAILED, topup.request_id, message=message)
        result = self._reported(response, topup.request_id)
        if result is None:
            return self._unknown(topup.request_id, "submit", where, f"HTTP {status}")
        log.info("supplier %s took %s: %s", self.code, where, result.outcome.value)
        return result

    async def query(self, request_id: str) -> Result:
        try:
            response = await self._send("GET", f"/topups/{quote(request_id, safe='')}")
        except NoAnswer as error:
            return self._unknown(request_id, "query", request_id, error.reason)
        if response.status == 404:
            # Only the supplier's own NOT_FOUND counts: a 404 from a proxy or a wrong
            # base URL says nothing about the request.
            try:
                found = wire.parse_result(response.content, allowed={Outcome.NOT_FOUND})
            except wire.WireError:
                found = None
            if found is None or found.request_id != request_id:
                return self._unknown(request_id, "query", request_id, "HTTP 404 without NOT_FOUND")
            return Result(Outcome.NOT_FOUND, request_id, message="the supplier has no such request")
        result = self._reported(response, request_id)
        if result is None:
            return self._unknown(request_id, "query", request_id, f"HTTP {response.status}")
        return result

    def _reported(self, response: Answer, request_id: str) -> Result | None:
        """The outcome a 2xx answer reports about this request; None if it is not one."""
        if not response.is_success:
            return None
        try:
            result = wire.parse_result(response.content)
        except wire.WireError:
            return None
        return result if result.request_id == request_id else None

    def _unknown(self, request_id: str, call: str, where: str, why: str) -> Result:
        log.warning("supplier %s %s %s: outcome unknown (%s)", self.code, call, where, why)
        return Result(Outcome.UNKNOWN, request_id, message=f"{call}: {why}")

    def verify_signature(self, headers: Mapping[str, str], body: bytes, now: datetime) -> None:
        signing.verify(
            self._secret, headers, body, now.timestamp(), tolerance_seconds=self._tolerance
        )

    def parse_callback(self, body: bytes) -> Result:
        try:
            return wire.parse_result(body)
        except wire.WireError as error:
            raise SignatureError(f"a malformed callback: {error}") from None

    async def balance(self) -> Money:
        try:
            response = await self._send("GET", "/balance")
            if not response.is_success:
                raise SupplierUnavailable(f"supplier {self.code}: no balance (HTTP {response.status})")
            return wire.parse_balance(response.content)
        except NoAnswer as error:
            raise SupplierUnavailable(f"supplier {self.code}: no balance ({error.reason})") from None
        except wire.WireError as error:
            raise SupplierUnavailable(f"supplier {self.code}: no balance ({type(error).__name__})") from None

    async def close(self) -> None:
        await self._connections.close()

