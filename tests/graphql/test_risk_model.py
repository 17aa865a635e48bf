"""The learned risk model beside the rules: trained on a generated set, loaded by the gateway,
applied in shadow (scored and kept, nothing held) and enforced (its reason in the verdict)."""

from __future__ import annotations

import math
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from domain.risk_features import FEATURES
from domain.risk_model import Model, Tree
from services.risk import models
from services.risk.commands import shadow_report, train_from_file
from services.risk.training import recorded_examples
from tests.e2e.shop import Shop, StockedSku, open_shop, order_input

ROOT = Path(__file__).resolve().parents[2]

CREATE_RULE = """
mutation Create($input: CreateRiskRuleInput!) {
  createRiskRule(input: $input) { rule { id kind parameters } userErrors { field code message } }
}
"""
UPDATE_RULE = """
mutation Update($id: ID!, $input: UpdateRiskRuleInput!) {
  updateRiskRule(id: $id, input: $input) { rule { parameters } userErrors { field code } }
}
"""
ARCHIVE_RULE = "mutation Archive($id: ID!) { archiveRiskRule(id: $id) { rule { archived } } }"
PLACE = """
mutation Place($input: PlaceOrderInput!) {
  placeOrder(input: $input) { order { id status } userErrors { field code } }
}
"""
LAST_VERDICT = """
query {
  riskVerdicts(first: 1) {
    edges { node { id decision reasons { rule observed threshold action } model { version score explanation shadowMatched } } }
  }
}
"""
ACTIVATE = """
mutation Activate($version: String) {
  activateRiskModel(version: $version) { model { version active } userErrors { field code message } }
}
"""
MODELS = "query { riskModels { version active metrics } }"
LABEL = """
mutation Label($id: ID!, $fraud: Boolean!) {
  labelRiskVerdict(verdictId: $id, fraud: $fraud, source: CHARGEBACK) { labelled userErrors { field code } }
}
"""
REVIEW = """
mutation Review($id: ID!, $decision: RiskDecision!) {
  reviewOrder(orderId: $id, decision: $decision) { order { status } userErrors { code } }
}
"""

# A model whose opinion the tests know: fraud is likely above 50 yuan (log-odds +2), unlikely below (-1).
AMOUNT_TREE = Tree(left=(1, -1, -1), right=(2, -1, -1), feature=(0, 0, 0), threshold=(50.0, 0.0, 0.0), value=(0.0, -1.0, 2.0))
KNOWN = Model(version="amount-over-50", features=FEATURES, channels=("web",), base=0.0, rate=1.0, trees=(AMOUNT_TREE,),
              metrics={"made": "by hand"})


@pytest.fixture(scope="module")
async def shop(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Shop]:
    async with open_shop(tmp_path_factory.mktemp("risk-model")) as opened:
        yield opened


@pytest.fixture(scope="module")
async def coins(shop: Shop) -> StockedSku:
    return await shop.shelf.card_codes(60, price_fen=4000)


@pytest.fixture(scope="module")
async def trained(shop: Shop, tmp_path_factory: pytest.TempPathFactory) -> Model:
    """A model trained on a generated labelled set, stored and active."""
    path = tmp_path_factory.mktemp("fraud") / "attempts.jsonl"
    subprocess.run([sys.executable, str(ROOT / "bench" / "fraud_data.py"), "--out", str(path), "--buyers", "500",
                    "--days", "12", "--seed", "3"], check=True, capture_output=True)
    model = await train_from_file(path, version=None, trees=25)
    async with shop.db.sessions() as session, session.begin():
        await models.store_model(session, model, activate=False, now=datetime.now(UTC))
        await models.store_model(session, KNOWN, activate=False, now=datetime.now(UTC))
    return model


async def activate(shop: Shop, version: str | None) -> dict[str, Any]:
    return (await shop.gql(ACTIVATE, {"version": version}, key=shop.keys.admin))["data"]["activateRiskModel"]


