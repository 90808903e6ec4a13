"""Add notes.edited_at, nullable: expand-only, the previous release keeps working.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None
# Nothing the previous release reads is removed or renamed (upgrade.yml checks this flag).
contracting = False


def upgrade() -> None:
    op.add_column("notes", sa.Column("edited_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("notes") as batch:
        batch.drop_column("edited_at")
