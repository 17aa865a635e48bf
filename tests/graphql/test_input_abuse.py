"""Bad input is a clear error, never a 500, and the same on PostgreSQL and SQLite.

The cases are generated from the gateway's own introspection: every argument of every query
and mutation, into input objects and lists, down to each String, ID, Int and DateTime. Each
gets what an attacker would send (one character over its bound, a negative number, 2**31,
year 1, year 9999, a time without its zone) in an otherwise valid request, through the real
endpoint. The answer must refuse it, BAD_USER_INPUT or a userError naming the field, and
nothing may fail inside the gateway. A string exactly at its bound must never fail inside
either: the bound is no longer than its column. A new input is covered the day it is added;
a new String input must first say how long it may be (transport/input_limits.py).
"""

from __future__ import annotations

import itertools
import re
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from schema.relay import encode_id
from tests.e2e.shop import Shop, StockedSku, open_shop
from tests.settlement_support import delivered_order, new_partner
from transport.input_limits import ID_LENGTH, LIMITS, STRING_LENGTH

INTROSPECTION = """
query Inputs {
  __schema {
    queryType { name }
    mutationType { name }
    types {
      kind name
      fields { name args { name type { ...Ref } } type { ...Ref } }
      inputFields { name type { ...Ref } }
    }
  }
}
fragment Ref on __Type { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } }
"""

PLACE = """
mutation Place($input: PlaceOrderInput!) { placeOrder(input: $input) { order { id lines { id } } userErrors { code } } }
"""
RULE = """
mutation Rule($input: CreateRiskRuleInput!) { createRiskRule(input: $input) { rule { id } userErrors { code } } }
"""
PLAN = """
mutation Plan($input: SetMembershipPlanInput!) { setMembershipPlan(input: $input) { plan { period } userErrors { code } } }
"""
GENERATE = """
mutation Generate($input: GenerateSettlementInput!) { generateSettlementStatement(input: $input) { statement { id } } }
"""

JUNE, JULY = "2026-06-01T00:00:00+08:00", "2026-07-01T00:00:00+08:00"


# --- what the schema takes, from its introspection ------------------------------------------------


@dataclass(frozen=True)
class Leaf:
    """One scalar input: under which root field, by what path, of what scalar, at which coordinate."""

    root: str  # Query or Mutation
    field: str
    path: tuple[str | int, ...]  # ("input", "lines", 0, "quantity")
    scalar: str
    coordinate: str  # Type.field or Type.field(argument:)

    @property
    def name(self) -> str:
        return f"{self.field}." + ".".join(str(p) for p in self.path)


def _named(ref: dict[str, Any]) -> dict[str, Any]:
    while ref.get("ofType"):
        ref = ref["ofType"]
    return ref


def _rendered(ref: dict[str, Any]) -> str:
    if ref["kind"] == "NON_NULL":
        return _rendered(ref["ofType"]) + "!"
    if ref["kind"] == "LIST":
        return f"[{_rendered(ref['ofType'])}]"
    return str(ref["name"])


def _is_list(ref: dict[str, Any]) -> bool:
    return ref["kind"] == "LIST" or (ref["kind"] == "NON_NULL" and _is_list(ref["ofType"]))


