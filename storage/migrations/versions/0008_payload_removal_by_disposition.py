"""record content leaves only by disposition

Directive §6 (docs/obligations.md, O32): record content may be missing only where the
disposition log says it was disposed of. On PostgreSQL a deferred constraint trigger checks, at
commit, every payload row deleted in the transaction: it must be back (key rotation re-seals
rows by deleting and re-inserting them in one transaction) or be named by a disposition log
row (the entry itself, or its case file). TRUNCATE of the payloads is refused outright.
`audit verify` checks the same on every database, and also that each log row is confirmed by
the disposition's own record entry; the partial index finds those entries without a scan.
The log is indexed by record reference for the guard's lookups.

Revision ID: 0008
Revises: 0006
Create Date: 2026-12-01 17:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GUARD_FUNCTION = """
CREATE FUNCTION noticebot_payload_removed_by_disposition() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM record_payload WHERE seq = OLD.seq) THEN
        RETURN NULL;  -- deleted and re-inserted in the same transaction (key rotation)
    END IF;
    IF EXISTS (SELECT 1 FROM disposition_log d
               WHERE d.record_type = 'interaction' AND d.record_ref = 'entry:' || OLD.seq)
       OR EXISTS (SELECT 1 FROM disposition_log d
                  JOIN record_entry e ON e.case_id = d.record_ref
                  WHERE d.record_type = 'case_file' AND e.seq = OLD.seq) THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'record content of entry % can only be removed by disposition', OLD.seq
        USING ERRCODE = 'insufficient_privilege';
END
$$
"""


def upgrade() -> None:
    # The guard looks a deleted row up by its reference: without the index, disposing of many
    # entries in one transaction would scan the log once per row.
    with op.batch_alter_table("disposition_log", schema=None) as batch_op:
        batch_op.create_index("ix_disposition_log_record_ref", ["record_ref"], unique=False)
    with op.batch_alter_table("record_entry", schema=None) as batch_op:
        batch_op.create_index(
            "ix_record_entry_disposals", ["seq"], unique=False,
            sqlite_where=sa.text("action = 'records.disposed'"),
            postgresql_where=sa.text("action = 'records.disposed'"))
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(GUARD_FUNCTION)
    op.execute(
        "CREATE CONSTRAINT TRIGGER record_payload_removed_by_disposition"
        " AFTER DELETE ON record_payload DEFERRABLE INITIALLY DEFERRED"
        " FOR EACH ROW EXECUTE FUNCTION noticebot_payload_removed_by_disposition()"
    )
    op.execute(
        "CREATE TRIGGER record_payload_no_truncate BEFORE TRUNCATE ON record_payload"
        " FOR EACH STATEMENT EXECUTE FUNCTION noticebot_refuse_record_change()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS record_payload_no_truncate ON record_payload")
        op.execute("DROP TRIGGER IF EXISTS record_payload_removed_by_disposition"
                   " ON record_payload")
        op.execute("DROP FUNCTION IF EXISTS noticebot_payload_removed_by_disposition()")
    with op.batch_alter_table("record_entry", schema=None) as batch_op:
        batch_op.drop_index("ix_record_entry_disposals")
    with op.batch_alter_table("disposition_log", schema=None) as batch_op:
        batch_op.drop_index("ix_disposition_log_record_ref")
