"""Watch the board from the side while the playbook moves it: `watch.py OUT STOPFILE`.

Every quarter second it reads a page of notes, opens the event stream (every fourth
round) and sends a write
that can never succeed (an empty JSON object: 400 normally, 503 in maintenance mode), so
the board's data is never changed by watching. One JSON line per round goes to OUT,
until STOPFILE exists or 15 minutes have passed.

Every request carries the Cookie header in the environment variable WATCH_COOKIE: the
session converge.yml signed in with before the move (none when the board has no
sign-in), so the watcher sees what a signed-in user sees throughout.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request

BASE = "http://127.0.0.1:8000"
HEADERS = {"Content-Type": "application/json", "X-Requested-With": "molecule-watch"}
if os.environ.get("WATCH_COOKIE"):
    HEADERS["Cookie"] = os.environ["WATCH_COOKIE"]


def call(path: str, data: bytes | None = None, first_line: bool = False) -> tuple[int | None, str]:
    request = urllib.request.Request(BASE + path, data=data, headers=HEADERS)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - loopback
            text = response.readline() if first_line else response.read()
            return response.status, text.decode(errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")
    except OSError as error:
        return None, type(error).__name__


def main() -> None:
    out, stop = sys.argv[1], sys.argv[2]
    deadline = time.monotonic() + 900
    with open(out, "a", encoding="utf-8") as log:
        rounds = 0
        while not os.path.exists(stop) and time.monotonic() < deadline:
            rounds += 1
            read, page = call("/api/notes?limit=1")
            # Every fourth round: each stream lingers on the server until its next heartbeat.
            stream, first = call("/events", first_line=True) if rounds % 4 == 1 else (None, "")
            write, refusal = call("/api/notes", data=b"{}")
            newest = None
            if read == 200:
                notes = json.loads(page)["notes"]
                newest = notes[0]["id"] if notes else None
            sample = {
                "t": time.time(),
                "read": read,
                "newest": newest,
                "stream": stream,
                "stream_first": first.strip(),
                "write": write,
                "refusal": refusal[:300] if write == 503 else "",
            }
            log.write(json.dumps(sample) + "\n")
            log.flush()
            time.sleep(0.25)


if __name__ == "__main__":
    main()
