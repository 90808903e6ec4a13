"""Drill only: adds a column, then fails, leaving the schema half-changed.

Revision ID: next_fails_half_way
Revises: the head of the image it is copied into
"""

import re
from pathlib import Path

import sqlalchemy as sa
from alembic import op


def _the_images_head() -> str:
    """The newest revision of the image this file is copied into.

    This test release follows whatever schema the app under test has, so that a new
    migration in src/ never gives Alembic two heads here.
    """
    here = Path(__file__)
    parents = {}
    for path in here.parent.glob("*.py"):
        found = re.search(r'^revision = "([^"]+)"', path.read_text(), re.MULTILINE)
        if path != here and found:
            down = re.search(r'^down_revision = "([^"]+)"', path.read_text(), re.MULTILINE)
            parents[found.group(1)] = down.group(1) if down else None
    (head,) = set(parents) - set(parents.values())
    return head


revision = "next_fails_half_way"
down_revision = _the_images_head()
branch_labels = None
depends_on = None
contracting = False


def upgrade() -> None:
    op.add_column("notes", sa.Column("drill_half_way", sa.Integer(), nullable=True))
    op.execute("SELECT no_such_column FROM notes")


def downgrade() -> None:
    op.drop_column("notes", "drill_half_way")
