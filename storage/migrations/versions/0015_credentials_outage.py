"""credentials_outage: a platform's refused credentials, told once across processes

Each process delivering to a platform watched its credentials for itself, so with several
`noticebot teams` workers and a worker the admins were told of one outage once per process.
The outage being told is now a row: one process tells of its start, one of its end.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 19:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import storage.types

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_text = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    op.create_table(
        "credentials_outage",
        sa.Column("platform", _text(length=16), nullable=False),
        sa.Column("since", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ended_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("platform"),
    )


def downgrade() -> None:
    op.drop_table("credentials_outage")
