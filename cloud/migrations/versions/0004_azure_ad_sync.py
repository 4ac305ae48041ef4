"""Azure AD sync: per-tenant connection settings and state, and the users it has read

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-08
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "azure_ad_connections",
        sa.Column("tenant_id", sa.String(length=32), nullable=False),
        sa.Column("azure_tenant_id", sa.String(length=128), nullable=False),
        sa.Column("client_id", sa.String(length=128), nullable=False),
        sa.Column("client_secret", sa.LargeBinary(length=2048), nullable=False),
        sa.Column("authority_host", sa.String(length=300), nullable=False),
        sa.Column("graph_url", sa.String(length=300), nullable=False),
        sa.Column("ca_file", sa.String(length=1024), nullable=False),
        sa.Column("login_attribute", sa.String(length=200), nullable=False),
        sa.Column("pin_attribute", sa.String(length=200), nullable=False),
        sa.Column("card_attribute", sa.String(length=200), nullable=False),
        sa.Column("interval_seconds", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("delta_link", sa.Text(), nullable=False),
        sa.Column("rounds", sa.Integer(), nullable=False),
        sa.Column("next_run_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_owner", sa.String(length=64), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_run_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_success_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_result", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        sa.PrimaryKeyConstraint("tenant_id"),
    )
    with op.batch_alter_table("azure_ad_connections", schema=None) as batch_op:
        batch_op.create_index("ix_azure_ad_due", ["enabled", "next_run_at"], unique=False)

    op.create_table(
        "azure_ad_users",
        sa.Column("tenant_id", sa.String(length=32), nullable=False),
        sa.Column("object_id", sa.String(length=64), nullable=False),
        sa.Column("login", sa.String(length=256), nullable=False),
        sa.Column("properties", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        sa.PrimaryKeyConstraint("tenant_id", "object_id"),
    )


def downgrade() -> None:
    op.drop_table("azure_ad_users")
    with op.batch_alter_table("azure_ad_connections", schema=None) as batch_op:
        batch_op.drop_index("ix_azure_ad_due")
    op.drop_table("azure_ad_connections")
