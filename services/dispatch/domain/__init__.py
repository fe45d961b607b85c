"""Dispatch's pure decisions: routing (条 and 块), deadlines, and a case's life in dispatch's hands."""
