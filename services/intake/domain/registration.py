"""Registration (立案): whether a report becomes a new case, a merged duplicate or a rejection.

Pure decisions over a report, the city's reference data and the cases already
known near it. Every input path (the ``reports`` topic, ``POST /v1/reports``,
Open311 ``POST requests``) ends here with a :class:`Submission`, and the same
verdicts come back: :class:`Registered`, :class:`Merged`, :class:`Rejected`,
or :class:`Repeated` when the channel sent a report it had already sent.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from shared.events.cases import CaseMerged, CaseRegistered, RejectionReason, ReportRejected
from shared.events.reports import AttributeValue, Reporter, ReportSubmitted
from shared.events.types import ReportLocation
from shared.geo import bounding_box, distance_m
from shared.reference import (
    AttributeType,
    Category,
    CategoryKind,
    FilingAttribute,
    GridCell,
    ReferenceData,
    ReportField,
)

#: How far a channel's ``reported_at`` may run ahead of the submission (clock skew of its gateway).
REPORTED_AT_TOLERANCE = timedelta(minutes=5)
#: How long before its submission a report may have been made: older is a channel's mistake.
REPORTED_AT_MAX_AGE = timedelta(days=365)
_SHORT_TEXT = 500

#: The idempotency key of a report: the channel and the channel's own id for it.
ReportKey = tuple[str, str]


@dataclass(frozen=True)
class Submission:
    """A report as it reached intake: what it says, when it was submitted, its reporter's pseudonym."""

    report: ReportSubmitted
    submitted_at: datetime
    reporter_ref: str | None = None

    @property
    def key(self) -> ReportKey:
        return (self.report.channel, self.report.external_id)


@dataclass(frozen=True)
class Site:
    """Where a case is: its grid cell and a point.

    The point is the reported one when the report gave coordinates
    (``precise``), else the cell's centre, which is as close as a grid code
    gets; duplicates are searched around it either way.
    """

    cell: GridCell
    lat: float
    long: float
    precise: bool
    #: The area (块): the street office answering for the cell's street, as the contract says.
    area: str


@dataclass(frozen=True)
class Candidate:
    """A case a new report may duplicate: a master case (never itself a duplicate) of the category."""

    case_id: str
    category_code: str
    lat: float
    long: float
    registered_at: datetime
    closed_at: datetime | None = None


@dataclass(frozen=True)
class Registered:
    submission: Submission
    site: Site
    event: CaseRegistered


@dataclass(frozen=True)
class Merged:
    submission: Submission
    site: Site
    event: CaseMerged


@dataclass(frozen=True)
class Rejected:
    submission: Submission
    event: ReportRejected


@dataclass(frozen=True)
class Repeated:
    """The channel sent this report before: it gets the same case back, and nothing is published."""

    submission: Submission
    case_id: str


Verdict = Registered | Merged | Rejected | Repeated


@dataclass(frozen=True)
class Accepted:
    """A report that can be filed: its category and where it is."""

    category: Category
    site: Site


# -- case ids ---------------------------------------------------------------------

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
#: Every 10-bit value as its two characters: 13 look-ups for an id, not 26 shifts.
_PAIRS = tuple(a + b for a in _CROCKFORD for b in _CROCKFORD)


def case_id_for(channel: str, external_id: str, reported_at: datetime) -> str:
    """The case id of a channel's report: a ULID whose time is the report's and whose rest is a hash.

    Derived, not random, so replaying the ``reports`` topic into an empty
    store gives every case the id it had before; sortable by report time
    like every other id of the system.
    """
    millis = max(0, int(reported_at.timestamp() * 1000)) & ((1 << 48) - 1)
    digest = hashlib.sha256(f"{channel}\x1f{external_id}".encode()).digest()
    # 130 bits: 50 of time (10 characters), then 80 of hash (16 characters).
    value = (millis << 80) | int.from_bytes(digest[:10], "big")
    return "".join([_PAIRS[(value >> shift) & 1023] for shift in range(120, -1, -10)])


# -- location ---------------------------------------------------------------------


def _reason(code: str, field_name: str | None, message: str) -> RejectionReason:
    return RejectionReason.model_validate(
        {"code": code, "field": field_name, "message": message[:_SHORT_TEXT]}
    )


