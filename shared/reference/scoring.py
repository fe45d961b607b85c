"""Scoring rules as data: composite-score weights, deductions, rating bands, ranking flags.

The scoring service computes the indicators; this says how to combine them.
Weights are points out of ``score_range.max`` for a rate of 1.0; a term with
``complement`` scores ``1 - rate`` (fewer reworks is better).
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator


class Indicator(StrEnum):
    CLOSURE_RATE = "closure_rate"
    ON_TIME_RATE = "on_time_rate"
    RESPONSE_RATE = "response_rate"
    REWORK_RATE = "rework_rate"
    SATISFACTION_RATE = "satisfaction_rate"


class ScoreTerm(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    indicator: Indicator
    weight: float = Field(gt=0, allow_inf_nan=False)
    complement: bool = False


def _terms_sum_to_100(terms: tuple[ScoreTerm, ...]) -> tuple[ScoreTerm, ...]:
    total = sum(term.weight for term in terms)
    if abs(total - 100) > 1e-9:
        raise ValueError(f"weights must add up to 100, not {total:g}")
    indicators = [term.indicator for term in terms]
    if len(indicators) != len(set(indicators)):
        raise ValueError("must not repeat an indicator")
    return terms


class Deductions(BaseModel):
    """Points taken off a department's composite (金华 practice)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    per_rework_order: float = Field(ge=0, allow_inf_nan=False)
    per_repeated_verification_failure: float = Field(ge=0, allow_inf_nan=False)
    repeated_failure_threshold: int = Field(ge=1)  # failures that make a case "repeated"


class DepartmentScore(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    terms: tuple[ScoreTerm, ...] = Field(min_length=1)
    deductions: Deductions

    @field_validator("terms")
    @classmethod
    def _weights_add_up(cls, terms: tuple[ScoreTerm, ...]) -> tuple[ScoreTerm, ...]:
        return _terms_sum_to_100(terms)


class AreaScore(BaseModel):
    """The 12345 "three rates" composite for streets and other areas."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    terms: tuple[ScoreTerm, ...] = Field(min_length=1)

    @field_validator("terms")
    @classmethod
    def _weights_add_up(cls, terms: tuple[ScoreTerm, ...]) -> tuple[ScoreTerm, ...]:
        return _terms_sum_to_100(terms)


class ScoreRange(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    min: float = Field(allow_inf_nan=False)
    max: float = Field(allow_inf_nan=False)

    @field_validator("max")
    @classmethod
    def _above_min(cls, maximum: float, info: ValidationInfo) -> float:
        minimum = info.data.get("min")
        if minimum is not None and maximum <= minimum:
            raise ValueError(f"must be greater than min ({minimum:g})")
        return maximum


class Band(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    band: str = Field(pattern=r"^[A-Z]$")
    min_score: float = Field(allow_inf_nan=False)


class Satisfaction(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    basically_satisfied_factor: float = Field(ge=0, le=1, allow_inf_nan=False)


class Ranking(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    bottom_flagged: int = Field(ge=0)
    talk_after_last_months_in_quarter: int = Field(ge=1, le=3)  # 约谈


class ScoringRules(BaseModel):
    """Everything ``scoring.json`` holds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    department: DepartmentScore
    area: AreaScore
    score_range: ScoreRange
    bands: tuple[Band, ...] = Field(min_length=1)
    satisfaction: Satisfaction
    ranking: Ranking

    @field_validator("bands")
    @classmethod
    def _descending_to_floor(
        cls, bands: tuple[Band, ...], info: ValidationInfo
    ) -> tuple[Band, ...]:
        names = [band.band for band in bands]
        if len(names) != len(set(names)):
            raise ValueError("must not repeat a band")
        thresholds = [band.min_score for band in bands]
        if any(lower >= higher for higher, lower in zip(thresholds, thresholds[1:], strict=False)):
            raise ValueError("min_score must strictly decrease from the first band to the last")
        score_range = info.data.get("score_range")
        # The last band is the "else" band: it must catch every score in range.
        if score_range is not None and thresholds[-1] > score_range.min:
            raise ValueError(
                f"the last band must start at {score_range.min:g} so every score has a band"
            )
        return bands

    def band_for(self, score: float) -> str:
        """The band letter of a score (bands are ordered highest first)."""
        for band in self.bands:
            if score >= band.min_score:
                return band.band
        return self.bands[-1].band
