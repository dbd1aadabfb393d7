"""Benchmarks (`make bench`): not tests. See bench/run.py."""
