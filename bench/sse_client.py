"""Load generator for the SSE figures: many ``/events`` streams from one separate process.

It runs in its own process and its own asyncio loop, so it never shares the server's
event loop or CPU accounting. Raw sockets keep the per-stream cost of the client small
enough to hold thousands of streams on a 2-core machine.

Steps, all bounded in time:

1. open ``--streams`` connections to ``GET /events`` (``--connect-concurrency`` at once)
   and count those that answer ``200`` with ``text/event-stream``;
2. print ``{"phase": "connected", ...}`` and wait for one line on stdin, so that the
   caller can read the server's memory while the streams sit idle;
3. post ``--events`` notes through ``--post-port`` (another node, for the fan-out
   figure) and time, for every stream, the arrival of each note's event;
4. print the result as one JSON line and exit.

``--cookie`` sends a signed-in session (``noticeboard_session=...``) with every request.
``--tls`` speaks HTTPS to a TLS proxy (the proxy group): the certificate is not checked,
as wrk does not check it either; the figure is the cost of the encryption, not trust.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import ssl
import statistics
import sys
import time
import uuid

# The TLS context of every connection when --tls is given, else None (plain HTTP).
TLS: ssl.SSLContext | None = None
# The session's "Cookie:" header line (--cookie), sent with every request: the board
# answers 401 to a signed-out stream or post.
COOKIE = ""


def client_context() -> ssl.SSLContext:
    """TLS as a browser negotiates it, without checking the (self-signed) certificate."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def percentile(values: list[float], pct: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


class Stream:
    def __init__(self) -> None:
        self.seen: dict[str, float] = {}
        self.ok = False
        self.closed = False

    async def run(self, host: str, port: int, markers: set[str], ready: asyncio.Event) -> None:
        try:
            reader, writer = await asyncio.open_connection(host, port, ssl=TLS)
        except OSError:
            self.closed = True
            return
        try:
            request = (
                f"GET /events HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n{COOKIE}\r\n"
            )
            writer.write(request.encode())
            head = await reader.readuntil(b"\r\n\r\n")
            self.ok = head.startswith(b"HTTP/1.1 200") and b"text/event-stream" in head.lower()
            ready.set()
            while self.ok:
                line = await reader.readline()
                if not line:
                    break
                for marker in markers:
                    if marker.encode() in line and marker not in self.seen:
                        self.seen[marker] = time.monotonic()
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            self.closed = True
            writer.close()


async def post_note(host: str, port: int, body: str) -> float:
    reader, writer = await asyncio.open_connection(host, port, ssl=TLS)
    payload = json.dumps({"body": body}).encode()
    writer.write(
        (
            f"POST /api/notes HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"X-Requested-With: bench\r\nContent-Length: {len(payload)}\r\n"
            f"{COOKIE}Connection: close\r\n\r\n"
        ).encode()
        + payload
    )
    sent = time.monotonic()
    await writer.drain()
    status = await reader.readline()
    writer.close()
    if b" 201 " not in status:
        raise RuntimeError(f"posting a note failed: {status!r}")
    return sent


async def main(args: argparse.Namespace) -> dict:
    markers: set[str] = set()
    streams = [Stream() for _ in range(args.streams)]
    gate = asyncio.Semaphore(args.connect_concurrency)
    tasks = []

    async def start(stream: Stream) -> None:
        ready = asyncio.Event()
        async with gate:
            tasks.append(asyncio.create_task(stream.run(args.host, args.port, markers, ready)))
            await asyncio.wait(
                [asyncio.create_task(ready.wait()), tasks[-1]],
                timeout=args.connect_timeout,
                return_when=asyncio.FIRST_COMPLETED,
            )

    started = time.monotonic()
    await asyncio.gather(*(start(s) for s in streams))
    connected = sum(1 for s in streams if s.ok and not s.closed)
    print(
        json.dumps({"phase": "connected", "connected": connected, "s": time.monotonic() - started}),
        flush=True,
    )
    if args.pause:
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)

    latencies: list[float] = []
    per_event_all = []
    post_failures: list[str] = []
    for _ in range(args.events):
        marker = uuid.uuid4().hex
        markers.add(marker)
        try:
            sent = await asyncio.wait_for(
                post_note(args.host, args.post_port or args.port, f"bench {marker}"),
                args.deliver_timeout,
            )
        except (OSError, RuntimeError, TimeoutError) as exc:
            # A server that cannot take the post (a sync worker busy with one stream)
            # delivers nothing: every stream misses this event.
            post_failures.append(f"{type(exc).__name__}: {exc}"[:200])
            per_event_all.append(0)
            continue
        deadline = sent + args.deliver_timeout
        live = [s for s in streams if s.ok]
        while time.monotonic() < deadline and any(marker not in s.seen for s in live):
            await asyncio.sleep(0.01)
        got = [s.seen[marker] - sent for s in live if marker in s.seen]
        per_event_all.append(len(got))
        latencies.extend(got)
        await asyncio.sleep(args.gap)

    still_open = sum(1 for s in streams if s.ok and not s.closed)
    for task in tasks:
        task.cancel()
    expected = connected * args.events
    return {
        "phase": "done",
        "streams": args.streams,
        "connected": connected,
        "still_open": still_open,
        "events": args.events,
        "delivered": len(latencies),
        "missed": expected - len(latencies),
        "p50_s": percentile(latencies, 50),
        "p99_s": percentile(latencies, 99),
        "max_s": max(latencies) if latencies else None,
        "mean_s": statistics.fmean(latencies) if latencies else None,
        "post_failures": post_failures,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--post-port", type=int, help="post through this node (fan-out)")
    parser.add_argument("--streams", type=int, default=100)
    parser.add_argument("--events", type=int, default=3)
    parser.add_argument("--gap", type=float, default=0.2, help="seconds between events")
    parser.add_argument("--connect-concurrency", type=int, default=200)
    parser.add_argument("--connect-timeout", type=float, default=10)
    parser.add_argument("--deliver-timeout", type=float, default=10)
    parser.add_argument("--pause", action="store_true", help="wait for a stdin line when idle")
    parser.add_argument("--tls", action="store_true", help="HTTPS (certificate not checked)")
    parser.add_argument("--cookie", default="", help="session cookie, NAME=VALUE")
    options = parser.parse_args()
    if options.cookie:
        COOKIE = f"Cookie: {options.cookie}\r\n"
    if options.tls:
        TLS = client_context()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    print(json.dumps(asyncio.run(main(options))), flush=True)
