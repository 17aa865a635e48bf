"""Risk verdicts: the check before an order's write transaction, its counters, rules and reads."""
