"""Benchmarks and fault runs for the quality targets (README): `python -m bench [--quick]`."""
