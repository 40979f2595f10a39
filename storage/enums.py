"""The values of the enum-typed columns (stored as their string values, see storage/types.py
EnumText). Their own module so that models.py stays the tables; models.py re-exports them."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    officer = "officer"
    supervisor = "supervisor"
    manager = "manager"
    opla = "opla"
    records = "records"
    admin = "admin"


class NoticeType(StrEnum):
    red_notice = "red_notice"
    diffusion = "diffusion"


class IntendedUse(StrEnum):
    enforcement = "enforcement"
    immigration = "immigration"
    both = "both"


class Stage(StrEnum):
    """Where an open case stands; the order is the directive's §5.1 sequence."""

    validity = "validity"
    review = "review"
    doubt = "doubt"
    approval = "approval"
    documents = "documents"
    use_authorization = "use_authorization"
    disclosure = "disclosure"
    awaiting_response = "awaiting_response"  # §5.1(6): the person's window to respond
    representations = "representations"
    ready = "ready"  # threshold criteria met; waits for the officer to record the use
    closed = "closed"


class CloseReason(StrEnum):
    notice_inactive = "notice_inactive"
    prohibited = "prohibited"
    misuse = "misuse"
    doubt_unresolved = "doubt_unresolved"
    denied = "denied"
    use_not_authorized = "use_not_authorized"
    withdrawn = "withdrawn"
    completed = "completed"  # the use (or non-use) of the notice is recorded


class UseOutcome(StrEnum):
    """How a ready notice was finally used; recorded when the case ends."""

    enforcement_action = "enforcement_action"
    immigration_proceedings = "immigration_proceedings"
    not_used = "not_used"


class PersonResponse(StrEnum):
    """What came of the person's opportunity to respond (§5.1(6))."""

    none = "none"  # the window closed without a response
    not_contested = "not_contested"
    contested = "contested"


class ReviewOutcome(StrEnum):
    no_indications = "no_indications"
    doubt = "doubt"
    misuse = "misuse"


class RequestKind(StrEnum):
    validity = "validity"
    documents = "documents"
    use_authorization = "use_authorization"


class RequestStatus(StrEnum):
    sent = "sent"
    answered = "answered"
    no_response = "no_response"  # closed without an answer, recorded as such (§6)


class ApprovalKind(StrEnum):
    use = "use"
    disclosure_exception = "disclosure_exception"
    use_change = "use_change"  # a change of the case's intended use


class ApprovalStatus(StrEnum):
    pending = "pending"
    approved = "approved"
    denied = "denied"
    returned = "returned"  # sent back to the preliminary review for changes
    cancelled = "cancelled"


class DestinationKind(StrEnum):
    channel = "channel"  # a channel (the case's root message)
    thread = "thread"  # the case's thread, under its root message
    dm = "dm"  # a direct message to one user
    private = "private"  # only the acting user sees it (ephemeral / modal / console "only you")


class OutboxStatus(StrEnum):
    pending = "pending"
    sending = "sending"  # claimed by a relay; a stale claim is checked and taken over
    sent = "sent"
    dead = "dead"


class Delivery(StrEnum):
    pending = "pending"
    sending = "sending"
    delivered = "delivered"
    failed = "failed"


class ReminderKind(StrEnum):
    usncb_request = "usncb_request"
    approval = "approval"
    training = "training"
    response_window = "response_window"  # §5.1(6): tell the officer the window closed
    ready_outcome = "ready_outcome"  # a ready case whose use is not recorded yet
