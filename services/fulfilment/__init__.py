"""Fulfilling paid orders: codes delivered, top-ups run through suppliers, follow-ups and reveals."""
