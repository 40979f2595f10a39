"""Buttons and the small message pieces that step prompts, approval DMs and reminders share."""

from __future__ import annotations

from bot.core.context import Ctx
from bot.core.queries import no_responses
from bot.messages import (
    MARK_SYMBOLS,
    Action,
    ActionId,
    ActionValue,
    Confirm,
    Mark,
    Style,
)
from storage.models import Approval, ApprovalKind, Case, Delivery, UsncbNoResponse, UsncbRequest


def button(label: str, action: ActionId, case: Case, *, ref: int | None = None,
           style: Style = Style.default) -> Action:
    return Action(label, ActionValue(action, case.id, ref), style)


def titled(mark: Mark, title: str) -> str:
    return f"{MARK_SYMBOLS[mark]} {title}"


def withdraw_confirm(case: Case) -> Confirm:
    return Confirm(title="Withdraw the case?",
                   text=f"{case.id} will be closed as withdrawn. This cannot be undone.",
                   confirm="Withdraw")


def delivery(case: Case, request: UsncbRequest) -> tuple[str, tuple[Action, ...]]:
    """How a webhook request is travelling, and what the officer can do if it failed."""
    if request.delivery in (Delivery.pending, Delivery.sending):
        return " Sending it to the USNCB liaison system…", ()
    if request.delivery == Delivery.delivered:
        return f" Delivered to the USNCB liaison system ({request.external_id}).", ()
    if request.delivery == Delivery.failed and request.answer is None:
        return (
            f" NOT DELIVERED to the USNCB liaison system ({request.delivery_error}).",
            (button("Retry sending", ActionId.retry_delivery, case, ref=request.id,
                    style=Style.primary),
             button("Send it manually instead", ActionId.switch_manual, case, ref=request.id)),
        )
    return "", ()


def request_status(ctx: Ctx, request: UsncbRequest) -> tuple[str, list[UsncbNoResponse]]:
    """'Requested DATE. No response as of DATE.' and the no-response entries behind it."""
    silent = no_responses(ctx, request.id) if request.id is not None else []
    text = f"Requested {request.sent_on.isoformat()}."
    if silent:
        text += f" No response as of {silent[-1].as_of.isoformat()}."
    return text, silent


def decision_actions(approval: Approval) -> tuple[Action, ...]:
    """The approver's buttons for a pending approval (its DM and App Home)."""
    case_id = approval.case_id
    pairs: tuple[tuple[ActionId, str, Style, Confirm | None], ...]
    if approval.kind == ApprovalKind.use:
        pairs = (
            (ActionId.approve, "Approve", Style.primary, Confirm(
                title="Approve use?", confirm="Approve",
                text=f"You approve using the notice of {case_id} and requesting its "
                "underlying documentation (§5.1(3)). This is recorded in your name.")),
            (ActionId.return_for_changes, "Return for changes", Style.default, None),
            (ActionId.deny, "Deny", Style.danger, Confirm(
                title="Deny use?", confirm="Deny",
                text=f"You will be asked for the reason; {case_id} will then be closed.")),
        )
    elif approval.kind == ApprovalKind.use_change:
        pairs = ((ActionId.approve_use_change, "Approve change", Style.primary, Confirm(
                     title="Approve the change?", confirm="Approve",
                     text=f"The intended use of {case_id} changes; this is recorded in your "
                     "name.")),
                 (ActionId.refuse_use_change, "Refuse change", Style.danger, None))
    else:
        pairs = ((ActionId.sign_off_exception, "Sign off", Style.primary, None),
                 (ActionId.refuse_exception, "Refuse", Style.danger, None))
    decisions = [Action(label, ActionValue(action, case_id, approval.id), style, confirm)
                 for action, label, style, confirm in pairs]
    return (*decisions, Action("Show details", ActionValue(ActionId.show_case, approval.case_id)))
