#!/usr/bin/env python3
"""A stand-in for the noticeboard app behind the load balancer, for the Molecule tests.

    backend.py --name app1 --port 8000 [--heartbeat 2] [--not-ready-file PATH]

GET /          200, JSON naming this backend and echoing the forwarding headers and every
               header as received (names and values, in order)
GET /readyz    200, or 503 while the not-ready file exists
GET /events    text/event-stream: `?count=N&every=S` events (id + data) S seconds apart,
               then only heartbeat comments every --heartbeat seconds until the client
               leaves; `heartbeat=0` in the query sends no heartbeats at all.
Every request is counted; GET /stats returns the counts by path.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

HITS: Counter[str] = Counter()
LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "nb-test-backend"

    def log_message(self, fmt: str, *args: object) -> None:  # quiet: the tests read /stats
        pass

    def _send(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _chunk(self, text: str) -> None:
        data = text.encode()
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        with LOCK:
            HITS[url.path] += 1
        opts = self.server.opts
        if url.path == "/readyz":
            ready = not os.path.exists(opts.not_ready_file)
            self._send(200 if ready else 503, {"ready": ready})
        elif url.path == "/stats":
            with LOCK:
                self._send(200, dict(HITS))
        elif url.path == "/events":
            self._events(
                int(query.get("count", "3")),
                float(query.get("every", "1")),
                float(query.get("heartbeat", opts.heartbeat)),
            )
        else:
            self._send(
                200,
                {
                    "backend": opts.name,
                    "path": self.path,
                    "x_forwarded_for": self.headers.get_all("X-Forwarded-For"),
                    "x_forwarded_proto": self.headers.get_all("X-Forwarded-Proto"),
                    "headers": list(self.headers.items()),
                },
            )

    def _events(self, count: int, every: float, heartbeat: float) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            self._chunk(f"retry: 1000\nid: 0\ndata: {self.server.opts.name} hello\n\n")
            for n in range(1, count + 1):
                time.sleep(every)
                self._chunk(f"id: {n}\ndata: {self.server.opts.name} event {n}\n\n")
            while True:
                if heartbeat > 0:
                    time.sleep(heartbeat)
                    self._chunk(": heartbeat\n\n")
                else:
                    time.sleep(1)
                    self.wfile.write(b"")  # hold the stream open, silently
        except (BrokenPipeError, ConnectionResetError):
            return


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--name", required=True)
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--heartbeat", type=float, default=2.0)
    parser.add_argument("--not-ready-file", default="/tmp/backend-not-ready")  # noqa: S108
    opts = parser.parse_args()
    server = ThreadingHTTPServer(("0.0.0.0", opts.port), Handler)  # noqa: S104 - a test host
    server.daemon_threads = True
    server.opts = opts
    server.serve_forever()


if __name__ == "__main__":
    main()
