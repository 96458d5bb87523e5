"""export outbox: readings rendered as line protocol when stored (schema.export_outbox)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 17:07:59.649701
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "export_outbox",
        sa.Column(
            "last_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=False,
            nullable=False,
        ),
        sa.Column("after_id", sa.BigInteger(), nullable=False),
        sa.Column("readings", sa.Integer(), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=True),
        sa.PrimaryKeyConstraint("last_id", name=op.f("pk_export_outbox")),
    )
    op.create_index(
        "ix_export_outbox_runs",
        "export_outbox",
        ["last_id", "after_id", "readings", "points"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_export_outbox_runs", table_name="export_outbox")
    op.drop_table("export_outbox")
