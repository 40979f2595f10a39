"""The retention schedule: which NARA-approved item governs each record type, for how long,
counted from which trigger. A record type with no item is kept indefinitely (§6; 44 U.S.C.
3314: unscheduled records may not be destroyed)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class RecordType(StrEnum):
    case_file = "case_file"  # a closed case: its rows and its record entries' content
    interaction = "interaction"  # record entries not tied to a case (roster, admin, reads)
    training = "training"  # training completions, except each person's latest
    reminder = "reminder"  # reminders (scheduled work); none are kept yet
    disposition_log = "disposition_log"


TRIGGERS = {RecordType.case_file: "case_closed"}  # every other type counts from creation


class ScheduleError(Exception):
    pass


class ScheduleItem(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    record_type: RecordType
    item: str = Field(min_length=1, description="schedule item id (agency or GRS)")
    authority: str = Field(min_length=1, description="NARA disposition authority")
    retain_years: int | None = Field(default=None, ge=0, le=200)
    retain_days: int | None = Field(default=None, ge=0, le=73000)
    trigger: str = "created"

    @model_validator(mode="after")
    def _one_period_and_a_known_trigger(self) -> ScheduleItem:
        if (self.retain_years is None) == (self.retain_days is None):
            raise ValueError("give exactly one of retain_years or retain_days")
        expected = TRIGGERS.get(self.record_type, "created")
        if self.trigger != expected:
            raise ValueError(f"trigger for {self.record_type} must be '{expected}'")
        return self

    def eligible_on(self, start: date) -> date:
        if self.retain_years is not None:
            try:
                return start.replace(year=start.year + self.retain_years)
            except ValueError:  # 29 February
                return start.replace(year=start.year + self.retain_years, day=28)
        return start + timedelta(days=self.retain_days or 0)

    def describe(self) -> str:
        period = (f"{self.retain_years} years" if self.retain_years is not None
                  else f"{self.retain_days} days")
        return f"{self.item} ({self.authority}): {self.trigger.replace('_', ' ')} + {period}"


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")
    schedule: list[ScheduleItem] = Field(default_factory=list)


@dataclass(frozen=True)
class Schedule:
    items: dict[RecordType, ScheduleItem]

    def item_for(self, record_type: RecordType) -> ScheduleItem | None:
        return self.items.get(record_type)


def load_schedule(path: str) -> Schedule:
    """The schedule in `path`; an empty setting means no schedule (keep everything)."""
    if not path:
        return Schedule({})
    try:
        raw = tomllib.loads(Path(path).read_text("utf-8"))
    except FileNotFoundError:
        raise ScheduleError(f"NOTICEBOT_RETENTION_FILE: {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ScheduleError(f"{path}: not valid TOML: {exc}") from None
    try:
        parsed = _File.model_validate(raw)
    except ValidationError as exc:
        problems = [f"[[schedule]] #{int(e['loc'][1]) + 1 if len(e['loc']) > 1 else '?'}"
                    f"{' key ' + repr(e['loc'][2]) if len(e['loc']) > 2 else ''}: "
                    + str(e["msg"]).removeprefix("Value error, ") for e in exc.errors()]
        raise ScheduleError(f"{path}:\n  " + "\n  ".join(problems)) from None
    items: dict[RecordType, ScheduleItem] = {}
    for entry in parsed.schedule:
        if entry.record_type in items:
            raise ScheduleError(f"{path}: {entry.record_type} is scheduled twice")
        items[entry.record_type] = entry
    return Schedule(items)
