"""No request forgery: names are judged by what they resolve to, at registration and at each send."""

from __future__ import annotations

import httpx
import pytest

from services.webhooks.addresses import Refused, check
from services.webhooks.receivers import HttpReceiver


def resolving(*answers: list[str]):  # type: ignore[no-untyped-def]
    """A resolver giving each answer in turn (the last one from then on)."""
    given = list(answers)

    async def resolve(host: str, port: int) -> list[str]:
        return given.pop(0) if len(given) > 1 else given[0]
    return resolve


@pytest.mark.parametrize(("url", "addresses"), [
    ("https://bücher.example/hook", ["10.0.0.7"]),  # an IDN whose name resolves to a private address
    ("https://xn--bcher-kva.example/hook", ["10.0.0.7"]),  # the same, spelt in punycode
    ("https://hooks.example/", ["93.184.216.34", "127.0.0.1"]),  # one bad address among good ones
    ("https://hooks.example/", ["::ffff:169.254.169.254"]),
    ("https://hooks.example/", ["fe80::1%eth0"]),
])
async def test_a_name_resolving_to_a_private_address_is_refused(url: str, addresses: list[str]) -> None:
    with pytest.raises(Refused):
        await check(url, resolving(addresses), allow_private=False)


async def test_a_public_name_is_accepted_and_an_unresolvable_one_refused() -> None:
    target, found = await check("https://Hooks.Example:8443/in?x=1", resolving(["93.184.216.34"]), allow_private=False)
    assert (target.host, target.port, [str(a) for a in found]) == ("hooks.example", 8443, ["93.184.216.34"])

    async def nowhere(host: str, port: int) -> list[str]:
        raise OSError("no such name")
    with pytest.raises(Refused, match="does not resolve"):
        await check("https://nowhere.example/", nowhere, allow_private=False)


async def test_a_name_rebound_to_loopback_after_registration_is_refused_at_send_time() -> None:
    resolve = resolving(["93.184.216.34"], ["127.0.0.1"])
    await check("http://rebind.example/hook", resolve, allow_private=False)  # registration: public
    sent: list[httpx.Request] = []
    receiver = HttpReceiver(allow_private=False, resolve=resolve,
                            transport=httpx.MockTransport(lambda r: sent.append(r) or httpx.Response(200)))
    answer = await receiver.send("http://rebind.example/hook", {"webhook-id": "msg_1"}, b"{}")
    await receiver.close()
    assert (answer.status_code, sent) == (None, [])
    assert answer.error is not None and answer.error.startswith("AddressRefused")


async def test_the_request_goes_to_the_address_checked_with_the_name_kept_for_host_and_tls() -> None:
    sent: list[httpx.Request] = []
    receiver = HttpReceiver(allow_private=False, resolve=resolving(["93.184.216.34"]),
                            transport=httpx.MockTransport(lambda r: sent.append(r) or httpx.Response(204)))
    answer = await receiver.send("https://hooks.example/in", {"webhook-id": "msg_1"}, b'{"a":1}')
    await receiver.close()
    [request] = sent
    assert answer.status_code == 204
    assert (request.url.host, request.headers["host"], request.extensions["sni_hostname"]) == (
        "93.184.216.34", "hooks.example", "hooks.example")
    assert request.content == b'{"a":1}'


async def test_redirects_are_answers_not_followed() -> None:
    sent: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(302, headers={"location": "http://169.254.169.254/latest/meta-data"})
    receiver = HttpReceiver(allow_private=False, resolve=resolving(["93.184.216.34"]), transport=httpx.MockTransport(answer))
    got = await receiver.send("http://hooks.example/", {}, b"{}")
    await receiver.close()
    assert (got.status_code, got.ok, len(sent)) == (302, False, 1)
