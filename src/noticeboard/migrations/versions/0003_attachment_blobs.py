"""Add the table that holds attachments when ATTACHMENT_STORE=database.

Expand-only: one new table, nothing the previous release reads changes, so that
release keeps serving on this schema during a rolling upgrade (it never looks at the
table). The bytes are a LONGBLOB on MariaDB, whose plain BLOB stops at 64 KiB.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None
# Read by playbooks/upgrade.yml: nothing the previous release reads is removed or renamed.
contracting = False

Blob = sa.LargeBinary().with_variant(mysql.LONGBLOB(), "mysql", "mariadb")


def upgrade() -> None:
    op.create_table(
        "attachment_blobs",
        sa.Column("attachment_key", sa.String(32), nullable=False),
        sa.Column("data", Blob, nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("attachment_key", name="pk_attachment_blobs"),
    )


def downgrade() -> None:
    op.drop_table("attachment_blobs")
