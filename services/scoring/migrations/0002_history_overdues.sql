-- What case_facts.history holds since scoring judges red lights by event time: the
-- handlings and every case.overdue seen, so that a sign-for or handling done before its
-- deadline withdraws a light that fired while it was still on its way. No data changes:
-- a fact saved before keeps its overdue_at until its case's next light or a recompute.
COMMENT ON COLUMN case_facts.history IS
    '{"dispatches": [[dispatched_at, dispatch_number, department, sign_for, handle], ...], '
    '"acceptances": [instant, ...], "handlings": [instant, ...], '
    '"overdues": [[fired_at, timer, deadline, dispatch_number], ...], '
    '"verification_failures": [event id, ...]}';