async def model_rule(shop: Shop, threshold: str, *, shadow: bool, name: str) -> str:
    answer = await shop.gql(CREATE_RULE, {"input": {
        "name": name, "kind": "MODEL", "parameters": {"threshold": threshold, "shadow": shadow},
        "action": "REVIEW", "channel": "web",
    }}, key=shop.keys.admin)
    created = answer["data"]["createRiskRule"]
    assert created["userErrors"] == [], created
    return created["rule"]["id"]


async def place(shop: Shop, sku: StockedSku, quantity: int, buyer: dict[str, Any] | None = None) -> dict[str, Any]:
    answer = await shop.gql(PLACE, {"input": order_input((sku, quantity), buyer=buyer)})
    return answer["data"]["placeOrder"]


async def last_verdict(shop: Shop) -> dict[str, Any]:
    answer = await shop.gql(LAST_VERDICT, key=shop.keys.admin)
    return answer["data"]["riskVerdicts"]["edges"][0]["node"]


async def test_a_model_trained_on_generated_attempts_scores_in_shadow_and_holds_nothing(
    shop: Shop, coins: StockedSku, trained: Model
) -> None:
    assert (await activate(shop, trained.version)) == {"model": {"version": trained.version, "active": True}, "userErrors": []}
    rule = await model_rule(shop, "0.001", shadow=True, name="model in shadow")
    try:
        placed = await place(shop, coins, 1)
        verdict = await last_verdict(shop)
    finally:
        await shop.gql(ARCHIVE_RULE, {"id": rule}, key=shop.keys.admin)

    assert placed["order"]["status"] == "PENDING_PAYMENT"
    opinion = verdict["model"]
    assert verdict["decision"] == "PASS" and verdict["reasons"] == []
    assert opinion["version"] == trained.version and 0 <= opinion["score"] <= 1
    assert opinion["shadowMatched"] == (["model in shadow"] if opinion["score"] >= 0.001 else [])


async def test_an_enforced_model_rule_holds_what_it_scores_high_and_says_why(
    shop: Shop, coins: StockedSku, trained: Model
) -> None:
    await activate(shop, KNOWN.version)
    rule = await model_rule(shop, "0.5", shadow=False, name="model enforced")
    try:
        small = await place(shop, coins, 1)  # 40.00: score 0.269
        small_verdict = await last_verdict(shop)
        large = await place(shop, coins, 2)  # 80.00: score 0.881
        large_verdict = await last_verdict(shop)
    finally:
        await shop.gql(ARCHIVE_RULE, {"id": rule}, key=shop.keys.admin)

    assert small["order"]["status"] == "PENDING_PAYMENT" and small_verdict["decision"] == "PASS"
    assert large["order"]["status"] == "REVIEW"
    assert large_verdict["reasons"] == [{
        "rule": "model enforced", "observed": f"score {1 / (1 + math.exp(-2)):.3f} (amount=80 (+2.00))",
        "threshold": "score 0.500", "action": "REVIEW",
    }]
    assert large_verdict["model"]["version"] == KNOWN.version


async def test_with_no_model_active_model_rules_match_nothing_and_features_are_still_kept(
    shop: Shop, coins: StockedSku, trained: Model
) -> None:
    await activate(shop, None)
    rule = await model_rule(shop, "0.001", shadow=False, name="model without a model")
    try:
        placed = await place(shop, coins, 2)
        verdict = await last_verdict(shop)
    finally:
        await shop.gql(ARCHIVE_RULE, {"id": rule}, key=shop.keys.admin)

    assert placed["order"]["status"] == "PENDING_PAYMENT" and verdict["decision"] == "PASS"
    assert verdict["model"] == {"version": None, "score": None, "explanation": None, "shadowMatched": []}
    assert (await shop.gql(MODELS, key=shop.keys.admin))["data"]["riskModels"][0]["active"] is False


