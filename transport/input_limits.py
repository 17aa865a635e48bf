"""How long each string input may be: its column's length, or the rule that stands for it.

PostgreSQL refuses a value longer than its VARCHAR column with an error in the middle of a
transaction; SQLite stores it whole. Either way the caller deserves a clear answer before
the database sees it, and the same one on both: `transport/input_bounds.py` refuses a longer
value as BAD_USER_INPUT naming the field, before any resolver runs.

Keys are schema coordinates: `Type.field` for an input field, `Type.field(argument:)` for an
argument. An input whose resolver or service already refuses a longer value itself, naming
the field with a message of its own (a userError, or BAD_USER_INPUT), has its `own_rule`: the
door leaves it to that rule, and the abuse test (tests/graphql/test_input_abuse.py) sends it
one character too many all the same.

Every String input of the schema is listed here; the abuse test fails for one that is not.
An ID (a global ID, e.g. base64 of `ReconciliationReport:2147483647`, 44 characters) and a
cursor take at most ID_LENGTH characters unless listed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy.orm import InstrumentedAttribute

from domain.card_codes import MAX_NUMBER_LENGTH, MAX_SECRET_LENGTH
from domain.contacts import MAX_TYPED
from domain.settlement import MAX_ORDER_NUMBER, MAX_STATUS
from domain.catalog_input import MAX_DESCRIPTION, MAX_URL
from domain.campaigns import MAX_CODE_INPUT
from models import (
    Campaign,
    ApiKey,
    Brand,
    CatalogChange,
    Category,
    Channel,
    Lottery,
    MarketplaceOrder,
    Order,
    Product,
    RiskModel,
    RiskRule,
    SettlementStatement,
    Sku,
    SkuSupplier,
    Supplier,
    TrustedDocument,
    WebhookDelivery,
    WebhookEndpoint,
)

ID_LENGTH = 100
STRING_LENGTH = 255  # an input not listed below: the abuse test fails until it is
SEARCH_TEXT = 100  # the catalog search's own limit (resolvers/catalog.py)


@dataclass(frozen=True, slots=True)
class Bound:
    length: int
    own_rule: bool = False  # a longer value is refused by the resolver or service, naming the field


def column(attribute: InstrumentedAttribute[str] | InstrumentedAttribute[str | None]) -> Bound:
    """At most what the column holds."""
    length = attribute.property.columns[0].type.length
    assert length is not None, f"{attribute} has no length"
    return Bound(length)


def own_rule(length: int) -> Bound:
    """Refused beyond `length` where the input is used, with a message of its own."""
    return Bound(length, own_rule=True)


CHANNEL, SUPPLIER = column(Channel.code), column(Supplier.code)
CURSOR = Bound(ID_LENGTH)

LIMITS: Mapping[str, Bound] = {
    # Orders
    "PlaceOrderInput.channel": CHANNEL,
    "PlaceOrderInput.idempotencyKey": own_rule(column(Order.idempotency_key).length),  # services/orders/draft.py
    "PlaceOrderInput.couponCode": column(Order.coupon_code),
    "BuyerInput.phone": own_rule(MAX_TYPED),  # domain/contacts.py: stored as the 11-digit national number
    "BuyerInput.email": column(Order.buyer_email),
    "BuyerInput.rechargeAccount": own_rule(column(Order.recharge_account).length),  # draft.py
    "BuyerInput.deviceId": own_rule(column(Order.device_id).length),  # draft.py
    "Mutation.payOrder(paymentReference:)": own_rule(column(Order.payment_reference).length),  # lifecycle.py
    "Mutation.reviewOrder(note:)": own_rule(400),  # services/orders/review.py: written into the event's reason
    "Mutation.resolveMarketplaceRefund(reason:)": Bound(200),  # sent to the marketplace, shown to the buyer
    "Query.orders(channel:)": CHANNEL,
    "SetPurchaseLimitInput.channel": CHANNEL,
    "SetHoldLimitInput.channel": CHANNEL,
    # Sale events
    "ScheduleSaleInput.channel": CHANNEL,
    "RegisterForSaleInput.channel": CHANNEL,
    "Query.sale(channel:)": CHANNEL,
    # Product center: services/catalog/ checks each of these itself (domain/catalog_input.py,
    # catalog_skus.py, channel_rules.py), naming the field in a userError, within its column
    "CreateTaxonomyInput.code": own_rule(column(Brand.code).length),
    "CreateTaxonomyInput.name": own_rule(column(Brand.name).length),
    "UpdateTaxonomyInput.name": own_rule(column(Category.name).length),
    "CreateProductInput.brand": own_rule(column(Brand.code).length),
    "CreateProductInput.category": own_rule(column(Category.code).length),
    "CreateProductInput.name": own_rule(column(Product.name).length),
    "CreateProductInput.slug": own_rule(column(Product.slug).length),
    "CreateProductInput.description": own_rule(MAX_DESCRIPTION),
    "CreateProductInput.imageUrls": own_rule(MAX_URL),
    "UpdateProductInput.brand": own_rule(column(Brand.code).length),
    "UpdateProductInput.category": own_rule(column(Category.code).length),
    "UpdateProductInput.name": own_rule(column(Product.name).length),
    "UpdateProductInput.description": own_rule(MAX_DESCRIPTION),
    "UpdateProductInput.imageUrls": own_rule(MAX_URL),
    "CreateSkuInput.code": own_rule(column(Sku.code).length),
    "CreateSkuInput.name": own_rule(column(Sku.name).length),
    "CreateSkuInput.currency": own_rule(column(Sku.currency).length),
    "UpdateSkuInput.name": own_rule(column(Sku.name).length),
    "SkuSupplierInput.supplier": own_rule(SUPPLIER.length),
    "SkuSupplierInput.productCode": own_rule(column(SkuSupplier.product_code).length),
    "CreateChannelInput.code": own_rule(CHANNEL.length),
    "CreateChannelInput.name": own_rule(column(Channel.name).length),
    "CreateChannelInput.currency": own_rule(column(Channel.currency).length),
    "CreateChannelInput.settlementTimeZone": own_rule(column(Channel.settlement_time_zone).length),
    "UpdateChannelInput.name": own_rule(column(Channel.name).length),
    "UpdateChannelInput.settlementTimeZone": own_rule(column(Channel.settlement_time_zone).length),
    "SetProductListingInput.channel": own_rule(CHANNEL.length),
    "CreateSupplierInput.code": own_rule(SUPPLIER.length),
    "CreateSupplierInput.name": own_rule(column(Supplier.name).length),
    "CreateSupplierInput.adapter": own_rule(column(Supplier.adapter).length),
    "CreateSupplierInput.baseUrl": own_rule(column(Supplier.base_url).length),
    "CreateSupplierInput.secret": own_rule(1024),  # sealed, so no column bounds it: a shared secret is far shorter
    "UpdateSupplierInput.name": own_rule(column(Supplier.name).length),
    "UpdateSupplierInput.adapter": own_rule(column(Supplier.adapter).length),
    "UpdateSupplierInput.baseUrl": own_rule(column(Supplier.base_url).length),
    "UpdateSupplierInput.secret": own_rule(1024),
    "Query.catalogChanges(code:)": column(CatalogChange.code),
    "Query.catalogChanges(after:)": CURSOR,
    "Query.orders(after:)": CURSOR,
    # Catalog
    "Query.products(channel:)": CHANNEL,
    "Query.products(after:)": CURSOR,
    "Query.product(channel:)": CHANNEL,
    "Query.product(slug:)": column(Product.slug),
    "ProductFilter.brand": column(Brand.code),
    "ProductFilter.category": column(Category.code),
    "ProductFilter.text": own_rule(SEARCH_TEXT),  # resolvers/catalog.py
    "CardCodeInput.secret": own_rule(MAX_SECRET_LENGTH),  # domain/card_codes.py: sealed, not stored as typed
    "CardCodeInput.number": own_rule(MAX_NUMBER_LENGTH),
    # Prices, quotas, keys
    "SetChannelPriceInput.channel": CHANNEL,
    "SetPriceTiersInput.channel": CHANNEL,
    "SetChannelQuotaInput.channel": CHANNEL,
    "Query.priceChanges(channel:)": CHANNEL,
    "Query.priceChanges(after:)": CURSOR,
    "CreateApiKeyInput.channel": CHANNEL,
    "CreateApiKeyInput.name": column(ApiKey.name),
    "RegisterTrustedDocumentsInput.documents": Bound(32 * 1024),  # resolvers/documents.py MAX_DOCUMENT_LENGTH
    "RemoveTrustedDocumentsInput.sha256Hashes": column(TrustedDocument.digest),
    # Risk
    "CreateRiskRuleInput.name": own_rule(column(RiskRule.name).length),  # services/risk/rules.py
    "CreateRiskRuleInput.channel": CHANNEL,
    "UpdateRiskRuleInput.name": own_rule(column(RiskRule.name).length),
    "UpdateRiskRuleInput.channel": CHANNEL,
    "Query.riskVerdicts(channel:)": CHANNEL,
    "Query.riskVerdicts(after:)": CURSOR,
    "Query.riskRuleChanges(after:)": CURSOR,
    "Mutation.activateRiskModel(version:)": column(RiskModel.version),
    # Buyer profiles: the cursor names a 32-character pseudonym
    "Query.buyerProfiles(after:)": CURSOR,
    # Payments: a WeChat or Alipay openId is at most 128 characters (services/payments/checkout.py)
    "CreatePaymentInput.openId": Bound(128),
    # Campaigns: services/campaigns/admin.py refuses a longer name or code naming the field
    "CreateCampaignInput.channel": CHANNEL,
    "CreateCampaignInput.name": own_rule(column(Campaign.name).length),
    "CreateCampaignInput.code": own_rule(MAX_CODE_INPUT),
    "Query.campaigns(channel:)": CHANNEL,
    # Lotteries: services/draws/lotteries.py refuses a longer name naming the field; a token is 35 characters
    "CreateLotteryInput.channel": CHANNEL,
    "CreateLotteryInput.name": own_rule(column(Lottery.name).length),
    "Query.lotteryEntry(token:)": Bound(64),
    # Memberships: services/memberships/signup.py refuses a key of more than 100 characters naming the field
    "SubscribeInput.channel": CHANNEL,
    "SubscribeInput.idempotencyKey": own_rule(100),
    "Query.subscriptions(channel:)": CHANNEL,
    "Query.subscriptions(after:)": CURSOR,
    # Marketplace connectors: a trade's status and report status are filters on their columns
    "Query.marketplaceTrades(channel:)": CHANNEL,
    "Query.marketplaceTrades(status:)": column(MarketplaceOrder.status),
    "Query.marketplaceTrades(reportStatus:)": column(MarketplaceOrder.report_status),
    "Query.marketplaceTrades(after:)": CURSOR,
    # Money held and settled
    "Mutation.topUpPrepaidBalance(channel:)": CHANNEL,
    "Mutation.topUpPrepaidBalance(reference:)": own_rule(128),  # services/settlement/prepaid.py
    "Mutation.recordSupplierDeposit(supplier:)": SUPPLIER,
    "Mutation.recordSupplierDeposit(reference:)": own_rule(128),
    "GenerateSettlementInput.code": column(SettlementStatement.code),
    "ReconciliationRecordInput.externalOrderNumber": own_rule(MAX_ORDER_NUMBER),  # domain/settlement.py
    "ReconciliationRecordInput.amount": own_rule(32),  # parsed as an amount: a longer one is no amount
    "ReconciliationRecordInput.status": own_rule(MAX_STATUS),
    "Query.settlementStatements(channel:)": CHANNEL,
    "Query.settlementStatements(supplier:)": SUPPLIER,
    "Query.settlementStatements(after:)": CURSOR,
    "SettlementStatement.lines(after:)": CURSOR,
    "Query.supplierBalance(supplier:)": SUPPLIER,
    # Analytics
    "Query.salesSummary(channel:)": CHANNEL,
    "Query.topProducts(channel:)": CHANNEL,
    "Query.channelPerformance(channel:)": CHANNEL,
    # Webhooks: a URL as long as its column; event names as long as the delivery's
    "CreateWebhookEndpointInput.url": column(WebhookEndpoint.url),
    "CreateWebhookEndpointInput.events": column(WebhookDelivery.event_type),
    "CreateWebhookEndpointInput.channel": CHANNEL,
    "UpdateWebhookEndpointInput.url": column(WebhookEndpoint.url),
    "UpdateWebhookEndpointInput.events": column(WebhookDelivery.event_type),
    "Query.webhookDeliveries(after:)": CURSOR,
    # Live feeds
    "Subscription.stockChanged(channel:)": CHANNEL,
    "Subscription.saleEvent(channel:)": CHANNEL,
}
