"""SQLModel tables, with their Create/Public variants beside them.

Enum-typed columns are stored as their string values so that the database stays readable and
migrations never need to touch a native enum type.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

# Imported here so that every table is registered whenever the models are.
from storage.delivery_models import AorChannel as AorChannel
from storage.delivery_models import PersonIdentity as PersonIdentity
from storage.delivery_models import Platform

# The enums live in storage/enums.py; most code imports them from here (see __all__).
from storage.enums import (
    ApprovalKind,
    ApprovalStatus,
    CloseReason,
    Delivery,
    DestinationKind,
    IntendedUse,
    NoticeType,
    OutboxStatus,
    PersonResponse,
    ReminderKind,
    RequestKind,
    RequestStatus,
    ReviewOutcome,
    Role,
    Stage,
    UseOutcome,
)
from storage.types import EnumText, UTCDateTime

# --- roster ---------------------------------------------------------------------------------


class Aor(SQLModel, table=True):
    id: str = Field(primary_key=True, max_length=32)
    name: str
    channel: str | None = None
    active: bool = True


class AorApprover(SQLModel, table=True):
    """The AOR's approver chain: position 0 is the FRO, then designees in escalation order."""

    __tablename__ = "aor_approver"
    aor_id: str = Field(foreign_key="aor.id", primary_key=True)
    position: int = Field(primary_key=True)
    user_id: str = Field(foreign_key="person.user_id", index=True)


class AorManager(SQLModel, table=True):
    __tablename__ = "aor_manager"
    aor_id: str = Field(foreign_key="aor.id", primary_key=True)
    user_id: str = Field(foreign_key="person.user_id", primary_key=True)


class Person(SQLModel, table=True):
    user_id: str = Field(primary_key=True, max_length=32)
    name: str
    email: str
    aor_id: str | None = Field(default=None, foreign_key="aor.id")
    timezone: str = "America/New_York"
    active: bool = True


class PersonRole(SQLModel, table=True):
    __tablename__ = "person_role"
    user_id: str = Field(foreign_key="person.user_id", primary_key=True)
    role: Role = Field(primary_key=True, sa_type=EnumText(Role))


class Contact(SQLModel, table=True):
    """Offices notified by case id when a notice is found prohibited or misused (§5.2)."""

    id: str = Field(primary_key=True, max_length=32)
    name: str
    channel: str
    active: bool = True


class TrainingCompletion(SQLModel, table=True):
    __tablename__ = "training_completion"
    __table_args__ = (UniqueConstraint("user_id", "completed_on"),)
    id: int | None = Field(default=None, primary_key=True)
    user_id: str = Field(foreign_key="person.user_id", index=True)
    completed_on: date
    source: str
    recorded_at: datetime = Field(sa_type=UTCDateTime)


class Delegation(SQLModel, table=True):
    """A supervisor's approval authority lent to a designee until a date (inclusive)."""

    id: int | None = Field(default=None, primary_key=True)
    aor_id: str = Field(foreign_key="aor.id")
    delegator: str = Field(foreign_key="person.user_id")
    delegate: str = Field(foreign_key="person.user_id", index=True)
    until: date
    created_at: datetime = Field(sa_type=UTCDateTime)


# --- cases ----------------------------------------------------------------------------------


class CaseCounter(SQLModel, table=True):
    __tablename__ = "case_counter"
    year: int = Field(primary_key=True)
    last: int = 0


class CaseBase(SQLModel):
    notice_type: NoticeType
    intended_use: IntendedUse
    extradition_pending: bool = False


class CaseCreate(CaseBase):
    """What the officer submits with `/notice open`; subject fields are details (O18)."""

    aor_id: str
    notice_reference: str
    subject_name: str
    subject_identifiers: str = ""
    issuing_country: str
    offense_summary: str
    published_on: date | None = None
    notes: str = ""


