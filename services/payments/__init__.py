"""Money in and back out: payment notifications and refunds."""
