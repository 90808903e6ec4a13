#!/usr/bin/env python3
"""Container health check: exit 0 when the app answers /healthz on its own port.

Uses only the standard library, so the image needs no curl. The port is taken from
GUNICORN_BIND, the same setting Gunicorn listens on. ``noticeboard-healthcheck /readyz``
checks readiness (database answers, schema at head) instead.
"""

import os
import sys
import urllib.request


def main() -> int:
    path = sys.argv[1] if len(sys.argv) > 1 else "/healthz"
    bind = os.environ.get("GUNICORN_BIND", "").strip() or "0.0.0.0:8000"
    port = bind.rpartition(":")[2] or "8000"
    url = f"http://127.0.0.1:{port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=4) as response:
            return 0 if response.status == 200 else 1
    except OSError as exc:
        print(f"healthcheck: {url}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