class Case(CaseBase, table=True):
    __tablename__ = "notice_case"
    __table_args__ = (Index("ix_case_aor_stage", "aor_id", "stage"),)
    id: str = Field(primary_key=True, max_length=32)
    aor_id: str = Field(foreign_key="aor.id")
    officer: str = Field(foreign_key="person.user_id", index=True)
    channel: str
    stage: Stage = Field(default=Stage.validity, sa_type=EnumText(Stage))
    close_reason: CloseReason | None = Field(default=None, sa_type=EnumText(CloseReason))
    review_outcome: ReviewOutcome | None = Field(default=None, sa_type=EnumText(ReviewOutcome))
    documents_preferred: bool = False
    # Each entry into §5.2's doubt starts a new round with its own confer/research/context.
    doubt_round: int = 0
    respond_by: date | None = None  # §5.1(6): the person may respond until this date
    # Recorded when the case ends.
    use_outcome: UseOutcome | None = Field(default=None, sa_type=EnumText(UseOutcome))
    used_on: date | None = None
    opened_at: datetime = Field(sa_type=UTCDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    disposed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    submission_key: str | None = Field(default=None, unique=True)
    # Subject details: never rendered into a channel or thread message.
    notice_reference: str
    subject_name: str
    subject_identifiers: str = ""
    issuing_country: str
    offense_summary: str = Field(sa_column=Column(Text, nullable=False))
    published_on: date | None = None
    notes: str = Field(default="", sa_column=Column(Text, nullable=False))


class CasePublic(CaseBase):
    """The channel-safe view of a case: no subject detail (§4.3(9); docs/obligations.md O18)."""

    id: str
    aor_id: str
    officer: str
    stage: str
    close_reason: str | None


class ChecklistItem(SQLModel, table=True):
    __tablename__ = "checklist_item"
    case_id: str = Field(foreign_key="notice_case.id", primary_key=True)
    step: str = Field(primary_key=True)
    done: bool = False
    outcome: str | None = None
    done_by: str | None = None
    done_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class RiskReview(SQLModel, table=True):
    __tablename__ = "risk_review"
    id: int | None = Field(default=None, primary_key=True)
    case_id: str = Field(foreign_key="notice_case.id", index=True)
    reviewed_by: str
    reviewed_at: datetime = Field(sa_type=UTCDateTime)
    outcome: ReviewOutcome = Field(sa_type=EnumText(ReviewOutcome))
    prohibited_categories: list[str] = Field(default_factory=list, sa_type=JSON)
    serious_crime_exception: bool = False
    sources: list[str] = Field(default_factory=list, sa_type=JSON)
    notes: str = Field(default="", sa_column=Column(Text, nullable=False))


class RiskAnswer(SQLModel, table=True):
    __tablename__ = "risk_answer"
    review_id: int = Field(foreign_key="risk_review.id", primary_key=True)
    indicator: str = Field(primary_key=True)
    answer: bool
    automatic: bool = False
    not_applicable_note: str = ""


class DoubtStep(SQLModel, table=True):
    """What was done under §5.2's doubt minimum: confer, research, seek context."""

    __tablename__ = "doubt_step"
    id: int | None = Field(default=None, primary_key=True)
    case_id: str = Field(foreign_key="notice_case.id", index=True)
    kind: str
    doubt_round: int = 0  # the case's round of doubt this step belongs to
    partners: list[str] = Field(default_factory=list, sa_type=JSON)
    note: str = Field(sa_column=Column(Text, nullable=False))
    recorded_by: str
    recorded_at: datetime = Field(sa_type=UTCDateTime)


class Approval(SQLModel, table=True):
    # (case, status): one manager's digest finds their AORs' pending approvals case by case.
    __table_args__ = (Index("ix_approval_case_status", "case_id", "status"),)
    id: int | None = Field(default=None, primary_key=True)
    case_id: str = Field(foreign_key="notice_case.id")
    kind: ApprovalKind = Field(default=ApprovalKind.use, sa_type=EnumText(ApprovalKind))
    requested_by: str
    requested_at: datetime = Field(sa_type=UTCDateTime)
    routed_to: str
    status: ApprovalStatus = Field(default=ApprovalStatus.pending, index=True,
                                   sa_type=EnumText(ApprovalStatus))
    decided_by: str | None = None
    decided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    reason: str = ""
    justification: str = ""
    # The use asked for by a use_change approval.
    requested_use: IntendedUse | None = Field(default=None, sa_type=EnumText(IntendedUse))


class UsncbRequest(SQLModel, table=True):
    __tablename__ = "usncb_request"
    # (case, status): one manager's digest finds their AORs' waiting requests case by case.
    __table_args__ = (Index("ix_usncb_request_case_status", "case_id", "status"),)
    id: int | None = Field(default=None, primary_key=True)
    case_id: str = Field(foreign_key="notice_case.id")
    kind: RequestKind = Field(sa_type=EnumText(RequestKind))
    status: RequestStatus = Field(default=RequestStatus.sent, index=True,
                                  sa_type=EnumText(RequestStatus))
    sent_on: date
    sent_by: str
    method: str
    reference: str = ""
    details: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    answer: str | None = None
    answered_on: date | None = None
    answered_by: str | None = None
    answer_reference: str = ""
    answer_details: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    recorded_at: datetime = Field(sa_type=UTCDateTime)
    # How it travels: "manual" (the officer sends it) or "webhook" (noticebot sends it).
    channel: str = "manual"
    external_id: str | None = Field(default=None, unique=True, max_length=80)
    delivery: str | None = Field(default=None, index=True)  # pending | delivered | failed
    delivery_attempts: int = 0
    delivery_error: str | None = None
    claimed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class UsncbCallbackSeen(SQLModel, table=True):
    """Signatures of accepted USNCB callbacks: a replayed callback is refused."""

    __tablename__ = "usncb_callback_seen"
    signature: str = Field(primary_key=True, max_length=80)
    received_at: datetime = Field(sa_type=UTCDateTime)


class ProcessedDelivery(SQLModel, table=True):
    """Platform deliveries already acted on (a Slack view submission or a click): a platform's
    re-delivery of the same one changes nothing. Written in the interaction's transaction."""

    __tablename__ = "processed_delivery"
    key: str = Field(primary_key=True, max_length=200)
    processed_at: datetime = Field(sa_type=UTCDateTime)


class UsncbNoResponse(SQLModel, table=True):
    """'No response as of DATE' on an outstanding request: §6 requires the lack of a response."""

    __tablename__ = "usncb_no_response"
    __table_args__ = (UniqueConstraint("request_id", "as_of"),)
    id: int | None = Field(default=None, primary_key=True)
    request_id: int = Field(foreign_key="usncb_request.id", index=True)
    as_of: date
    recorded_by: str
    recorded_at: datetime = Field(sa_type=UTCDateTime)


# --- delivery and record --------------------------------------------------------------------


class OutboxMessage(SQLModel, table=True):
    """An outgoing message written in the same transaction as the change that causes it."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_status_id", "status", "id"),
                      Index("ix_outbox_platform_status_id", "platform", "status", "id"),
                      # The latest row of a message key (bot/core/context.py `send`).
                      Index("ix_outbox_message_key_id", "message_key", "id"))
    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime = Field(sa_type=UTCDateTime)
    case_id: str | None = Field(default=None, index=True)
    destination_kind: DestinationKind = Field(sa_type=EnumText(DestinationKind))
    destination: str  # channel id, case id (its thread) or user id
    message_key: str | None = None  # same key = update of the earlier message in place
    payload: dict[str, Any] = Field(sa_type=JSON)
    status: OutboxStatus = Field(default=OutboxStatus.pending, sa_type=EnumText(OutboxStatus))
    attempts: int = 0
    next_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    claimed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    alert: bool = False  # an admin alert about a dead letter: its own failure alerts no one
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    platform_ref: str | None = None
    error: str | None = None
    # The platform whose delivery loop sends the row (one loop never claims another's rows).
    platform: Platform = Field(default=Platform.slack, sa_type=EnumText(Platform, length=16))


class RecordEntry(SQLModel, table=True):
    """One link of the append-only, hash-chained interaction record (§6)."""

    __tablename__ = "record_entry"
    # Finds the disposition entries that `audit verify` checks the disposition log against.
    __table_args__ = (Index("ix_record_entry_disposals", "seq",
                            sqlite_where=text("action = 'records.disposed'"),
                            postgresql_where=text("action = 'records.disposed'")),)
    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    at: datetime = Field(sa_type=UTCDateTime)
    actor: str
    kind: str  # command | click | form | state | refusal | outbound | admin
    action: str
    case_id: str | None = Field(default=None, index=True)
    payload_digest: str = Field(max_length=64)
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64, unique=True)


class RecordPayload(SQLModel, table=True):
    """Entry content, kept apart from the chain so disposition can remove it (§6)."""

    __tablename__ = "record_payload"
    seq: int = Field(foreign_key="record_entry.seq", primary_key=True)
    body: str = Field(sa_column=Column(Text, nullable=False))


class RecordTreeNode(SQLModel, table=True):
    """A complete subtree of the Merkle tree over the record's entry hashes (storage.merkle):
    level 0 holds the leaves (index = seq - 1); written with the entry, never changed."""

    __tablename__ = "record_tree_node"
    level: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    idx: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    hash: str = Field(max_length=64)


class PlatformMessage(SQLModel, table=True):
    """Where a keyed message was posted on a chat platform, so later versions update it."""

    __tablename__ = "platform_message"
    message_key: str = Field(primary_key=True, max_length=200)
    platform: Platform = Field(default=Platform.slack, primary_key=True,
                               sa_type=EnumText(Platform, length=16))
    channel: str
    ts: str
    updated_at: datetime = Field(sa_type=UTCDateTime)


class LitigationHold(SQLModel, table=True):
    """Records matching every given criterion are never disposed of while the hold is active."""

    __tablename__ = "litigation_hold"
    id: int | None = Field(default=None, primary_key=True)
    matter: str
    authority: str
    reason: str = Field(sa_column=Column(Text, nullable=False))
    case_id: str | None = Field(default=None, index=True)
    aor_id: str | None = None
    person: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    placed_by: str
    placed_at: datetime = Field(sa_type=UTCDateTime)
    lifted_by: str | None = None
    lifted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    lift_reason: str = ""


class DispositionLog(SQLModel, table=True):
    """What was destroyed, under which schedule item and authority, when, approved by whom."""

    __tablename__ = "disposition_log"
    __table_args__ = (Index("ix_disposition_log_record_ref", "record_ref"),)
    id: int | None = Field(default=None, primary_key=True)
    record_type: str
    record_ref: str
    schedule_item: str
    authority: str
    eligible_on: date
    disposed_on: date
    approved_by: str
    entries_affected: int = 0


class Reminder(SQLModel, table=True):
    """A pending nudge: due work as data, claimed by whichever sweep gets there first."""

    __tablename__ = "reminder"
    __table_args__ = (UniqueConstraint("kind", "ref"),
                      Index("ix_reminder_active_due", "active", "next_due_at"))
    id: int | None = Field(default=None, primary_key=True)
    kind: ReminderKind = Field(sa_type=EnumText(ReminderKind))
    ref: str  # request id, approval id, or user id (training)
    case_id: str | None = Field(default=None, index=True)
    next_due_at: datetime = Field(sa_type=UTCDateTime)
    sent: int = 0  # reminders sent so far
    active: bool = True
    snoozed_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(sa_type=UTCDateTime)


class DigestSent(SQLModel, table=True):
    """One weekly digest per manager per ISO year and week, in the manager's time zone."""

    __tablename__ = "digest_sent"
    manager: str = Field(primary_key=True)
    iso_year: int = Field(primary_key=True)
    iso_week: int = Field(primary_key=True)
    sent_at: datetime = Field(sa_type=UTCDateTime)


# The tables, and the enums of their columns (defined in storage/enums.py).
__all__ = ["Aor", "AorApprover", "AorManager", "Approval", "ApprovalKind", "ApprovalStatus",
           "Case", "CaseBase", "CaseCounter", "CaseCreate", "CasePublic", "ChecklistItem",
           "CloseReason", "Contact", "Delegation", "Delivery", "DigestSent", "DispositionLog",
           "DoubtStep", "IntendedUse", "LitigationHold", "NoticeType", "OutboxMessage",
           "OutboxStatus", "Person", "PersonResponse", "PersonRole", "PlatformMessage",
           "ProcessedDelivery", "RecordEntry", "RecordPayload", "RecordTreeNode", "Reminder",
           "ReminderKind", "RequestKind", "RequestStatus", "ReviewOutcome", "RiskAnswer",
           "RiskReview", "Role", "Stage", "TrainingCompletion", "UseOutcome", "UsncbCallbackSeen",
           "UsncbNoResponse", "UsncbRequest"]