def locate(location: ReportLocation, ref: ReferenceData) -> Site | list[RejectionReason]:
    """The grid cell of a report: from lat/long, else from a grid code; an address alone is not enough.

    The reference data has no address gazetteer, so a report located only by
    an address cannot be placed on the grid and is rejected with
    ``unknown_address``; the address is kept as text when coordinates or a
    grid code come with it.
    """
    reasons: list[RejectionReason] = []
    coded: GridCell | None = None
    if location.grid_code is not None:
        coded = ref.cell(location.grid_code)
        if coded is None:
            reasons.append(
                _reason(
                    "unknown_grid_code",
                    "location.grid_code",
                    f"grid code {location.grid_code} is not a cell of this city's grid",
                )
            )
    if location.lat is not None and location.long is not None:
        cell = ref.cell_at(location.lat, location.long)
        if cell is None:
            reasons.append(
                _reason(
                    "outside_city",
                    "location",
                    f"the point ({location.lat}, {location.long}) is outside the city's grid",
                )
            )
        if reasons or cell is None:
            return reasons
        return Site(
            cell=cell,
            lat=location.lat,
            long=location.long,
            precise=True,
            area=ref.street_office(cell.street).id,
        )
    if location.grid_code is not None:
        if coded is None:
            return reasons
        lat, long = coded.centre
        return Site(
            cell=coded, lat=lat, long=long, precise=False, area=ref.street_office(coded.street).id
        )
    if location.address is not None:
        return [
            _reason(
                "unknown_address",
                "location.address",
                "an address alone cannot be placed on the grid (this city has no address"
                " gazetteer); send lat/long or a grid code with it",
            )
        ]
    return [_reason("missing_location", "location", "a report needs lat/long or a grid code")]


# -- filing conditions ------------------------------------------------------------


def _is_blank(value: AttributeValue | None) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, list):
        return not any(v.strip() for v in value)
    return False


def _attribute_problem(attribute: FilingAttribute, value: AttributeValue) -> str | None:
    """Why ``value`` is not a valid answer to ``attribute``, or None when it is."""
    datatype = attribute.datatype
    if datatype in (AttributeType.STRING, AttributeType.TEXT):
        if isinstance(value, bool) or isinstance(value, list):
            return "must be text"
        return None
    if datatype is AttributeType.NUMBER:
        if isinstance(value, bool) or isinstance(value, list):
            return "must be a number"
        try:
            number = float(value)
        except ValueError:
            return "must be a number"
        return None if math.isfinite(number) else "must be a finite number"
    if datatype is AttributeType.DATETIME:
        if not isinstance(value, str):
            return "must be an ISO 8601 date-time"
        try:
            datetime.fromisoformat(value)
        except ValueError:
            return "must be an ISO 8601 date-time"
        return None
    keys = ", ".join(v.key for v in attribute.values)
    answers = value if isinstance(value, list) else [value]
    if not all(isinstance(a, str) for a in answers):
        return f"must be one of: {keys}"
    chosen = [str(a) for a in answers]
    if datatype is AttributeType.SINGLE_VALUE_LIST and len(chosen) != 1:
        return f"takes exactly one of: {keys}"
    unknown = [a for a in chosen if not attribute.accepts(a)]
    if unknown:
        return f"{unknown[0]!r} is not one of: {keys}"
    return None