@dataclass
class Schema:
    types: dict[str, dict[str, Any]]
    roots: dict[str, str]  # "Query" / "Mutation" -> the type's name

    @classmethod
    def of(cls, answer: dict[str, Any]) -> Schema:
        schema = answer["data"]["__schema"]
        return cls({t["name"]: t for t in schema["types"]},
                   {"Query": schema["queryType"]["name"], "Mutation": schema["mutationType"]["name"]})

    def root_fields(self, root: str) -> list[dict[str, Any]]:
        return list(self.types[self.roots[root]]["fields"])

    def leaves(self, root: str) -> Iterator[Leaf]:
        for field in self.root_fields(root):
            for argument in field["args"]:
                coordinate = f"{root}.{field['name']}({argument['name']}:)"
                yield from self._below(root, field["name"], (argument["name"],), argument["type"], coordinate)

    def _below(self, root: str, field: str, path: tuple[str | int, ...], ref: dict[str, Any], coordinate: str) -> Iterator[Leaf]:
        named = _named(ref)
        if _is_list(ref):
            path = (*path, 0)
        if named["kind"] == "INPUT_OBJECT":
            for inner in self.types[named["name"]]["inputFields"]:
                yield from self._below(root, field, (*path, inner["name"]), inner["type"], f"{named['name']}.{inner['name']}")
        elif named["kind"] == "SCALAR":
            yield Leaf(root, field, path, named["name"], coordinate)

    def document(self, root: str, field_name: str, given: dict[str, Any]) -> str:
        """An operation calling the field with the arguments given as variables, selecting its user errors."""
        field = next(f for f in self.root_fields(root) if f["name"] == field_name)
        arguments = [a for a in field["args"] if a["name"] in given]
        declared = ", ".join(f"${a['name']}: {_rendered(a['type'])}" for a in arguments)
        passed = ", ".join(f"{a['name']}: ${a['name']}" for a in arguments)
        returned = self.types[_named(field["type"])["name"]]
        if returned["kind"] in ("OBJECT", "INTERFACE", "UNION"):
            has_errors = any(f["name"] == "userErrors" for f in returned.get("fields") or ())
            selection = "{ __typename userErrors { field message code } }" if has_errors else "{ __typename }"
        else:
            selection = ""
        keyword = "query" if root == "Query" else "mutation"
        if not arguments:
            return f"{keyword} Abuse {{ {field_name} {selection} }}"
        return f"{keyword} Abuse({declared}) {{ {field_name}({passed}) {selection} }}"

    def string_coordinates(self) -> set[str]:
        """Every String input of the schema: arguments of any field and input object fields."""
        found = set()
        for type_ in self.types.values():
            if type_["name"].startswith("__"):
                continue
            for field in type_.get("fields") or ():
                for argument in field["args"]:
                    if _named(argument["type"])["name"] == "String":
                        found.add(f"{type_['name']}.{field['name']}({argument['name']}:)")
            for inner in type_.get("inputFields") or ():
                if _named(inner["type"])["name"] == "String":
                    found.add(f"{type_['name']}.{inner['name']}")
        return found


# --- a shop with something of everything --------------------------------------------------------


@dataclass(frozen=True)
class Ground:
    codes: StockedSku
    counter: StockedSku
    order: str  # a guest order on web, waiting for payment
    line: str
    rule: str  # a disabled risk rule
    statement: str
    key: str  # an ApiKey's global ID
    supplier: str
    product: str  # the shelf's product's global ID


@pytest.fixture(scope="module")
async def shop(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Shop]:
    async with open_shop(tmp_path_factory.mktemp("input-abuse")) as opened:
        yield opened


@pytest.fixture(scope="module")
async def schema(shop: Shop) -> Schema:
    return Schema.of(await shop.gql(INTROSPECTION, key=shop.keys.admin))