async def test_reviews_and_chargebacks_become_the_next_models_examples(
    shop: Shop, coins: StockedSku, trained: Model
) -> None:
    await activate(shop, KNOWN.version)
    rule = await model_rule(shop, "0.5", shadow=False, name="model for labels")
    try:
        held = await place(shop, coins, 2)  # scored 0.881: held for review
        held_verdict = await last_verdict(shop)
        passed = await place(shop, coins, 1)
        passed_verdict = await last_verdict(shop)
    finally:
        await shop.gql(ARCHIVE_RULE, {"id": rule}, key=shop.keys.admin)
    async with shop.db.fresh_sessions() as session:
        before = len(await recorded_examples(session, now=datetime.now(UTC)))

    reviewed = await shop.gql(REVIEW, {"id": held["order"]["id"], "decision": "REJECT"}, key=shop.keys.admin)
    charged = await shop.gql(LABEL, {"id": passed_verdict["id"], "fraud": True}, key=shop.keys.admin)
    async with shop.db.fresh_sessions() as session:
        found = await recorded_examples(session, now=datetime.now(UTC))

    assert reviewed["data"]["reviewOrder"] == {"order": {"status": "REJECTED"}, "userErrors": []}
    assert charged["data"]["labelRiskVerdict"] == {"labelled": True, "userErrors": []}
    assert len(found) == before + 2 and all(fraud for _, _, fraud in found[-2:])
    assert held_verdict["id"] != passed_verdict["id"]


async def test_the_shadow_report_counts_what_enforcing_would_have_held(
    shop: Shop, coins: StockedSku, trained: Model
) -> None:
    await activate(shop, KNOWN.version)
    async with shop.db.fresh_sessions() as session:
        before = await shadow_report(session, since=__import__("datetime").timedelta(days=1), now=datetime.now(UTC))
    rule = await model_rule(shop, "0.5", shadow=True, name="model report")
    try:
        await place(shop, coins, 2)  # would be held
        await place(shop, coins, 1)  # would not
    finally:
        await shop.gql(ARCHIVE_RULE, {"id": rule}, key=shop.keys.admin)
    async with shop.db.fresh_sessions() as session:
        after = await shadow_report(session, since=__import__("datetime").timedelta(days=1), now=datetime.now(UTC))

    assert after.scored - before.scored == 2
    assert after.would_flag["model report"] == 1 and after.newly_held["model report"] == 1


async def test_only_operators_see_and_steer_the_model(shop: Shop, trained: Model) -> None:
    for key in (shop.keys.taobao, None):
        assert (await shop.gql(MODELS, key=key)).get("data") is None
        assert (await shop.gql(ACTIVATE, {"version": None}, key=key)).get("data") is None


async def test_bad_model_inputs_are_refused_with_their_field(shop: Shop, trained: Model) -> None:
    unknown = await activate(shop, "no-such-model")
    bad_threshold = []
    for threshold in ("0", "1", "1.5", "0.8500", "1e-1", " 0.5", 0.5, "NaN", "-0.1"):
        answer = await shop.gql(CREATE_RULE, {"input": {
            "name": f"bad {threshold!r}", "kind": "MODEL", "parameters": {"threshold": threshold}, "action": "REVIEW",
        }}, key=shop.keys.admin)
        bad_threshold.append(answer["data"]["createRiskRule"]["userErrors"][0]["field"])
    forged = await shop.gql(LABEL, {"id": "Umlza1ZlcmRpY3Q6OTk5OTk5", "fraud": True}, key=shop.keys.admin)

    assert unknown["userErrors"][0]["code"] == "NOT_FOUND"
    assert bad_threshold == ["parameters.threshold"] * 9
    assert forged["data"]["labelRiskVerdict"] == {"labelled": False, "userErrors": [{"field": "verdictId", "code": "NOT_FOUND"}]}