def filing_problems(
    report: ReportSubmitted, category: Category, ref: ReferenceData, submitted_at: datetime
) -> list[RejectionReason]:
    """Every filing condition (立案条件) of ``category`` the report does not meet."""
    reasons: list[RejectionReason] = []
    code = category.code
    required = set(category.filing.required_fields)
    if ReportField.PHOTO in required and not report.media_urls:
        reasons.append(_reason("missing_field", "media_urls", f"category {code} requires a photo"))
    if ReportField.DESCRIPTION in required and not report.description.strip():
        reasons.append(
            _reason("missing_field", "description", f"category {code} requires a description")
        )
    if ReportField.ADDRESS in required and report.location.address is None:
        reasons.append(
            _reason("missing_field", "location.address", f"category {code} requires an address")
        )
    if ReportField.ASSET_ID in required and report.component_id is None:
        reasons.append(
            _reason("missing_field", "component_id", f"category {code} requires the component id")
        )
    if ReportField.CONTACT in required and (report.reporter is None or not report.reporter.phone):
        reasons.append(
            _reason(
                "missing_field",
                "reporter.phone",
                f"category {code} requires a phone number to call the reporter back",
            )
        )
    if report.component_id is not None and category.kind is CategoryKind.COMPONENT:
        expected = ref.district.code + category.major + category.minor
        if not report.component_id.startswith(expected):
            reasons.append(
                _reason(
                    "invalid_field",
                    "component_id",
                    f"component {report.component_id} is not a {code} of district"
                    f" {ref.district.code} (its id must start with {expected})",
                )
            )
    for attribute in category.filing.attributes:
        value = report.attributes.get(attribute.code)
        where = f"attributes.{attribute.code}"
        if _is_blank(value):
            if attribute.required:
                reasons.append(
                    _reason(
                        "missing_attribute",
                        where,
                        f"category {code} requires {attribute.code!r} ({attribute.name_en})",
                    )
                )
            continue
        assert value is not None
        problem = _attribute_problem(attribute, value)
        if problem is not None:
            reasons.append(_reason("invalid_attribute", where, f"{attribute.code!r} {problem}"))
    if report.reported_at < submitted_at - REPORTED_AT_MAX_AGE:
        reasons.append(
            _reason(
                "invalid_field",
                "reported_at",
                f"reported_at {report.reported_at.isoformat()} is more than"
                f" {REPORTED_AT_MAX_AGE.days} days before the report was submitted",
            )
        )
    if report.reported_at > submitted_at + REPORTED_AT_TOLERANCE:
        reasons.append(
            _reason(
                "invalid_field",
                "reported_at",
                f"reported_at {report.reported_at.isoformat()} is after the report was submitted"
                f" ({submitted_at.isoformat()})",
            )
        )
    return reasons


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def is_clean_text(text: str) -> bool:
    """Text a store and a JSON encoder can both take: no NUL, no lone surrogate."""
    return _UNSTORABLE.search(text) is None


def _text_problems(report: ReportSubmitted) -> list[RejectionReason]:
    """Free text that cannot be stored or published as it is, and numbers that are not numbers."""
    reasons: list[RejectionReason] = []
    texts: list[tuple[str, str | None]] = [
        ("description", report.description),
        ("location.address", report.location.address),
        ("reporter.name", report.reporter.name if report.reporter else None),
    ]
    for where, text in texts:
        if text is not None and not is_clean_text(text):
            reasons.append(
                _reason("invalid_field", where, "contains a NUL or an unpaired surrogate")
            )
    for code, value in report.attributes.items():
        where = f"attributes.{code}" if is_clean_text(code) else "attributes"
        answers = value if isinstance(value, list) else [value]
        if not is_clean_text(code) or any(
            isinstance(a, str) and not is_clean_text(a) for a in answers
        ):
            reasons.append(
                _reason("invalid_attribute", where, "contains a NUL or an unpaired surrogate")
            )
        elif any(isinstance(a, float) and not math.isfinite(a) for a in answers):
            reasons.append(_reason("invalid_attribute", where, "is not a finite number"))
    return reasons


def assess(submission: Submission, ref: ReferenceData) -> Accepted | list[RejectionReason]:
    """Whether a report can be filed: known category, filing conditions met, inside the city.

    Every reason is collected, not just the first, so the channel can fix
    the report in one go.
    """
    report = submission.report
    reasons: list[RejectionReason] = []
    if ref.channel(report.channel) is None:
        reasons.append(
            _reason(
                "unknown_channel", "channel", f"{report.channel!r} is not a channel of this city"
            )
        )
    category = ref.category(report.category_code)
    if category is None:
        reasons.append(
            _reason(
                "unknown_category",
                "category_code",
                f"{report.category_code!r} is not a category of the catalogue",
            )
        )
    place = locate(report.location, ref)
    if isinstance(place, list):
        reasons += place
    reasons += _text_problems(report)
    if category is not None:
        reasons += filing_problems(report, category, ref, submission.submitted_at)
    if reasons or category is None or isinstance(place, list):
        unique = {(r.code, r.field): r for r in reasons}
        return list(unique.values())
    return Accepted(category=category, site=place)


