"""Benchmarks and fault runs for the quality targets (SPEC §10): `python -m bench [--quick]`."""
