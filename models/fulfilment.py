"""Fulfilment: durable jobs and their attempts, deliveries, top-ups, refunds, reveal audit."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text, true
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utcnow


class Job(Base):
    """Work that must happen after a commit (fulfil an order, send a delivery).

    Written in the transaction of the change that needs it, so the work is never lost;
    `key` makes enqueueing the same work twice a no-op. A worker leases a job by setting
    `locked_until` and `lease`; a job whose worker died is claimed again once the lease
    ends. The lease names the worker holding it (services/core/jobs.py lease_token). READY
    jobs run when `run_after` has passed; DONE is final.
    """

    __tablename__ = "job"
    __table_args__ = (Index("ix_job_due", "status", "run_after"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(128), unique=True)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("order.id"), index=True)
    payload: Mapped[str] = mapped_column(Text, default="{}")
    status: Mapped[str] = mapped_column(String(16), default="READY")  # READY, DONE
    attempts: Mapped[int] = mapped_column(default=0)
    run_after: Mapped[datetime] = mapped_column(default=utcnow)
    locked_until: Mapped[datetime | None]
    lease: Mapped[str | None] = mapped_column(String(64))
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    done_at: Mapped[datetime | None]


class JobAttempt(Base):
    """One run of a job: when, how it ended, and why (never a secret)."""

    __tablename__ = "job_attempt"

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("job.id"), index=True)
    worker: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime]
    outcome: Mapped[str] = mapped_column(String(16))  # DONE, LATER, ERROR, RELEASED (given back at shutdown)
    error: Mapped[str | None] = mapped_column(String(500))


class Delivery(Base):
    """How one order line's codes went out on one channel (inbox, SMS, email)."""

    __tablename__ = "delivery"
    __table_args__ = (Index("ix_delivery_line", "line_id", "channel", unique=True),)

    id: Mapped[int] = mapped_column(primary_key=True)
    line_id: Mapped[int] = mapped_column(ForeignKey("order_line.id"))
    channel: Mapped[str] = mapped_column(String(16))  # INBOX, SMS, EMAIL
    status: Mapped[str] = mapped_column(String(16), default="PENDING")  # PENDING, SENT, FAILED
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(String(500))
    sent_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DeliveryResend(Base):
    """How often a line's codes were sent again in its current window (resendDelivery's limit).

    The window opens with the first resend after the last one closed; one conditional upsert
    counts a resend, so concurrent requests never get more than the limit between them.
    """

    __tablename__ = "delivery_resend"

    line_id: Mapped[int] = mapped_column(ForeignKey("order_line.id"), primary_key=True, autoincrement=False)
    window_start: Mapped[datetime]
    resends: Mapped[int]


class InboxMessage(Base):
    """A message in the buyer's in-app inbox. Never holds a code's secret."""

    __tablename__ = "inbox_message"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("order.id"), index=True)
    line_id: Mapped[int | None] = mapped_column(ForeignKey("order_line.id"))
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(String(2000))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TopUpTask(Base):
    """One direct top-up owed to a buyer: a DIRECT_RECHARGE line or one bundle component.

    `request_id` is the supplier idempotency key and never changes; `supplier_index` is
    the position in the SKU's supplier list now being tried. States: NEW (submit next),
    SUBMITTING (a submission may be under way: query before anything else), PENDING
    (accepted: await the callback, query as fallback), SUCCEEDED, FAILED (every supplier
    refused). A NEW task whose remaining suppliers cannot be reached waits (`waiting_since`)
    for an operator to connect one, for a bounded time, before it fails.
    """

    __tablename__ = "topup_task"
    __table_args__ = (Index("ix_topup_task_line", "line_id"), Index("ix_topup_task_waiting", "waiting_since"))

    id: Mapped[int] = mapped_column(primary_key=True)
    line_id: Mapped[int] = mapped_column(ForeignKey("order_line.id"))
    sku_id: Mapped[int] = mapped_column(ForeignKey("sku.id"))
    units: Mapped[int]
    request_id: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="NEW")
    supplier_index: Mapped[int] = mapped_column(default=0)
    supplier_id: Mapped[int | None] = mapped_column(ForeignKey("supplier.id"))
    supplier_reference: Mapped[str | None] = mapped_column(String(128))
    checks: Mapped[int] = mapped_column(default=0)
    next_check_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Since when no supplier it could still try has a usable connection; None when not waiting.
    waiting_since: Mapped[datetime | None]


class SupplierAttempt(Base):
    """Every exchange with a supplier about a top-up: submit, query or callback.

    Recorded whether or not it moved the task: an answer that arrives after a callback (or
    another worker) already decided the task is kept with `applied` false, never dropped.
    """

    __tablename__ = "supplier_attempt"

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("topup_task.id"), index=True)
    supplier_id: Mapped[int] = mapped_column(ForeignKey("supplier.id"))
    request_id: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(16))  # SUBMIT, QUERY, CALLBACK
    outcome: Mapped[str] = mapped_column(String(16))
    supplier_reference: Mapped[str | None] = mapped_column(String(128))
    message: Mapped[str] = mapped_column(String(500), default="")
    applied: Mapped[bool] = mapped_column(default=True, server_default=true())
    at: Mapped[datetime] = mapped_column(default=utcnow)


class Refund(Base):
    """Money owed back to a buyer, written with the transition that decided it.

    `key` makes it once only: `order:<id>` for lines that could not be fulfilled,
    `payment:<order id>:<reference>` for a payment the order could not use (it had expired,
    was cancelled, rejected, held for review, or was paid already with another payment).
    `reference` is the payment it returns. Status CREDITED (a prepaid balance was credited
    back here) or REQUESTED (recorded for the payment provider).
    """

    __tablename__ = "refund"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(160), unique=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("order.id"), index=True)
    line_ids: Mapped[str] = mapped_column(String(500), default="")  # comma-separated
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    reason: Mapped[str] = mapped_column(String(500))
    reference: Mapped[str | None] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CodeReveal(Base):
    """One reveal of an order line's code secrets: who, when, from where."""

    __tablename__ = "code_reveal"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("order.id"), index=True)
    line_id: Mapped[int] = mapped_column(ForeignKey("order_line.id"))
    actor: Mapped[str] = mapped_column(String(120))
    client_ip: Mapped[str | None] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(default=utcnow)
