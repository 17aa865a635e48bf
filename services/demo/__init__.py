"""Demo data and the simulated suppliers wired by `serve --demo`."""
