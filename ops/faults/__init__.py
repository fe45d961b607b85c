"""The fault run (issue 9): the whole pipeline under kills, a frozen broker, a restarted
database and rewound consumer groups, then an audit of what came out.

``schedule`` decides the faults from a seed, ``audit`` judges collected facts,
``driver`` does the process control and I/O; ``python -m ops.faults`` runs it.
"""
