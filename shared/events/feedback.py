"""Events on ``feedback``: what happens on the ground (DOMAIN.md steps 4-6).

Written by systems outside the pipeline (department systems, inspectors'
apps, the call-back centre), directly or through intake's HTTP API. Every
event names the department the case is with, so the ``department`` routing
header means the same on every topic: "this concerns a case of that
department", even when the sender is an inspector or the call-back centre.
"""

from __future__ import annotations

from datetime import timedelta
from typing import ClassVar, Literal

from pydantic import AwareDatetime, Field

from shared.events.envelope import EventData
from shared.events.types import Identifier, MediaUrls, Note, ShortText

ActorRole = Literal["department", "inspector", "callback_centre", "command_centre"]


class _Feedback(EventData):
    """Who reports what about which case: the case's department, the acting person, a note."""

    case_id: Identifier
    department: Identifier = Field(description="the department the case is with")
    area: Identifier | None = Field(default=None, description="the case's area (块), if known")
    actor_id: Identifier = Field(description="staff id of the person acting, not a citizen")
    actor_role: ActorRole
    note: Note = ""


class CaseAccepted(_Feedback):
    """The department signed for the case (签收); stops the sign-for clock."""

    event_type: ClassVar[str] = "case.accepted"
    topic: ClassVar[str] = "feedback"


class CaseHandled(_Feedback):
    """The department reports the case fixed (处理反馈); starts the inspector's verification clock."""

    event_type: ClassVar[str] = "case.handled"
    topic: ClassVar[str] = "feedback"

    media_urls: MediaUrls = Field(default_factory=list, description="photos after the fix")


class CaseReturned(_Feedback):
    """The department says the case is not theirs (回退); dispatch re-routes or escalates it."""

    event_type: ClassVar[str] = "case.returned"
    topic: ClassVar[str] = "feedback"

    reason: ShortText
    suggested_department: Identifier | None = None


class CaseExtensionRequested(_Feedback):
    """The department asks for more time (延期申请); only engineering-tier cases may get it."""

    event_type: ClassVar[str] = "case.extension_requested"
    topic: ClassVar[str] = "feedback"

    requested: timedelta = Field(gt=timedelta(0), description="extra time asked for")
    reason: ShortText


class CaseExtensionGranted(_Feedback):
    """An approver at the command centre grants an extension, overriding the rule.

    Dispatch re-issues the deadlines with a ``case.redispatched`` of reason
    ``extension``; this event alone moves no clock.
    """

    event_type: ClassVar[str] = "case.extension_granted"
    topic: ClassVar[str] = "feedback"

    granted: timedelta = Field(gt=timedelta(0))
    request_event_id: Identifier | None = Field(
        default=None, description="id of the case.extension_requested event answered"
    )


class CaseVerified(_Feedback):
    """An inspector checked on site and found the problem fixed (核查通过); supervision closes it."""

    event_type: ClassVar[str] = "case.verified"
    topic: ClassVar[str] = "feedback"

    media_urls: MediaUrls = Field(default_factory=list)
    lookback: bool = Field(default=False, description="a look-back (回头看) check of a closed case")


class CaseVerificationFailed(_Feedback):
    """An inspector found the problem not fixed (核查不通过); supervision orders rework."""

    event_type: ClassVar[str] = "case.verification_failed"
    topic: ClassVar[str] = "feedback"

    reason: ShortText
    media_urls: MediaUrls = Field(default_factory=list)
    lookback: bool = Field(default=False, description="a look-back (回头看) check of a closed case")


Rating = Literal["satisfied", "basically_satisfied", "dissatisfied"]


class CaseRated(_Feedback):
    """The reporter's verdict from a call-back (回访): counts in the satisfaction rate."""

    event_type: ClassVar[str] = "case.rated"
    topic: ClassVar[str] = "feedback"

    rating: Rating


class CaseParked(_Feedback):
    """Work that cannot be done now goes to the problem store (挂账); its clocks stop."""

    event_type: ClassVar[str] = "case.parked"
    topic: ClassVar[str] = "feedback"

    reason: ShortText
    resume_expected_at: AwareDatetime | None = None


class CaseUnparked(_Feedback):
    """A parked case comes back to active work; its clocks resume where they stopped."""

    event_type: ClassVar[str] = "case.unparked"
    topic: ClassVar[str] = "feedback"
