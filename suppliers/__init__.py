"""Upstream suppliers: the adapter protocol, the HTTP adapter and the simulated supplier.

`base` holds the protocol fulfilment codes against; `signing` and `wire` are the signed
JSON both sides speak; `http.HttpSupplier` is the adapter; `simulator.create_simulator`
(state in `sim_state`) is the supplier `quanyi supplier-sim` serves.
"""