@pytest.fixture(scope="module")
async def ground(shop: Shop) -> Ground:
    codes, counter = await shop.shelf.card_codes(200), await shop.shelf.counter(200)
    placed = await shop.gql(PLACE, {"input": {
        "channel": "web", "idempotencyKey": uuid.uuid4().hex, "lines": [{"skuId": codes.gid, "quantity": 1}],
        "buyer": {"phone": "13800138000"},
    }})
    order = placed["data"]["placeOrder"]["order"]
    rule = await shop.gql(RULE, {"input": {
        "name": "abuse test rule", "kind": "QUANTITY_LIMIT", "parameters": {"max": 100}, "action": "REVIEW",
        "channel": "b2b-demo", "enabled": False,
    }}, key=shop.keys.admin)
    partner = await new_partner(shop.db)
    await delivered_order(shop.db, partner.channel, (counter, 1), at=datetime.fromisoformat("2026-06-10T12:00:00+08:00"))
    statement = await shop.gql(GENERATE, {"input": {"party": "CHANNEL", "code": partner.channel, "periodStart": JUNE,
                                                    "periodEnd": JULY}}, key=shop.keys.admin)
    keys = await shop.gql("query { apiKeys { id } }", key=shop.keys.admin)
    plan = await shop.gql(PLAN, {"input": {"skuId": counter.gid, "period": "MONTH"}}, key=shop.keys.admin)
    assert plan["data"]["setMembershipPlan"]["userErrors"] == [], plan
    return Ground(
        codes, counter, order["id"], order["lines"][0]["id"], rule["data"]["createRiskRule"]["rule"]["id"],
        statement["data"]["generateSettlementStatement"]["statement"]["id"], keys["data"]["apiKeys"][-1]["id"],
        "sim-fast",  # a demo supplier
        encode_id("Product", shop.shelf.product_id),
    )


