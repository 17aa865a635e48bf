"""Settlement: the ledger, statements, reconciliation and prepaid balances."""
