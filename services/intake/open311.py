"""Open311 GeoReport v2 under ``/open311/v2/``: the Western analog, for third-party clients.

Discovery, the service list (the category catalogue), service definitions
(a category's filing attributes), ``POST requests`` (form-encoded, with an
``api_key`` that names the channel), ``GET requests`` with the spec's filters
and ``GET requests/{id}``; each in ``.json`` and ``.xml``; errors as the spec
has them, a list of ``{code, description}``. A posted request goes through
the same registration as every other report; a merged duplicate reads as
``closed`` with the note "Duplicate request.".

Extensions beyond the spec: ``address_id`` is a 14-digit grid code (the
city's master address ids are its grid cells), and an optional
``external_id`` makes a client's retry return the same request.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ValidationError

from services.intake.domain import Merged, Registered, Rejected, Repeated, Verdict
from services.intake.domain.registration import is_clean_text
from services.intake.handlers import Intake
from services.intake.store import CaseRecord, RequestQuery, find_cases
from shared.auth import Refused
from shared.events.cases import RejectionReason
from shared.events.reports import ReportSubmitted
from shared.ids import new_ulid
from shared.reference import Category, ReferenceData

PREFIX = "/open311/v2"
SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
#: When this endpoint's behaviour last changed (discovery's ``changeset``).
CHANGESET = "2026-06-01T00:00:00+08:00"
FORMATS = {"json": "application/json", "xml": "text/xml"}
#: The spec's cap on one ``GET requests`` answer, and on the span of its date filter.
MAX_REQUESTS = 1000
MAX_SPAN = timedelta(days=90)
MAX_BODY = 64 * 1024
_IDENTIFIER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
_GRID_CODE = re.compile(r"^[0-9]{14}$")
_ATTRIBUTE = re.compile(r"^attribute\[([^\[\]]{1,64})\](\[\])?$")
# Characters XML 1.0 cannot carry, even escaped.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")

#: Element name of a list's items, by the list's element name (the spec's XML shapes).
_ITEM = {
    "services": "service",
    "service_requests": "request",
    "errors": "error",
    "attributes": "attribute",
    "values": "value",
    "endpoints": "endpoint",
    "formats": "format",
}

#: Report fields as an Open311 client named them, for error descriptions.
_FIELD_NAMES = {
    "category_code": "service_code",
    "location": "lat/long",
    "location.lat": "lat",
    "location.long": "long",
    "location.grid_code": "address_id",
    "location.address": "address_string",
    "media_urls": "media_url",
    "reporter.phone": "phone",
    "reporter.name": "first_name/last_name",
    "reported_at": "requested_datetime",
}


# -- rendering --------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _xml_child(parent: ET.Element, tag: str, value: Any) -> None:
    element = ET.SubElement(parent, tag)
    if isinstance(value, dict):
        for key, item in value.items():
            _xml_child(element, key, item)
    elif isinstance(value, list | tuple):
        for item in value:
            _xml_child(element, _ITEM.get(tag, "item"), item)
    elif value is None:
        return
    elif isinstance(value, bool):
        element.text = "true" if value else "false"
    elif isinstance(value, datetime):
        element.text = value.isoformat()
    else:
        element.text = _NOT_XML.sub("", str(value))


def xml_document(root: str, body: Any) -> bytes:
    element = ET.Element(root)
    if isinstance(body, list):
        for item in body:
            _xml_child(element, _ITEM.get(root, "item"), item)
    else:
        for key, item in body.items():
            _xml_child(element, key, item)
    text = ET.tostring(element, encoding="unicode")
    return ('<?xml version="1.0" encoding="utf-8"?>\n' + text).encode()


def render(fmt: str, root: str, body: Any, status: int = 200) -> Response:
    if fmt == "xml":
        return Response(
            xml_document(root, body), status_code=status, media_type="text/xml; charset=utf-8"
        )
    return JSONResponse(_plain(body), status_code=status)


def error_response(
    fmt: str, status: int, descriptions: Sequence[str], headers: dict[str, str] | None = None
) -> Response:
    """The spec's error shape: a list of ``{code, description}``."""
    errors = [{"code": status, "description": d[:1000]} for d in descriptions] or [
        {"code": status, "description": "error"}
    ]
    response = render(fmt if fmt in FORMATS else "json", "errors", errors, status)
    response.headers.update(headers or {})
    return response


