"""The scoring service: indicators, composite scores, bands and rankings per unit and period (step 7)."""
