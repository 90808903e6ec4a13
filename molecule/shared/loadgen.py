"""Load for the rolling-upgrade test: reads, writes, uploads and event streams through the
load balancer, in a process of its own, bounded in time and in requests.

Standard library only: verifylib's Load copies it into a host (the cluster's lb host,
the single host) and runs it there against the load balancer on that host (--url), so it
reaches the test hosts and nothing else. Every request and stream carries the Cookie
header in the environment variable LOADGEN_COOKIE (verifylib's session, when the board
has sign-in), so the load is a signed-in member's, and signing in is not its business.
It

- opens --streams event streams (GET /events with Last-Event-ID: --since). A stream that
  ends or breaks reconnects, after the server's `retry:` delay as a browser would, with
  the id of the last event it received;
- once every stream is open, writes (POST /api/notes as JSON, every --upload-every-th one
  as multipart with random bytes) and reads (GET /api/notes, GET /api/notes/<id> of an
  acknowledged write), each on a new connection with --pause between two, and prints
  {"phase": "running"} after the first acknowledged write (it gives up after 60 s without);
- stops writing and reading when --stop-file exists, after --max-seconds or after
  --max-requests requests; then gives the streams up to --settle seconds to receive the
  event of every acknowledged write, and prints one JSON object with what happened.

A request fails when it gets no answer (connection error, --timeout) or an unexpected
status. A stream that the server or the load balancer closes after answering 200 is not
a failure: the client reconnects, and the result counts it (ends, cuts, stalls).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.client
import json
import os
import random
import ssl
import sys
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit


class Shared:
    """What every thread adds to, under one lock."""

    def __init__(self, max_requests: int, pause: float) -> None:
        self.lock = threading.Lock()
        self.max_requests = max_requests
        self.pause = pause
        self.requests = 0
        self.failed = 0
        self.failures: list[str] = []
        self.reads = 0
        self.writes: list[tuple[int, str]] = []
        self.uploads: dict[int, str] = {}
        self.slowest = 0.0

    def take(self) -> bool:
        """Count a request about to be sent; False once the budget is spent."""
        with self.lock:
            if self.requests >= self.max_requests:
                return False
            self.requests += 1
            return True

    def fail(self, what: str) -> None:
        with self.lock:
            self.failed += 1
            if len(self.failures) < 20:
                self.failures.append(f"{time.strftime('%H:%M:%S')} {what}"[:400])

    def timed(self, seconds: float) -> None:
        with self.lock:
            self.slowest = max(self.slowest, seconds)


class Target:
    def __init__(self, url: str, host: str, timeout: float) -> None:
        parts = urlsplit(url)
        self.tls = parts.scheme == "https"
        self.address = parts.hostname or "127.0.0.1"
        self.port = parts.port or (443 if self.tls else 80)
        self.host = host
        self.timeout = timeout
        cookie = os.environ.get("LOADGEN_COOKIE", "")
        self.identity = {"Cookie": cookie} if cookie else {}
        self.context = ssl.create_default_context()
        # The test load balancer's certificate is self-signed.
        self.context.check_hostname = False
        self.context.verify_mode = ssl.CERT_NONE

    def connect(self, timeout: float | None = None) -> http.client.HTTPConnection:
        if not self.tls:
            return http.client.HTTPConnection(
                self.address, self.port, timeout=timeout or self.timeout
            )
        return http.client.HTTPSConnection(
            self.address, self.port, timeout=timeout or self.timeout, context=self.context
        )

    def request(self, method: str, path: str, body: bytes | None, headers: dict) -> tuple:
        conn = self.connect()
        try:
            conn.request(
                method,
                path,
                body=body,
                headers={
                    "Host": self.host,
                    "X-Requested-With": "loadgen",
                    "Connection": "close",
                    **self.identity,
                    **headers,
                },
            )
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()


class Stream(threading.Thread):
    """One event stream, as a browser's EventSource holds it."""

    def __init__(self, target: Target, shared: Shared, since: int, closing: threading.Event):
        super().__init__(daemon=True)
        self.target, self.shared, self.closing = target, shared, closing
        self.last_id = since
        self.retry = 2.0
        self.lock = threading.Lock()
        self.created: set[int] = set()
        self.events = 0
        self.not_increasing = 0
        self.connects = 0
        self.ends = self.cuts = self.stalls = 0
        self.open = threading.Event()

    def run(self) -> None:
        while not self.closing.is_set():
            self._once()
            if not self.closing.is_set():
                time.sleep(self.retry)

    def _once(self) -> None:
        if not self.shared.take():
            self.closing.wait()
            return
        # Three missed heartbeats (SSE_HEARTBEAT_SECONDS, 15 s) mean the stream is dead.
        conn = self.target.connect(timeout=45)
        try:
            try:
                conn.request(
                    "GET",
                    "/events",
                    headers={
                        "Host": self.target.host,
                        "Accept": "text/event-stream",
                        "Last-Event-ID": str(self.last_id),
                        **self.target.identity,
                    },
                )
                response = conn.getresponse()
            except OSError as exc:
                self.shared.fail(f"GET /events: {type(exc).__name__}: {exc}")
                return
            if response.status != 200:
                self.shared.fail(f"GET /events: {response.status} {response.read()[:200]!r}")
                return
            self.connects += 1
            self.open.set()
            try:
                self._read(response)
                self.ends += 1
            except TimeoutError:
                self.stalls += 1
            except (OSError, http.client.HTTPException):
                self.cuts += 1
        finally:
            conn.close()

    def _read(self, response: http.client.HTTPResponse) -> None:
        event_id = kind = data = None
        while not self.closing.is_set():
            line = response.readline()
            if not line:
                return
            text = line.decode().rstrip("\r\n")
            if text.startswith(":"):
                continue
            if text == "":
                self._dispatch(event_id, kind, data)
                event_id = kind = data = None
                continue
            name, _, value = text.partition(":")
            value = value.removeprefix(" ")
            if name == "id":
                event_id = int(value)
            elif name == "event":
                kind = value
            elif name == "data":
                data = value
            elif name == "retry":
                self.retry = int(value) / 1000

    def _dispatch(self, event_id: int | None, kind: str | None, data: str | None) -> None:
        if event_id is None:
            return
        with self.lock:
            self.events += 1
            if event_id <= self.last_id:
                self.not_increasing += 1
            self.last_id = max(self.last_id, event_id)
            if kind == "note-created" and data:
                self.created.add(json.loads(data)["id"])