def _reason_text(reason: RejectionReason) -> str:
    field = reason.field or ""
    if field.startswith("attributes."):
        field = f"attribute[{field.removeprefix('attributes.')}]"
    field = _FIELD_NAMES.get(field, field)
    where = f" {field}" if field else ""
    return f"{reason.code}{where}: {reason.message}"


# -- the catalogue as services ------------------------------------------------------


def service_list(ref: ReferenceData) -> list[dict[str, Any]]:
    out = []
    for category in ref.categories:
        major = ref.major_of(category)
        kind = "部件 component" if category.kind.value == "component" else "事件 event"
        out.append(
            {
                "service_code": category.code,
                "service_name": category.name_en,
                "description": f"{category.name_zh} ({kind}, {major.name_en} {major.name_zh})",
                "metadata": bool(category.filing.attributes),
                "type": "realtime",
                "keywords": ",".join([category.name_zh, category.kind.value, major.name_en]),
                "group": major.name_en,
            }
        )
    return out


def service_definition(category: Category) -> dict[str, Any]:
    attributes = []
    for order, attribute in enumerate(category.filing.attributes, start=1):
        definition: dict[str, Any] = {
            "variable": True,
            "code": attribute.code,
            "datatype": attribute.datatype.value,
            "required": attribute.required,
            "datatype_description": (
                f"one of: {', '.join(v.key for v in attribute.values)}"
                if attribute.values
                else attribute.datatype.value
            ),
            "order": order,
            "description": f"{attribute.name_en} ({attribute.name_zh})",
        }
        if attribute.values:
            definition["values"] = [{"key": v.key, "name": v.name_en} for v in attribute.values]
        attributes.append(definition)
    return {"service_code": category.code, "attributes": attributes}


# -- requests -----------------------------------------------------------------------


def request_record(record: CaseRecord, ref: ReferenceData) -> dict[str, Any]:
    """A filed case as an Open311 service request."""
    progress = record.progress
    category = ref.category(record.category_code)
    department = ref.department(progress.department) if progress.department else None
    location = record.report.get("location") or {}
    media = record.report.get("media_urls") or []
    return {
        "service_request_id": record.case_id,
        "status": "open" if progress.is_open else "closed",
        "status_notes": "Duplicate request." if record.outcome == "merged" else progress.note,
        "service_name": category.name_en if category else record.category_code,
        "service_code": record.category_code,
        "description": record.report.get("description") or None,
        "agency_responsible": department.name_en if department else progress.department,
        "service_notice": None,
        "requested_datetime": record.reported_at,
        "updated_datetime": progress.updated_at or record.registered_at,
        "expected_datetime": progress.deadlines.handle if progress.deadlines else None,
        "address": location.get("address"),
        "address_id": record.detail.get("grid_code"),
        "zipcode": None,
        "lat": record.site_lat,
        "long": record.site_long,
        "media_url": media[0] if media else None,
    }


def report_from_form(
    fields: Sequence[tuple[str, str]], channel: str, now: datetime
) -> dict[str, Any] | list[str]:
    """A ``report.submitted`` document from a ``POST requests`` form, or what is wrong with it."""
    single: dict[str, str] = {}
    attributes: dict[str, Any] = {}
    problems: list[str] = []
    for name, value in fields:
        match = _ATTRIBUTE.match(name)
        if match is not None:
            code, is_list = match.group(1), match.group(2) is not None
            if is_list or code in attributes:
                previous = attributes.get(code)
                values = previous if isinstance(previous, list) else []
                if isinstance(previous, str):
                    values = [previous]
                attributes[code] = [*values, value]
            else:
                attributes[code] = value
            continue
        single.setdefault(name, value)
    if not single.get("service_code"):
        problems.append("service_code is required")
    location: dict[str, Any] = {}
    for name in ("lat", "long"):
        raw = single.get(name, "").strip()
        if raw:
            try:
                location[name] = float(raw)
            except ValueError:
                problems.append(f"{name} must be a number, not {raw[:40]!r}")
    if single.get("address_string", "").strip():
        location["address"] = single["address_string"].strip()
    address_id = single.get("address_id", "").strip()
    if address_id:
        if not _GRID_CODE.match(address_id):
            problems.append("address_id must be a 14-digit grid code")
        else:
            location["grid_code"] = address_id
    if problems:
        return problems
    name = " ".join(
        part
        for part in (single.get("first_name", "").strip(), single.get("last_name", "").strip())
        if part
    )
    phone = single.get("phone", "").strip()
    reporter = {"name": name or None, "phone": phone or None} if (name or phone) else None
    media_url = single.get("media_url", "").strip()
    return {
        "report_id": new_ulid(),
        "channel": channel,
        "external_id": single.get("external_id", "").strip() or f"open311-{new_ulid()}",
        "category_code": single["service_code"].strip(),
        "description": single.get("description", ""),
        "location": location,
        "attributes": attributes,
        "media_urls": [media_url] if media_url else [],
        "reported_at": now,
        "reporter": reporter,
    }


