"""What a USNCB request says: the JSON body the webhook sends, and the text an officer copies
in manual mode. Neither ever asks anyone to contact the requesting country's NCB (§5.2)."""

from __future__ import annotations

from typing import Any

from bot.core.forms import DOCUMENT_KINDS
from storage.models import Case, IntendedUse, RequestKind, UsncbRequest

KIND_TEXT = {
    RequestKind.validity: "Please verify with INTERPOL that the notice below is active and has "
    "not been suspended, withdrawn or expired (ICE Directive 15006.1 §5.1(1)).",
    RequestKind.documents: "Please request the underlying documentation associated with the "
    "notice below (§2.1, §5.1(4)): {documents}.",
    RequestKind.use_authorization: "Please request use authorization from INTERPOL or the "
    "issuing member country's NCB for the notice below, for use {purpose} (§2.2, §5.1(5)).",
}
PURPOSE_TEXT = {
    IntendedUse.enforcement: "to inform an enforcement action",
    IntendedUse.immigration: "in immigration proceedings before EOIR",
    IntendedUse.both: "to inform an enforcement action and in immigration proceedings",
}


def request_text(case: Case, kind: RequestKind, details: dict[str, Any], *,
                 notice_reference: str) -> str:
    documents = ", ".join(DOCUMENT_KINDS.get(d, d) for d in details.get("documents") or []) \
        or "the foreign warrant, indictment, charging documents, conviction documentation and " \
           "police reports"
    purpose = PURPOSE_TEXT[IntendedUse(details.get("purpose") or case.intended_use)]
    lines = [
        KIND_TEXT[kind].format(documents=documents, purpose=purpose),
        f"Notice: {notice_reference} ({case.notice_type.replace('_', ' ')}).",
        f"ICE case reference: {case.id}, AOR {case.aor_id}.",
    ]
    if kind is RequestKind.use_authorization and details.get("purpose") in (
            IntendedUse.immigration, IntendedUse.both):
        lines.append("OPLA facilitates this request for immigration proceedings (§4.4(1)).")
    if kind is RequestKind.use_authorization and case.extradition_pending:
        # Only what is recorded: DOJ coordination is stated once the request records it.
        lines.append("An extradition request is pending; DOJ has been consulted (§2.2)."
                     if details.get("doj_coordination") else
                     "An extradition request is pending (§2.2, §4.4(2)).")
    return "\n".join(lines)


def webhook_body(case: Case, request: UsncbRequest, *, notice_reference: str) -> dict[str, Any]:
    kind = RequestKind(request.kind)
    return {
        "request_id": request.external_id,
        "kind": kind.value,
        "case_id": case.id,
        "aor": case.aor_id,
        "notice": {"type": case.notice_type, "reference": notice_reference},
        "documents": request.details.get("documents") or [],
        "purpose": request.details.get("purpose"),
        "opla_facilitates": kind is RequestKind.use_authorization
        and request.details.get("purpose") in (IntendedUse.immigration, IntendedUse.both),
        "extradition_pending": case.extradition_pending,
        "requested_by": request.sent_by,
        "text": request_text(case, kind, request.details, notice_reference=notice_reference),
    }
