"""Admission control: an operation's cost is checked before it runs and charged to its caller.

Before any resolver runs, the requested cost (transport/cost.py) must be within the
per-request maximum (else MAX_COST_EXCEEDED) and within what the caller's bucket holds (else
RATE_LIMITED, with how many seconds to wait). Once the answer is known, the caller gets back
what the operation did not use, and every answer reports both figures and the bucket in
`extensions.cost`, in Shopify's shape.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from graphql import DocumentNode, GraphQLSchema, OperationDefinitionNode

from domain.access import Allowance, Principal
from domain.admission import ALLOWANCES, MAX_QUERY_COST, Allowances, allowance_of, bucket_of
from schema.errors import ErrorCode
from services.access.budgets import Budgets
from transport.cost import QueryCost, pages_by_variable
from transport.documents import BoundedCache


@dataclass(frozen=True, slots=True)
class Admitted:
    """An operation let in: what it asked for, and the bucket it drew on."""

    requested: int
    allowance: Allowance
    bucket: str | None  # None: budgets are off
    available: float

    def extension(self, actual: int, available: float | None = None) -> dict[str, Any]:
        left = self.available if available is None else available
        return {
            "requestedQueryCost": self.requested,
            "actualQueryCost": actual,
            "throttleStatus": {
                "maximumAvailable": self.allowance.maximum,
                "currentlyAvailable": math.floor(left),
                "restoreRate": self.allowance.restore_rate,
            },
        }


class Refused(Exception):
    """An operation that may not run. `status` is the HTTP status to answer with (None: the
    status of a request error), `retry_after` the seconds to wait (RATE_LIMITED only)."""

    def __init__(self, code: ErrorCode, message: str, cost: dict[str, Any], *, extra: dict[str, Any] | None = None,
                 status: int | None = None, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.cost = code, message, cost
        self.extra = extra or {}
        self.status, self.retry_after = status, retry_after

    def error(self) -> dict[str, Any]:
        return {"message": self.message, "extensions": {"code": self.code.value, **self.extra}}


class Admission:
    def __init__(self, schema: GraphQLSchema, budgets: Budgets | None, *, max_cost: int = MAX_QUERY_COST,
                 default_page_size: int = 20, max_page_size: int = 100, cache_size: int = 1024,
                 allowances: Allowances = ALLOWANCES) -> None:
        self._allowances = allowances
        self.cost = QueryCost(schema, default_page_size=default_page_size, max_page_size=max_page_size)
        self.budgets = budgets
        self.max_cost = max_cost
        # The same few documents arrive again and again: their requested cost is kept.
        self._requested: BoundedCache[tuple[str, str | None, bytes], int] = BoundedCache(cache_size)
        self._paged_by_variables: BoundedCache[str, bool] = BoundedCache(cache_size)

    def requested(self, query: str, document: DocumentNode, operation: OperationDefinitionNode,
                  variables: Mapping[str, Any] | None) -> int:
        # The cost reads variables only as page sizes (`first: $n`): a document that takes
        # none that way costs the same whatever its variables (an order's input, say).
        name = operation.name.value if operation.name else None
        paged = self._paged_by_variables.get(query)
        if paged is None:
            paged = pages_by_variable(document)
            self._paged_by_variables.put(query, paged)
        try:
            key = (query, name,
                   orjson.dumps(variables, option=orjson.OPT_SORT_KEYS) if variables and paged else b"")
        except (TypeError, orjson.JSONEncodeError):
            return self.cost.requested(document, operation, variables)
        found = self._requested.get(key)
        if found is None:
            found = self.cost.requested(document, operation, variables)
            self._requested.put(key, found)
        return found

    async def admit(self, requested: int, principal: Principal, client_ip: str | None) -> Admitted:
        """Let the operation in, having drawn its cost from the caller's bucket, or raise Refused."""
        allowance = allowance_of(principal, self._allowances)
        if requested > self.max_cost:
            cost = Admitted(requested, allowance, None, allowance.maximum).extension(0)
            raise Refused(
                ErrorCode.MAX_COST_EXCEEDED,
                f"The query costs {requested} points; one request may cost at most {self.max_cost}. "
                "Ask for fewer items (smaller `first`) or fewer fields, or split the query.",
                cost, extra={"requestedQueryCost": requested, "maximumQueryCost": self.max_cost},
            )
        if self.budgets is None:
            return Admitted(requested, allowance, None, allowance.maximum)
        bucket = bucket_of(principal, client_ip)
        throttle = await self.budgets.draw(bucket, requested, allowance)
        if not throttle.allowed:
            wait = throttle.retry_after(requested)
            cost = Admitted(requested, allowance, bucket, throttle.available).extension(0)
            raise Refused(
                ErrorCode.RATE_LIMITED,
                f"Throttled: the query costs {requested} points and {math.floor(throttle.available)} are "
                f"available, restored at {allowance.restore_rate} a second. Retry in {wait} s.",
                cost, extra={"retryAfter": wait}, status=429, retry_after=wait,
            )
        return Admitted(requested, allowance, bucket, throttle.available)

    async def settle(self, admitted: Admitted, actual: int) -> dict[str, Any]:
        """Give back what the operation did not use; the `extensions.cost` of its answer."""
        unused = admitted.requested - actual
        if self.budgets is None or admitted.bucket is None or unused <= 0:
            return admitted.extension(actual)
        available = await self.budgets.give_back(admitted.bucket, unused, admitted.allowance)
        return admitted.extension(actual, available)
