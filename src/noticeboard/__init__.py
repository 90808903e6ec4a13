"""noticeboard: a shared board of notes with attachments, updated live over SSE.

Kept free of imports so that ``noticeboard.settings`` and ``noticeboard.gunicorn_conf``
load in the Gunicorn master without pulling in Flask or SQLAlchemy before the workers
apply their monkey-patching.
"""

__version__ = "0.1.0"