def rejection_message(reasons: Sequence[RejectionReason]) -> str:
    """The reasons in one readable sentence."""
    text = "Report not filed: " + "; ".join(r.message for r in reasons) + "."
    if len(text) > _SHORT_TEXT:
        text = text[: _SHORT_TEXT - 1] + "…"
    return text


# -- duplicates -------------------------------------------------------------------


@dataclass(frozen=True)
class Match:
    master: Candidate
    distance_m: float


def nearest_master(
    category: Category, site: Site, reported_at: datetime, candidates: Sequence[Candidate]
) -> Match | None:
    """The case a report duplicates: same category, within the radius, open or closed within the window.

    The nearest wins; at equal distance the earlier-registered case. A radius
    of 0 turns duplicate detection off for the category.
    """
    rule = category.duplicates
    if not rule.enabled:
        return None
    closed_after = reported_at - timedelta(days=rule.window_days)
    min_lat, min_long, max_lat, max_long = bounding_box(site.lat, site.long, rule.radius_m)
    best: Match | None = None
    for candidate in candidates:
        if candidate.category_code != category.code:
            continue
        if candidate.closed_at is not None and candidate.closed_at < closed_after:
            continue
        if not (min_lat <= candidate.lat <= max_lat and min_long <= candidate.long <= max_long):
            continue  # outside the box, so outside the circle: skip the trigonometry
        distance = distance_m(site.lat, site.long, candidate.lat, candidate.long)
        if distance > rule.radius_m:
            continue
        if best is None or (distance, candidate.registered_at, candidate.case_id) < (
            best.distance_m,
            best.master.registered_at,
            best.master.case_id,
        ):
            best = Match(candidate, distance)
    return best


@dataclass(frozen=True)
class DuplicateSearch:
    """Where to look for a report's master: the box around its radius, cases closed since a cutoff."""

    category_code: str
    min_lat: float
    min_long: float
    max_lat: float
    max_long: float
    closed_after: datetime


def duplicate_search(accepted: Accepted, reported_at: datetime) -> DuplicateSearch | None:
    """The search a store runs for a report's candidates, or None when the category has it off.

    The box is a cheap index pre-filter; :func:`nearest_master` decides.
    """
    rule = accepted.category.duplicates
    if not rule.enabled:
        return None
    min_lat, min_long, max_lat, max_long = bounding_box(
        accepted.site.lat, accepted.site.long, rule.radius_m
    )
    return DuplicateSearch(
        category_code=accepted.category.code,
        min_lat=min_lat,
        min_long=min_long,
        max_lat=max_lat,
        max_long=max_long,
        closed_after=reported_at - timedelta(days=rule.window_days),
    )


def duplicate_horizon(ref: ReferenceData) -> timedelta:
    """How long a closed case can attract duplicates in any category: the longest window."""
    return timedelta(days=max((c.duplicates.window_days for c in ref.categories), default=0))


# -- the verdicts -----------------------------------------------------------------


def registered_event(
    submission: Submission, accepted: Accepted, ref: ReferenceData, case_id: str
) -> CaseRegistered:
    report = submission.report
    category, site = accepted.category, accepted.site
    cell = site.cell
    contact = report.reporter
    return CaseRegistered.model_validate(
        {
            "case_id": case_id,
            "report_id": report.report_id,
            "channel": report.channel,
            "external_id": report.external_id,
            "category_code": category.code,
            "kind": category.kind.value,
            "major": category.major,
            "minor": category.minor,
            "component_id": report.component_id,
            "grid_code": cell.code,
            "community": cell.community,
            "street": cell.street,
            "district": cell.district,
            "area": accepted.site.area,
            "area_class": cell.area_class.value,
            "lat": site.lat if site.precise else None,
            "long": site.long if site.precise else None,
            "address": report.location.address,
            "description": report.description,
            "attributes": report.attributes,
            "media_urls": report.media_urls,
            "urgency": category.urgency.value,
            "tier": category.tier.value,
            "reported_at": report.reported_at,
            "registered_at": submission.submitted_at,
            "inspector_id": report.inspector_id,
            "reporter_ref": submission.reporter_ref,
            "callback_possible": contact is not None and bool(contact.phone),
        }
    )


