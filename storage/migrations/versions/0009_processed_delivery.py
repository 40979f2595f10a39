"""processed delivery keys

Every Slack form submission and click is acted on once per delivery: the key of a delivery
(view id, view hash and values; or the action's timestamp) is written in the same
transaction as what it did, so Slack's re-delivery of it finds the key and changes nothing.

Revision ID: 0009
Revises: 0006
Create Date: 2026-12-01 17:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import storage.types

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "processed_delivery",
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("processed_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )


def downgrade() -> None:
    op.drop_table("processed_delivery")
