"""clock reset episodes: each decision records the newest rejected reading id it saw

Revision ID: 0010
Revises: 0007
Create Date: 2026-12-07 01:00:00.000000

`clock_resets.rejected_upto`: the id of the newest rejected reading (of any device) when
the decision was recorded. A later decision of the same device takes its newest rejected
reading only from rows after it, so one episode's reading is never credited in another
(docs/accounting.md, "Clocks"). Decisions stored before keep NULL: no bound.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("clock_resets") as batch:
        batch.add_column(sa.Column("rejected_upto", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("clock_resets") as batch:
        batch.drop_column("rejected_upto")
