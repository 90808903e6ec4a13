"""Give every note a title, filled in for existing notes from their body.

Adds ``notes.title`` as nullable, backfills it from the first non-empty line of the
body (cut to 200 characters) in batches, then makes it NOT NULL. Rows, ids and bodies
are left exactly as they were.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TITLE_MAX = 200
BATCH = 500


def title_from_body(body: str) -> str:
    for line in body.splitlines():
        line = line.strip()
        if line:
            return line[:TITLE_MAX]
    return "Untitled"


def upgrade() -> None:
    with op.batch_alter_table("notes") as batch:
        batch.add_column(sa.Column("title", sa.String(TITLE_MAX), nullable=True))

    notes = sa.table(
        "notes",
        sa.column("id", sa.Integer()),
        sa.column("body", sa.Text()),
        sa.column("title", sa.String(TITLE_MAX)),
    )
    bind = op.get_bind()
    last_id = 0
    while True:
        rows = bind.execute(
            sa.select(notes.c.id, notes.c.body)
            .where(notes.c.id > last_id)
            .order_by(notes.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            break
        for row in rows:
            bind.execute(
                notes.update().where(notes.c.id == row.id).values(title=title_from_body(row.body))
            )
        last_id = rows[-1].id

    with op.batch_alter_table("notes") as batch:
        batch.alter_column("title", existing_type=sa.String(TITLE_MAX), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("notes") as batch:
        batch.drop_column("title")