def _fresh(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


# A valid request for each root field that takes arguments: the case changes one input of it.
BASELINES: dict[str, Callable[[Ground], dict[str, Any]]] = {
    "Query.products": lambda g: {"channel": "web"},
    "Query.product": lambda g: {"channel": "web", "id": encode_id("Product", 1)},
    "Query.node": lambda g: {"id": g.codes.gid},
    "Query.order": lambda g: {"id": g.order},
    "Query.orders": lambda g: {},
    "Query.priceChanges": lambda g: {},
    "Query.apiKeys": lambda g: {},
    "Query.salesSummary": lambda g: {"from": JUNE, "to": JULY, "bucket": "DAY"},
    "Query.topProducts": lambda g: {"from": JUNE, "to": JULY},
    "Query.channelPerformance": lambda g: {"from": JUNE, "to": JULY},
    "Query.riskRules": lambda g: {},
    "Query.riskRuleChanges": lambda g: {},
    "Query.riskVerdicts": lambda g: {},
    "Query.settlementStatements": lambda g: {},
    "Query.reconciliationReport": lambda g: {"id": encode_id("ReconciliationReport", 1)},
    "Query.supplierBalance": lambda g: {"supplier": g.supplier},
    "Query.supplierPerformance": lambda g: {"from": JUNE, "to": JULY},
    "Mutation.placeOrder": lambda g: {"input": {
        "channel": "web", "idempotencyKey": _fresh("abuse-order"), "lines": [{"skuId": g.codes.gid, "quantity": 1}],
        "buyer": {"phone": "13800138000", "email": "buyer@example.com"},
    }},
    "Mutation.payOrder": lambda g: {"orderId": g.order, "paymentReference": _fresh("abuse-pay")},
    "Mutation.cancelOrder": lambda g: {"orderId": g.order},
    "Mutation.topUpPrepaidBalance": lambda g: {"channel": "b2b-demo", "amount": "1.00", "reference": _fresh("bank")},
    "Mutation.payOrderFromBalance": lambda g: {"orderId": g.order},
    "Mutation.setChannelPrice": lambda g: {"input": {"channel": "b2b-demo", "skuId": g.counter.gid, "amount": "9.90"}},
    "Mutation.setPriceTiers": lambda g: {"input": {"channel": "b2b-demo", "skuId": g.counter.gid,
                                                   "tiers": [{"minQuantity": 10, "amount": "9.00"}]}},
    "Mutation.setPriceControl": lambda g: {"input": {"skuId": g.counter.gid}},
    "Mutation.setChannelQuota": lambda g: {"input": {"channel": "b2b-demo", "skuId": g.counter.gid, "quota": 100}},
    "Mutation.createWebhookEndpoint": lambda g: {"input": {"url": "https://93.184.216.34/abuse", "events": ["order.paid"]}},
    "Mutation.updateWebhookEndpoint": lambda g: {"input": {
        "id": encode_id("WebhookEndpoint", 1), "url": "https://93.184.216.34/abuse", "events": ["order.paid"], "enabled": True,
    }},
    "Mutation.rotateWebhookSecret": lambda g: {"id": encode_id("WebhookEndpoint", 1)},
    "Mutation.deleteWebhookEndpoint": lambda g: {"id": encode_id("WebhookEndpoint", 1)},
    "Mutation.redeliverWebhook": lambda g: {"deliveryId": encode_id("WebhookDelivery", 1)},
    "Mutation.activateRiskModel": lambda g: {"version": None},
    "Mutation.labelRiskVerdict": lambda g: {"verdictId": encode_id("RiskVerdict", 1), "fraud": False},
    "Query.buyerProfiles": lambda g: {"first": 5},
    "Mutation.createPayment": lambda g: {"input": {"orderId": g.order, "provider": "WECHAT_PAY", "method": "NATIVE"}},
    "Mutation.reconcilePayments": lambda g: {"provider": "WECHAT_PAY", "date": "2026-06-01"},
    "Query.webhookDeliveries": lambda g: {"endpointId": encode_id("WebhookEndpoint", 1), "first": 5},
    "Mutation.createApiKey": lambda g: {"input": {"role": "PARTNER", "channel": "taobao", "name": "abuse"}},
    "Mutation.revokeApiKey": lambda g: {"id": g.key},
    "Mutation.setApiKeyBudget": lambda g: {"input": {"id": g.key, "maximum": 100, "restoreRate": 10}},
    "Mutation.registerTrustedDocuments": lambda g: {"input": {"documents": ["{ channels { code } }"], "apiKeyId": g.key}},
    "Mutation.removeTrustedDocuments": lambda g: {"input": {"sha256Hashes": ["0" * 64], "apiKeyId": g.key}},
    "Query.trustedDocuments": lambda g: {"apiKeyId": g.key, "first": 10},
    "Mutation.importCardCodes": lambda g: {"skuId": g.codes.gid, "codes": [{"secret": _fresh("secret")}]},
    "Mutation.createRiskRule": lambda g: {"input": {
        "name": _fresh("rule"), "kind": "QUANTITY_LIMIT", "parameters": {"max": 100}, "action": "REVIEW",
        "channel": "b2b-demo", "enabled": False,
    }},
    "Mutation.updateRiskRule": lambda g: {"id": g.rule, "input": {}},
    "Mutation.setRiskRuleEnabled": lambda g: {"id": g.rule, "enabled": False},
    "Mutation.archiveRiskRule": lambda g: {"id": g.rule},
    "Mutation.reviewOrder": lambda g: {"orderId": g.order, "decision": "PASS"},
    # Marketplaces
    "Mutation.resolveMarketplaceRefund": lambda g: {"id": encode_id("Refund", 1), "agree": False, "reason": "abuse"},
    "Mutation.retryMarketplaceImport": lambda g: {"id": encode_id("MarketplaceTrade", 1)},
    "Mutation.generateSettlementStatement": lambda g: {"input": {"party": "CHANNEL", "code": "taobao",
                                                                 "periodStart": JUNE, "periodEnd": JULY}},
    "Mutation.confirmSettlementStatement": lambda g: {"id": g.statement},
    "Mutation.markSettlementStatementPaid": lambda g: {"id": g.statement},
    "Mutation.recordSupplierDeposit": lambda g: {"supplier": g.supplier, "amount": "1.00", "reference": _fresh("wire")},
    "Mutation.reconcileStatement": lambda g: {"statementId": g.statement, "records": [
        {"externalOrderNumber": "EXT-1", "amount": "1.00", "status": "DELIVERED"},
    ]},
    "Mutation.resendDelivery": lambda g: {"orderLineId": g.line},
    "Mutation.setPurchaseLimit": lambda g: {"input": {"channel": "b2b-demo", "skuId": g.counter.gid, "perOrder": 100}},
    "Mutation.setHoldLimit": lambda g: {"input": {"channel": "b2b-demo", "perBuyer": 100, "perAddress": 100}},
    # Campaigns
    "Query.campaign": lambda g: {"id": encode_id("Campaign", 1)},
    "Query.campaigns": lambda g: {"channel": "web", "first": 10},
    "Mutation.createCampaign": lambda g: {"input": {"name": "Abuse campaign", "channel": "web", "skuIds": [g.codes.gid],
                                                    "amountOff": "1.00", "maxRedemptions": 10}},
    "Mutation.endCampaign": lambda g: {"id": encode_id("Campaign", 10_000)},
    "Mutation.generateCouponCodes": lambda g: {"campaignId": encode_id("Campaign", 1), "count": 1},
    # Blind boxes and lotteries
    "Query.drawRounds": lambda g: {"skuId": g.codes.gid},
    "Mutation.setBlindBoxPool": lambda g: {"input": {"skuId": g.codes.gid, "items": [{"skuId": g.counter.gid, "weight": 1}]}},
    "Mutation.closeDrawRound": lambda g: {"skuId": g.codes.gid},
    "Mutation.createLottery": lambda g: {"input": {
        "name": "Abuse lottery", "channel": "web", "opensAt": "2026-06-01T00:00:00+08:00",
        "closesAt": "2099-06-01T00:00:00+08:00", "drawAt": "2099-06-02T00:00:00+08:00", "winners": 1,
        "perBuyerLimit": 1, "prizeSkuId": g.codes.gid,
    }},
    "Mutation.enterLottery": lambda g: {"input": {"lotteryId": encode_id("Lottery", 1), "buyer": {"phone": "13800138000"}}},
    "Mutation.drawLottery": lambda g: {"id": encode_id("Lottery", 1)},
    "Query.lottery": lambda g: {"id": encode_id("Lottery", 1)},
    "Query.lotteryEntry": lambda g: {"token": "le_abuse"},
    # Memberships: the counter SKU is sold by subscription (Ground). This shop has no recurring payment
    # provider: a valid subscribe passes every check of its inputs, then stops at UNAVAILABLE.
    "Mutation.setMembershipPlan": lambda g: {"input": {"skuId": g.counter.gid, "period": "MONTH", "maxCharge": "10.00"}},
    "Mutation.subscribe": lambda g: {"input": {
        "channel": "web", "skuId": g.counter.gid, "idempotencyKey": _fresh("subscribe"), "period": "MONTH",
        "buyer": {"phone": "13800138000", "rechargeAccount": "13800138000"},
    }},
    "Mutation.cancelSubscription": lambda g: {"id": encode_id("Membership", 1)},
    "Query.subscription": lambda g: {"id": encode_id("Membership", 1)},
    "Query.subscriptions": lambda g: {"channel": "web", "status": "ACTIVE", "first": 10},
    # Marketplace connectors
    "Query.marketplaceTrades": lambda g: {"channel": "web", "status": "IMPORTED", "reportStatus": "FAILED", "first": 10},
    "Mutation.retryMarketplaceDelivery": lambda g: {"id": encode_id("MarketplaceTrade", 1)},
    # Product center
    "Mutation.createBrand": lambda g: {"input": {"code": _code("brand"), "name": "Abuse brand"}},
    "Mutation.createCategory": lambda g: {"input": {"code": _code("category"), "name": "Abuse category"}},
    "Mutation.updateBrand": lambda g: {"input": {"id": encode_id("Brand", 1), "version": 1, "name": "Brand"}},
    "Mutation.updateCategory": lambda g: {"input": {"id": encode_id("Category", 1), "version": 1, "name": "Category"}},
    "Mutation.createProduct": lambda g: {"input": {
        "brand": "tencent", "category": "video-vip", "name": "Abuse product", "slug": _code("product"),
        "description": "made to be abused", "imageUrls": ["https://img.example.com/a.png"],
    }},
    "Mutation.updateProduct": lambda g: {"input": {"id": g.product, "version": 1, "name": "Product",
                                                   "imageUrls": ["https://img.example.com/b.png"]}},
    "Mutation.createSku": lambda g: {"input": {
        "productId": g.product, "code": _code("SKU").upper(), "name": "Abuse SKU", "kind": "DIRECT_RECHARGE",
        "basePrice": "10.00", "currency": "CNY", "presaleCap": 0,
        "suppliers": [{"supplier": g.supplier, "priority": 1, "productCode": "ABUSE-1"}],
    }},
    "Mutation.updateSku": lambda g: {"input": {"id": g.counter.gid, "version": 1, "name": "SKU", "presaleCap": 0}},
    "Mutation.createChannel": lambda g: {"input": {
        "code": _code("channel"), "name": "Abuse channel", "currency": "CNY", "kind": "OWN_SITE", "public": False,
        "settlementCycle": "MONTHLY", "settlementTimeZone": "Asia/Shanghai", "active": True,
    }},
    "Mutation.updateChannel": lambda g: {"input": {"id": encode_id("Channel", 1), "version": 1, "name": "Channel",
                                                   "settlementTimeZone": "Asia/Shanghai"}},
    "Mutation.createSupplier": lambda g: {"input": {
        "code": _code("supplier"), "name": "Abuse supplier", "active": False, "adapter": "http",
        "baseUrl": "https://supplier.example.com", "secret": "s" * 32,
    }},
    "Mutation.updateSupplier": lambda g: {"input": {"id": encode_id("Supplier", 1), "version": 1, "name": "Supplier",
                                                    "adapter": "http", "baseUrl": "https://supplier.example.com",
                                                    "secret": "s" * 32}},
    "Mutation.setProductListing": lambda g: {"input": {"channel": "b2b-demo", "productId": g.product, "listed": True,
                                                       "position": 1}},
    "Mutation.setTopUpStock": lambda g: {"input": {"skuId": g.counter.gid, "onHand": 500}},
    "Mutation.importCatalog": lambda g: {"records": [{"type": "brand", "code": _code("brand"), "name": "B"}],
                                         "dryRun": True},
    "Mutation.archiveBrand": lambda g: {"input": {"id": encode_id("Brand", 1), "version": 1}},
    "Mutation.archiveCategory": lambda g: {"input": {"id": encode_id("Category", 1), "version": 1}},
    "Mutation.archiveChannel": lambda g: {"input": {"id": encode_id("Channel", 1), "version": 1}},
    "Mutation.archiveProduct": lambda g: {"input": {"id": encode_id("Product", 1), "version": 1}},
    "Mutation.archiveSku": lambda g: {"input": {"id": encode_id("Sku", 1), "version": 1}},
    "Mutation.archiveSupplier": lambda g: {"input": {"id": encode_id("Supplier", 1), "version": 1}},
    "Query.catalogChanges": lambda g: {"entity": "BRAND", "code": "tencent"},
    "Query.suppliers": lambda g: {"includeArchived": True},
    # Sale events
    "Query.sale": lambda g: {"channel": "web", "skuId": g.codes.gid},
    "Mutation.scheduleSale": lambda g: {"input": {
        "channel": "b2b-demo", "skuId": g.counter.gid, "startsAt": _later(days=3), "endsAt": _later(days=4),
        "registrationOpensAt": _later(days=1), "registrationClosesAt": _later(days=2),
    }},
    "Mutation.cancelSale": lambda g: {"saleId": encode_id("Sale", 1)},
    "Mutation.registerForSale": lambda g: {"input": {
        "channel": "web", "skuId": g.codes.gid,
        "buyer": {"phone": "13800138000", "email": "buyer@example.com", "deviceId": "d-1", "rechargeAccount": "a-1"},
    }},
}


def _later(days: int) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


def _code(prefix: str) -> str:
    return f"{prefix.lower()}-{uuid.uuid4().hex[:12]}"


# --- what each kind of input is sent -----------------------------------------------------------


def bound(leaf: Leaf) -> int:
    limit = LIMITS.get(leaf.coordinate)
    if limit is not None:
        return limit.length
    return ID_LENGTH if leaf.scalar == "ID" else STRING_LENGTH


def abuses(leaf: Leaf) -> list[tuple[str, object]]:
    """What an attacker sends for this input, by name."""
    if leaf.scalar in ("String", "ID"):
        return [("one character over", "x" * (bound(leaf) + 1))]
    if leaf.scalar == "Int":
        return [("negative", -1), ("2**31", 2**31), ("far beyond", 10**20)]
    if leaf.scalar == "DateTime":
        return [("year 1", "0001-01-01T00:00:00+08:00"), ("year 9999", "9999-12-31T23:59:59-08:00"),
                ("no time zone", "2026-06-01T00:00:00"), ("not a time", "yesterday")]
    return []


def with_value(variables: dict[str, Any], path: tuple[str | int, ...], value: object) -> dict[str, Any]:
    """The variables with the input at `path` set to `value` (intermediate objects made as needed)."""
    at: Any = variables
    for step, following in itertools.pairwise(path):
        if isinstance(step, int):
            while len(at) <= step:
                at.append({})
            at = at[step]
        else:
            if at.get(step) is None:
                at[step] = [] if isinstance(following, int) else {}
            at = at[step]
    last = path[-1]
    if isinstance(last, int):
        while len(at) <= last:
            at.append(None)
    at[last] = value
    return variables


def _parts(name: str) -> list[str]:
    return [p for p in re.split(r"[.\[\]]+", name) if p]


def names(leaf: Leaf, given: str | None) -> bool:
    """Whether an error's field (or the path in its message) points at this input: the input
    itself or one of the objects holding it, written as `input.lines.0.quantity`, `lines[0].quantity` ..."""
    if not given:
        return False
    said, path = _parts(given), [str(p) for p in leaf.path]
    if len(path) == 1:
        return said == path
    return any(said == path[start:end] for start in range(len(path)) for end in range(start + 1, len(path) + 1)
               if end > 1)


_VARIABLE = re.compile(r"^Variable '\$(\w+)' has invalid value(?: at \.?(\S+?))?:")


def refusal(answer: dict[str, Any], status: int, leaf: Leaf) -> str | None:
    """Why the answer is not a clear refusal of the input, or None when it is one."""
    if status >= 500:
        return f"HTTP {status}"
    errors = answer.get("errors") or []
    if any(e.get("extensions", {}).get("code") == "INTERNAL_SERVER_ERROR" for e in errors):
        return f"internal error: {errors}"
    if errors:
        if any(e["extensions"]["code"] != "BAD_USER_INPUT" for e in errors):
            return f"not BAD_USER_INPUT: {errors}"
        for error in errors:
            field = error["extensions"].get("field")
            found = _VARIABLE.match(error["message"])
            if found:
                field = found.group(1) + ("." + found.group(2) if found.group(2) else "")
            if names(leaf, field):
                return None
        return f"BAD_USER_INPUT names another field: {errors}"
    payload = (answer.get("data") or {}).get(leaf.field)
    user_errors = (payload or {}).get("userErrors") if isinstance(payload, dict) else None
    if user_errors and any(names(leaf, e["field"]) for e in user_errors):
        return None
    return f"accepted: {answer}"


def cases(schema: Schema) -> Iterator[tuple[Leaf, str, object]]:
    for root in ("Query", "Mutation"):
        for leaf in schema.leaves(root):
            for label, value in abuses(leaf):
                yield leaf, label, value


# --- the tests ---------------------------------------------------------------------------------


async def test_every_string_input_says_how_long_it_may_be(schema: Schema) -> None:
    declared = set(LIMITS)

    assert sorted(schema.string_coordinates() - declared) == []  # add them to transport/input_limits.py
    stale = {c for c in declared - schema.string_coordinates() if not c.startswith("Subscription.")}
    assert sorted(stale) == []


async def test_every_root_field_with_inputs_has_a_valid_request_to_abuse(schema: Schema) -> None:
    with_inputs = {f"{root}.{f['name']}" for root in ("Query", "Mutation") for f in schema.root_fields(root) if f["args"]}

    assert sorted(with_inputs - set(BASELINES)) == []


async def test_every_abusive_input_is_refused_naming_the_field(shop: Shop, schema: Schema, ground: Ground) -> None:
    problems: list[str] = []
    tried = 0
    for leaf, label, value in cases(schema):
        baseline = BASELINES.get(f"{leaf.root}.{leaf.field}")
        if baseline is None:
            continue  # the test above names it
        variables = with_value(baseline(ground), leaf.path, value)
        response = await shop.client.post(schema.document(leaf.root, leaf.field, variables), variables, key=shop.keys.admin)
        problem = refusal(response.json(), response.status_code, leaf)
        tried += 1
        if problem is not None:
            problems.append(f"{leaf.name} ({leaf.scalar}, {label}): {problem}")

    assert tried > 150
    assert problems == []


async def test_a_string_exactly_at_its_bound_never_fails_inside_the_gateway(
    shop: Shop, schema: Schema, ground: Ground
) -> None:
    failures: list[str] = []
    for root in ("Query", "Mutation"):
        for leaf in schema.leaves(root):
            baseline = BASELINES.get(f"{leaf.root}.{leaf.field}")
            if leaf.scalar not in ("String", "ID") or baseline is None:
                continue
            variables = with_value(baseline(ground), leaf.path, "x" * bound(leaf))
            response = await shop.client.post(schema.document(leaf.root, leaf.field, variables), variables, key=shop.keys.admin)
            answer = response.json()
            errors = answer.get("errors") or []
            internal = [e for e in errors if e.get("extensions", {}).get("code") == "INTERNAL_SERVER_ERROR"]
            too_long = [e for e in errors if "characters" in e["message"] and names(leaf, e["extensions"].get("field"))]
            if response.status_code >= 500 or internal or too_long:
                failures.append(f"{leaf.name}: {response.status_code} {errors}")

    assert failures == []


@pytest.mark.parametrize(
    ("document", "variables", "field"),
    [
        pytest.param('{ products(channel: "%s") { totalCount } }' % ("w" * 65), None, "channel", id="a literal"),
        pytest.param('{ products(channel: "web", filter: { brand: "%s" }) { totalCount } }' % ("b" * 65), None,
                     "filter.brand", id="a literal inside an input object"),
        pytest.param("query Q($brand: String) { products(channel: \"web\", filter: { brand: $brand }) { totalCount } }",
                     {"brand": "b" * 65}, "filter.brand", id="a variable inside a literal object"),
        pytest.param("query Q($c: String! = \"%s\") { products(channel: $c) { totalCount } }" % ("w" * 65), {},
                     "channel", id="a variable's default"),
        pytest.param("query Q($c: String!) { ...Catalog } fragment Catalog on Query { products(channel: $c) { totalCount } }",
                     {"c": "w" * 65}, "channel", id="inside a fragment"),
        pytest.param("query Q($id: ID!, $after: String) { node(id: $id) { ... on SettlementStatement { lines(after: $after) "
                     "{ edges { cursor } } } } }", {"id": "U2V0dGxlbWVudFN0YXRlbWVudDox", "after": "c" * 101}, "after",
                     id="a field's argument below an inline fragment"),
    ],
)
async def test_a_string_over_its_bound_is_refused_wherever_it_is_written(
    shop: Shop, document: str, variables: dict[str, Any] | None, field: str
) -> None:
    response = await shop.client.post(document, variables, key=shop.keys.admin)

    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert (error["extensions"], error["message"].split(": ")[0]) == ({"code": "BAD_USER_INPUT", "field": field}, field)
