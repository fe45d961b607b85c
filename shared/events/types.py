"""Field types and small value objects shared by the event models.

One definition per domain word (a grid code, a department id, a channel, a
handling tier), so every topic spells it the same way and the AsyncAPI
document shows the same constraint wherever the word appears.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from pydantic import (
    AnyUrl,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    UrlConstraints,
    model_validator,
)

# Ids become Kafka keys, header values, metric labels and URL path segments:
# plain ASCII keeps them safe in all four places.
Identifier = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$"),
]

#: A channel's own id for a report; anything the channel uses, trimmed, bounded.
ExternalId = Annotated[str, StringConstraints(min_length=1, max_length=128, strip_whitespace=True)]

#: 14-digit unit-grid cell (GB/T 30428.1): 6 county + 3 street + 3 community + 2 cell.
GridCode = Annotated[str, StringConstraints(pattern=r"^[0-9]{14}$")]

#: 16-digit component (部件) id: 6 county + 2 major + 2 minor + 6 serial.
ComponentId = Annotated[str, StringConstraints(pattern=r"^[0-9]{16}$")]

#: Category code from the catalogue (CJ/T 214 style, e.g. ``0101``; local extensions allowed).
CategoryCode = Annotated[
    str, StringConstraints(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
]

#: Major (大类) or minor (小类) class code, e.g. ``01``.
ClassCode = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9]{1,8}$")]

Latitude = Annotated[float, Field(ge=-90, le=90)]
Longitude = Annotated[float, Field(ge=-180, le=180)]
Count = Annotated[int, Field(ge=0)]
Ordinal = Annotated[int, Field(ge=1)]
Meters = Annotated[float, Field(ge=0)]
Rate = Annotated[float, Field(ge=0, le=1)]

Text = Annotated[str, StringConstraints(max_length=4000)]
Note = Annotated[str, StringConstraints(max_length=2000)]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=500)]
Address = Annotated[str, StringConstraints(min_length=1, max_length=300)]
MediaUrls = Annotated[
    list[Annotated[AnyUrl, UrlConstraints(max_length=2048)]], Field(max_length=20)
]

#: A channel id from the reference data (channels.json): the set is data, not code,
#: so a city adds a channel without a release; intake refuses ids it does not know.
Channel = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_]{1,31}$")]

# Bounded sets, not free strings: each becomes a metric label somewhere, and a
# typo in a producer should fail at the producer.
Kind = Literal["component", "event"]  # 部件 / 事件
Urgency = Literal["ordinary", "urgent"]  # as the catalogue spells it; urgent counts natural time
Tier = Literal["ordinary", "engineering", "special"]  # 一般性 / 工程性 / 特殊性
AreaClass = Literal["A", "B", "C"]  # core / general / fringe
TimerKind = Literal["sign_for", "handle", "verify"]
#: How a case's limits are counted: on the work calendar or in natural time.
ClockKind = Literal["working", "natural"]


class ValueObject(BaseModel):
    """Base of nested values: as strict as the events that carry them."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ReportLocation(ValueObject):
    """Where a report says the problem is; any one way of locating it may be given.

    Whether it locates anything inside the city is intake's decision (a
    ``report.rejected`` reason), not a schema error.
    """

    lat: Latitude | None = None
    long: Longitude | None = None
    grid_code: GridCode | None = None
    address: Address | None = None

    @model_validator(mode="after")
    def _coordinates_come_in_pairs(self) -> ReportLocation:
        if (self.lat is None) != (self.long is None):
            raise ValueError("lat and long must be given together")
        return self


class Deadlines(ValueObject):
    """The limits a dispatch starts: instants for signing for and handling, a span for verifying.

    Verification starts when the department reports the case handled, so only
    its limit is known at dispatch; ``clock`` says whether spans count working
    time or natural time.
    """

    sign_for: AwareDatetime
    handle: AwareDatetime
    verify_limit: timedelta = Field(gt=timedelta(0))
    clock: ClockKind
