"""digest lookup indexes

A digest for one manager (`/notice digest`) finds the waiting USNCB requests and pending
approvals of their AORs' cases. Indexed by case alone, SQLite (which has no statistics) drove
those lookups from the status index across every AOR's rows; with (case_id, status) it probes
case by case (at 100,000 cases: 32 -> 14 ms a digest). The single-column case indexes are
replaced, not kept beside them: the new ones serve lookups by case as well.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 02:05:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("usncb_request", schema=None) as batch_op:
        batch_op.create_index("ix_usncb_request_case_status", ["case_id", "status"],
                              unique=False)
        batch_op.drop_index(batch_op.f("ix_usncb_request_case_id"))

    with op.batch_alter_table("approval", schema=None) as batch_op:
        batch_op.create_index("ix_approval_case_status", ["case_id", "status"], unique=False)
        batch_op.drop_index(batch_op.f("ix_approval_case_id"))


def downgrade() -> None:
    with op.batch_alter_table("approval", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_approval_case_id"), ["case_id"], unique=False)
        batch_op.drop_index("ix_approval_case_status")

    with op.batch_alter_table("usncb_request", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_usncb_request_case_id"), ["case_id"],
                              unique=False)
        batch_op.drop_index("ix_usncb_request_case_status")
