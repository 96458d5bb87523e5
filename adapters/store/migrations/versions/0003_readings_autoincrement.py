"""readings ids are never handed out twice (SQLite AUTOINCREMENT)

Without AUTOINCREMENT, SQLite gives a new row the largest id present plus one: once
retention has pruned the newest ids, a new reading could take an id the accountant or the
export has already passed, and be skipped. PostgreSQL's sequence never reuses an id, so
there this revision changes nothing.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# Every place a reading id is remembered: the new sequence starts after all of them
# (a start too high only skips ids; too low would hand one out again).
_HIGHEST_ID = """
SELECT max(n) FROM (
    SELECT max(id) AS n FROM readings
    UNION ALL SELECT max(last_reading_id) FROM devices
    UNION ALL SELECT max(position) FROM positions
    UNION ALL SELECT max(last_id) FROM export_outbox
    UNION ALL SELECT max(reading_id) FROM anomalies
    UNION ALL SELECT max(position) FROM decisions
)
"""


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    with op.batch_alter_table(
        "readings", recreate="always", table_kwargs={"sqlite_autoincrement": True}
    ):
        pass  # the table is rebuilt with AUTOINCREMENT, rows and index copied
    highest = int(bind.execute(sa.text(_HIGHEST_ID)).scalar() or 0)
    bind.execute(sa.text("DELETE FROM sqlite_sequence WHERE name = 'readings'"))
    bind.execute(
        sa.text("INSERT INTO sqlite_sequence (name, seq) VALUES ('readings', :seq)"),
        {"seq": highest},
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table(
        "readings", recreate="always", table_kwargs={"sqlite_autoincrement": False}
    ):
        pass
