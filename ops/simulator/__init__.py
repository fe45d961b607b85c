"""A simulated city: channels that report problems and departments, inspectors and a
call-back centre that answer the pipeline's events, with realistic rhythm and temperaments."""
