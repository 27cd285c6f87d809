"""Benchmarks: each module under bench/ measures callstream beside a baseline in one run."""
