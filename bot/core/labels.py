"""The labels the core's messages use for stored values (stages, close reasons, decisions).
Data only: every other core module may read it."""

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

# Each stage's name, as the checklist, the digest and refusals say it.
STAGE_LABELS: dict[str, str] = {
    Stage.validity: "Verify validity",
    Stage.review: "Preliminary review",
    Stage.doubt: "Doubt: confer, research, seek context",
    Stage.approval: "Supervisory approval",
    Stage.documents: "Underlying documentation",
    Stage.use_authorization: "Use authorization",
    Stage.disclosure: "Disclosure to the person",
    Stage.awaiting_response: "Waiting for the person's response",
    Stage.representations: "Representations and records",
    Stage.ready: "Ready for use",
    Stage.closed: "Closed",
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