def call(
    target: Target, shared: Shared, method: str, path: str, body, headers: dict, expect: int
) -> bytes | None:
    """One timed request; its body, or None after counting it as failed (with why)."""
    started = time.monotonic()
    try:
        status, answer = target.request(method, path, body, headers)
    except (OSError, http.client.HTTPException) as exc:
        shared.fail(f"{method} {path}: {type(exc).__name__}: {exc}")
        return None
    finally:
        shared.timed(time.monotonic() - started)
    if status != expect:
        shared.fail(f"{method} {path}: {status} {answer[:200]!r}")
        return None
    return answer


def writer(target: Target, shared: Shared, stop: threading.Event, tag: str, every: int) -> None:
    n = 0
    while not stop.wait(shared.pause) and shared.take():
        n += 1
        title = f"{tag}-{n}"
        digest = None
        if every and n % every == 0:
            content = os.urandom(random.randint(1024, 64 * 1024))  # noqa: S311 - a size
            digest = hashlib.sha256(content).hexdigest()
            boundary = uuid.uuid4().hex
            head = f'--{boundary}\r\nContent-Disposition: form-data; name="'
            body = b"".join(
                [
                    f'{head}title"\r\n\r\n{title}\r\n'.encode(),
                    f'{head}body"\r\n\r\nupload during the load\r\n'.encode(),
                    f'{head}attachment"; filename="{title}.bin"\r\n'.encode(),
                    b"Content-Type: application/octet-stream\r\n\r\n" + content + b"\r\n",
                    f"--{boundary}--\r\n".encode(),
                ]
            )
            kind = f"multipart/form-data; boundary={boundary}"
        else:
            body = json.dumps({"title": title, "body": "written during the load"}).encode()
            kind = "application/json"
        answer = call(target, shared, "POST", "/api/notes", body, {"Content-Type": kind}, 201)
        if answer is None:
            continue
        note_id = json.loads(answer)["id"]
        with shared.lock:
            shared.writes.append((note_id, title))
            if digest:
                shared.uploads[note_id] = digest


