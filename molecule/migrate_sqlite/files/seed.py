"""Fill a SQLite board quickly, inside the app container: `docker exec -i APP python3 -`.

Writes NOTES notes with their `note-created` events through the application's models
(one transaction), deletes every 97th note as the API does (row gone, `note-deleted`
event, file removed), and stores FILES attachments through the application's storage.
Prints a JSON manifest: the note and event counts and the SHA-256 of every stored
file by its key, which the verifier compares with what the app serves afterwards.
"""

from __future__ import annotations

import hashlib
import io
import json
import random

from sqlalchemy import delete, func, insert, select

from noticeboard import settings
from noticeboard.db import Database
from noticeboard.events import payload
from noticeboard.models import Event, Note, utcnow
from noticeboard.storage import Storage

NOTES = 10_200  # about 100 are deleted again; more than 10,000 stay
FILES = 24

config = settings.load()
db = Database(config.database_url)
storage = Storage(config.upload_dir)
rng = random.Random(10_000)  # noqa: S311 - test data, not secrets
words = ["board", "Flur", "café", "ノート", "tab\there", 'quote "q"', "back\\slash", "émoji 📌"]

with db.reading() as session:
    first = (session.scalar(select(func.max(Note.id))) or 0) + 1

files = {}
notes, events = [], []
for n in range(first, first + NOTES):
    body = "\n".join(
        " ".join(rng.choice(words) for _ in range(rng.randrange(1, 12)))
        for _ in range(rng.randrange(1, 4))
    )
    note = Note(id=n, title=f"Note {n}: {rng.choice(words)}", body=body, created_at=utcnow())
    if (n - first) % (NOTES // FILES) == 0 and len(files) < FILES:
        data = rng.randbytes(rng.randrange(1, 200_000))
        key, size = storage.save(io.BytesIO(data))
        files[key] = hashlib.sha256(data).hexdigest()
        note.attachment_key, note.attachment_size = key, size
        note.attachment_name = f"Anhang {n} \u2013 plan.bin"
    notes.append({c.key: getattr(note, c.key) for c in Note.__table__.columns})
    events.append(
        {
            "kind": "note-created",
            "note_id": n,
            "payload": payload(note.to_json()),
            "created_at": note.created_at,
        }
    )

with db.writing() as session:
    session.execute(insert(Note), notes)
    session.execute(insert(Event), events)

gone = [row["id"] for row in notes[5::97] if not row["attachment_key"]]
with db.writing() as session:
    session.execute(delete(Note).where(Note.id.in_(gone)))
    session.execute(
        insert(Event),
        [
            {
                "kind": "note-deleted",
                "note_id": n,
                "payload": payload({"id": n}),
                "created_at": utcnow(),
            }
            for n in gone
        ],
    )

with db.reading() as session:
    counts = {
        "notes": session.scalar(select(func.count()).select_from(Note)),
        "events": session.scalar(select(func.count()).select_from(Event)),
    }
db.dispose()
print(json.dumps({**counts, "files": files}))
