"""Operators' tools: the `citycases` command line, the city simulator, `make run`."""
