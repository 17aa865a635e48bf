"""The HTTP adapter against the simulated supplier, over real HTTP: what fulfilment will see."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest

from domain.money import Money
from suppliers.base import Outcome, Result, SignatureError, TopUp
from suppliers.http import HttpSupplier
from tests.suppliers.conftest import SECRET, RigFactory, free_port


async def test_a_sync_top_up_is_credited_and_the_answer_says_so(supplier: RigFactory) -> None:
    async with supplier(mode="sync") as rig:
        answer = await rig.adapter.submit(rig.topup("Q1001-1", face_value="50.00", quantity=2))

        assert answer == Result(Outcome.SUCCEEDED, "Q1001-1", "SIM00000001", "")
        assert await rig.adapter.query("Q1001-1") == answer
        assert await rig.adapter.balance() == Money.of("900.00")
        assert rig.callbacks.received == []  # the answer was the outcome: nothing to call back


async def test_an_async_top_up_is_pending_then_called_back_with_a_signed_result(
    supplier: RigFactory,
) -> None:
    async with supplier(mode="async") as rig:
        answer = await rig.adapter.submit(rig.topup("Q1002-1"))
        [delivery] = await rig.callbacks.wait_for(1)

        assert answer == Result(Outcome.PENDING, "Q1002-1", "SIM00000001", "")
        assert (delivery.rejected, delivery.result) == (
            None,
            Result(Outcome.SUCCEEDED, "Q1002-1", "SIM00000001", ""),
        )
        assert await rig.adapter.query("Q1002-1") == delivery.result


async def test_the_same_request_id_twice_is_credited_once_and_answered_alike(
    supplier: RigFactory,
) -> None:
    async with supplier(mode="sync") as rig:
        first = await rig.adapter.submit(rig.topup("Q1003-1"))
        # A retry, even one whose body differs, gets the first answer back.
        again = await rig.adapter.submit(rig.topup("Q1003-1", face_value="100.00"))

        assert again == first == Result(Outcome.SUCCEEDED, "Q1003-1", "SIM00000001", "")
        assert await rig.adapter.balance() == Money.of("950.00")
        assert await rig.submissions() == [
            {"request_id": "Q1003-1", "product": "QQ-COIN-50", "account": "*******8000",
             "received": 2, "status": "SUCCEEDED", "callbacks_sent": 0},
        ]


async def test_a_timeout_is_unknown_and_the_query_finds_it_credited(supplier: RigFactory) -> None:
    async with supplier(mode="sync", answer_after_ms=3000, timeout_seconds=0.3) as rig:
        answer = await rig.adapter.submit(rig.topup("Q1004-1"))
        found = await rig.adapter.query("Q1004-1")

        assert answer == Result(Outcome.UNKNOWN, "Q1004-1", message="submit: no answer in time")
        assert found == Result(Outcome.SUCCEEDED, "Q1004-1", "SIM00000001", "")
        assert await rig.adapter.balance() == Money.of("950.00")


async def test_a_refused_product_or_account_fails_at_once_without_a_credit(
    supplier: RigFactory,
) -> None:
    async with supplier(mode="async", fail_products=["GONE"], fail_accounts=["13900000000"]) as rig:
        product = await rig.adapter.submit(rig.topup("Q1005-1", product="GONE"))
        account = await rig.adapter.submit(rig.topup("Q1005-2", account="13900000000"))

        assert [product, account] == [
            Result(Outcome.FAILED, "Q1005-1", message="product GONE is not available"),
            Result(Outcome.FAILED, "Q1005-2", message="the account cannot be credited"),
        ]
        assert [await rig.adapter.query(r) for r in ("Q1005-1", "Q1005-2")] == [
            Result(Outcome.FAILED, "Q1005-1", "SIM00000001", "product GONE is not available"),
            Result(Outcome.FAILED, "Q1005-2", "SIM00000002", "the account cannot be credited"),
        ]
        assert await rig.adapter.balance() == Money.of("1000.00")


async def test_a_top_up_beyond_the_balance_is_refused(supplier: RigFactory) -> None:
    async with supplier(mode="sync", balance="60.00") as rig:
        first = await rig.adapter.submit(rig.topup("Q1006-1"))
        second = await rig.adapter.submit(rig.topup("Q1006-2"))

        assert [first.outcome, second] == [
            Outcome.SUCCEEDED,
            Result(Outcome.FAILED, "Q1006-2", message="insufficient balance"),
        ]
        assert await rig.adapter.balance() == Money.of("10.00")


async def test_a_supplier_failing_everything_reports_failed_by_answer_or_by_callback(
    supplier: RigFactory,
) -> None:
    async with supplier(mode="sync", fail_all=True) as rig:
        sync = await rig.adapter.submit(rig.topup("Q1007-1"))
        await rig.faults(mode="async")
        pending = await rig.adapter.submit(rig.topup("Q1007-2"))
        [delivery] = await rig.callbacks.wait_for(1)

        failed = "the supplier could not credit the account"
        assert sync == Result(Outcome.FAILED, "Q1007-1", "SIM00000001", failed)
        assert pending.outcome is Outcome.PENDING
        assert delivery.result == Result(Outcome.FAILED, "Q1007-2", "SIM00000002", failed)
        assert await rig.adapter.balance() == Money.of("1000.00")


async def test_an_unknown_request_is_not_found(supplier: RigFactory) -> None:
    async with supplier() as rig:
        assert await rig.adapter.query("NEVER-SENT") == Result(
            Outcome.NOT_FOUND, "NEVER-SENT", message="the supplier has no such request"
        )


async def test_a_5xx_is_unknown_whether_or_not_the_supplier_recorded_the_request(
    supplier: RigFactory,
) -> None:
    async with supplier(mode="sync", server_error="before") as rig:
        lost = await rig.adapter.submit(rig.topup("Q1008-1"))
        await rig.faults(server_error="after")
        taken = await rig.adapter.submit(rig.topup("Q1008-2"))

        assert [lost.outcome, taken.outcome] == [Outcome.UNKNOWN, Outcome.UNKNOWN]
        assert [(await rig.adapter.query(r)).outcome for r in ("Q1008-1", "Q1008-2")] == [
            Outcome.NOT_FOUND,
            Outcome.SUCCEEDED,
        ]


async def test_a_supplier_that_cannot_be_reached_is_unknown_never_failed() -> None:
    adapter = HttpSupplier("down", f"http://127.0.0.1:{free_port()}", SECRET, timeout_seconds=2)
    try:
        topup_answer = await adapter.submit(
            TopUp("Q1009-1", "QQ-COIN-50", "13800138000", 1, Money.of("50.00"))
        )
        query_answer = await adapter.query("Q1009-1")
    finally:
        await adapter.close()

    assert [topup_answer, query_answer] == [
        Result(Outcome.UNKNOWN, "Q1009-1", message="submit: ConnectError"),
        Result(Outcome.UNKNOWN, "Q1009-1", message="query: ConnectError"),
    ]


async def test_a_callback_sent_twice_arrives_twice_with_one_credit(supplier: RigFactory) -> None:
    async with supplier(mode="async", answer_twice=True) as rig:
        await rig.adapter.submit(rig.topup("Q1010-1"))
        deliveries = await rig.callbacks.wait_for(2)

        credited = Result(Outcome.SUCCEEDED, "Q1010-1", "SIM00000001", "")
        assert [(d.rejected, d.result) for d in deliveries] == [(None, credited), (None, credited)]
        assert await rig.adapter.balance() == Money.of("950.00")
        assert [s["callbacks_sent"] for s in await rig.submissions()] == [2]


async def test_a_callback_signed_with_another_key_is_rejected(supplier: RigFactory) -> None:
    async with supplier(mode="async", bad_signature=True) as rig:
        await rig.adapter.submit(rig.topup("Q1011-1"))
        # Refused, the simulator tries again, as a supplier would.
        deliveries = await rig.callbacks.wait_for(3)

        assert [(d.rejected, d.result) for d in deliveries] == [
            ("the signature does not match the body", None)
        ] * 3
        assert [s["callbacks_sent"] for s in await rig.submissions()] == [0]


async def test_a_replayed_or_tampered_callback_is_rejected(supplier: RigFactory) -> None:
    async with supplier(mode="async") as rig:
        await rig.adapter.submit(rig.topup("Q1012-1"))
        [genuine] = await rig.callbacks.wait_for(1)
        now = datetime.now(UTC)

        def reason(headers: dict[str, str], body: bytes, at: datetime) -> str | None:
            try:
                rig.adapter.verify_signature(headers, body, at)
            except SignatureError as error:
                return str(error)
            return None

        tampered = genuine.body.replace(b"SUCCEEDED", b"FAILED")
        unsigned = {k: v for k, v in genuine.headers.items() if k != "x-supplier-signature"}
        assert {
            "genuine": reason(genuine.headers, genuine.body, now),
            "replayed later": reason(genuine.headers, genuine.body, now + timedelta(seconds=301)),
            "tampered": reason(genuine.headers, tampered, now),
            "unsigned": reason(unsigned, genuine.body, now),
        } == {
            "genuine": None,
            "replayed later": "the signature is outside the 300 s tolerance",
            "tampered": "the signature does not match the body",
            "unsigned": "no X-Supplier-Signature header",
        }


async def test_a_well_signed_callback_that_is_not_a_result_is_refused(supplier: RigFactory) -> None:
    async with supplier() as rig:
        with pytest.raises(SignatureError) as refused:
            rig.adapter.parse_callback(b'{"request_id": "Q1013-1", "status": "CREDITED"}')

        assert str(refused.value) == "a malformed callback: status is not one the protocol knows"


async def test_a_callback_whose_reference_no_column_holds_is_refused(supplier: RigFactory) -> None:
    async with supplier() as rig:
        with pytest.raises(SignatureError) as refused:
            rig.adapter.parse_callback(b'{"request_id": "Q1013-1", "status": "SUCCEEDED", "reference": "%s"}' % (b"r" * 129))

        assert str(refused.value) == "a malformed callback: reference must be a string of at most 128 characters"


async def test_requests_signed_with_the_wrong_secret_are_refused_and_credit_nothing(
    supplier: RigFactory,
) -> None:
    async with supplier(mode="sync") as rig:
        impostor = HttpSupplier("sim", rig.url, "not-the-secret")
        try:
            submitted = await impostor.submit(rig.topup("Q1014-1"))
            queried = await impostor.query("Q1014-1")
        finally:
            await impostor.close()

        assert [submitted, queried] == [
            Result(Outcome.FAILED, "Q1014-1", message="the signature does not match the body"),
            Result(Outcome.UNKNOWN, "Q1014-1", message="query: HTTP 401"),
        ]
        assert await rig.submissions() == []


async def test_logs_name_the_account_masked_and_never_the_secret(
    supplier: RigFactory, caplog: pytest.LogCaptureFixture
) -> None:
    async with supplier(mode="sync", fail_accounts=["13912345678"]) as rig:
        with caplog.at_level(logging.INFO, logger="quanyi.suppliers"):
            await rig.adapter.submit(rig.topup("Q1015-1", account="13800138000"))
            await rig.adapter.submit(rig.topup("Q1015-2", account="13912345678"))
            await rig.faults(server_error="before")
            await rig.adapter.submit(rig.topup("Q1015-3", account="13800138000"))

        assert [r.getMessage() for r in caplog.records] == [
            "supplier sim took Q1015-1 (QQ-COIN-50 to *******8000): SUCCEEDED",
            "supplier sim refused Q1015-2 (QQ-COIN-50 to *******5678): "
            "the account cannot be credited",
            "supplier sim submit Q1015-3 (QQ-COIN-50 to *******8000): outcome unknown (HTTP 500)",
        ]
        assert SECRET not in repr(rig.adapter)


async def test_a_request_id_with_any_characters_is_found_again(supplier: RigFactory) -> None:
    async with supplier(mode="sync") as rig:
        answer = await rig.adapter.submit(rig.topup("Q1016/第1行 #2"))

        assert await rig.adapter.query("Q1016/第1行 #2") == answer
        assert answer.outcome is Outcome.SUCCEEDED
