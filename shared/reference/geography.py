"""The city's places: district, streets (街道), communities (社区) and the unit grid.

Codes follow GB/T 30428.1: a 6-digit county (district) code, +3 digits for a
street, +3 for a community, +2 for a unit-grid cell (``00`` would be a cell
covering a whole community). Each longer code starts with its parent's code;
the models check that, so a cell can never claim a community it is not in.
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

DistrictCode = Annotated[str, Field(pattern=r"^\d{6}$")]
StreetCode = Annotated[str, Field(pattern=r"^\d{9}$")]
CommunityCode = Annotated[str, Field(pattern=r"^\d{12}$")]
CellCode = Annotated[str, Field(pattern=r"^\d{14}$")]
Longitude = Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)]
Latitude = Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)]

# Metres per degree of latitude (and of longitude at the equator), WGS84 mean.
_METRES_PER_DEGREE = 111_320.0


class AreaClass(StrEnum):
    """Area class of a cell: limits and expectations differ by it."""

    A = "A"  # core area
    B = "B"  # general area
    C = "C"  # fringe area


class GridGeometry(BaseModel):
    """The regular lattice the unit grid is cut from (WGS84 degrees).

    Cell (row, col) spans ``origin + col * cell_lon_deg`` eastwards and
    ``origin + row * cell_lat_deg`` northwards, which is what lets
    ``ReferenceData.cell_at`` find a cell by arithmetic instead of a search.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    origin_lon: Longitude
    origin_lat: Latitude
    cell_lon_deg: float = Field(gt=0, lt=1, allow_inf_nan=False)
    cell_lat_deg: float = Field(gt=0, lt=1, allow_inf_nan=False)
    cell_size_m: float = Field(gt=0, allow_inf_nan=False)

    @field_validator("cell_size_m")
    @classmethod
    def _matches_degrees(cls, size: float, info: ValidationInfo) -> float:
        # Catches swapped or mistyped degree sizes: both sides must come out
        # within 20% of the nominal size at the origin's latitude.
        data = info.data
        if not {"origin_lat", "cell_lon_deg", "cell_lat_deg"} <= data.keys():
            return size
        height = data["cell_lat_deg"] * _METRES_PER_DEGREE
        width = (
            data["cell_lon_deg"] * _METRES_PER_DEGREE * math.cos(math.radians(data["origin_lat"]))
        )
        for label, metres in (("width", width), ("height", height)):
            if abs(metres - size) > 0.2 * size:
                raise ValueError(
                    f"cells are {metres:.0f} m in {label} by their degree size,"
                    f" not about {size:g} m"
                )
        return size


class District(BaseModel):
    """The district (区/县) the sample city covers, and its grid lattice."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: DistrictCode
    name_zh: str = Field(min_length=1)
    name_en: str = Field(min_length=1)
    city_zh: str = Field(min_length=1)
    city_en: str = Field(min_length=1)
    grid: GridGeometry


class Street(BaseModel):
    """A street (街道): the 块 a case is assigned to alongside its line department."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: StreetCode
    name_zh: str = Field(min_length=1)
    name_en: str = Field(min_length=1)


class Community(BaseModel):
    """A community (社区) inside one street."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    street: StreetCode
    code: CommunityCode
    name_zh: str = Field(min_length=1)
    name_en: str = Field(min_length=1)

    @field_validator("code")
    @classmethod
    def _inside_street(cls, code: str, info: ValidationInfo) -> str:
        street = info.data.get("street")
        if street is not None and not code.startswith(street):
            raise ValueError(f"community code {code!r} does not start with its street {street!r}")
        return code


class GridCell(BaseModel):
    """One unit-grid cell (单元网格) of about 100 m x 100 m."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    district: DistrictCode
    street: StreetCode
    community: CommunityCode
    code: CellCode
    area_class: AreaClass
    row: int = Field(ge=0)
    col: int = Field(ge=0)
    min_lon: Longitude
    min_lat: Latitude
    max_lon: Longitude
    max_lat: Latitude

    @field_validator("code")
    @classmethod
    def _inside_community(cls, code: str, info: ValidationInfo) -> str:
        for parent in ("district", "street", "community"):
            prefix = info.data.get(parent)
            if prefix is not None and not code.startswith(prefix):
                raise ValueError(f"cell code {code!r} does not start with its {parent} {prefix!r}")
        return code

    @field_validator("max_lon", "max_lat")
    @classmethod
    def _positive_extent(cls, maximum: float, info: ValidationInfo) -> float:
        counterpart = "min_" + str(info.field_name).removeprefix("max_")
        minimum = info.data.get(counterpart)
        if minimum is not None and maximum <= minimum:
            raise ValueError(f"must be greater than {counterpart} ({minimum})")
        return maximum

    @property
    def centre(self) -> tuple[float, float]:
        """(lat, lon) of the cell's centre."""
        return ((self.min_lat + self.max_lat) / 2, (self.min_lon + self.max_lon) / 2)

    def contains(self, lat: float, lon: float) -> bool:
        """Whether the point lies in the cell (south and west edges inclusive)."""
        return self.min_lat <= lat < self.max_lat and self.min_lon <= lon < self.max_lon
