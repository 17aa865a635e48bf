"""Outbound webhooks: endpoints, events, signing and delivery."""
