"""Benchmarks: each runs standalone (`python -m benchmarks.<name>`) and prints its numbers."""
