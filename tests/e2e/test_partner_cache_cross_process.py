"""Partners share cached catalog answers with the other keys of their channel, never with
another channel: two partners of taobao and one of b2b-demo read through one gateway while
an operator changes prices through another, both with the response cache on and sharing Redis.

A cached answer is keyed by the document, its variables and the caller's role and channel,
not by the key: nothing a catalog read answers depends on which key of a channel asks.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from domain.access import Role
from services.access.keys import issue_key
from services.core.database import Database
from tests.e2e.server import Server, running_gateway
from tests.e2e.shop import migrated_database, shop_settings, stock_shop
from tests.support import TEST_REDIS_URL, require_redis

pytestmark = pytest.mark.e2e

BUDGET_SECONDS = 90

# One document for every partner: its channel comes in the variables; `channels` and the
# quota answer for the caller's own channel whatever the variables say.
CATALOG = """
query Partner($channel: String!) {
  products(channel: $channel, first: 50) {
    edges { node { slug skus { code price { amount } channelQuota { quota } } } }
  }
  channels { code commissionRate }
}
"""
CHANNELS = "{ channels { code commissionRate } }"
SET_PRICE = """
mutation Set($input: SetChannelPriceInput!) { setChannelPrice(input: $input) { userErrors { code } } }
"""
SET_QUOTA = """
mutation Quota($input: SetChannelQuotaInput!) { setChannelQuota(input: $input) { userErrors { code } } }
"""
HITS = re.compile(r'^quanyi_response_cache_lookups_total\{result="hit"\} ([0-9.e+]+)$', re.MULTILINE)


async def _post(http: httpx.AsyncClient, server: Server, query: str, variables: dict[str, Any], key: str) -> dict[str, Any]:
    answer = await http.post(f"{server.url}/graphql", json={"query": query, "variables": variables},
                             headers={"authorization": f"Bearer {key}"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    body.pop("extensions", None)  # the caller's own budget
    for error in body.get("errors", []):
        error.get("extensions", {}).pop("requestId", None)
    return body


async def _hits(http: httpx.AsyncClient, server: Server, admin: str) -> float:
    metrics = await http.get(f"{server.url}/metrics", headers={"authorization": f"Bearer {admin}"})
    assert metrics.status_code == 200, metrics.text
    found = HITS.search(metrics.text)
    return float(found.group(1)) if found else 0.0


def _price(answer: dict[str, Any], code: str) -> str:
    return next(
        sku["price"]["amount"]
        for edge in answer["data"]["products"]["edges"]
        for sku in edge["node"]["skus"]
        if sku["code"] == code
    )


async def test_partners_share_their_channels_cached_answers_and_never_see_another_channel(tmp_path: Path) -> None:
    if TEST_REDIS_URL is None:  # collected only when it is set (tests/e2e/conftest.py)
        pytest.fail("set QUANYI_TEST_REDIS_URL: the two gateways share events through Redis")
    await require_redis(TEST_REDIS_URL)
    async with asyncio.timeout(BUDGET_SECONDS), migrated_database(tmp_path) as url:
        settings = shop_settings(url)
        db = Database.connect(settings)
        try:
            keys, shelf = await stock_shop(db, settings)
            async with db.sessions() as session, session.begin():
                second = await issue_key(session, role=Role.PARTNER, channel="taobao", name="second taobao app")
            coins = await shelf.card_codes(10)  # a SKU listed on every channel, taobao and b2b-demo too
            env = {"QUANYI_BROKER_PREFIX": settings.broker_prefix, "QUANYI_RESPONSE_CACHE": "1",
                   "QUANYI_RESPONSE_CACHE_SECONDS": "60"}
            async with (
                running_gateway(url, settings.secret_key, tmp_path / "reads.log", env=env) as reads,
                running_gateway(url, settings.secret_key, tmp_path / "operator.log", env=env) as operator,
                httpx.AsyncClient(timeout=30) as http,
            ):
                sku = coins.gid
                for channel, amount in (("taobao", "11.11"), ("b2b-demo", "22.22")):
                    done = await _post(http, operator, SET_PRICE, {"input": {"channel": channel, "skuId": sku, "amount": amount}}, keys.admin)
                    assert done == {"data": {"setChannelPrice": {"userErrors": []}}}
                done = await _post(http, operator, SET_QUOTA, {"input": {"channel": "b2b-demo", "skuId": sku, "quota": 7}}, keys.admin)
                assert done == {"data": {"setChannelQuota": {"userErrors": []}}}
                await asyncio.sleep(0.5)  # the operator's events reach the reading gateway

                # Given the first taobao key's read, computed and cached,
                taobao = await _post(http, reads, CATALOG, {"channel": "taobao"}, keys.taobao)
                hits = await _hits(http, reads, keys.admin)
                # when the other taobao key asks the same, it is served the same entry;
                assert await _post(http, reads, CATALOG, {"channel": "taobao"}, second.plaintext) == taobao
                assert await _hits(http, reads, keys.admin) == hits + 1
                # the b2b partner's answer to the same document is its own.
                b2b = await _post(http, reads, CATALOG, {"channel": "b2b-demo"}, keys.b2b)
                assert await _hits(http, reads, keys.admin) == hits + 1

                assert _price(taobao, coins.code) == "11.11" and _price(b2b, coins.code) == "22.22"
                assert taobao["data"]["channels"] == [{"code": "taobao", "commissionRate": "0.05"}]
                assert b2b["data"]["channels"] == [{"code": "b2b-demo", "commissionRate": "0.02"}]
                for own, other, other_channel in ((taobao, b2b, "b2b-demo"), (b2b, taobao, "taobao")):
                    text = str(own)
                    assert other_channel not in text and _price(other, coins.code) not in text
                assert "'quota': 7" in str(b2b) and "'quota': 7" not in str(taobao)

                # A document with no channel in it at all answers each partner with its own.
                for key, own in ((keys.taobao, ("taobao", "0.05")), (keys.b2b, ("b2b-demo", "0.02"))):
                    for _ in range(2):  # computed, then served from the cache
                        answer = await _post(http, reads, CHANNELS, {}, key)
                        assert answer == {"data": {"channels": [{"code": own[0], "commissionRate": own[1]}]}}

                # A partner naming another channel is refused, though that channel's answer is cached.
                for key in (keys.taobao, second.plaintext):
                    refused = await _post(http, reads, CATALOG, {"channel": "b2b-demo"}, key)
                    assert refused["data"] is None and "22.22" not in str(refused)
                    assert [e["extensions"]["code"] for e in refused["errors"]] == ["FORBIDDEN"]

                # When taobao's price changes through the other gateway, both taobao keys read
                # the new price from the reading gateway; b2b-demo's answer is untouched.
                done = await _post(http, operator, SET_PRICE, {"input": {"channel": "taobao", "skuId": sku, "amount": "10.50"}}, keys.admin)
                assert done == {"data": {"setChannelPrice": {"userErrors": []}}}
                for _ in range(50):
                    now_taobao = await _post(http, reads, CATALOG, {"channel": "taobao"}, keys.taobao)
                    if _price(now_taobao, coins.code) == "10.50":
                        break
                    await asyncio.sleep(0.1)
                assert _price(now_taobao, coins.code) == "10.50"
                assert await _post(http, reads, CATALOG, {"channel": "taobao"}, second.plaintext) == now_taobao
                assert await _post(http, reads, CATALOG, {"channel": "b2b-demo"}, keys.b2b) == b2b
                for server in (reads, operator):
                    assert "Traceback" not in server.output(), server.output()[-4000:]
        finally:
            await db.dispose()
