"""Drill only: adds a column, then fails, leaving the schema half-changed.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None
contracting = False


def upgrade() -> None:
    op.add_column("notes", sa.Column("drill_half_way", sa.Integer(), nullable=True))
    op.execute("SELECT no_such_column FROM notes")


def downgrade() -> None:
    op.drop_column("notes", "drill_half_way")
