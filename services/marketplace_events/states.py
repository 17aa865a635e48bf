"""The states of a marketplace trade's record (models/marketplaces.py) and the report job."""

from __future__ import annotations

# MarketplaceOrder.status
RECEIVED, IMPORTED, FAILED, CANCELLED = "RECEIVED", "IMPORTED", "FAILED", "CANCELLED"
# MarketplaceOrder.report_status
PENDING, REPORTED, REPORT_FAILED = "PENDING", "REPORTED", "FAILED"
# MarketplaceOrder.refund_status
REFUNDED, REQUESTED = "REFUNDED", "REQUESTED"

REPORT = "marketplace.report"  # the job kind: report one trade's delivery


def report_key(record_id: int, round: int = 0) -> str:
    """The report job of a record, or of one of its retries by hand."""
    return f"{REPORT}:{record_id}" + (f":{round}" if round else "")
