"""Who may register what, and where: partners hear their own channel only; no request forgery."""

from __future__ import annotations

import pytest

from tests.webhooks.conftest import CREATE, DELIVERIES, Hooks
from tests.webhooks.receiver import Receiver

LIST = "{ webhookEndpoints { id channel } }"


async def _create(hooks: Hooks, key: str, url: str, events: list[str], channel: str | None = None) -> dict:
    answer = await hooks.gql(CREATE, {"input": {"url": url, "events": events, "channel": channel}}, key=key)
    return answer["data"]["createWebhookEndpoint"] if answer.get("data") else answer


async def test_a_partner_never_receives_another_channels_orders(clean: Hooks, receiver: Receiver) -> None:
    taobao = await clean.endpoint(f"{receiver.url}/only-taobao", ["order.paid", "order.status_changed"], key=clean.keys.taobao)
    operator = await clean.endpoint(f"{receiver.url}/operator-all", ["order.paid"], key=clean.keys.admin)
    for channel, key in (("web", None), ("b2b-demo", clean.keys.b2b)):
        order = await clean.place(("QB-10", 1), channel=channel, key=key)
        await clean.pay(order)
    await clean.send_all()
    assert receiver.at("/only-taobao") == []
    assert len(receiver.at("/operator-all")) == 2
    # Nor does it read the operator's deliveries.
    theirs = await clean.gql(DELIVERIES, {"endpoint": operator["id"]}, key=clean.keys.taobao)
    assert theirs["data"]["webhookDeliveries"]["edges"] == []
    listed = await clean.gql(LIST, key=clean.keys.taobao)
    assert {e["channel"] for e in listed["data"]["webhookEndpoints"]} == {"taobao"}
    assert taobao["id"] in {e["id"] for e in listed["data"]["webhookEndpoints"]}


@pytest.mark.parametrize(("channel", "events", "code"), [
    ("b2b-demo", ["order.paid"], "FORBIDDEN_CHANNEL"),
    (None, ["supplier.failing"], "EVENT_NOT_ALLOWED"),
    (None, ["stock.low"], "EVENT_NOT_ALLOWED"),
    (None, ["order.shipped"], "UNKNOWN_EVENT"),
    (None, [], "NO_EVENTS"),
])
async def test_a_partner_cannot_register_for_what_is_not_its_own(
    clean: Hooks, receiver: Receiver, channel: str | None, events: list[str], code: str,
) -> None:
    answer = await _create(clean, clean.keys.taobao, f"{receiver.url}/x", events, channel)
    assert answer["endpoint"] is None and [e["code"] for e in answer["userErrors"]] == [code]


async def test_a_partners_endpoint_is_bound_to_its_keys_channel(clean: Hooks, receiver: Receiver) -> None:
    answer = await _create(clean, clean.keys.taobao, f"{receiver.url}/bound", ["order.paid"])
    assert answer["endpoint"]["channel"] == "taobao"


