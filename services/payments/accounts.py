"""Payment accounts: how each channel reaches each provider, and the adapters built from them.

A PaymentAccount row holds one app id (a mini-program's WeChat app id differs from an H5
site's) with its merchant's keys. The merchant's private key and WeChat Pay's API v3 key
are sealed with the secret key like supplier secrets, bound to the provider and scope, and
opened only to build the adapter. Rows are read once per process and whenever an operator
changes one (`forget`); the adapters are kept, one HTTP client each.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

import orjson
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from models import PaymentAccount
from providers.base import Account, PaymentProvider, Provider
from services.core.database import Database
from services.core.secret_box import SecretBox

log = logging.getLogger("quanyi.payments")

EVERY_CHANNEL = "*"
Factory = Callable[[Account], PaymentProvider]


def _context(provider: Provider, scope: str) -> bytes:
    return f"payment:{provider.value}:{scope}".encode()


def seal(box: SecretBox, provider: Provider, scope: str, *, private_key: str, api_key: str = "") -> bytes:
    return box.seal(orjson.dumps({"private_key": private_key, "api_key": api_key}).decode(),
                    context=_context(provider, scope))


async def configure(
    session: AsyncSession, box: SecretBox, *, provider: Provider, scope: str, app_id: str, merchant_id: str,
    base_url: str, provider_public_key: str, private_key: str, api_key: str = "", key_serial: str = "",
    provider_key_id: str = "",
) -> None:
    """Write (or replace) how `scope` (a channel code, or `*`) reaches `provider`."""
    values = dict(
        provider=provider.value, scope=scope, app_id=app_id, merchant_id=merchant_id, base_url=base_url,
        key_serial=key_serial, provider_key_id=provider_key_id, provider_public_key=provider_public_key,
        secret_ciphertext=seal(box, provider, scope, private_key=private_key, api_key=api_key),
        updated_at=datetime.now(UTC),
    )
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    statement = insert(PaymentAccount).values(**values)
    await session.execute(statement.on_conflict_do_update(
        index_elements=[PaymentAccount.provider, PaymentAccount.scope],
        set_={k: statement.excluded[k] for k in values if k not in ("provider", "scope")},
    ))


class QueryGate:
    """At most one query of a payment at the provider per `every` seconds in this process:
    a buyer's page asking for its payment in a loop must not become a flood of queries."""

    def __init__(self, every: float = 3.0, remembered: int = 10_000) -> None:
        self._every, self._remembered = every, remembered
        self._last: OrderedDict[int, float] = OrderedDict()

    def admit(self, payment_id: int) -> bool:
        now = time.monotonic()
        last = self._last.get(payment_id)
        if last is not None and now - last < self._every:
            return False
        self._last[payment_id] = now
        self._last.move_to_end(payment_id)
        while len(self._last) > self._remembered:
            self._last.popitem(last=False)
        return True


class PaymentAccounts:
    """The adapters of every configured account: by id, by channel, or all of a provider."""

    def __init__(self, db: Database, box: SecretBox, factories: Mapping[Provider, Factory]) -> None:
        self._db, self._box, self._factories = db, box, dict(factories)
        self.queries = QueryGate()
        self._adapters: dict[int, PaymentProvider] | None = None
        self._scopes: dict[tuple[Provider, str], int] = {}
        self._retired: list[PaymentProvider] = []
        self._lock = asyncio.Lock()

    async def _loaded(self) -> dict[int, PaymentProvider]:
        if self._adapters is None:
            async with self._lock:
                if self._adapters is None:
                    async with self._db.fresh_sessions() as session:
                        rows = list(await session.scalars(select(PaymentAccount)))
                    adapters: dict[int, PaymentProvider] = {}
                    for row in rows:
                        adapter = self._build(row)
                        if adapter is not None:
                            adapters[row.id] = adapter
                            self._scopes[(Provider(row.provider), row.scope)] = row.id
                    self._adapters = adapters
        return self._adapters

    def _build(self, row: PaymentAccount) -> PaymentProvider | None:
        provider = Provider(row.provider)
        factory = self._factories.get(provider)
        if factory is None:
            return None
        try:
            secrets = orjson.loads(self._box.open(row.secret_ciphertext, context=_context(provider, row.scope)))
            account = Account(row.id, provider, row.app_id, row.merchant_id, row.base_url, row.key_serial,
                              row.provider_key_id, row.provider_public_key, secrets["private_key"],
                              secrets.get("api_key", ""))
            return factory(account)
        except Exception as error:  # noqa: BLE001 - one broken account must not stop the others
            log.warning("payment account %s (%s, %s) cannot be used: %s", row.id, row.provider, row.scope,
                        type(error).__name__)
            return None

    async def for_channel(self, provider: Provider, channel: str) -> PaymentProvider | None:
        adapters = await self._loaded()
        account_id = self._scopes.get((provider, channel)) or self._scopes.get((provider, EVERY_CHANNEL))
        return adapters.get(account_id) if account_id is not None else None

    async def by_id(self, account_id: int) -> PaymentProvider | None:
        return (await self._loaded()).get(account_id)

    async def of_provider(self, provider: Provider) -> list[PaymentProvider]:
        return [adapter for adapter in (await self._loaded()).values() if adapter.account.provider is provider]

    def forget(self) -> None:
        if self._adapters is not None:
            self._retired.extend(self._adapters.values())
        self._adapters, self._scopes = None, {}

    async def close(self) -> None:
        self.forget()
        retired, self._retired = self._retired, []
        for adapter in retired:
            await adapter.close()