def merged_event(
    submission: Submission, accepted: Accepted, case_id: str, match: Match
) -> CaseMerged:
    report = submission.report
    return CaseMerged(
        case_id=case_id,
        master_case_id=match.master.case_id,
        report_id=report.report_id,
        channel=report.channel,
        external_id=report.external_id,
        category_code=accepted.category.code,
        grid_code=accepted.site.cell.code,
        area=accepted.site.area,
        distance_m=round(match.distance_m, 2),
    )


def rejected_event(submission: Submission, reasons: Sequence[RejectionReason]) -> ReportRejected:
    report = submission.report
    return ReportRejected(
        report_id=report.report_id,
        channel=report.channel,
        external_id=report.external_id,
        reasons=list(reasons),
        message=rejection_message(reasons),
    )


@dataclass
class _Batch:
    """Cases this batch registers, so a later report in it can duplicate an earlier one."""

    by_key: dict[ReportKey, str] = field(default_factory=dict)
    masters: dict[str, list[Candidate]] = field(default_factory=dict)  # by category


Assessment = Accepted | list[RejectionReason]


def assess_batch(submissions: Sequence[Submission], ref: ReferenceData) -> list[Assessment]:
    """:func:`assess` for each report of a batch."""
    return [assess(s, ref) for s in submissions]


def register_batch(
    submissions: Sequence[Submission],
    assessments: Sequence[Assessment],
    known: Mapping[ReportKey, str],
    candidates: Mapping[int, Sequence[Candidate]],
    ref: ReferenceData,
) -> list[Verdict]:
    """The verdict on each report of a batch, in order.

    ``known`` maps reports already filed (channel, external id) to their
    case; ``assessments[i]`` is :func:`assess` of submission ``i`` and
    ``candidates[i]`` the stored cases its :func:`duplicate_search` found. Reports earlier in the batch count as well: two reports of one
    pothole in one batch give one case and one duplicate, and the same report
    twice gives one case.
    """
    batch = _Batch()
    verdicts: list[Verdict] = []
    for index, (submission, assessed) in enumerate(zip(submissions, assessments, strict=True)):
        key = submission.key
        existing = known.get(key) or batch.by_key.get(key)
        if existing is not None:
            verdicts.append(Repeated(submission, existing))
            continue
        if isinstance(assessed, list):
            verdicts.append(Rejected(submission, rejected_event(submission, assessed)))
            continue
        report = submission.report
        case_id = case_id_for(report.channel, report.external_id, report.reported_at)
        nearby = [*candidates.get(index, ()), *batch.masters.get(assessed.category.code, ())]
        match = nearest_master(assessed.category, assessed.site, report.reported_at, nearby)
        batch.by_key[key] = case_id
        if match is not None:
            event = merged_event(submission, assessed, case_id, match)
            verdicts.append(Merged(submission, assessed.site, event))
            continue
        verdicts.append(
            Registered(
                submission, assessed.site, registered_event(submission, assessed, ref, case_id)
            )
        )
        batch.masters.setdefault(assessed.category.code, []).append(
            Candidate(
                case_id=case_id,
                category_code=assessed.category.code,
                lat=assessed.site.lat,
                long=assessed.site.long,
                registered_at=submission.submitted_at,
            )
        )
    return verdicts


def reporter_ref(secret: bytes, reporter: Reporter | None) -> str | None:
    """The reporter's pseudonym: a keyed hash of the phone (else the name), same person same ref.

    Keyed, so nobody without intake's secret can test a phone number against it.
    """
    if reporter is None:
        return None
    if reporter.phone:
        identity = "phone:" + "".join(ch for ch in reporter.phone if ch.isdigit())
    elif reporter.name and reporter.name.strip():
        identity = "name:" + reporter.name.strip()
    else:
        return None
    digest = hmac.new(secret, identity.encode("utf-8", "surrogatepass"), hashlib.sha256)
    return "rr_" + digest.hexdigest()[:32]