def reader(target: Target, shared: Shared, stop: threading.Event) -> None:
    n = 0
    while not stop.wait(shared.pause) and shared.take():
        n += 1
        with shared.lock:
            written = shared.writes[-50:]
        path = "/api/notes?limit=5"
        if n % 2 and written:
            path = f"/api/notes/{random.choice(written)[0]}"  # noqa: S311 - which note to read
        answer = call(target, shared, "GET", path, None, {}, 200)
        if answer is None:
            continue
        json.loads(answer)
        with shared.lock:
            shared.reads += 1


def main(args: argparse.Namespace) -> dict:
    began = time.monotonic()
    deadline = began + args.max_seconds
    target = Target(args.url, args.host, args.timeout)
    shared = Shared(args.max_requests, args.pause)
    stop, closing = threading.Event(), threading.Event()
    streams = [Stream(target, shared, args.since, closing) for _ in range(args.streams)]
    for stream in streams:
        stream.start()
    for stream in streams:
        stream.open.wait(max(0.0, min(deadline, began + 60) - time.monotonic()))
    opened = sum(s.open.is_set() for s in streams)
    workers = []
    if opened == len(streams):
        workers = [
            threading.Thread(
                target=writer, args=(target, shared, stop, f"{args.tag}-w{i}", args.upload_every)
            )
            for i in range(args.writers)
        ] + [
            threading.Thread(target=reader, args=(target, shared, stop))
            for _ in range(args.readers)
        ]
    for worker in workers:
        worker.start()
    announced = False
    stop_file = Path(args.stop_file)
    give_up = time.monotonic() + 60
    while workers and not stop_file.exists() and time.monotonic() < deadline:
        if not any(w.is_alive() for w in workers):
            break
        if not announced and shared.writes:
            print(json.dumps({"phase": "running", "streams": opened}), flush=True)
            announced = True
        if not announced and time.monotonic() > give_up:
            break
        time.sleep(0.2)
    stop.set()
    for worker in workers:
        worker.join()
    loaded = time.monotonic() - began

    # Every stream should now receive the events of the last writes.
    acked = {note_id for note_id, _ in shared.writes}
    settle_until = time.monotonic() + args.settle
    while time.monotonic() < settle_until and any(acked - s.created for s in streams):
        time.sleep(0.25)
    closing.set()
    missed = {i: sorted(acked - s.created) for i, s in enumerate(streams) if acked - s.created}
    return {
        "phase": "done",
        "seconds": round(loaded, 1),
        "requests": shared.requests,
        "failed": shared.failed,
        "failures": shared.failures,
        "reads": shared.reads,
        "writes": shared.writes,
        "uploads": {str(k): v for k, v in shared.uploads.items()},
        "slowest_request_seconds": round(shared.slowest, 2),
        "streams": {
            "clients": len(streams),
            "opened": opened,
            "connects": sum(s.connects for s in streams),
            "resumed": sum(s.connects > 1 for s in streams),
            "ends": sum(s.ends for s in streams),
            "cuts": sum(s.cuts for s in streams),
            "stalls": sum(s.stalls for s in streams),
            "events": sum(s.events for s in streams),
            "delivered": sum(len(acked & s.created) for s in streams),
            "missed": sum(len(ids) for ids in missed.values()),
            "missed_sample": {str(i): ids[:10] for i, ids in list(missed.items())[:5]},
            "not_increasing": sum(s.not_increasing for s in streams),
        },
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="https://127.0.0.1")
    parser.add_argument("--host", required=True, help="the Host header (the site's name)")
    parser.add_argument("--since", type=int, required=True, help="the first Last-Event-ID")
    parser.add_argument("--streams", type=int, default=50)
    parser.add_argument("--writers", type=int, default=2)
    parser.add_argument("--readers", type=int, default=2)
    parser.add_argument("--upload-every", type=int, default=10)
    parser.add_argument("--pause", type=float, default=0.05, help="seconds between requests")
    parser.add_argument("--timeout", type=float, default=30)
    parser.add_argument("--max-seconds", type=float, default=600)
    parser.add_argument("--max-requests", type=int, default=20000)
    parser.add_argument("--settle", type=float, default=30)
    parser.add_argument("--stop-file", required=True)
    parser.add_argument("--tag", default=f"load-{uuid.uuid4().hex[:8]}")
    result = main(parser.parse_args())
    print(json.dumps(result), flush=True)
    with contextlib.suppress(BrokenPipeError):
        sys.stdout.flush()
