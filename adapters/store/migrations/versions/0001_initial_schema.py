"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-23 15:13:38.981189
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from heliod.adapters.store.schema import ExactInt

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "accountant",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("updated_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accountant")),
    )
    op.create_table(
        "anomalies",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("plant", sa.String(length=64), nullable=False),
        sa.Column("device", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("reading_id", sa.BigInteger(), nullable=False),
        sa.Column("reading_at_us", sa.BigInteger(), nullable=False),
        sa.Column("value_mwh", sa.BigInteger(), nullable=False),
        sa.Column("previous_mwh", sa.BigInteger(), nullable=True),
        sa.Column("delta_mwh", sa.BigInteger(), nullable=True),
        sa.Column("credited_mwh", sa.BigInteger(), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("decided_us", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_anomalies")),
        sa.UniqueConstraint(
            "kind", "device", "reading_id", name=op.f("uq_anomalies_kind_device_reading_id")
        ),
    )
    op.create_table(
        "balances",
        sa.Column("plant", sa.String(length=64), nullable=False),
        sa.Column("backer", sa.String(length=128), nullable=False),
        sa.Column("units", ExactInt(), nullable=False),
        sa.PrimaryKeyConstraint("plant", "backer", name=op.f("pk_balances")),
    )
    op.create_table(
        "credits",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("plant", sa.String(length=64), nullable=False),
        sa.Column("mwh_index", sa.BigInteger(), nullable=False),
        sa.Column("backer", sa.String(length=128), nullable=False),
        sa.Column("units", ExactInt(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credits")),
    )
    with op.batch_alter_table("credits", schema=None) as batch_op:
        batch_op.create_index("ix_credits_plant_mwh", ["plant", "mwh_index"], unique=False)

    op.create_table(
        "deliveries",
        sa.Column("plant", sa.String(length=64), nullable=False),
        sa.Column("mwh_index", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("attempts", sa.BigInteger(), nullable=False),
        sa.Column("next_attempt_us", sa.BigInteger(), nullable=False),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("updated_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("plant", "mwh_index", name=op.f("pk_deliveries")),
    )
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.create_index("ix_deliveries_status", ["status"], unique=False)

    op.create_table(
        "devices",
        sa.Column("device", sa.String(length=64), nullable=False),
        sa.Column("last_energy_ts_us", sa.BigInteger(), nullable=True),
        sa.Column("last_ts_us", sa.BigInteger(), nullable=True),
        sa.Column("last_reading_id", sa.BigInteger(), nullable=True),
        sa.Column("readings", sa.BigInteger(), nullable=False),
        sa.Column("rejected", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("device", name=op.f("pk_devices")),
    )
    op.create_table(
        "energy_buckets",
        sa.Column("plant", sa.String(length=64), nullable=False),
        sa.Column("device", sa.String(length=64), nullable=False),
        sa.Column("start_us", sa.BigInteger(), nullable=False),
        sa.Column("e_mwh", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("plant", "device", "start_us", name=op.f("pk_energy_buckets")),
    )
    op.create_table(
        "energy_hourly",
        sa.Column("plant", sa.String(length=64), nullable=False),
        sa.Column("start_us", sa.BigInteger(), nullable=False),
        sa.Column("e_mwh", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("plant", "start_us", name=op.f("pk_energy_hourly")),
    )
    op.create_table(
        "export_rejects",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("measurement", sa.String(length=20), nullable=False),
        sa.Column("line", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_export_rejects")),
    )
    op.create_table(
        "mints",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("plant", sa.String(length=64), nullable=False),
        sa.Column("mwh_index", sa.BigInteger(), nullable=False),
        sa.Column("completed_at_us", sa.BigInteger(), nullable=False),
        sa.Column("units", ExactInt(), nullable=False),
        sa.Column("register_pos", sa.BigInteger(), nullable=False),
        sa.Column("undistributed_after", ExactInt(), nullable=False),
        sa.Column("committed_us", sa.BigInteger(), nullable=False),
        sa.Column("event", sa.Text(), nullable=False),
        sa.Column("state_before", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mints")),
        sa.UniqueConstraint("plant", "mwh_index", name=op.f("uq_mints_plant_mwh_index")),
    )
    op.create_table(
        "positions",
        sa.Column("consumer", sa.String(length=64), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("updated_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("consumer", name=op.f("pk_positions")),
    )
    op.create_table(
        "power_buckets",
        sa.Column("device", sa.String(length=64), nullable=False),
        sa.Column("start_us", sa.BigInteger(), nullable=False),
        sa.Column("sum_mw", sa.BigInteger(), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("device", "start_us", name=op.f("pk_power_buckets")),
    )
    op.create_table(
        "readings",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("device", sa.String(length=64), nullable=False),
        sa.Column("ts_us", sa.BigInteger(), nullable=False),
        sa.Column("energy_mwh", sa.BigInteger(), nullable=True),
        sa.Column("power_mw", sa.BigInteger(), nullable=True),
        sa.Column("extra", sa.Text(), nullable=True),
        sa.Column("range_mwh", sa.BigInteger(), nullable=True),
        sa.Column("received_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_readings")),
    )
    with op.batch_alter_table("readings", schema=None) as batch_op:
        batch_op.create_index("ix_readings_device_ts", ["device", "ts_us"], unique=False)

    op.create_table(
        "rejected_readings",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("device", sa.String(length=64), nullable=False),
        sa.Column("ts_us", sa.BigInteger(), nullable=True),
        sa.Column("received_us", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(length=40), nullable=False),
        sa.Column("field", sa.String(length=64), nullable=True),
        sa.Column("value", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rejected_readings")),
    )
    with op.batch_alter_table("rejected_readings", schema=None) as batch_op:
        batch_op.create_index("ix_rejected_readings_device", ["device"], unique=False)

    op.create_table(
        "shares",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("plant", sa.String(length=64), nullable=False),
        sa.Column("backer", sa.String(length=128), nullable=False),
        sa.Column("weight", sa.Text(), nullable=False),
        sa.Column("valid_from_us", sa.BigInteger(), nullable=False),
        sa.Column("stored_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shares")),
    )
    with op.batch_alter_table("shares", schema=None) as batch_op:
        batch_op.create_index("ix_shares_plant_backer", ["plant", "backer"], unique=False)

    op.create_table(
        "decisions",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("anomaly_id", sa.BigInteger(), nullable=False),
        sa.Column("accept", sa.Boolean(), nullable=False),
        sa.Column("decided_us", sa.BigInteger(), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["anomaly_id"], ["anomalies.id"], name=op.f("fk_decisions_anomaly_id_anomalies")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_decisions")),
        sa.UniqueConstraint("anomaly_id", name=op.f("uq_decisions_anomaly_id")),
    )


def downgrade() -> None:
    op.drop_table("decisions")
    with op.batch_alter_table("shares", schema=None) as batch_op:
        batch_op.drop_index("ix_shares_plant_backer")

    op.drop_table("shares")
    with op.batch_alter_table("rejected_readings", schema=None) as batch_op:
        batch_op.drop_index("ix_rejected_readings_device")

    op.drop_table("rejected_readings")
    with op.batch_alter_table("readings", schema=None) as batch_op:
        batch_op.drop_index("ix_readings_device_ts")

    op.drop_table("readings")
    op.drop_table("power_buckets")
    op.drop_table("positions")
    op.drop_table("mints")
    op.drop_table("export_rejects")
    op.drop_table("energy_hourly")
    op.drop_table("energy_buckets")
    op.drop_table("devices")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_deliveries_status")

    op.drop_table("deliveries")
    with op.batch_alter_table("credits", schema=None) as batch_op:
        batch_op.drop_index("ix_credits_plant_mwh")

    op.drop_table("credits")
    op.drop_table("balances")
    op.drop_table("anomalies")
    op.drop_table("accountant")
