"""clock resets: the operator's clock reset decisions (schema.clock_resets)

Revision ID: 0006
Revises: 0003
Create Date: 2026-12-03 22:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "clock_resets",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("device", sa.String(length=64), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("decided_us", sa.BigInteger(), nullable=False),
        sa.Column("seen_mwh", sa.BigInteger(), nullable=True),
        sa.Column("seen_at_us", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clock_resets")),
    )


def downgrade() -> None:
    op.drop_table("clock_resets")
