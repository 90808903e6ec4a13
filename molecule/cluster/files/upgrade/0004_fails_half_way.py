"""Drill only: adds a column, then fails, leaving the schema half-changed.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None
contracting = False


def upgrade() -> None:
    op.add_column("notes", sa.Column("drill_half_way", sa.Integer(), nullable=True))
    op.execute("SELECT no_such_column FROM notes")


def downgrade() -> None:
    op.drop_column("notes", "drill_half_way")
