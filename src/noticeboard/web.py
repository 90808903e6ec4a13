"""The HTML page and the two health endpoints."""

from __future__ import annotations

import logging

from flask import Blueprint, current_app, jsonify, render_template
from sqlalchemy import select

from noticeboard import accounts, auth, settings
from noticeboard.api import PAGE_DEFAULT, db
from noticeboard.migrate import (
    current_revision,
    describe_error,
    head_revision,
    is_known_revision,
)
from noticeboard.models import Note

log = logging.getLogger(__name__)

bp = Blueprint("web", __name__)


@bp.get("/")
def index():
    """The page; someone who may not read gets the shell with the sign-in form, no notes."""
    who = auth.identity()
    notes: list[Note] = []
    last_event_id = 0
    if auth.READ in who.permissions:
        with db().reading() as session:
            query = select(Note).order_by(Note.id.desc()).limit(PAGE_DEFAULT + 1)
            notes = list(session.scalars(query))
        last_event_id = db().max_event_id()
    more = len(notes) > PAGE_DEFAULT
    mode = auth.config().auth_mode
    # Only a signed-out visitor can need it, and only until the first admin exists.
    no_admin = mode == settings.ACCOUNTS and who.username is None and not accounts.has_admin(db())
    return render_template(
        "index.html",
        notes=notes[:PAGE_DEFAULT],
        older_than=notes[PAGE_DEFAULT - 1].id if more else None,
        last_event_id=last_event_id,
        max_upload_mb=current_app.config["MAX_UPLOAD_MB"],
        maintenance=current_app.extensions["noticeboard.maintenance"].active() is not None,
        mode=mode,
        no_admin=no_admin,
        no_admin_steps=accounts.NO_ADMIN_STEPS,
        who=who,
        can_read=auth.READ in who.permissions,
        can_post=auth.POST in who.permissions,
        can_delete=auth.DELETE in who.permissions,
    )


@bp.get("/healthz")
def healthz():
    """The process answers; no database work, so a database outage never restarts it."""
    return jsonify({"status": "alive"})


@bp.get("/readyz")
def readyz():
    """Ready for traffic: the database answers and the schema is at the Alembic head.

    A revision this release does not ship was written by a newer release during a
    rolling upgrade. Migrations only expand (playbooks/upgrade.yml refuses the ones marked
    ``contracting``), so this release keeps serving on it; a schema behind is not ready.
    """
    try:
        current = current_revision(db().engine)
    except Exception as exc:
        reason = f"database unreachable: {describe_error(exc)}"
        log.error("not ready: %s", reason)
        return jsonify({"status": "unavailable", "reason": reason}), 503
    head = head_revision()
    if current is not None and current != head and not is_known_revision(current):
        return jsonify({"status": "ready", "revision": current, "schema": "ahead", "head": head})
    if current != head:
        reason = (
            f"database schema is at {current or 'no revision'}, expected {head}; "
            "run `noticeboard db upgrade`"
        )
        log.warning("not ready: %s", reason)
        return jsonify({"status": "unavailable", "reason": reason}), 503
    # Maintenance mode is still ready: reads are served, only writes wait.
    maintenance = current_app.extensions["noticeboard.maintenance"].active() is not None
    return jsonify({"status": "ready", "revision": current, "maintenance": maintenance})
