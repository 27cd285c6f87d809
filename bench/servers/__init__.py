"""Baseline servers that benchmarks measure callstream against."""
