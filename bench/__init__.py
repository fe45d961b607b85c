"""Benchmarks: scripts that print numbers (``make bench``), never timed tests."""
