"""A per-IP velocity rule under a burst, through a real gateway process.

The counters are Redis sorted sets in the PostgreSQL and Redis run, this process's memory
in the embedded run: either way the count and the add are one step, so of twenty
simultaneous attempts from one address against a limit of five, exactly five pass.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select

from domain.risk import Decision
from models import Order, RiskVerdict
from tests.e2e.shop import order_input
from tests.e2e.test_order_rush import BUDGET_SECONDS, Rush, gql, outcome, place, rush_on

pytestmark = pytest.mark.e2e

CREATE_RULE = """
mutation Create($input: CreateRiskRuleInput!) {
  createRiskRule(input: $input) { rule { id name } userErrors { field code } }
}
"""


async def test_twenty_simultaneous_orders_from_one_ip_with_a_limit_of_five_let_exactly_five_through(
    tmp_path: Path,
) -> None:
    # A broker prefix of its own: the Redis counters of another run never add to this one's.
    env = {"QUANYI_BROKER_PREFIX": f"quanyi-risk-{uuid.uuid4().hex[:8]}:"}
    async with rush_on(tmp_path, env) as rush:
        coins = await rush.shelf.card_codes(30)
        async with asyncio.timeout(BUDGET_SECONDS), rush.client() as http:
            created = await gql(http, CREATE_RULE, {"input": {
                "name": "5 a minute per IP", "kind": "VELOCITY", "action": "REJECT",
                "parameters": {"dimension": "IP", "limit": 5, "windowSeconds": 60},
            }}, key=rush.keys.admin)
            assert created["data"]["createRiskRule"]["userErrors"] == [], created
            answers = await asyncio.gather(*(place(http, order_input((coins, 1), key=f"burst-order-key-{n}")) for n in range(20)))

        assert Counter(outcome(a) for a in answers) == {"PLACED": 5, "RISK_REJECTED": 15}
        await _assert_recorded(rush, placed=5, rejected=15)
        rush.assert_clean_log()


async def _assert_recorded(rush: Rush, *, placed: int, rejected: int) -> None:
    async with rush.db.sessions() as session:
        orders = await session.scalar(select(func.count()).select_from(Order))
        verdicts = dict(
            (decision, count)
            for decision, count in await session.execute(select(RiskVerdict.decision, func.count()).group_by(RiskVerdict.decision))
        )
    assert (orders, verdicts) == (placed, {Decision.PASS: placed, Decision.REJECT: rejected})
