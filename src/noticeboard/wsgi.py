"""The WSGI entry point Gunicorn loads in each worker: ``noticeboard.wsgi:app``."""

from noticeboard.app import create_app

app = create_app()
