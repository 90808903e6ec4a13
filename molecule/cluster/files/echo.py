#!/usr/bin/env python3
"""What a backend of the load balancer receives, for the front-door tests.

    echo.py --port 8099

Answers every GET with 200 and a JSON document: the address the connection came from
and every request header as it arrived (names as spelt, values, in order, repeats kept).
tests/test_loadbalancer.py runs it on an app host and adds it to HAProxy's app backend
through the runtime API, so that the headers are those the shipped configuration passes
on to the app.
"""

from __future__ import annotations

import argparse
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt: str, *args: object) -> None:  # the answer says it all
        pass

    def do_GET(self) -> None:
        body = json.dumps(
            {"peer": self.client_address[0], "headers": list(self.headers.items())}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    port = parser.parse_args().port
    server = ThreadingHTTPServer(("0.0.0.0", port), Echo)  # noqa: S104 - a test host
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
