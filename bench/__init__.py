"""Benchmarks: ``make bench`` runs them inside the private network namespace."""
