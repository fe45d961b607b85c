"""The event contract: one pydantic model per event type, one module per topic.

Importing this package imports every topic module, so :data:`EVENT_TYPES`
(event type -> model) is complete wherever any event is decoded. The topic
registry (``shared.topics``) and the AsyncAPI document (``shared.asyncapi``)
are derived from these classes, never written beside them.
"""

from shared.events.assignments import (
    CaseDispatched,
    CaseEscalated,
    CaseExtensionRefused,
    CaseRedispatched,
)
from shared.events.cases import CaseMerged, CaseRegistered, RejectionReason, ReportRejected
from shared.events.envelope import (
    EVENT_TYPES,
    Envelope,
    EventData,
    PoisonMessage,
    decode,
    encode,
    kafka_headers,
    make_event,
)
from shared.events.feedback import (
    CaseAccepted,
    CaseExtensionGranted,
    CaseExtensionRequested,
    CaseHandled,
    CaseParked,
    CaseRated,
    CaseReturned,
    CaseUnparked,
    CaseVerificationFailed,
    CaseVerified,
)
from shared.events.reports import Reporter, ReportSubmitted
from shared.events.scores import Indicators, Rates, ScoreFlags, ScorePublished
from shared.events.supervision import (
    CaseClosed,
    CaseDurations,
    CaseLookbackDue,
    CaseNoticeIssued,
    CaseOverdue,
    CaseRebounded,
    CaseReworkOrdered,
    CaseWarned,
)
from shared.events.types import Deadlines, ReportLocation

#: Version of the contract as a whole; bump it when any event model changes.
CONTRACT_VERSION = "1.1.0"

__all__ = [
    "CONTRACT_VERSION",
    "EVENT_TYPES",
    "CaseAccepted",
    "CaseClosed",
    "CaseDispatched",
    "CaseDurations",
    "CaseEscalated",
    "CaseExtensionGranted",
    "CaseExtensionRefused",
    "CaseExtensionRequested",
    "CaseHandled",
    "CaseLookbackDue",
    "CaseMerged",
    "CaseNoticeIssued",
    "CaseOverdue",
    "CaseParked",
    "CaseRated",
    "CaseRebounded",
    "CaseRedispatched",
    "CaseRegistered",
    "CaseReturned",
    "CaseReworkOrdered",
    "CaseUnparked",
    "CaseVerificationFailed",
    "CaseVerified",
    "CaseWarned",
    "Deadlines",
    "Envelope",
    "EventData",
    "Indicators",
    "PoisonMessage",
    "Rates",
    "RejectionReason",
    "ReportLocation",
    "ReportRejected",
    "ReportSubmitted",
    "Reporter",
    "ScoreFlags",
    "ScorePublished",
    "decode",
    "encode",
    "kafka_headers",
    "make_event",
]