async def test_storefront_keys_and_anonymous_callers_register_nothing(clean: Hooks, receiver: Receiver) -> None:
    hooks = clean
    storefront = await hooks.gql(CREATE, {"input": {"url": receiver.url, "events": ["order.paid"]}}, key=hooks.keys.web)
    anonymous = await hooks.gql(CREATE, {"input": {"url": receiver.url, "events": ["order.paid"]}})
    assert storefront["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


REFUSED = [
    "http://127.0.0.1/hook", "http://localhost/hook", "http://localhost./hook", "http://LocalHost/hook",
    "http://api.localhost/hook", "http://2130706433/hook", "http://0x7f000001/hook", "http://0x7f.1/hook",
    "http://127.1/hook", "http://017700000001/hook", "http://[::1]/hook", "http://[::ffff:127.0.0.1]/hook",
    "http://[::ffff:a9fe:a9fe]/hook", "http://169.254.169.254/latest/meta-data", "http://10.0.0.5/hook",
    "http://172.16.3.4/hook", "http://192.168.1.1/hook", "http://100.64.0.1/hook", "http://0.0.0.0/hook",
    "http://224.0.0.251/hook", "http://240.0.0.1/hook", "http://[fe80::1]/hook", "http://[fc00::1]/hook",
    "http://[64:ff9b::7f00:1]/hook", "http://[2002:7f00:1::1]/hook", "ftp://example.com/hook",
    "file:///etc/passwd", "gopher://127.0.0.1:6379/_INFO", "http://user:pass@example.com/hook", "not a url",
]


@pytest.mark.parametrize("url", REFUSED)
async def test_loopback_private_and_odd_spellings_are_refused_without_the_override(
    hooks: Hooks, url: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from dataclasses import replace
    from schema.context import Context
    real = Context.__init__  # every request of this test reads settings without the override
    strict = replace(hooks.app.state.settings, webhook_allow_private=False)

    def init(self: Context, *args: object, **kwargs: object) -> None:
        real(self, *args, **kwargs)  # type: ignore[arg-type]
        self.settings = strict

    monkeypatch.setattr(Context, "__init__", init)
    answer = await _create(hooks, hooks.keys.admin, url, ["order.paid"])
    assert answer["endpoint"] is None and [(e["field"], e["code"]) for e in answer["userErrors"]] == [("url", "URL_REFUSED")]


DELETE = "mutation D($id: ID!) { deleteWebhookEndpoint(id: $id) { endpoint { id } userErrors { code } } }"
UPDATE_URL = """
mutation U($input: UpdateWebhookEndpointInput!) { updateWebhookEndpoint(input: $input) { endpoint { url } userErrors { field code } } }
"""


async def test_a_partner_cannot_flood_the_table_with_endpoints(clean: Hooks, receiver: Receiver) -> None:
    from services.webhooks.endpoints import MAX_ENDPOINTS_PER_CHANNEL
    before = len((await clean.gql(LIST, key=clean.keys.b2b))["data"]["webhookEndpoints"])
    made, refused = [], None
    for n in range(MAX_ENDPOINTS_PER_CHANNEL + 1 - before):
        answer = await _create(clean, clean.keys.b2b, f"{receiver.url}/flood-{n}", ["order.paid", "order.paid"])
        if answer["endpoint"] is None:
            refused = answer["userErrors"]
            break
        assert answer["endpoint"]["events"] == ["order.paid"]  # the same event twice is one subscription
        made.append(answer["endpoint"]["id"])
    try:
        assert len(made) == MAX_ENDPOINTS_PER_CHANNEL - before
        assert [e["code"] for e in refused or []] == ["TOO_MANY_ENDPOINTS"]
    finally:
        for endpoint_id in made:  # and a partner deletes its own, once
            deleted = await clean.gql(DELETE, {"id": endpoint_id}, key=clean.keys.b2b)
            assert deleted["data"]["deleteWebhookEndpoint"]["userErrors"] == []
    again = await clean.gql(DELETE, {"id": made[0]}, key=clean.keys.b2b)
    assert again["data"]["deleteWebhookEndpoint"]["userErrors"] == [{"code": "NOT_FOUND"}]


async def test_another_channels_endpoint_cannot_be_changed_or_deleted(clean: Hooks, receiver: Receiver) -> None:
    theirs = await clean.endpoint(f"{receiver.url}/theirs", ["order.paid"], key=clean.keys.taobao)
    changed = await clean.gql(UPDATE_URL, {"input": {"id": theirs["id"], "url": f"{receiver.url}/mine"}}, key=clean.keys.b2b)
    deleted = await clean.gql(DELETE, {"id": theirs["id"]}, key=clean.keys.b2b)
    assert changed["data"]["updateWebhookEndpoint"]["userErrors"] == [{"field": "id", "code": "NOT_FOUND"}]
    assert deleted["data"]["deleteWebhookEndpoint"]["userErrors"] == [{"code": "NOT_FOUND"}]


async def test_a_long_url_is_taken_and_an_overlong_one_refused(clean: Hooks, receiver: Receiver) -> None:
    long = f"{receiver.url}/hook?token={'a' * 1500}"
    taken = await _create(clean, clean.keys.admin, long, ["order.paid"])
    overlong = await clean.gql(CREATE, {"input": {"url": f"{receiver.url}/{'a' * 2100}", "events": ["order.paid"]}},
                               key=clean.keys.admin)
    assert taken["endpoint"]["url"] == long
    assert [e["extensions"] for e in overlong["errors"]] == [{"code": "BAD_USER_INPUT", "field": "input.url"}]
