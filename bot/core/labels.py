"""The checklist's steps in order, with their titles and sections, and the labels the core's
messages use for stored values. Data only: every other core module may read it."""

from __future__ import annotations

from bot.core.forms import USE_OUTCOMES
from storage.models import (
    ApprovalKind,
    ApprovalStatus,
    CloseReason,
    IntendedUse,
    NoticeType,
    RequestKind,
    Stage,
)

STEPS: tuple[tuple[Stage, str, str], ...] = (
    (Stage.validity, "1. Verify validity", "§5.1(1)"),
    (Stage.review, "2. Preliminary review", "§5.1(2), §5.2, §2.3"),
    (Stage.doubt, "2b. Doubt: confer, research, seek context", "§5.2"),
    (Stage.approval, "3. Supervisory approval", "§5.1(3), §2.1"),
    (Stage.documents, "4. Underlying documentation", "§5.1(4), §2.1, §4.2(3)"),
    (Stage.use_authorization, "5. Use authorization", "§5.1(5), §2.2, §4.4"),
    (Stage.disclosure, "6. Disclosure to the person", "§5.1(6), §4.3(8)"),
    (Stage.awaiting_response, "6b. Waiting for the person's response", "§5.1(6), §4.3(8)"),
    (Stage.representations, "7. Representations and records", "§5.1(7), §4.3(6)"),
)
STAGE_LABELS: dict[str, str] = {
    **{stage.value: title.split(". ", 1)[1] for stage, title, _ in STEPS},
    Stage.ready.value: "Ready for use",
    Stage.closed.value: "Closed",
}
CLOSE_LABELS: dict[str, str] = {
    CloseReason.notice_inactive: "notice not active (suspended, withdrawn or expired): "
    "it cannot be used (§5.1(1))",
    CloseReason.prohibited: "prohibited offense category: must not be used (§5.2)",
    CloseReason.misuse: "material evidence of misuse: must not be used (§5.2)",
    CloseReason.doubt_unresolved: "doubt not resolved: not to be used (§5.2)",
    CloseReason.denied: "supervisory approval denied (§5.1(3))",
    CloseReason.use_not_authorized: "use authorization denied (§5.1(5))",
    CloseReason.withdrawn: "withdrawn by the officer",
    CloseReason.completed: "use of the notice recorded",
}
USE_LABELS: dict[str, str] = {
    IntendedUse.enforcement: "informing an enforcement action",
    IntendedUse.immigration: "immigration proceedings",
    IntendedUse.both: "an enforcement action and immigration proceedings",
}
# The outcome form's labels, read inside a sentence ("Use recorded: it was not used").
OUTCOME_LABELS: dict[str, str] = {k: v[:1].lower() + v[1:] for k, v in USE_OUTCOMES.items()}
DECISION_LABELS: dict[str, str] = {
    ApprovalStatus.pending: "Pending",
    ApprovalStatus.approved: "Approved",
    ApprovalStatus.denied: "Denied",
    ApprovalStatus.returned: "Returned for changes",
    ApprovalStatus.cancelled: "Cancelled",
}
APPROVAL_KIND_LABELS: dict[str, str] = {
    ApprovalKind.use: "supervisory approval",
    ApprovalKind.disclosure_exception: "footnote 2 exception",
    ApprovalKind.use_change: "change of intended use",
}
TYPE_LABELS = {NoticeType.red_notice: "Red Notice", NoticeType.diffusion: "Diffusion"}
REQUEST_LABELS = {RequestKind.validity: "validity", RequestKind.documents: "documentation",
                  RequestKind.use_authorization: "use authorization"}
# Step outcomes that stop the case or set it back (the step modules write them): they are marked
# adverse, not ticked as if all were well.
ADVERSE_OUTCOMES = ("Suspended per", "Withdrawn per", "Expired per", "Material evidence",
                    "Doubt remains", "Denied", "Use authorization denied",
                    "Documents reviewed: indications found")
# Steps whose outcome someone else gave (the USNCB, the person): the officer recorded it.
DECISION_STEPS = {Stage.approval.value}