def _validation_texts(exc: ValidationError) -> list[str]:
    out = []
    for err in exc.errors()[:10]:
        path = ".".join(str(p) for p in err["loc"])
        if path.startswith("attributes."):
            path = f"attribute[{path.removeprefix('attributes.').split('.')[0]}]"
        path = _FIELD_NAMES.get(path, path)
        out.append(f"invalid_field {path}: {err['msg']}")
    return out


def _parse_instant(raw: str, name: str) -> datetime | str:
    try:
        instant = datetime.fromisoformat(raw.strip())
    except ValueError:
        return f"{name} must be a W3C date-time such as 2026-11-17T09:00:00+08:00"
    if instant.tzinfo is None:
        return f"{name} must carry a time zone (e.g. +08:00 or Z)"
    return instant


def request_query(params: Any, now: datetime) -> RequestQuery | str:
    """``GET requests`` filters per the spec, or what is wrong with them."""
    ids = params.get("service_request_id")
    if ids:
        wanted = [i.strip() for i in ids.split(",") if i.strip()][:MAX_REQUESTS]
        # The spec: with service_request_id, the other filters are ignored.
        return RequestQuery(case_ids=[i for i in wanted if _IDENTIFIER.match(i)])
    codes = params.get("service_code")
    category_codes = [c.strip() for c in codes.split(",") if c.strip()] if codes else None
    start = end = None
    if params.get("start_date"):
        parsed = _parse_instant(params["start_date"], "start_date")
        if isinstance(parsed, str):
            return parsed
        start = parsed
    if params.get("end_date"):
        parsed = _parse_instant(params["end_date"], "end_date")
        if isinstance(parsed, str):
            return parsed
        end = parsed
    if start is None and end is None:
        end = now
    if start is None:
        assert end is not None
        start = end - MAX_SPAN
    if end is None:
        end = start + MAX_SPAN
    if end < start:
        return "end_date is before start_date"
    if end - start > MAX_SPAN:
        return "start_date and end_date may not span more than 90 days"
    is_open: bool | None = None
    if params.get("status"):
        statuses = {s.strip() for s in params["status"].split(",") if s.strip()}
        unknown = statuses - {"open", "closed"}
        if unknown:
            return f"status must be open, closed or both, not {sorted(unknown)[0][:40]!r}"
        if statuses == {"open"}:
            is_open = True
        elif statuses == {"closed"}:
            is_open = False
    return RequestQuery(
        category_codes=category_codes, start=start, end=end, is_open=is_open, limit=MAX_REQUESTS
    )


def posted_record(verdict: Verdict, record: CaseRecord | None) -> dict[str, Any]:
    if isinstance(verdict, Registered):
        return {
            "service_request_id": verdict.event.case_id,
            "service_notice": "Registered as a new case.",
            "account_id": None,
        }
    if isinstance(verdict, Merged):
        master = verdict.event.master_case_id
        return {
            "service_request_id": verdict.event.case_id,
            "service_notice": f"Duplicate request: already reported as {master}.",
            "account_id": None,
        }
    assert isinstance(verdict, Repeated)
    return {
        "service_request_id": verdict.case_id,
        "service_notice": "Already received: the same request as before.",
        "account_id": None,
    }


# -- routes -------------------------------------------------------------------------


