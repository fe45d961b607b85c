"""Intake's pure decisions: registration (立案), the case read model, department feedback.

No I/O here: functions of (state, event or report, reference data, time).
"""

from services.intake.domain.feedback import (
    FeedbackKind,
    FeedbackRefused,
    FeedbackRequest,
    authorise,
    feedback_event,
)
from services.intake.domain.progress import Progress, TimelineEntry, fold
from services.intake.domain.registration import (
    Accepted,
    Candidate,
    DuplicateSearch,
    Merged,
    Registered,
    Rejected,
    Repeated,
    Site,
    Submission,
    Verdict,
    assess,
    assess_batch,
    case_id_for,
    duplicate_search,
    locate,
    nearest_master,
    register_batch,
)

__all__ = [
    "Accepted",
    "Candidate",
    "DuplicateSearch",
    "FeedbackKind",
    "FeedbackRefused",
    "FeedbackRequest",
    "Merged",
    "Progress",
    "Registered",
    "Rejected",
    "Repeated",
    "Site",
    "Submission",
    "TimelineEntry",
    "Verdict",
    "assess",
    "assess_batch",
    "case_id_for",
    "duplicate_search",
    "authorise",
    "feedback_event",
    "fold",
    "locate",
    "nearest_master",
    "register_batch",
]
