"""Supervision's decisions, pure: (case state, event, rules, instant) -> (new state, events).

``case`` moves a case on each incoming event and closes it, ``timers`` says
which deadline timers a case has armed and what firing them emits,
``rebound`` recognises bounce-backs, ``rules`` counts time on a case's clock.
No I/O: the store, handlers and scheduler around it do that.
"""
