"""dm_conversation: the 1:1 conversation each platform gave for a person

Delivery asked the platform for a person's 1:1 conversation once per process (Teams: a
create-conversation call before every first DM after a restart, in every replica). The answer
is now kept, so it is asked for once.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 16:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import storage.types

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_text = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    op.create_table(
        "dm_conversation",
        sa.Column("platform", _text(length=16), nullable=False),
        sa.Column("identity", _text(length=128), nullable=False),
        sa.Column("conversation", _text(length=256), nullable=False),
        sa.Column("opened_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("platform", "identity"),
    )


def downgrade() -> None:
    op.drop_table("dm_conversation")
