"""Marketplace connectors: pull and take pushed trades, fulfil them as orders of the
marketplace's channel, report the deliveries back, honour the marketplace's refunds."""
