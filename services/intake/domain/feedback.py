"""Department feedback sent through intake's HTTP API: checked, then published to ``feedback``.

Departments without a Kafka client post what happened on the ground
(accepted, handled, returned, verified, verification failed, rated); this
module decides whether the case can take it and builds the event.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from pydantic import ValidationError

from services.intake.domain.progress import Progress
from shared.apikeys import Principal
from shared.events.envelope import EVENT_TYPES, EventData
from shared.events.feedback import ActorRole
from shared.reference import ReferenceData

FeedbackKind = Literal[
    "accepted", "handled", "returned", "verified", "verification_failed", "rated"
]

#: Who usually sends each kind, when the request does not say.
DEFAULT_ROLE: dict[FeedbackKind, ActorRole] = {
    "accepted": "department",
    "handled": "department",
    "returned": "department",
    "verified": "inspector",
    "verification_failed": "inspector",
    "rated": "callback_centre",
}

#: Optional fields each kind takes; anything else given is a mistake worth naming.
_TAKES: dict[FeedbackKind, frozenset[str]] = {
    "accepted": frozenset(),
    "handled": frozenset({"media_urls"}),
    "returned": frozenset({"reason", "suggested_department"}),
    "verified": frozenset({"media_urls", "lookback"}),
    "verification_failed": frozenset({"reason", "media_urls", "lookback"}),
    "rated": frozenset({"rating"}),
}
_REQUIRES: dict[FeedbackKind, tuple[str, ...]] = {
    "returned": ("reason",),
    "verification_failed": ("reason",),
    "rated": ("rating",),
}


@dataclass(frozen=True)
class FeedbackRequest:
    """What a department, inspector or call-back centre posts about a case."""

    kind: FeedbackKind
    actor_id: str
    actor_role: ActorRole | None = None
    note: str = ""
    department: str | None = None
    reason: str | None = None
    suggested_department: str | None = None
    media_urls: tuple[str, ...] = ()
    rating: str | None = None
    lookback: bool | None = None

    def given(self) -> set[str]:
        """Names of the kind-specific fields the request filled in."""
        out = set()
        for name in ("reason", "suggested_department", "rating", "lookback"):
            if getattr(self, name) is not None:
                out.add(name)
        if self.media_urls:
            out.add("media_urls")
        return out


@dataclass(frozen=True)
class FeedbackRefused:
    """Why the feedback cannot be taken: the request is wrong (``invalid``), the case cannot
    (``conflict``) or the sender may not (``forbidden``)."""

    kind: Literal["invalid", "conflict", "forbidden"]
    message: str
    field: str | None = None
    details: tuple[str, ...] = ()


#: What a department's key may post: its own work on the cases it holds (签收, 处置, 回退).
DEPARTMENT_KINDS: frozenset[FeedbackKind] = frozenset({"accepted", "handled", "returned"})
#: What the supervision centre's key may post: inspectors' checks and call-back ratings.
CENTRE_KINDS: frozenset[FeedbackKind] = frozenset({"verified", "verification_failed", "rated"})
CENTRE_ROLES: frozenset[ActorRole] = frozenset({"inspector", "callback_centre", "command_centre"})


def authorise(
    principal: Principal, case_id: str, request: FeedbackRequest, progress: Progress
) -> FeedbackRequest | FeedbackRefused:
    """May ``principal`` post ``request`` on the case? The request as it will be filed, or why not.

    A department speaks only for itself, on a case it leads or co-handles; the
    centre verifies and rates but never signs for or handles a department's case.
    """
    kind = request.kind
    if principal.kind == "department":
        if kind not in DEPARTMENT_KINDS:
            return FeedbackRefused(
                "forbidden",
                f"a department key may post {', '.join(sorted(DEPARTMENT_KINDS))}; "
                f"{kind!r} is the supervision centre's",
                "type",
            )
        if request.actor_role not in (None, "department"):
            return FeedbackRefused(
                "forbidden",
                f"a department key posts as actor_role 'department', not {request.actor_role!r}",
                "actor_role",
            )
        if request.department not in (None, principal.id):
            return FeedbackRefused(
                "forbidden",
                f"{principal} may not post feedback for department {request.department!r}",
                "department",
            )
        holders = {progress.department, *progress.co_departments} - {None}
        if progress.department is not None and principal.id not in holders:
            return FeedbackRefused(
                "forbidden",
                f"case {case_id} is held by {progress.department}, not {principal.id}",
                "case_id",
            )
        if progress.department is not None:
            # A co-department's feedback is about its own share of the case.
            return replace(request, department=principal.id)
        return request
    if principal.kind == "centre":
        if kind not in CENTRE_KINDS:
            return FeedbackRefused(
                "forbidden",
                f"the centre's key may post {', '.join(sorted(CENTRE_KINDS))}; "
                f"{kind!r} is the department's own to post",
                "type",
            )
        if request.actor_role is not None and request.actor_role not in CENTRE_ROLES:
            return FeedbackRefused(
                "forbidden",
                f"the centre's key posts as {', '.join(sorted(CENTRE_ROLES))}, "
                f"not {request.actor_role!r}",
                "actor_role",
            )
        return request
    return FeedbackRefused("forbidden", f"a {principal.kind} key cannot post case feedback")


def feedback_event(
    case_id: str, request: FeedbackRequest, progress: Progress, ref: ReferenceData
) -> EventData | FeedbackRefused:
    """The ``feedback`` event for ``request`` on a case in state ``progress``, or why not."""
    kind = request.kind
    for name in sorted(request.given() - _TAKES[kind]):
        return FeedbackRefused("invalid", f"{name!r} does not apply to {kind!r} feedback", name)
    for name in _REQUIRES.get(kind, ()):
        if name not in request.given():
            return FeedbackRefused("invalid", f"{kind!r} feedback needs {name!r}", name)
    if request.department is not None and ref.department(request.department) is None:
        return FeedbackRefused(
            "invalid", f"{request.department!r} is not a known department", "department"
        )
    if (
        request.suggested_department is not None
        and ref.department(request.suggested_department) is None
    ):
        return FeedbackRefused(
            "invalid",
            f"{request.suggested_department!r} is not a known department",
            "suggested_department",
        )
    if progress.status == "merged":
        return FeedbackRefused(
            "conflict",
            f"case {case_id} is a duplicate of {progress.master_case_id}; send feedback there",
        )
    department = request.department or progress.department
    if department is None:
        return FeedbackRefused(
            "conflict",
            f"case {case_id} has not been dispatched yet; name the department the feedback is for",
            "department",
        )
    if progress.status == "closed":
        if kind in ("accepted", "handled", "returned"):
            return FeedbackRefused("conflict", f"case {case_id} is closed")
        if kind in ("verified", "verification_failed") and not request.lookback:
            return FeedbackRefused(
                "conflict",
                f"case {case_id} is closed; a re-inspection of a closed case is a look-back"
                " (lookback: true)",
                "lookback",
            )
    doc: dict[str, object] = {
        "case_id": case_id,
        "department": department,
        "area": progress.area,
        "actor_id": request.actor_id,
        "actor_role": request.actor_role or DEFAULT_ROLE[kind],
        "note": request.note,
    }
    for name in request.given():
        value = getattr(request, name)
        doc[name] = list(value) if isinstance(value, tuple) else value
    try:
        return EVENT_TYPES[f"case.{kind}"].model_validate(doc)
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in exc.errors()
        ]
        return FeedbackRefused("invalid", "; ".join(problems), None, tuple(problems))
