"""Benchmarks of the real cloud process: `make bench` (python -m tests.bench) runs them all."""
