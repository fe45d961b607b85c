"""A scripted November 2026: thirty-one cases, five departments, four street offices.

The expected tables below are worked out by hand from the script (the
arithmetic is in the comments), not by calling scoring's own code.

Dispatches are at 10:00 with the sign-for deadline at 11:00 and the handling
deadline at 16:00. "Plain" cases are signed for at 10:30, handled at 14:00,
verified and closed, and not rated.
"""

from __future__ import annotations

from shared.events import Envelope
from tests.unit.scoring.story import (
    CELL_CANGLANG,
    CELL_JINCHANG,
    CELL_PINGJIANG,
    CELL_PINGJIANG_2,
    CELL_SHUANGTA,
    Story,
    at,
    rejected,
)


def _plain(case_id: str, department: str, grid: str, day: int) -> Story:
    s = Story(case_id, grid=grid, department=department)
    s.registered(at(day, 9.5))
    s.dispatched(at(day, 10))
    s.accepted(at(day, 10.5))
    s.handled_verified_closed(at(day, 14))
    return s


def november() -> list[Envelope]:
    stories: list[Story] = []

    # -- sanitation, all in Pingjiang ------------------------------------------
    s1 = Story("S1", grid=CELL_PINGJIANG, department="sanitation")
    s1.registered(at(2, 9))
    s1.dispatched(at(2, 10))
    s1.accepted(at(2, 10.5))
    s1.warned(at(2, 14.8))
    s1.handled_verified_closed(at(2, 14))
    s1.rated(at(3, 10), "satisfied")
    s2 = Story("S2", grid=CELL_PINGJIANG, department="sanitation")
    s2.registered(at(3, 9))
    s2.dispatched(at(3, 10))
    s2.accepted(at(3, 10.5))
    s2.handled_verified_closed(at(3, 15))
    s2.rated(at(4, 10), "dissatisfied")
    s2.rated(at(5, 10), "basically_satisfied")  # a later call-back: this one counts
    s3 = Story("S3", grid=CELL_PINGJIANG, department="sanitation")
    s3.registered(at(5, 9))
    s3.dispatched(at(5, 10))
    s3.overdue(at(5, 11), timer="sign_for")
    s3.accepted(at(5, 11.5))  # late: not responded
    s3.handled_verified_closed(at(5, 17))  # after 16:00: closed, not on time
    s3.rated(at(6, 10), "dissatisfied")
    s4 = Story("S4", grid=CELL_PINGJIANG, department="sanitation")
    s4.registered(at(9, 9))
    s4.dispatched(at(9, 10))
    s4.accepted(at(9, 10.25))
    s4.handled(at(9, 12))
    s4.failed_and_reworked(at(9, 13))  # one rework; fresh handling deadline 19:02
    s4.handled_verified_closed(at(9, 18))  # on time against the deadline in force
    s5 = Story("S5", grid=CELL_PINGJIANG, department="sanitation")
    s5.registered(at(12, 9))
    s5.dispatched(at(12, 10))
    s5.accepted(at(12, 10.33))
    s5.overdue(at(12, 16))  # never handled
    s6 = Story("S6", grid=CELL_PINGJIANG, department="sanitation")
    s6.merged(at(2, 9.5), master="S1")  # a duplicate: never counts
    s7 = Story("S7", grid=CELL_PINGJIANG, department="sanitation")
    s7.registered(at(16, 9))
    s7.dispatched(at(16, 10))
    s7.redispatched(at(16, 10.5), department="parks")  # "not ours": moves to parks
    s7.accepted(at(16, 11))  # before the new sign-for deadline 11:30
    s7.handled_verified_closed(at(16, 14))
    stories += [s1, s2, s3, s4, s5, s6, s7]
    stories += [_plain(f"SP{i}", "sanitation", CELL_PINGJIANG, 17 + i) for i in range(5)]

    # -- parks, in Canglang ----------------------------------------------------
    for case_id, day, rating in (("P1", 4, "satisfied"), ("P2", 10, "satisfied")):
        p = Story(case_id, grid=CELL_CANGLANG, department="parks")
        p.registered(at(day, 9))
        p.dispatched(at(day, 10))
        p.accepted(at(day, 10.5))
        p.handled_verified_closed(at(day, 13))
        p.rated(at(day + 1, 10), rating)
        stories.append(p)
    p3 = Story("P3", grid=CELL_CANGLANG, department="parks")
    p3.registered(at(18, 9))
    p3.dispatched(at(18, 10))
    p3.accepted(at(18, 10.5))
    p3.handled(at(18, 11))
    p3.failed_and_reworked(at(18, 12))
    p3.failed_and_reworked(at(18, 13))
    p3.failed_and_reworked(at(18, 14))  # three failures, three rework orders
    p3.handled_verified_closed(at(18, 15))
    p4 = Story("P4", grid=CELL_CANGLANG, department="parks")
    p4.registered(at(31, 21, month=10))
    p4.dispatched(at(31, 22, month=10))  # first dispatched in October: not November's
    p4.accepted(at(31, 22.5, month=10))
    p4.handled_verified_closed(at(2, 9))
    stories += [p3, p4]
    stories += [_plain(f"PP{i}", "parks", CELL_CANGLANG, 20 + i) for i in range(2)]

    # -- municipal works and transport, in Jinchang ------------------------------
    for prefix, department, day in (("M", "municipal-works", 6), ("T", "transport", 7)):
        done = _plain(f"{prefix}1", department, CELL_JINCHANG, day)
        waiting = Story(f"{prefix}2", grid=CELL_JINCHANG, department=department)
        waiting.registered(at(day + 13, 9))
        waiting.dispatched(at(day + 13, 10))
        waiting.accepted(at(day + 13, 10.5))  # signed for, never handled (not overdue yet)
        stories += [done, waiting]
        stories += [_plain(f"{prefix}P{i}", department, CELL_JINCHANG, 23 + i) for i in range(2)]

    # -- water affairs, in Shuangta ----------------------------------------------
    w1 = Story("W1", grid=CELL_SHUANGTA, department="water-affairs")
    w1.registered(at(11, 9))
    w1.dispatched(at(11, 10))
    w1.overdue(at(11, 11), timer="sign_for")
    w1.accepted(at(11, 12))
    w1.overdue(at(11, 16), timer="handle")
    w1.handled_verified_closed(at(11, 18))
    w1.rated(at(12, 10), "dissatisfied")
    w2 = Story("W2", grid=CELL_SHUANGTA, department="water-affairs")
    w2.registered(at(25, 9))
    w2.dispatched(at(25, 10))
    w2.overdue(at(25, 11), timer="sign_for")
    stories += [w1, w2, _plain("WP0", "water-affairs", CELL_SHUANGTA, 26)]

    # -- street lighting: nothing due in November, one bounce-back -----------------
    l1 = Story("L1", grid=CELL_PINGJIANG_2, department="street-lighting")
    l1.registered(at(1, 9, month=12))
    l1.dispatched(at(1, 10, month=12))  # December's
    r1 = Story("R1", grid=CELL_PINGJIANG_2, department="street-lighting")
    r1.registered(at(26, 9))
    r1.rebounded(at(26, 9.1), previous_case_id="L0", department="street-lighting")
    stories += [l1, r1]

    events = [e for s in stories for e in s.events]
    events.append(rejected("RJ1", at(3, 8)))
    return events


