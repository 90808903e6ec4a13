"""Load generator for the `mixed` figures: a busy board, not a storm.

One process and one asyncio loop, like ``sse_client.py`` (whose helpers it shares):

1. open ``--streams`` ``GET /events`` streams and print ``{"phase": "connected", ...}``;
2. wait for a line on stdin, then post notes at ``--rate`` per second for ``--seconds``
   (each post on time, up to ``--in-flight`` at once), printing
   ``{"phase": "writing"}`` as the first one goes, so that the caller can measure reads
   while the board is busy;
3. wait up to ``--deliver-timeout`` for the last notes to arrive, and print the result:
   how many streams were still open, every note's delivery time to every open stream
   (p50/p99/max from the post's send to the event's arrival), what was missed, and how
   the posts fared.

Streams are read in chunks and searched for the notes' markers with one regular
expression per chunk, so that the client keeps up with tens of thousands of events a
second on a small machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import resource
import sys
import time
import uuid

import sse_client
from sse_client import percentile

MARKER = re.compile(rb"busy ([0-9a-f]{32})")
# A post that starts this much after its time is late: the server did not keep up.
LATE_S = 0.1


class Watcher:
    """One event stream: when each marker arrived."""

    def __init__(self) -> None:
        self.seen: dict[bytes, float] = {}
        self.ok = False
        self.closed = False

    async def run(self, host: str, port: int, ready: asyncio.Event) -> None:
        try:
            reader, writer = await asyncio.open_connection(host, port, ssl=sse_client.TLS)
        except OSError:
            self.closed = True
            ready.set()
            return
        try:
            writer.write(
                f"GET /events HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n"
                f"{sse_client.COOKIE}\r\n".encode()
            )
            head = await reader.readuntil(b"\r\n\r\n")
            self.ok = head.startswith(b"HTTP/1.1 200") and b"text/event-stream" in head.lower()
            ready.set()
            tail = b""
            while self.ok:
                chunk = await reader.read(65536)
                if not chunk:
                    break
                now = time.monotonic()
                data = tail + chunk
                cut = data.rfind(b"\n") + 1
                for marker in MARKER.findall(data, 0, cut):
                    self.seen.setdefault(marker, now)
                tail = data[cut:]
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            self.closed = True
            ready.set()
            writer.close()


class Writer:
    """Posts on a fixed schedule over kept-alive connections, one per post in flight."""

    def __init__(self, host: str, port: int, in_flight: int):
        self.host, self.port = host, port
        self.idle: asyncio.Queue = asyncio.Queue()
        for _ in range(in_flight):
            self.idle.put_nowait(None)
        self.sent: dict[bytes, float] = {}
        self.took: list[float] = []
        self.failures: list[str] = []
        self.late = 0
        self.skipped = 0

    async def post(self, marker: str, due: float, end: float) -> None:
        conn = await self.idle.get()
        if time.monotonic() > end:
            # The window closed while every connection was still waiting for an answer.
            self.idle.put_nowait(conn)
            self.skipped += 1
            return
        if time.monotonic() - due > LATE_S:
            self.late += 1
        try:
            if conn is None:
                conn = await asyncio.open_connection(self.host, self.port, ssl=sse_client.TLS)
            reader, writer = conn
            body = json.dumps({"body": f"busy {marker}"}).encode()
            writer.write(
                (
                    f"POST /api/notes HTTP/1.1\r\nHost: {self.host}\r\n"
                    "Content-Type: application/json\r\nX-Requested-With: bench\r\n"
                    f"Content-Length: {len(body)}\r\n{sse_client.COOKIE}\r\n"
                ).encode()
                + body
            )
            sent = time.monotonic()
            self.sent[marker.encode()] = sent
            head = await reader.readuntil(b"\r\n\r\n")
            length = re.search(rb"(?i)content-length: *(\d+)", head)
            await reader.readexactly(int(length.group(1)) if length else 0)
            self.took.append(time.monotonic() - sent)
            if not head.startswith(b"HTTP/1.1 201"):
                self.failures.append(head.split(b"\r\n", 1)[0].decode(errors="replace"))
            self.idle.put_nowait(conn)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            self.failures.append(f"{type(exc).__name__}: {exc}"[:200])
            self.idle.put_nowait(None)

    async def run(self, rate: float, seconds: float) -> None:
        start = time.monotonic()
        tasks = []
        for number in range(round(rate * seconds)):
            due = start + number / rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(self.post(uuid.uuid4().hex, due, start + seconds)))
        await asyncio.gather(*tasks)


async def main(args: argparse.Namespace) -> dict:
    watchers = [Watcher() for _ in range(args.streams)]
    gate = asyncio.Semaphore(args.connect_concurrency)
    tasks = []

    async def start(watcher: Watcher) -> None:
        ready = asyncio.Event()
        async with gate:
            tasks.append(asyncio.create_task(watcher.run(args.host, args.port, ready)))
            await asyncio.wait_for(ready.wait(), args.connect_timeout)

    began = time.monotonic()
    await asyncio.gather(*(start(w) for w in watchers), return_exceptions=True)
    connected = [w for w in watchers if w.ok and not w.closed]
    print(
        json.dumps(
            {"phase": "connected", "connected": len(connected), "s": time.monotonic() - began}
        ),
        flush=True,
    )
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)

    writer = Writer(args.host, args.port, args.in_flight)
    print(json.dumps({"phase": "writing"}), flush=True)
    began = time.monotonic()
    await writer.run(args.rate, args.seconds)
    wrote_s = max(time.monotonic() - began, args.seconds)
    deadline = time.monotonic() + args.deliver_timeout
    while time.monotonic() < deadline and any(
        len(w.seen) < len(writer.sent) for w in connected if not w.closed
    ):
        await asyncio.sleep(0.1)

    still_open = [w for w in connected if not w.closed]
    latencies = [
        w.seen[marker] - sent
        for w in connected
        for marker, sent in writer.sent.items()
        if marker in w.seen
    ]
    for task in tasks:
        task.cancel()
    expected = len(connected) * len(writer.sent)
    return {
        "phase": "done",
        "streams": args.streams,
        "connected": len(connected),
        "still_open": len(still_open),
        "notes_posted": len(writer.sent),
        "post_failures": writer.failures[:20],
        "post_failure_count": len(writer.failures),
        "posts_late": writer.late,
        "posts_not_started": writer.skipped,
        "write_rate": round(len(writer.sent) / wrote_s, 1),
        "post_p99_s": round(percentile(writer.took, 99) or 0, 3),
        "deliveries": len(latencies),
        "missed": expected - len(latencies),
        **{
            name: None if value is None else round(value, 3)
            for name, value in (
                ("p50_s", percentile(latencies, 50)),
                ("p99_s", percentile(latencies, 99)),
                ("max_s", max(latencies, default=None)),
            )
        },
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=50, help="notes per second")
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--in-flight", type=int, default=8)
    parser.add_argument("--connect-concurrency", type=int, default=200)
    parser.add_argument("--connect-timeout", type=float, default=30)
    parser.add_argument("--deliver-timeout", type=float, default=15)
    parser.add_argument("--cookie", default="", help="session cookie, NAME=VALUE")
    options = parser.parse_args()
    if options.cookie:
        sse_client.COOKIE = f"Cookie: {options.cookie}\r\n"
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    print(json.dumps(asyncio.run(main(options))), flush=True)
