"""Benchmarks: each module runs standalone (`python -m benchmarks.<name>`) and prints its numbers."""
