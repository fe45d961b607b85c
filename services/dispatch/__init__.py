"""The dispatch service: routing each case to its department (条) and area (块), deadlines, returns and escalation (step 3)."""
