"""Add the accounts of AUTH_MODE=accounts and the failed sign-ins that throttle them.

Expand-only: two new tables, nothing the previous release reads changes, so that
release keeps serving on this schema during a rolling upgrade (it never looks at them).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None
# Read by playbooks/upgrade.yml: nothing the previous release reads is removed or renamed.
contracting = False

EventId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("session_version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("username", name="uq_users_username"),
    )
    op.create_table(
        "sign_in_failures",
        sa.Column("id", EventId, autoincrement=True, nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("address", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_sign_in_failures"),
        sqlite_autoincrement=True,
    )
    for column in ("username", "address", "created_at"):
        op.create_index(f"ix_sign_in_failures_{column}", "sign_in_failures", [column])


def downgrade() -> None:
    op.drop_table("sign_in_failures")
    op.drop_table("users")
