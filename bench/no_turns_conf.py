"""The app's Gunicorn configuration as it was before each request gave every other
connection its turn: the `api` group's second baseline (bench/README.md, "API").

Gunicorn loads it as ``python:no_turns_conf`` with this directory on the path.
"""

# A bench variant re-exports the app's settings whole.
from noticeboard.gunicorn_conf import *  # noqa: F403


def pre_request(worker, req) -> None:
    # Gunicorn's own hook, which only logs.
    worker.log.debug("%s %s", req.method, req.path)
