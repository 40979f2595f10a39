"""case lifecycle: doubt rounds, the person's response window, the recorded use, use changes

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 17:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("notice_case", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("doubt_round", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("respond_by", sa.Date(), nullable=True))
        batch_op.add_column(
            sa.Column("use_outcome", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.add_column(sa.Column("used_on", sa.Date(), nullable=True))
    # Existing doubt steps belong to the round their case is in (round 1 if it was in doubt).
    with op.batch_alter_table("doubt_step", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("doubt_round", sa.Integer(), nullable=False, server_default="0"))
    op.execute("UPDATE notice_case SET doubt_round = 1 WHERE id IN "
               "(SELECT case_id FROM doubt_step) OR stage = 'doubt'")
    op.execute("UPDATE doubt_step SET doubt_round = 1")
    with op.batch_alter_table("approval", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("requested_use", sqlmodel.sql.sqltypes.AutoString(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("approval", schema=None) as batch_op:
        batch_op.drop_column("requested_use")
    with op.batch_alter_table("doubt_step", schema=None) as batch_op:
        batch_op.drop_column("doubt_round")
    with op.batch_alter_table("notice_case", schema=None) as batch_op:
        batch_op.drop_column("used_on")
        batch_op.drop_column("use_outcome")
        batch_op.drop_column("respond_by")
        batch_op.drop_column("doubt_round")
