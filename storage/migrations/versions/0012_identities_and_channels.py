"""per-platform identities of people and channels of AORs

`person.user_id` stays the person's noticebot id; until now it was also their Slack user id,
so every existing person gets that Slack identity. Every AOR with a channel gets it as its Slack
channel (`aor.channel` stays, for what reads it today).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 20:25:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_text = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    op.create_table(
        "person_identity",
        sa.Column("user_id", _text(length=32), nullable=False),
        sa.Column("platform", _text(length=16), nullable=False),
        sa.Column("external_id", _text(length=128), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["person.user_id"]),
        sa.PrimaryKeyConstraint("user_id", "platform"),
        sa.UniqueConstraint("platform", "external_id", name="uq_person_identity_external"),
    )
    op.create_table(
        "aor_channel",
        sa.Column("aor_id", _text(length=32), nullable=False),
        sa.Column("platform", _text(length=16), nullable=False),
        sa.Column("conversation", _text(length=256), nullable=False),
        sa.Column("team", _text(length=256), nullable=True),
        sa.Column("service_url", _text(length=512), nullable=True),
        sa.ForeignKeyConstraint(["aor_id"], ["aor.id"]),
        sa.PrimaryKeyConstraint("aor_id", "platform"),
    )
    op.execute("INSERT INTO person_identity (user_id, platform, external_id) "
               "SELECT user_id, 'slack', user_id FROM person")
    op.execute("INSERT INTO aor_channel (aor_id, platform, conversation) "
               "SELECT id, 'slack', channel FROM aor WHERE channel IS NOT NULL")


def downgrade() -> None:
    op.drop_table("aor_channel")
    op.drop_table("person_identity")