class Open311Error(BaseModel):
    """One of the spec's errors; an answer that fails is a list of them."""

    code: int
    description: str


_XML = {"text/xml": {"schema": {"type": "string"}}}


def _text(description: str, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "description": description, **extra}


#: POST requests' form, as the spec has it (the handler parses the raw form itself, so
#: ``attribute[code]`` fields can repeat and arrive in any order).
_REQUEST_FORM: dict[str, Any] = {
    "required": True,
    "content": {
        "application/x-www-form-urlencoded": {
            "schema": {
                "type": "object",
                "required": ["api_key", "service_code"],
                "properties": {
                    "api_key": _text("the channel's key"),
                    "service_code": _text("a category code from services.{fmt}"),
                    "lat": {"type": "number", "description": "WGS84 latitude"},
                    "long": {"type": "number", "description": "WGS84 longitude"},
                    "address_string": _text("where, in words"),
                    "address_id": _text("a 14-digit grid code", pattern="^[0-9]{14}$"),
                    "description": _text("what is wrong", maxLength=4000),
                    "media_url": _text("a photo", format="uri"),
                    "first_name": _text("the reporter's first name"),
                    "last_name": _text("the reporter's last name"),
                    "phone": _text("the reporter's phone"),
                    "external_id": _text("the client's own id: a retry returns the same request"),
                },
                "additionalProperties": {"type": "string"},
            }
        }
    },
}


def _query(name: str, description: str, **schema: Any) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": {"type": "string", **schema},
    }


#: GET requests' filters, as the spec has them (read from the raw query string).
_REQUEST_FILTERS = [
    _query("service_request_id", "comma-separated ids; the other filters are then ignored"),
    _query("service_code", "comma-separated category codes"),
    _query("start_date", "W3C date-time with a zone", format="date-time"),
    _query(
        "end_date",
        "W3C date-time with a zone; at most 90 days after start_date",
        format="date-time",
    ),
    _query("status", "open, closed, or both comma-separated"),
]


def _documented(*errors: tuple[int, str]) -> dict[int | str, dict[str, Any]]:
    """An Open311 route's answers: JSON or XML by the ``fmt`` suffix, errors as a list."""
    out: dict[int | str, dict[str, Any]] = {
        200: {"description": "JSON or XML, as the suffix asks", "content": _XML}
    }
    for status, description in ((404, "unknown format or no such item"), *errors):
        out[status] = {"model": list[Open311Error], "description": description, "content": _XML}
    return out


