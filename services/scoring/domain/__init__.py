"""Scoring's pure decisions: case facts and their contributions, rates, scores, ranks.

No I/O here: every function takes the state, the event, the reference data
(``ScoringRules``, the grid's places) and returns the new state or figures.
"""
