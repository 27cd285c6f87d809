"""Helpers shared by the tests and the benchmarks (never part of the image): free ports,
the simulator's tenants, simulated raw callbacks, topics of one run's own."""
