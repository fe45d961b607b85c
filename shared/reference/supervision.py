"""Supervision settings as data: warning share, notice ladder, bounce-back, look-back."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.reference.time_limits import Duration


class Addressee(StrEnum):
    DEPARTMENT = "department"  # 督办单 to the department
    DEPARTMENT_HEAD = "department_head"  # 挂牌督办 to its head
    LEADERSHIP = "leadership"  # to the district leadership


class NoticeLevel(BaseModel):
    """One rung of the notice ladder (督办).

    ``interval`` runs from the moment the case went overdue for level 1, and
    from the previous level's notice for the others, while the case stays overdue.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    level: int = Field(ge=1)
    name_zh: str = Field(min_length=1)
    name_en: str = Field(min_length=1)
    addressee: Addressee
    interval: Duration


class ReboundRule(BaseModel):
    """Bounce-back (回弹): the same problem back at the same place after closing."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    window_days: int = Field(ge=1)  # a closed case this recent counts
    bureau_notice_at_count: int = Field(ge=1)  # 全局通报 from this count on
    key_problem_per_quarter: int = Field(ge=1)  # rebounds in a quarter that make a key problem


class LookbackRule(BaseModel):
    """Look-back (回头看): re-inspect a sample of closed cases after some days."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    after_days: int = Field(ge=1)
    sample_share: float = Field(ge=0, le=1, allow_inf_nan=False)


class SupervisionRules(BaseModel):
    """Everything ``supervision.json`` holds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    warning_share: float = Field(
        gt=0, lt=1, allow_inf_nan=False
    )  # yellow from this share of a limit
    notice_ladder: tuple[NoticeLevel, ...] = Field(min_length=1)
    rebound: ReboundRule
    lookback: LookbackRule

    @field_validator("notice_ladder")
    @classmethod
    def _levels_in_order(cls, ladder: tuple[NoticeLevel, ...]) -> tuple[NoticeLevel, ...]:
        levels = [notice.level for notice in ladder]
        if levels != list(range(1, len(ladder) + 1)):
            raise ValueError(f"levels must be 1, 2, ... in order, not {levels}")
        return ladder

    def notice(self, level: int) -> NoticeLevel | None:
        """The rung at ``level``, or None past the top of the ladder."""
        if 1 <= level <= len(self.notice_ladder):
            return self.notice_ladder[level - 1]
        return None
