#!/usr/bin/env python3
"""A client for the Molecule tests: requests through the load balancer, as JSON.

    client.py get URL [--header NAME:VALUE ...]
        {"status": 200, "location": ..., "body": ...}
    client.py stream URL --seconds S
        {"lines": [[t, line], ...], "closed_after": t | null}

Certificates are not verified (the load balancer's is self-signed); `stream` reads an
event stream line by line for S seconds and notes when (and whether) the server closed it.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import ssl
import time
from urllib.parse import urlsplit


def connect(url: str, timeout: float) -> tuple[http.client.HTTPConnection, str]:
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    if parts.scheme == "https":
        ctx = ssl._create_unverified_context()  # noqa: S323 - self-signed on purpose
        return http.client.HTTPSConnection(
            parts.hostname, parts.port or 443, timeout=timeout, context=ctx
        ), path
    return http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout), path


def get(url: str, headers: dict[str, str]) -> dict:
    conn, path = connect(url, 10)
    conn.request("GET", path, headers=headers)
    resp = conn.getresponse()
    body = resp.read().decode(errors="replace")
    with contextlib.suppress(ValueError):
        body = json.loads(body)
    return {
        "status": resp.status,
        "location": resp.getheader("Location"),
        "hsts": resp.getheader("Strict-Transport-Security"),
        "body": body,
    }


def stream(url: str, seconds: float) -> dict:
    started = time.monotonic()
    # A socket that timed out cannot be read again, so the timeout is the whole test
    # time: a read that long without a line means the stream is open but silent.
    conn, path = connect(url, seconds)
    conn.request("GET", path, headers={"Accept": "text/event-stream"})
    resp = conn.getresponse()
    lines, closed = [], None
    while time.monotonic() - started < seconds:
        try:
            raw = resp.readline()
        except TimeoutError:
            break
        if not raw:
            closed = round(time.monotonic() - started, 2)
            break
        line = raw.decode().rstrip("\r\n")
        if line:
            lines.append([round(time.monotonic() - started, 2), line])
    return {
        "status": resp.status,
        "content_type": resp.getheader("Content-Type"),
        "lines": lines,
        "closed_after": closed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    g = sub.add_parser("get")
    g.add_argument("url")
    g.add_argument("--header", action="append", default=[])
    s = sub.add_parser("stream")
    s.add_argument("url")
    s.add_argument("--seconds", type=float, required=True)
    args = parser.parse_args()
    if args.command == "get":
        headers = dict(h.split(":", 1) for h in args.header)
        print(json.dumps(get(args.url, headers)))
    else:
        print(json.dumps(stream(args.url, args.seconds)))


if __name__ == "__main__":
    main()
