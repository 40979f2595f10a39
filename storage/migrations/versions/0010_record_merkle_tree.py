"""record Merkle tree: complete subtrees over the entry hashes, backfilled for existing entries

Revision ID: 0010
Revises: 0007
Create Date: 2026-12-01 18:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from storage import merkle

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 5000


def upgrade() -> None:
    table = op.create_table(
        "record_tree_node",
        sa.Column("level", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("idx", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("level", "idx"),
    )
    if op.get_bind().dialect.name == "postgresql":  # append-only, like record_entry
        op.execute("CREATE TRIGGER record_tree_node_append_only BEFORE UPDATE OR DELETE ON "
                   "record_tree_node FOR EACH ROW EXECUTE FUNCTION "
                   "noticebot_refuse_record_change()")
        op.execute("CREATE TRIGGER record_tree_node_no_truncate BEFORE TRUNCATE ON "
                   "record_tree_node FOR EACH STATEMENT EXECUTE FUNCTION "
                   "noticebot_refuse_record_change()")
    # Existing entries get their leaves and subtrees, in seq order (leaf index = seq - 1).
    connection = op.get_bind()
    builder = merkle.TreeBuilder()
    pending: list[dict[str, object]] = []
    rows = connection.execute(sa.text("SELECT seq, hash FROM record_entry ORDER BY seq"))
    for seq, digest in rows:
        if seq != builder.size + 1:
            raise RuntimeError(f"record entry {builder.size + 1} is missing; verify the chain "
                               "before upgrading")
        pending.extend({"level": level, "idx": idx, "hash": node.hex()}
                       for level, idx, node in builder.add(merkle.entry_leaf(digest)))
        if len(pending) >= BATCH:
            op.bulk_insert(table, pending)
            pending = []
    if pending:
        op.bulk_insert(table, pending)


def downgrade() -> None:
    op.drop_table("record_tree_node")