def routes(intake: Intake) -> APIRouter:
    router = APIRouter(prefix=PREFIX, tags=["open311"])

    def unknown_format(fmt: str) -> Response | None:
        if fmt in FORMATS:
            return None
        return error_response("json", 404, [f"format {fmt[:20]!r} is not offered: use json or xml"])

    @router.get(
        "/discovery.{fmt}",
        summary="Open311 discovery: where and what this endpoint is",
        responses=_documented(),
    )
    async def discovery(fmt: str, request: Request) -> Response:
        if (bad := unknown_format(fmt)) is not None:
            return bad
        body = {
            "changeset": CHANGESET,
            "contact": "City management supervision centre (数字城管监督指挥中心)",
            "key_service": "API keys are issued per channel by the supervision centre",
            "endpoints": [
                {
                    "specification": SPECIFICATION,
                    "url": str(request.base_url).rstrip("/") + PREFIX,
                    "changeset": CHANGESET,
                    "type": "production",
                    "formats": list(FORMATS.values()),
                }
            ],
        }
        return render(fmt, "discovery", body)

    @router.get(
        "/services.{fmt}",
        summary="Open311 service list: the category catalogue",
        responses=_documented(),
    )
    async def services(fmt: str) -> Response:
        if (bad := unknown_format(fmt)) is not None:
            return bad
        return render(fmt, "services", service_list(intake.ref))

    @router.get(
        "/services/{service_code}.{fmt}",
        summary="Open311 service definition: a category's filing attributes",
        responses=_documented(),
    )
    async def service(service_code: str, fmt: str) -> Response:
        if (bad := unknown_format(fmt)) is not None:
            return bad
        category = intake.ref.category(service_code)
        if category is None:
            return error_response(fmt, 404, [f"no service {service_code[:40]!r}"])
        return render(fmt, "service_definition", service_definition(category))

    @router.post(
        "/requests.{fmt}",
        summary="Open311 POST requests: file a report (form-encoded, api_key required)",
        status_code=201,
        openapi_extra={"requestBody": _REQUEST_FORM},
        responses=_documented(
            (400, "not a report, or one that cannot be filed: the reasons"),
            (403, "api_key missing or unknown"),
            (413, "request body too large"),
            (415, "not form-encoded"),
        ),
    )
    async def post_request(fmt: str, request: Request) -> Response:
        if (bad := unknown_format(fmt)) is not None:
            return bad
        content_type = request.headers.get("content-type", "")
        if content_type and not content_type.startswith("application/x-www-form-urlencoded"):
            return error_response(
                fmt, 415, ["send the request as application/x-www-form-urlencoded"]
            )
        raw = await request.body()
        if len(raw) > MAX_BODY:
            return error_response(fmt, 413, ["request body too large"])
        try:
            fields = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, max_num_fields=200)
        except (UnicodeDecodeError, ValueError) as exc:
            return error_response(fmt, 400, [f"not a form: {exc}"[:200]])
        for name, value in fields:
            if not (is_clean_text(name) and is_clean_text(value)):
                return error_response(fmt, 400, ["a field contains a NUL or invalid character"])
        key = next((v for k, v in fields if k == "api_key"), "")
        if not key:
            return error_response(fmt, 403, ["api_key is required"])
        # The spec answers a bad api_key with 403; the key's rate is shared with X-API-Key use.
        try:
            principal = await intake.runtime_or_fail().auth.authenticate(key)
        except Refused as refused:
            if refused.status == 429:
                return error_response(fmt, 429, [refused.message], refused.headers)
            return error_response(fmt, 403, ["Invalid api_key"])
        if principal.kind != "channel":
            return error_response(fmt, 403, [f"api_key is a {principal.kind} key, not a channel's"])
        channel = principal.id
        now = intake.clock.now()
        doc = report_from_form(fields, channel, now)
        if isinstance(doc, list):
            return error_response(fmt, 400, doc)
        try:
            report = ReportSubmitted.model_validate(doc)
        except ValidationError as exc:
            return error_response(fmt, 400, _validation_texts(exc))
        verdict, record = await intake.register_one(report, now, "open311")
        if isinstance(verdict, Rejected):
            return error_response(fmt, 400, [_reason_text(r) for r in verdict.event.reasons])
        status = 200 if isinstance(verdict, Repeated) else 201
        return render(fmt, "service_requests", [posted_record(verdict, record)], status)

    @router.get(
        "/requests.{fmt}",
        summary="Open311 GET requests: search service requests",
        openapi_extra={"parameters": _REQUEST_FILTERS},
        responses=_documented((400, "a filter is invalid")),
    )
    async def get_requests(fmt: str, request: Request) -> Response:
        if (bad := unknown_format(fmt)) is not None:
            return bad
        params = request.query_params
        for name, value in params.multi_items():
            if not (is_clean_text(name) and is_clean_text(value)):
                return error_response(fmt, 400, ["a parameter contains an invalid character"])
        query = request_query(params, intake.clock.now())
        if isinstance(query, str):
            return error_response(fmt, 400, [query])
        async with intake.runtime_or_fail().db.acquire() as conn:
            records = await find_cases(conn, query)
        body = [request_record(r, intake.ref) for r in records]
        return render(fmt, "service_requests", body)

    @router.get(
        "/requests/{service_request_id}.{fmt}",
        summary="Open311 GET request: one service request with its status",
        responses=_documented(),
    )
    async def get_request(service_request_id: str, fmt: str) -> Response:
        if (bad := unknown_format(fmt)) is not None:
            return bad
        records: list[CaseRecord] = []
        if _IDENTIFIER.match(service_request_id):
            async with intake.runtime_or_fail().db.acquire() as conn:
                records = await find_cases(conn, RequestQuery(case_ids=[service_request_id]))
        if not records:
            return error_response(fmt, 404, [f"no service request {service_request_id[:64]!r}"])
        return render(fmt, "service_requests", [request_record(records[0], intake.ref)])

    return router
