"""the verifiable ledger: log leaves, signed checkpoints, verifier keys (schema.log_*)

The log of a ledger from before this revision is built from its stored mints by the
accountant at the first start (it needs the signing key, which migrations never see).

Revision ID: 0008
Revises: 0010
Create Date: 2026-12-07 01:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "log_leaves",
        sa.Column("plant", sa.String(length=64), nullable=False),
        sa.Column("leaf_index", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("leaf", sa.Text(), nullable=False),
        sa.Column("leaf_hash", sa.LargeBinary(), nullable=False),
        sa.Column("credits_tiles", sa.LargeBinary(), nullable=False),
        sa.Column("credits_runs", sa.Text(), nullable=False),
        sa.Column("credits_first_id", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("plant", "leaf_index", name=op.f("pk_log_leaves")),
    )
    op.create_table(
        "log_checkpoints",
        sa.Column("plant", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("root", sa.LargeBinary(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("signed_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("plant", "size", name=op.f("pk_log_checkpoints")),
    )
    op.create_table(
        "log_keys",
        sa.Column("plant", sa.String(length=64), nullable=False),
        sa.Column("vkey", sa.String(length=255), nullable=False),
        sa.Column("first_size", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("plant", "vkey", name=op.f("pk_log_keys")),
    )


def downgrade() -> None:
    op.drop_table("log_keys")
    op.drop_table("log_checkpoints")
    op.drop_table("log_leaves")
