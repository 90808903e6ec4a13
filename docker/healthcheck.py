#!/usr/bin/env python3
"""Container health check: exit 0 when the app answers /healthz on its own port.

Plain ``socket`` and one HTTP/1.0 request: no curl in the image, and the interpreter
starts quickly, which matters where every probe runs under emulation or on a slow SD
card. The port is taken from GUNICORN_BIND, the same setting Gunicorn listens on.
``noticeboard-healthcheck /readyz`` checks readiness (database answers, schema at head)
instead.
"""

import os
import socket
import sys


def main() -> int:
    path = sys.argv[1] if len(sys.argv) > 1 else "/healthz"
    bind = os.environ.get("GUNICORN_BIND", "").strip() or "0.0.0.0:8000"
    port = int(bind.rpartition(":")[2] or "8000")
    where = f"http://127.0.0.1:{port}{path}"
    request = f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=4) as conn:
            conn.sendall(request.encode("ascii"))
            status_line = conn.makefile("rb").readline(256).decode("latin-1").strip()
    except OSError as exc:
        print(f"healthcheck: {where}: {exc}", file=sys.stderr)
        return 1
    parts = status_line.split(" ", 2)
    if len(parts) >= 2 and parts[0].startswith("HTTP/") and parts[1] == "200":
        return 0
    print(f"healthcheck: {where}: {status_line or 'no answer'}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
