"""outbox rows and platform message refs name their platform

Each outbox row names the platform whose delivery loop sends it, so a console started against a
shared database no longer takes Slack's rows, and a platform message ref is kept per platform.

Today's rows: the console marked rows sent without a platform ref (it has none), the Slack relay
always stores the message ts when it sends. So a sent row without a ref and without an error is
the console's; every other row (pending, sending, dead, sent with a ts) is Slack's, as only the
Slack relay retries, dead-letters or stores refs. Every existing platform_message row is Slack's.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 20:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import storage.types

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("platform", sqlmodel.sql.sqltypes.AutoString(length=16),
                                   nullable=False, server_default="slack"))
    op.execute("UPDATE outbox SET platform = 'console' WHERE status = 'sent' "
               "AND platform_ref IS NULL AND error IS NULL")
    with op.batch_alter_table("outbox") as batch:
        batch.alter_column("platform", server_default=None)
        batch.create_index("ix_outbox_platform_status_id", ["platform", "status", "id"])
    _platform_message(["message_key", "platform"], "platform")


def _platform_message(key: list[str], platform: str | None) -> None:
    """Rebuild platform_message with the given primary key (a new table, copied, renamed:
    the same steps on SQLite and PostgreSQL)."""
    columns = [
        sa.Column("message_key", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("ts", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("updated_at", storage.types.UTCDateTime(timezone=True), nullable=False),
    ]
    if platform is not None:
        columns.append(sa.Column("platform", sqlmodel.sql.sqltypes.AutoString(length=16),
                                 nullable=False))
    op.create_table("platform_message_new", *columns, sa.PrimaryKeyConstraint(*key))
    copied = "message_key, channel, ts, updated_at"
    if platform is not None:
        op.execute(f"INSERT INTO platform_message_new ({copied}, platform) "
                   f"SELECT {copied}, 'slack' FROM platform_message")
    else:
        op.execute(f"INSERT INTO platform_message_new ({copied}) SELECT {copied} "
                   "FROM platform_message WHERE platform = 'slack'")
    op.drop_table("platform_message")
    op.rename_table("platform_message_new", "platform_message")
    if op.get_bind().dialect.name == "postgresql":  # keep the constraint's usual name
        op.execute("ALTER TABLE platform_message RENAME CONSTRAINT platform_message_new_pkey "
                   "TO platform_message_pkey")


def downgrade() -> None:
    _platform_message(["message_key"], None)
    with op.batch_alter_table("outbox") as batch:
        batch.drop_index("ix_outbox_platform_status_id")
        batch.drop_column("platform")
