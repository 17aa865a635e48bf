"""SQLAlchemy models, one module per domain. Importing this registers every table."""

from models.base import Base
from models.campaigns import Campaign, CampaignSku, CouponCode, CouponRedemption
from models.catalog import (
    Brand,
    BundleItem,
    CatalogChange,
    Category,
    Listing,
    Product,
    Sku,
    SkuSupplier,
    Supplier,
)
from models.fulfilment import (
    CodeReveal,
    Delivery,
    DeliveryResend,
    InboxMessage,
    Job,
    JobAttempt,
    Refund,
    SupplierAttempt,
    TopUpTask,
)
from models.channel import Channel, ChannelKind, SettlementCycle
from models.inventory import CardCode, StockLevel
from models.documents import TrustedDocument
from models.draws import BlindBoxItem, BoxDraw, DrawRound
from models.keys import ApiKey
from models.marketplaces import MarketplaceConnection, MarketplaceOrder
from models.limits import BuyerTally, HoldLimit, PurchaseLimit
from models.lotteries import Lottery, LotteryEntry
from models.ledger import LedgerEntry, LedgerTransaction
from models.memberships import Membership, MembershipEvent, MembershipPlan
from models.orders import Allocation, Order, OrderEvent, OrderLine
from models.payments import (
    BalanceMovement,
    Payment,
    PaymentAccount,
    PaymentNotification,
    PaymentRefusal,
    PrepaidAccount,
    ProviderReconciliation,
    ProviderReconciliationItem,
)
from models.pricing import ChannelPrice, ChannelQuota, PriceChange, PriceTier, QuotaUse
from models.alerts import AlertNotice
from models.buyers import BuyerProfile
from models.risk import RiskLabel, RiskModel, RiskRule, RiskRuleChange, RiskVerdict
from models.sales import SaleEvent, SaleRegistration
from models.settlement import Reconciliation, ReconciliationItem, SettlementStatement
from models.webhooks import WebhookAttempt, WebhookDelivery, WebhookEndpoint

__all__ = [
    "Lottery",
    "LotteryEntry",
    "BlindBoxItem",
    "BoxDraw",
    "DrawRound",
    "MarketplaceConnection",
    "MarketplaceOrder",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
    "Campaign",
    "CampaignSku",
    "CouponCode",
    "CouponRedemption",
    "TrustedDocument",
    "SaleEvent",
    "SaleRegistration",
    "CodeReveal",
    "Delivery",
    "DeliveryResend",
    "InboxMessage",
    "Job",
    "JobAttempt",
    "Refund",
    "SupplierAttempt",
    "TopUpTask",
    "Allocation",
    "ApiKey",
    "BalanceMovement",
    "BuyerTally",
    "HoldLimit",
    "PurchaseLimit",
    "LedgerEntry",
    "LedgerTransaction",
    "Membership",
    "MembershipEvent",
    "MembershipPlan",
    "Reconciliation",
    "ReconciliationItem",
    "SettlementStatement",
    "Payment",
    "PaymentAccount",
    "PaymentNotification",
    "PaymentRefusal",
    "PrepaidAccount",
    "ProviderReconciliation",
    "ProviderReconciliationItem",
    "Order",
    "OrderEvent",
    "OrderLine",
    "Base",
    "ChannelPrice",
    "ChannelQuota",
    "PriceChange",
    "PriceTier",
    "QuotaUse",
    "AlertNotice",
    "BuyerProfile",
    "RiskLabel",
    "RiskModel",
    "RiskRule",
    "RiskRuleChange",
    "RiskVerdict",
    "Brand",
    "BundleItem",
    "CatalogChange",
    "Listing",
    "CardCode",
    "Category",
    "Channel",
    "ChannelKind",
    "Product",
    "SettlementCycle",
    "Sku",
    "SkuSupplier",
    "StockLevel",
    "Supplier",
]
