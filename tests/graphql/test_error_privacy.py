"""What a failure tells the caller and the logs: never SQL, bound values, phones or e-mails.

Debug mode (QUANYI_DEBUG) shows a bug's own message to the caller, which is its use; a
database error's message holds the statement and its values, so it stays masked there too.
Every log line masks buyers' phones and e-mail addresses, whoever wrote it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.orders import reads
from tests.e2e.shop import Shop, open_shop

ORDERS = "query { orders(first: 5) { edges { node { number } } } }"
PHONE, EMAIL = "13912345678", "li.wei@example.cn"


@pytest.fixture(scope="module")
async def shop(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Shop]:
    async with open_shop(tmp_path_factory.mktemp("error-privacy"), debug=True) as opened:
        yield opened


async def _failing_statement(session: AsyncSession, *_: Any, **__: Any) -> Any:
    """A read that fails in the database with a buyer's contact among its bound values."""
    await session.execute(
        text("SELECT id FROM no_such_table WHERE buyer_phone = :phone AND buyer_email = :email"),
        {"phone": PHONE, "email": EMAIL},
    )


async def _broken_resolver(*_: Any, **__: Any) -> Any:
    raise RuntimeError("the order page came back in pieces")


def _logged(caplog: pytest.LogCaptureFixture) -> str:
    """Everything the gateway logged, as a handler writes it: messages and tracebacks."""
    formatter = logging.Formatter("%(name)s %(message)s")
    return "\n".join(formatter.format(record) for record in caplog.records)


async def test_in_debug_mode_a_database_error_is_still_masked(
    shop: Shop, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(reads, "order_page", _failing_statement)

    with caplog.at_level(logging.ERROR, logger="quanyi.errors"):
        response = await shop.client.post(ORDERS, key=shop.keys.admin)

    answer = response.json()
    assert answer["data"] is None
    assert [(e["message"], e["extensions"]["code"]) for e in answer["errors"]] == [
        ("Internal server error", "INTERNAL_SERVER_ERROR")
    ]
    assert answer["errors"][0]["extensions"]["requestId"] == response.headers["x-request-id"]
    for leak in ("no_such_table", "SELECT", PHONE, EMAIL):
        assert leak not in response.text


async def test_the_logged_database_error_names_neither_the_phone_nor_the_email(
    shop: Shop, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(reads, "order_page", _failing_statement)

    with caplog.at_level(logging.ERROR, logger="quanyi.errors"):
        response = await shop.client.post(ORDERS, key=shop.keys.admin)

    logged = _logged(caplog)
    assert f"unexpected error in orders (request {response.headers['x-request-id']})" in logged
    assert "no_such_table" in logged  # the statement still tells an operator where it failed
    assert PHONE not in logged and EMAIL not in logged


async def test_in_debug_mode_another_bug_shows_its_message(shop: Shop, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reads, "order_page", _broken_resolver)

    answer = await shop.gql(ORDERS, key=shop.keys.admin)

    assert [(e["message"], e["extensions"]["code"]) for e in answer["errors"]] == [
        ("the order page came back in pieces", "INTERNAL_SERVER_ERROR")
    ]


async def test_every_log_line_masks_phones_and_emails(shop: Shop, caplog: pytest.LogCaptureFixture) -> None:
    # As an SMTP server's refusal reaches the job worker's log, and a library's error a traceback.
    worker = logging.getLogger("quanyi.worker")
    with caplog.at_level(logging.INFO):
        worker.warning("job %s failed: %s", "deliver:7:EMAIL:1", f"SMTPRecipientsRefused({{'{EMAIL}': (550, b'no')}})")
        logging.getLogger("some.library").info("sending to +86 139 1234 5678 and %s", "Li.Wei@Example.cn")
        try:
            raise ValueError(f"cannot reach {PHONE}")
        except ValueError:
            worker.exception("delivery failed")

    assert [record.getMessage() for record in caplog.records] == [
        "job deliver:7:EMAIL:1 failed: SMTPRecipientsRefused({'l***@example.cn': (550, b'no')})",
        "sending to 139****5678 and L***@Example.cn",
        "delivery failed",
    ]
    logged = _logged(caplog)
    assert "ValueError: cannot reach 139****5678" in logged
    assert PHONE not in logged and EMAIL not in logged.lower()
