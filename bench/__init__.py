"""Benchmarks of the hub: ``python -m bench.run`` runs them and prints a table (see bench/README.md)."""
