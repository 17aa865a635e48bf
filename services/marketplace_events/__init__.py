"""What orders tell the marketplace connectors as they move: kept apart from
services/marketplaces (which places and pays orders) so that the order services can tell
it without an import circle."""
