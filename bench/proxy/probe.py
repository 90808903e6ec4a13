"""Client side of the proxy measurements (stdlib only, runs inside the nbc-client container).

Holds STREAMS event streams on http://HOST:PORT/events, each reconnecting with
Last-Event-ID when it is cut, and optionally sends GET / at RATE requests/s, for
SECONDS seconds. Prints one JSON object: events received, ids missed (gaps) or
repeated, cuts (with the time since start each happened), requests sent, failed,
and which backend answered them.

Run: python3 probe.py HOST PORT SECONDS [--streams N] [--rate R] [--tls CAFILE]
"""

import argparse
import asyncio
import json
import ssl
import time

parser = argparse.ArgumentParser()
parser.add_argument("host")
parser.add_argument("port", type=int)
parser.add_argument("seconds", type=float)
parser.add_argument("--streams", type=int, default=1)
parser.add_argument("--rate", type=float, default=0)
parser.add_argument("--tls", metavar="CAFILE")
parser.add_argument("--sni", default=None)
args = parser.parse_args()

T0 = time.monotonic()
stats = {
    "events": 0,
    "missed_ids": 0,
    "repeated_ids": 0,
    "cuts": [],
    "reconnect_failures": 0,
    "stream_backends": {},
    "requests": 0,
    "failed": 0,
    "failures": [],
    "answered_by": {},
}


def now():
    return round(time.monotonic() - T0, 2)


def context():
    if not args.tls:
        return None
    ctx = ssl.create_default_context(cafile=args.tls)
    return ctx


async def connect():
    return await asyncio.wait_for(
        asyncio.open_connection(
            args.host, args.port, ssl=context(), server_hostname=args.sni if args.tls else None
        ),
        5,
    )


def request(path, extra=""):
    host = args.sni or args.host
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n\r\n".encode()


async def stream(end):
    last = 0
    while time.monotonic() < end:
        try:
            reader, writer = await connect()
            extra = f"Last-Event-ID: {last}\r\n" if last else ""
            writer.write(request("/events", extra))
            status = await asyncio.wait_for(reader.readline(), 5)
            if b" 200 " not in status:
                raise OSError(f"status {status!r}")
            while await reader.readline() not in (b"\r\n", b""):
                pass
            while time.monotonic() < end:
                line = await asyncio.wait_for(reader.readline(), max(0.1, end - time.monotonic()))
                if not line:
                    raise OSError("closed")
                if line.startswith(b"id: "):
                    n = int(line[4:])
                    if n > last + 1:
                        stats["missed_ids"] += n - last - 1
                    elif n <= last:
                        stats["repeated_ids"] += 1
                    last = max(last, n)
                    stats["events"] += 1
                elif line.startswith(b"data: "):
                    name = line[6:].strip().decode()
                    stats["stream_backends"][name] = stats["stream_backends"].get(name, 0) + 1
            writer.close()
        except TimeoutError:
            if time.monotonic() < end:
                stats["cuts"].append([now(), "timeout"])
        except OSError as exc:
            if time.monotonic() < end:
                stats["cuts"].append([now(), str(exc)[:60]])
                await asyncio.sleep(0.2)


async def one_request():
    stats["requests"] += 1
    t = now()
    try:
        reader, writer = await connect()
        writer.write(request("/"))
        data = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        head, _, body = data.partition(b"\r\n\r\n")
        if b" 200 " not in head.split(b"\r\n")[0]:
            raise OSError(head.split(b"\r\n")[0].decode())
        name = body.strip().decode()
        stats["answered_by"][name] = stats["answered_by"].get(name, 0) + 1
    except (OSError, TimeoutError) as exc:
        stats["failed"] += 1
        stats["failures"].append([t, str(exc)[:60] or type(exc).__name__])


async def load(end):
    tasks = []
    i = 0
    while time.monotonic() < end:
        tasks.append(asyncio.create_task(one_request()))
        i += 1
        await asyncio.sleep(max(0, T0 + i / args.rate - time.monotonic()))
    await asyncio.gather(*tasks)


async def main():
    end = T0 + args.seconds
    print("start", flush=True)
    jobs = [stream(end) for _ in range(args.streams)]
    if args.rate:
        jobs.append(load(end))
    await asyncio.gather(*jobs)
    stats["failures"] = stats["failures"][:10]
    stats["cuts_total"] = len(stats["cuts"])
    stats["cuts"] = stats["cuts"][:10]
    print(json.dumps(stats))


asyncio.run(main())
