"""Upstream suppliers: the adapter protocol, the HTTP adapter and the simulated supplier."""
