"""Marketplace adapters: the MarketplaceAdapter protocol, an open-platform HTTP adapter in the
shape of Taobao's and JD's, and a simulated marketplace that speaks the same protocol."""
