"""The supervision service: deadline timers, warnings, overdue notices, verification, closing, bounce-back and look-back."""
