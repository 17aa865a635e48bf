"""Root types merged from each domain, and the schema built from them."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import strawberry
import strawberry.federation
from strawberry.tools import merge_types

from resolvers.analytics import AnalyticsQuery
from resolvers.campaigns import CampaignMutation, CampaignQuery
from resolvers.catalog import CatalogQuery
from resolvers.catalog_admin import CatalogAdminMutation
from resolvers.catalog_bulk import CatalogBulkMutation, CatalogChangesQuery
from resolvers.channel_admin import ChannelAdminMutation
from resolvers.codes import CodesMutation
from resolvers.documents import DocumentsMutation, DocumentsQuery
from resolvers.draws import DrawsMutation, DrawsQuery
from resolvers.fulfilment import FulfilmentMutation
from resolvers.keys import KeysMutation, KeysQuery
from resolvers.limits import LimitsMutation
from resolvers.lotteries import LotteryMutation, LotteryQuery
from resolvers.memberships import MembershipMutation, MembershipQuery
from resolvers.orders import OrderMutation, OrderQuery
from resolvers.payments import PaymentMutation
from resolvers.prepaid import PrepaidMutation
from resolvers.pricing import PricingMutation, PricingQuery
from resolvers.risk import RiskMutation, RiskQuery
from resolvers.risk_models import RiskModelMutation, RiskModelQuery
from resolvers.buyers import BuyersQuery
from resolvers.sales import SalesMutation, SalesQuery
from resolvers.settlement import SettlementMutation, SettlementQuery
from resolvers.sku_admin import SkuAdminMutation
from resolvers.subscriptions import Subscription
from resolvers.supplier_admin import SupplierAdminMutation, SupplierAdminQuery
from resolvers.marketplaces import MarketplacesMutation, MarketplacesQuery
from resolvers.webhooks import WebhooksMutation, WebhooksQuery
from schema.amount import RATE, Rate
from schema.catalog import Brand, Category, Product, Sku, Supplier
from schema.catalog_admin import CatalogChange
from schema.channel import Channel
from schema.instants import INSTANT
from schema.keys import ApiKey
from schema.money import AMOUNT
from schema.orders import Order, RiskVerdict
from schema.pricing import PriceChange
from schema.risk import RiskRule
from schema.settlement import ReconciliationReport, SettlementStatement

Query = merge_types("Query", (
    CatalogQuery, OrderQuery, PricingQuery, KeysQuery, AnalyticsQuery, RiskQuery, SettlementQuery,
    CatalogChangesQuery, SupplierAdminQuery, SalesQuery, DocumentsQuery, RiskModelQuery, CampaignQuery,
    WebhooksQuery, BuyersQuery, MembershipQuery, MarketplacesQuery, DrawsQuery, LotteryQuery,
))
Mutation = merge_types("Mutation", (
    OrderMutation, PrepaidMutation, PricingMutation, KeysMutation, CodesMutation, RiskMutation, SettlementMutation,
    FulfilmentMutation, LimitsMutation, CatalogAdminMutation, SkuAdminMutation, ChannelAdminMutation,
    SupplierAdminMutation, CatalogBulkMutation, SalesMutation, DocumentsMutation, PaymentMutation,
    RiskModelMutation, CampaignMutation, WebhooksMutation, MembershipMutation, MarketplacesMutation, DrawsMutation,
    LotteryMutation,
))


def build_schema(*, federation: bool = False) -> strawberry.Schema:
    """The gateway's schema; with `federation`, the same schema as an Apollo Federation v2 subgraph."""
    options: dict[str, Any] = {
        "query": Query,
        "mutation": Mutation,
        "subscription": Subscription,
        "types": [Product, Sku, Brand, Category, Supplier, Channel, ApiKey, PriceChange, Order,
                  RiskVerdict, RiskRule, SettlementStatement, ReconciliationReport, CatalogChange],
        # Every Decimal input is money, taken only in the contract's form (schema/money.py);
        # a rate (a channel's commission) is a Rate, checked by the domain; every DateTime has
        # a time zone and a year the shop serves (schema/instants.py).
        "scalar_overrides": {Decimal: AMOUNT, Rate: RATE, datetime: INSTANT},
    }
    if not federation:
        return strawberry.Schema(**options)
    from resolvers.federation import declare_entities

    declare_entities()
    return strawberry.federation.Schema(**options)
