"""docs/partners.md: every Python block on the page runs, as written, against a gateway."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.webhooks.conftest import Hooks
from tests.webhooks.receiver import Receiver

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "partners.md"


@pytest.fixture(scope="module")
def guide() -> dict[str, Any]:
    blocks = re.findall(r"```python\n(.*?)```", GUIDE.read_text(encoding="utf-8"), flags=re.DOTALL)
    assert len(blocks) >= 6
    namespace: dict[str, Any] = {"__name__": "partner_guide"}
    for block in blocks:
        exec(compile(block, str(GUIDE), "exec"), namespace)  # noqa: S102 - the guide's own examples
    return namespace


async def test_an_order_placed_twice_with_one_external_number_is_one_order(clean: Hooks, guide: dict[str, Any]) -> None:
    number = f"TB-{uuid.uuid4().hex[:12]}"
    lines = [{"skuId": clean.demo_sku("QB-10"), "quantity": 1}]
    first = await guide["place_order"](clean.http, clean.keys.taobao, "taobao", number, lines, {"phone": "13912360001"})
    again = await guide["place_order"](clean.http, clean.keys.taobao, "taobao", number, lines, {"phone": "13912360001"})
    assert first["userErrors"] == [] and first["order"] == again["order"]
    orders = await guide["every_order"](clean.http, clean.keys.taobao)
    assert [o["id"] for o in orders].count(first["order"]["id"]) == 1


async def test_a_persisted_document_is_sent_by_its_hash(clean: Hooks, guide: dict[str, Any]) -> None:
    query = f"query Channels{uuid.uuid4().hex[:8]} {{ channels {{ code }} }}"
    for _ in range(2):  # the text once, then the hash alone
        answer = await guide["persisted"](clean.http, clean.keys.taobao, query)
        assert "errors" not in answer and {"code": "taobao"} in answer["data"]["channels"]


async def test_a_delivered_order_is_verified_by_the_library_and_by_hand(
    clean: Hooks, receiver: Receiver, guide: dict[str, Any],
) -> None:
    created = await guide["graphql"](clean.http, clean.keys.taobao, """
        mutation { createWebhookEndpoint(input: { url: "%s/guide", events: ["order.delivered"] }) {
          endpoint { secret } userErrors { code } } }""" % receiver.url)
    secret = created["data"]["createWebhookEndpoint"]["endpoint"]["secret"]
    placed = await guide["place_order"](clean.http, clean.keys.taobao, "taobao", f"TB-{uuid.uuid4().hex[:12]}",
                                        [{"skuId": clean.demo_sku("QB-10"), "quantity": 1}], {"phone": "13912360002"})
    await clean.pay(placed["order"])
    await clean.send_all()
    [request] = receiver.at("/guide")
    by_library = guide["verified_event"](secret, request.headers, request.body)
    by_hand = guide["verify_by_hand"](secret, request.headers, request.body)
    assert by_library == by_hand and by_hand["data"]["number"] == placed["order"]["number"]
    tampered = request.body.replace(b"DELIVERED", b"REFUNDED")
    assert guide["verified_event"](secret, request.headers, tampered) is None
    assert guide["verify_by_hand"](secret, request.headers, tampered) is None
    assert guide["verify_by_hand"]("whsec_" + "QUFB" * 8, request.headers, request.body) is None
