"""Test infrastructure that ships with the package so tests and benchmarks share it."""
