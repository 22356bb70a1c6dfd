"""Benchmarks: one command each (see the Makefile), printing their figures."""
