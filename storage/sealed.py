"""The one list of columns sealed (encrypted) at rest, and what each holds once disposed of.

Key rotation (bot/records/keys.py) re-seals exactly these, disposition (bot/records/
disposition.py) overwrites exactly these, and export (bot/records/export.py) redacts the case's
subject fields named here. A new sealed column is added here, nowhere else. The record's
payloads (`RecordPayload.body`) are sealed too but handled apart: they are deleted, not
overwritten, and rotated by delete and re-insert.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from sqlalchemy import ColumnElement
from sqlmodel import SQLModel, col, select

from storage.models import Approval, Case, DoubtStep, RiskAnswer, RiskReview

DISPOSED = "[disposed]"

# The subject details of a case: channel messages never carry them (§4.3(9)).
SUBJECT_FIELDS = ("notice_reference", "subject_name", "subject_identifiers", "issuing_country",
                  "offense_summary", "notes")


@dataclass(frozen=True)
class SealedTable:
    model: type[SQLModel]
    # column -> the value it keeps after disposition
    columns: Mapping[str, str]
    # the rows of one case
    of_case: Callable[[str], ColumnElement[bool]]


SEALED: tuple[SealedTable, ...] = (
    SealedTable(Case, {name: "--" if name == "issuing_country" else DISPOSED
                       for name in SUBJECT_FIELDS},
                lambda case_id: col(Case.id) == case_id),
    SealedTable(DoubtStep, {"note": DISPOSED}, lambda case_id: col(DoubtStep.case_id) == case_id),
    SealedTable(RiskReview, {"notes": DISPOSED},
                lambda case_id: col(RiskReview.case_id) == case_id),
    SealedTable(RiskAnswer, {"not_applicable_note": ""},
                lambda case_id: col(RiskAnswer.review_id).in_(
                    select(RiskReview.id).where(RiskReview.case_id == case_id))),
    SealedTable(Approval, {"reason": "", "justification": ""},
                lambda case_id: col(Approval.case_id) == case_id),
)
