"""The states of a marketplace trade's record (models/marketplaces.py) and the report job."""

from __future__ import annotations

# MarketplaceOrder.status
RECEIVED, IMPORTED, FAILED, CANCELLED = "RECEIVED", "IMPORTED", "FAILED", "CANCELLED"
# MarketplaceOrder.report_status
PENDING, REPORTED, REPORT_FAILED = "PENDING", "REPORTED", "FAILED"
# MarketplaceOrder.refund_status (AGREED, REFUSED: the operators' decision; also the Refund's status)
REFUNDED, REQUESTED, AGREED, REFUSED = "REFUNDED", "REQUESTED", "AGREED", "REFUSED"
CLOSED = "CLOSED"  # the refund was closed on the marketplace before an operator decided it

REPORT = "marketplace.report"  # the job kind: report one trade's delivery
DECISION = "marketplace.refund-decision"  # the job kind: report the decision on one refund


def report_key(record_id: int, round: int = 0) -> str:
    """The report job of a record, or of one of its retries by hand."""
    return f"{REPORT}:{record_id}" + (f":{round}" if round else "")


def decision_key(refund_id: int, round: int = 0) -> str:
    """The job that reports the decision on a Refund (by our id), or one of its retries by hand."""
    return f"{DECISION}:{refund_id}" + (f":{round}" if round else "")
