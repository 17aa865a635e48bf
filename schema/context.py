"""The typed per-request context every resolver receives."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeAlias

import strawberry

from broker import Broker
from config import Settings
from domain.access import Principal
from services.access.authenticator import Authenticator
from services.core.database import Database
from services.core.secret_box import SecretBox
from services.core.unit_of_work import UnitOfWork
from services.fulfilment.senders import Sender
from services.inventory.sold_out import SoldOutGate
from services.live.sale_feed import SaleFeed
from services.live.stock_feed import StockFeed
from services.marketplaces.import_retry import ImportRetry
from services.memberships.desk import Memberships
from services.orders.terms import Terms
from services.payments.accounts import PaymentAccounts
from services.risk.check import RiskCheck
from services.sales.book import SaleBook

if TYPE_CHECKING:
    from resolvers.loaders import Loaders
    from schema.live import StockChange
    from schema.sales import SaleEventUpdate


@dataclass
class Context:
    settings: Settings
    db: Database
    broker: Broker
    authenticator: Authenticator
    loaders: Loaders
    principal: Principal
    request_id: str
    now: datetime  # one clock reading per request: every price in an answer agrees
    client_ip: str | None = None
    device_id: str | None = None  # the X-Device-Id header, for the risk check
    on_event: Callable[[str, bytes], None] | None = None
    connection_params: dict[str, object] | None = None  # the WebSocket connection_init payload
    stock_feed: StockFeed[StockChange] | None = None  # the process's live stock, for stockChanged
    # Makes the loaders of a new operation on a database; a WebSocket connection runs many operations.
    new_loaders: Callable[[Database, datetime], Loaders] | None = None
    risk: RiskCheck | None = None  # the process's risk check; None scores every order PASS
    # Where deliveries go out (inbox, SMS, email), chosen once in gateway.py.
    senders: Sequence[Sender] = ()
    terms: Terms | None = None  # the process's copy of what orders read (channels, SKUs, prices, limits)
    gate: SoldOutGate | None = None  # the process's sold-out gate
    sales: SaleBook | None = None  # the process's scheduled sales, which placement checks
    sale_feed: SaleFeed[SaleEventUpdate] | None = None  # the process's sale countdowns, for saleEvent
    # Why a top-up cannot be sent to a supplier (None: it can): the process's supplier registry.
    supplier_problem: Callable[[Any], Awaitable[str | None]] | None = None
    payments: PaymentAccounts | None = None  # the process's payment provider accounts (createPayment)
    seeds: SecretBox | None = None  # opens blind box and lottery seeds (services/draws/, services/lotteries/)
    memberships: Memberships | None = None  # the recurring payment provider and the clock of renewals
    marketplace_imports: ImportRetry | None = None  # retries failed marketplace imports (retryMarketplaceImport)

    def for_operation(self) -> Context:
        """This caller's context for one more operation: its own clock reading and loaders.

        A WebSocket connection lives for hours; loaders kept from its first operation
        would answer later ones with rows read back then.
        """
        if self.new_loaders is None:
            return self
        now = datetime.now(UTC)
        return replace(self, now=now, loaders=self.new_loaders(self.db, now))

    def read_from_primary(self) -> None:
        """Every read of this operation from now on goes to the primary: an operation that
        writes (its answer shows what it wrote), or one that reads an order (a buyer sees the
        order it has just placed, and the SKUs on it, however new)."""
        db = self.db.primary_only()
        if db is self.db:
            return
        self.db = db
        if self.new_loaders is not None:
            self.loaders = self.new_loaders(db, self.now)

    def uow(self) -> UnitOfWork:
        """A fresh unit of work: one transaction, events published after it commits."""
        return UnitOfWork(self.db, self.broker, self.on_event)


Info: TypeAlias = strawberry.Info[Context, None]
