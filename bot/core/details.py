"""Subject details of a case: sealed at rest (§4.3(9)), opened only for authorized reads."""

from __future__ import annotations

from dataclasses import dataclass

from storage.models import Case
from storage.sealed import SUBJECT_FIELDS
from storage.vault import Vault


@dataclass(frozen=True)
class CaseDetails:
    notice_reference: str
    subject_name: str
    subject_identifiers: str
    issuing_country: str
    offense_summary: str
    notes: str


def seal_case(vault: Vault, case: Case) -> None:
    for name in SUBJECT_FIELDS:
        setattr(case, name, vault.seal(getattr(case, name)))


def open_case_details(vault: Vault, case: Case) -> CaseDetails:
    return CaseDetails(**{name: vault.open(getattr(case, name)) for name in SUBJECT_FIELDS})