# unit -> due, closed, on_time, overdue, rework, responded, rated, satisfied,
#         basically_satisfied, failed_verification_3x, rebounds
DEPARTMENTS_NOVEMBER = {
    # S1..S5 + 5 plain (S6 merged, S7 moved to parks): due 10; closed S1-S4 + 5 = 9;
    # on time S1, S2, S4 + 5 = 8; overdue S3, S5; responded S1, S2, S4, S5 + 5 = 9;
    # rated S1 satisfied, S2 basically (its later rating), S3 dissatisfied.
    "sanitation": (10, 9, 8, 2, 1, 9, 3, 1, 1, 0, 0),
    # P1, P2, P3, S7 + 2 plain (P4 is October's): all closed on time, all responded;
    # 3 rework orders on P3 which also failed three times.
    "parks": (6, 6, 6, 0, 3, 6, 2, 2, 0, 1, 0),
    "municipal-works": (4, 3, 3, 0, 0, 4, 0, 0, 0, 0, 0),
    "transport": (4, 3, 3, 0, 0, 4, 0, 0, 0, 0, 0),
    # W1 late on both clocks, W2 never signed for, 1 plain.
    "water-affairs": (3, 2, 1, 2, 0, 1, 1, 0, 0, 0, 0),
    # R1 bounced back on street lighting's earlier case.
    "street-lighting": (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1),
}

# unit -> score, band, rank, bottom three
DEPARTMENT_SCORES_NOVEMBER = {
    # 30×0.9 + 30×0.8 + 30×(1 − 1/9) + 10×(1 + 0.9)/3 = 27 + 24 + 26.6667 + 6.3333 = 84, − 0.2
    "sanitation": (83.8, "B", 2, False),
    # 30 + 30 + 30×(1 − 3/6) + 10 = 85, − 0.2×3 − 0.5×1 = 83.9
    "parks": (83.9, "B", 1, False),
    # satisfaction null: (30×0.75 + 30×0.75 + 30×1) × 100/90 = 83.3333
    "municipal-works": (83.3333, "B", 3, True),
    "transport": (83.3333, "B", 3, True),  # tied with municipal works
    # 30×2/3 + 30×1/3 + 30×1 + 10×0 = 60
    "water-affairs": (60.0, "C", 5, True),
    "street-lighting": (None, None, None, False),  # nothing due: not ranked
}

AREAS_NOVEMBER = {
    # S1-S5, S7, 5 plain: due 11, responded 10, closed 10, rated 3; R1's bounce-back.
    "street-pingjiang": (11, 10, 9, 2, 1, 10, 3, 1, 1, 0, 1),
    # P1, P2, P3, 2 plain.
    "street-canglang": (5, 5, 5, 0, 3, 5, 2, 2, 0, 1, 0),
    # municipal works' and transport's four each.
    "street-jinchang": (8, 6, 6, 0, 0, 8, 0, 0, 0, 0, 0),
    "street-shuangta": (3, 2, 1, 2, 0, 1, 1, 0, 0, 0, 0),
}

AREA_SCORES_NOVEMBER = {
    # 10 + 50 + 40; three units below it, so not in the bottom three
    "street-canglang": (100.0, "A", 1, False),
    # 10×10/11 + 50×10/11 + 40×1.9/3 = 54.5455 + 25.3333 = 79.8788
    "street-pingjiang": (79.8788, "B", 2, True),
    # satisfaction null: (10×1 + 50×0.75) × 100/60 = 79.1667
    "street-jinchang": (79.1667, "B", 3, True),
    # 10×1/3 + 50×2/3 + 40×0 = 36.6667
    "street-shuangta": (36.6667, "E", 4, True),
}

INDICATOR_ORDER = (
    "due",
    "closed",
    "on_time",
    "overdue",
    "rework",
    "responded",
    "rated",
    "satisfied",
    "basically_satisfied",
    "failed_verification_3x",
    "rebounds",
)
