"""Benchmarks: how much a Pi-sized deployment carries. Run by ``nox -s bench``.

Every figure is measured here, on this machine, and written to ``bench/results.json``
(keyed by figure name: value, unit, goal, baseline, command, machine, measured_at) and
to the table in ``bench/README.md``. Nothing here is asserted: benchmarks measure,
tests check behaviour.

Groups (all by default, or name some): ``sse`` (streams one worker holds, memory per
stream, the sync-worker baseline, the gevent worker), ``api`` (wrk against the JSON API on
SQLite and MariaDB), ``fanout`` (an event written on node A reaching clients of node B),
``memory`` (the production compose file's containers at idle and under load),
``image`` (size, cold build against a one-line rebuild), ``deploy`` (cold, no-op and
upgrade rollouts to a local host), ``rolling`` (the two-host rolling upgrade under load,
bench/rolling.py), ``single`` (one host's upgrade between its two app slots under load,
bench/single.py), ``arm64`` (a build without layer cache under emulation) and
``proxy_tls`` (streams per worker and API requests/s through HAProxy with TLS, configured
as roles/loadbalancer configures it, against the same figures straight to Gunicorn).
Figures that other parts of the project measure (image, rollout) are merged in by
those parts through :func:`record`.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import re
import resource
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results.json"
README = ROOT / "bench" / "README.md"
# Figures one group hands to a later one in the same run (a baseline measured once).
THIS_RUN: dict[str, float] = {}
CLIENT = ROOT / "bench" / "sse_client.py"
sys.path.insert(0, str(ROOT / "tests" / "app"))
sys.path.insert(0, str(ROOT / "scripts"))

import deploy  # noqa: E402 - bench/deploy.py, beside this file: rollout times
import rolling  # noqa: E402 - bench/rolling.py: the rolling upgrade under load
import single  # noqa: E402 - bench/single.py: one host's slot switch under load

import testbed  # noqa: E402 - scripts/testbed.py, found through the path above

# Stream counts for one worker, smallest first; the figure is the largest that held. The
# search starts at the goal and climbs while steps hold, or descends until one holds, so a
# run spends its minutes near the answer. Holding the top step means at least that many.
SSE_LADDER = (500, 1000, 2000, 3000, 4000, 5000, 6000, 8000, 10000, 12000)
SSE_GOAL = 5000
# Issue 23's goals per worker class; each search starts at its class's goal.
SSE_GOALS = {"eventlet": 6000, "gevent": 10000}

# Every board here asks for a sign-in (AUTH_MODE=accounts, the app's default), so every
# client sends a session cookie: baseline and candidate pay the same cookie check. The
# admin is made by `db upgrade` from these settings; each server is signed in to once,
# before its load, so no figure includes the password hash. One SECRET_KEY for the whole
# run, as the hosts of a cluster share one, so a cookie from node A works on node B.
BENCH_ADMIN = "bench"
BENCH_PASSWORD = secrets.token_urlsafe(24)
BENCH_SECRET_KEY = secrets.token_urlsafe(48)


def sign_in(host: str, port: int) -> str:
    """The ``Cookie`` header value of a fresh admin session, straight from the app."""
    request = urllib.request.Request(
        f"http://{host}:{port}/api/session",
        data=json.dumps({"username": BENCH_ADMIN, "password": BENCH_PASSWORD}).encode(),
        headers={"Content-Type": "application/json", "X-Requested-With": "bench"},
        method="POST",
    )
    # The URL is built above from a fixed http:// prefix.
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        cookie = response.headers["Set-Cookie"]
    return cookie.split(";", 1)[0]


def machine() -> str:
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{platform.machine()}, {os.cpu_count()} cores, {mem:.0f} GiB, "
        f"{platform.freedesktop_os_release().get('PRETTY_NAME', platform.system())}, "
        f"Python {platform.python_version()}"
    )


def record(name: str, value, unit: str, command: str, goal=None, baseline=None, **extra) -> None:
    """Merge one figure into results.json, keeping figures measured by other runs."""
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results[name] = {
        "value": value,
        "unit": unit,
        "goal": goal,
        "baseline": baseline,
        "command": command,
        "machine": machine(),
        # Other work on the machine skews timings; the 1-minute load average says how much.
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        **extra,
    }
    RESULTS.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    print(f"bench: {name} = {value} {unit}", flush=True)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def raise_fd_limit() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                found.append(int(stat.parent.name))
    return found


class Server:
    """One Gunicorn instance of the app on loopback, configured by environment."""

    def __init__(
        self,
        database_url: str,
        data_dir: Path,
        worker_class: str,
        workers: int = 1,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        env: dict[str, str] | None = None,
        config: str | None = None,
    ):
        self.host = host
        self.port = port or free_port(host)
        # Gunicorn's configuration: the app's, or a bench variant of it beside this file.
        self.config = config or "python:noticeboard.gunicorn_conf"
        self.env = {
            **os.environ,
            "NOTICEBOARD_ENV": "production",
            "SECRET_KEY": BENCH_SECRET_KEY,
            "DATABASE_URL": database_url,
            "DATA_DIR": str(data_dir),
            "GUNICORN_BIND": f"{host}:{self.port}",
            "GUNICORN_WORKERS": str(workers),
            # The app offers eventlet and gevent only; the sync baseline overrides the
            # class on Gunicorn's command line, which wins over the config module.
            "GUNICORN_WORKER_CLASS": "gevent" if worker_class == "gevent" else "eventlet",
            "GUNICORN_WORKER_CONNECTIONS": "20000",
            "LOG_LEVEL": "WARNING",
            "MIGRATE_ON_START": "false",
            "AUTH_MODE": "accounts",
            "ADMIN_USERNAME": BENCH_ADMIN,
            "ADMIN_PASSWORD": BENCH_PASSWORD,
            "PYTHONPATH": os.pathsep.join(
                [str(ROOT / "bench"), *filter(None, [os.environ.get("PYTHONPATH")])]
            ),
            **(env or {}),
        }
        self.worker_class = worker_class
        self.proc: subprocess.Popen | None = None

    def migrate(self) -> None:
        subprocess.run(
            ["noticeboard", "db", "upgrade"], env=self.env, check=True, stdout=subprocess.DEVNULL
        )

    def __enter__(self) -> Server:
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [
                "gunicorn",
                "-c",
                self.config,
                "-k",
                self.worker_class,
                "noticeboard.wsgi:app",
            ],
            env=self.env,
            stdout=self.log,
            stderr=self.log,
            preexec_fn=raise_fd_limit,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                urllib.request.urlopen(f"http://{self.host}:{self.port}/healthz", timeout=2)
                return self
            time.sleep(0.2)
        self.__exit__(None, None, None)
        raise RuntimeError("gunicorn did not answer /healthz within 30 s")

    def sign_in(self) -> str:
        """Straight to this server, whatever route the load takes: one cookie for both."""
        return sign_in(self.host, self.port)

    def worker_pid(self) -> int:
        pids = children(self.proc.pid)
        if len(pids) != 1:
            raise RuntimeError(f"expected one worker, found {pids}")
        return pids[0]

    def __exit__(self, *exc) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@contextlib.contextmanager
def sqlite_dir() -> Iterator[tuple[str, Path]]:
    with tempfile.TemporaryDirectory(prefix="nb-bench-") as tmp:
        yield f"sqlite:///{tmp}/noticeboard.db", Path(tmp)


@contextlib.contextmanager
def new_database(backend: str) -> Iterator[tuple[str, Path]]:
    """A new database, as the app tests make them (tests/app/services.py installs and
    starts a real server), and a data directory beside it."""
    import services

    if backend != "sqlite":
        services.SERVICES[backend][2]()
    with (
        tempfile.TemporaryDirectory(prefix="nb-bench-") as tmp,
        services.new_database(backend, Path(tmp)) as url,
    ):
        yield url, Path(tmp)


def sse_client(
    port: int,
    streams: int,
    *,
    post_port: int | None = None,
    host: str = "127.0.0.1",
    events: int = 3,
    on_idle=None,
    timeout: float = 240,
    wait_s: float = 10,
    tls: bool = False,
    cookie: str,
) -> dict:
    cmd = [
        sys.executable,
        str(CLIENT),
        "--host",
        host,
        "--port",
        str(port),
        "--streams",
        str(streams),
        "--events",
        str(events),
        # How long a stream may take to connect, and a note to be posted and delivered.
        *("--connect-timeout", str(wait_s), "--deliver-timeout", str(wait_s)),
        "--pause",
        "--cookie",
        cookie,
    ]
    if post_port:
        cmd += ["--post-port", str(post_port)]
    if tls:
        cmd.append("--tls")
    with subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as proc:
        first = json.loads(proc.stdout.readline())
        if on_idle:
            time.sleep(1)
            on_idle(first)
        proc.stdin.write("go\n")
        proc.stdin.flush()
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise RuntimeError(
                f"the SSE load generator did not finish within {timeout} s: {' '.join(cmd)}"
            ) from None
    return json.loads(out.strip().splitlines()[-1])


# --- SSE capacity -------------------------------------------------------------------


class Route:
    """How the load generators reach a Gunicorn server of the app: straight to it on
    loopback, or (the proxy_tls group) through an HAProxy with TLS in front of it."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int | None = None,
        proxy: HAProxy | None = None,
        env: dict[str, str] | None = None,
    ):
        self.host, self.port, self.proxy, self.env = host, port, proxy, env
        self.name = "direct" if proxy is None else "proxy"

    def server(self, url: str, data: Path, worker_class: str) -> Server:
        return Server(url, data, worker_class, host=self.host, port=self.port, env=self.env)

    def target(self, server: Server) -> tuple[str, int, bool]:
        """Host, port and TLS for the clients, once the server is reachable that way."""
        if self.proxy is None:
            return server.host, server.port, False
        self.proxy.wait_ready()
        return self.proxy.address, self.proxy.https_port, True

    def url(self, server: Server, path: str) -> str:
        host, port, tls = self.target(server)
        return f"{'https' if tls else 'http'}://{host}:{port}{path}"


DIRECT = Route()


def sse_step(worker_class: str, streams: int, route: Route = DIRECT) -> dict:
    started = time.monotonic()
    with sqlite_dir() as (url, data):
        server = route.server(url, data, worker_class)
        server.migrate()
        with server:
            host, port, tls = route.target(server)
            idle = rss_kb(server.worker_pid())
            rss = {}

            def on_idle(_connected) -> None:
                rss["kb"] = rss_kb(server.worker_pid())
                if route.proxy is not None:
                    rss["proxy_mb"] = mb(route.proxy.memory())

            cookie = server.sign_in()
            result = sse_client(port, streams, host=host, tls=tls, on_idle=on_idle, cookie=cookie)
            result["rss_before_kb"] = idle
            result["rss_streams_kb"] = rss["kb"]
            if "proxy_mb" in rss:
                result["proxy_streams_mb"] = rss["proxy_mb"]
    held = (
        result["connected"] == streams
        and result["missed"] == 0
        and result["p99_s"] is not None
        and result["p99_s"] <= 1.0
    )
    result["held"] = held
    result["step_s"] = round(time.monotonic() - started, 1)
    print(
        f"bench: sse {worker_class} {route.name} {streams} streams: {json.dumps(result)}",
        flush=True,
    )
    return result


def sse_search(
    worker_class: str, route: Route = DIRECT, first: int = SSE_GOAL, top: int | None = None
) -> tuple[dict | None, dict[int, float | None]]:
    """The largest ladder step that holds (None if none does) and each step's p99.

    The search starts at ``first``, climbs while steps hold (up to ``top``, by default
    the ladder's top) or descends until one does.
    """
    tried: dict[int, float | None] = {}
    ladder = [n for n in SSE_LADDER if top is None or n <= top]

    def step(streams: int) -> dict:
        result = sse_step(worker_class, streams, route)
        tried[streams] = result["p99_s"] if result["held"] else None
        return result

    start = ladder.index(first)
    best = step(first)
    if best["held"]:
        for streams in ladder[start + 1 :]:
            result = step(streams)
            if not result["held"]:
                break
            best = result
        return best, tried
    for streams in reversed(ladder[:start]):
        result = step(streams)
        if result["held"]:
            return result, tried
    return None, tried


# The eventlet search of the sse group, kept for the proxy_tls group in the same run.
SSE_THIS_RUN: dict = {}


def bench_sse() -> None:
    command = "nox -s bench -- sse"
    for worker_class, name in (
        ("eventlet", "sse_streams_per_worker"),
        ("gevent", "sse_streams_per_worker_gevent"),
    ):
        goal = SSE_GOALS[worker_class]
        best, tried = sse_search(worker_class, first=goal)
        if name == "sse_streams_per_worker":
            baseline = sse_sync_baseline(command)
            # The proxy_tls group's baseline, when it runs later in this run.
            SSE_THIS_RUN.update(best=best, tried=tried)
        if best is None:
            record(name, 0, "streams", command, goal=goal, tried=tried)
            continue
        per_stream = (best["rss_streams_kb"] - best["rss_before_kb"]) / best["streams"]
        record(
            name,
            best["streams"],
            "streams",
            command,
            goal=goal,
            baseline=baseline if name == "sse_streams_per_worker" else None,
            p99_s=best["p99_s"],
            worker_class=worker_class,
            ladder=list(SSE_LADDER),
            tried=tried,
            # The top step held: the worker's limit is higher, not measured.
            at_least=best["streams"] == SSE_LADDER[-1],
        )
        record(
            name.replace("streams_per_worker", "kb_per_stream"),
            round(per_stream, 1),
            "KB",
            command,
            goal=20,
            worker_class=worker_class,
            streams=best["streams"],
        )


def sse_sync_baseline(command: str) -> int:
    """A sync worker (Flask's usual deployment) serves one stream at a time."""
    with sqlite_dir() as (url, data):
        server = Server(url, data, "sync")
        server.migrate()
        with server:
            # Its one request slot is taken by the first stream: nothing else can happen,
            # so there is no point in waiting long for it.
            cookie = server.sign_in()
            result = sse_client(server.port, 50, events=1, timeout=120, wait_s=3, cookie=cookie)
    delivered = result["delivered"] if result["p99_s"] is not None and result["p99_s"] <= 1 else 0
    record(
        "sse_sync_baseline_streams",
        delivered,
        "streams",
        command,
        streams_tried=50,
        connected=result["connected"],
        delivered_any_latency=result["delivered"],
        post_failures=result["post_failures"],
    )
    return delivered


# --- API throughput -----------------------------------------------------------------

WRK_POST = """
wrk.method = "POST"
wrk.body = '{"body": "a note from wrk"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Requested-With"] = "bench"
"""


def ensure_wrk() -> str:
    if not shutil.which("wrk"):
        subprocess.run(
            ["apt-get", "install", "-y", "--no-install-recommends", "wrk"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return shutil.which("wrk")


# Seconds per wrk run: thousands of requests at these rates, and the whole bench inside
# its 20-minute budget (eight runs in `api`, four in `memory`).
WRK_SECONDS = 6


def wrk(
    url: str,
    script: str | None,
    *,
    cookie: str,
    seconds: int = WRK_SECONDS,
    connections: int = 16,
) -> dict:
    cmd = [ensure_wrk(), "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as lua:
        lua.write(f'{script or ""}\nwrk.headers["Cookie"] = {json.dumps(cookie)}\n')
        lua.flush()
        cmd[1:1] = ["-s", lua.name]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    latency = {p: _ms(re.search(rf"^\s+{p}%\s+(\S+)", out, re.M).group(1)) for p in ("50", "99")}
    return {
        "rps": rps,
        "p50_ms": latency["50"],
        "p99_ms": latency["99"],
        "non_2xx": int(errors.group(1)) if errors else 0,
        "command": " ".join(
            c if not c.endswith(".lua") else ("post.lua" if script else "cookie.lua") for c in cmd
        ),
    }


def _ms(text: str) -> float:
    value = float(re.match(r"[\d.]+", text).group(0))
    unit = text[len(re.match(r"[\d.]+", text).group(0)) :]
    return round(value * {"us": 0.001, "ms": 1, "s": 1000, "m": 60000}[unit], 2)


# The API figures: each worker class against the sync worker (a default Flask
# deployment), one worker each, on every database the app supports; every figure is the
# median of API_RUNS wrk runs of API_SECONDS against the same server.
API_RUNS = 3
API_SECONDS = 4
API_P99_GOAL_MS = 100
# Requests/s against the sync worker's: at least as many where requests wait on a
# database server, 0.8 of them on SQLite, where every query holds the process.
API_RPS_GOAL_RATIO = {"sqlite": 0.8, "mariadb": 1.0, "postgresql": 1.0}
# Gunicorn as it was before each request gave the other connections their turn: the
# app's configuration with Gunicorn's own pre_request hook (SQLite only, where it stalled).
NO_TURNS_CONFIG = "python:no_turns_conf"


def median_of(runs: list[dict]) -> dict:
    return {
        key: statistics.median(run[key] for run in runs)
        for key in ("rps", "p50_ms", "p99_ms", "non_2xx")
    } | {"runs": [{k: run[k] for k in ("rps", "p50_ms", "p99_ms")} for run in runs]}


def api_figures(backend: str, worker_class: str, config: str | None = None) -> dict:
    """Median POST and GET figures of one server: API_RUNS rounds of each, after a
    second of each to warm the worker up."""
    with new_database(backend) as (url, data):
        server = Server(url, data, worker_class, config=config)
        server.migrate()
        with server:
            base = f"http://127.0.0.1:{server.port}/api/notes"
            cookie = server.sign_in()
            wrk(base, WRK_POST, cookie=cookie, seconds=1)
            wrk(base + "?limit=20", None, cookie=cookie, seconds=1)
            runs: dict[str, list[dict]] = {"post": [], "get": []}
            for _ in range(API_RUNS):
                runs["post"].append(wrk(base, WRK_POST, cookie=cookie, seconds=API_SECONDS))
                runs["get"].append(
                    wrk(base + "?limit=20", None, cookie=cookie, seconds=API_SECONDS)
                )
    figures = {verb: median_of(r) | {"command": r[0]["command"]} for verb, r in runs.items()}
    label = worker_class + (" (no turns)" if config else "")
    print(f"bench: api {backend} {label}: {json.dumps(figures)}", flush=True)
    return figures


def bench_api() -> None:
    for backend in ("sqlite", "mariadb", "postgresql"):
        figures = {k: api_figures(backend, k) for k in ("eventlet", "gevent", "sync")}
        before = (
            {k: api_figures(backend, k, NO_TURNS_CONFIG) for k in ("eventlet", "gevent")}
            if backend == "sqlite"
            else {}
        )
        suffix = "" if backend == "sqlite" else f"_{backend}"
        for worker_class in ("eventlet", "gevent"):
            name = "" if worker_class == "eventlet" else "_gevent"
            for verb in ("get", "post"):
                main, base = figures[worker_class][verb], figures["sync"][verb]
                common = {
                    "database": backend,
                    "worker_class": f"{worker_class} (baseline: sync), 1 worker",
                    "runs": main["runs"],
                    "baseline_runs": base["runs"],
                    "non_2xx": main["non_2xx"],
                }
                if worker_class in before:
                    unfair = before[worker_class][verb]
                    common["before_turns"] = {
                        k: unfair[k] for k in ("rps", "p50_ms", "p99_ms", "runs")
                    }
                command = f"nox -s bench -- api  ({main['command']}, median of {API_RUNS})"
                record(
                    f"api_{verb}_p99_ms{name}{suffix}",
                    main["p99_ms"],
                    "ms",
                    command,
                    goal=API_P99_GOAL_MS,
                    baseline=base["p99_ms"],
                    p50_ms=main["p50_ms"],
                    baseline_p50_ms=base["p50_ms"],
                    **common,
                )
                record(
                    f"api_{verb}_rps{name}{suffix}",
                    round(main["rps"], 1),
                    "requests/s",
                    command,
                    goal=round(API_RPS_GOAL_RATIO[backend] * base["rps"], 1),
                    baseline=round(base["rps"], 1),
                    ratio=round(main["rps"] / base["rps"], 2) if base["rps"] else None,
                    **common,
                )


# --- a busy board --------------------------------------------------------------------

BUSY_CLIENT = ROOT / "bench" / "busy_board.py"
MIXED_STREAMS = 1000
MIXED_RATE = 50
MIXED_SECONDS = 30
MIXED_RUNS = 3
# Reads are measured inside the write window: after its first seconds (at most
# MIXED_READ_DELAY_S), for half of it.
MIXED_READ_DELAY_S = 4


def read_seconds(window: float) -> int:
    return int(window // 2)


# The storm: posts back to back, 16 at a time, for a few seconds.
STORM_RATE, STORM_SECONDS, STORM_IN_FLIGHT = 2000, 6, 16


def busy_board(server: Server, cookie: str, rate: float, seconds: float, in_flight: int) -> dict:
    """MIXED_STREAMS streams open on SERVER while notes are posted at RATE, with wrk
    reading inside the write window; the load generator's result plus the read rate."""
    base = f"http://127.0.0.1:{server.port}/api/notes?limit=20"
    cmd = [
        sys.executable,
        str(BUSY_CLIENT),
        *("--port", str(server.port), "--streams", str(MIXED_STREAMS)),
        *("--rate", str(rate), "--seconds", str(seconds), "--in-flight", str(in_flight)),
        *("--cookie", cookie),
    ]
    with subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as proc:
        connected = json.loads(proc.stdout.readline())
        time.sleep(1)
        proc.stdin.write("go\n")
        proc.stdin.flush()
        json.loads(proc.stdout.readline())  # writing
        time.sleep(min(MIXED_READ_DELAY_S, seconds / 4))
        reads = wrk(base, None, cookie=cookie, seconds=read_seconds(seconds))
        try:
            out, _ = proc.communicate(timeout=seconds + 120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise RuntimeError(f"the busy-board client did not finish: {' '.join(cmd)}") from None
    result = json.loads(out.strip().splitlines()[-1])
    return result | {"connect_s": round(connected["s"], 1), "reads": reads}


def mixed_run(rate: float, seconds: float, in_flight: int) -> dict:
    """A fresh board with the image's defaults (two eventlet workers, SQLite): its quiet
    read rate, then the same reads while it is busy."""
    with sqlite_dir() as (url, data):
        server = Server(url, data, "eventlet", workers=2)
        server.migrate()
        with server:
            cookie = server.sign_in()
            base = f"http://127.0.0.1:{server.port}/api/notes?limit=20"
            wrk(base, None, cookie=cookie, seconds=1)
            quiet = wrk(base, None, cookie=cookie)
            busy = busy_board(server, cookie, rate, seconds, in_flight)
    busy["quiet_reads"] = quiet
    busy["read_share"] = round(busy["reads"]["rps"] / quiet["rps"], 2) if quiet["rps"] else None
    print(f"bench: mixed {rate}/s for {seconds} s: {json.dumps(busy)}", flush=True)
    return busy


def bench_mixed() -> None:
    runs = [mixed_run(MIXED_RATE, MIXED_SECONDS, 8) for _ in range(MIXED_RUNS)]
    load = (
        f"{MIXED_STREAMS} event streams open while notes are posted at {MIXED_RATE}/s for "
        f"{MIXED_SECONDS} s (bench/busy_board.py) and wrk reads GET /api/notes?limit=20 "
        f"for {read_seconds(MIXED_SECONDS)} s inside that window; two eventlet workers, SQLite"
    )
    command = f"nox -s bench -- mixed  (median of {MIXED_RUNS} runs, each on a fresh board)"

    def median(key: str, of=lambda run, key: run[key]) -> float:
        return statistics.median(of(run, key) for run in runs)

    per_run = [
        {
            k: run[k]
            for k in ("read_share", "p99_s", "still_open", "connected", "missed", "write_rate")
        }
        | {"reads_rps": run["reads"]["rps"], "quiet_rps": run["quiet_reads"]["rps"]}
        for run in runs
    ]
    record(
        "mixed_read_share",
        median("read_share"),
        "of the quiet rate",
        command,
        goal=0.5,
        baseline=1.0,
        reads_rps=median("reads", lambda run, key: run[key]["rps"]),
        quiet_rps=median("quiet_reads", lambda run, key: run[key]["rps"]),
        load=load,
        runs=per_run,
    )
    record(
        "mixed_delivery_p99_s",
        median("p99_s"),
        "s",
        command,
        goal=2,
        p50_s=median("p50_s"),
        max_s=median("max_s"),
        missed=median("missed"),
        load=load,
        runs=per_run,
    )
    record(
        "mixed_streams_dropped",
        median("connected", lambda run, key: run[key] - run["still_open"]),
        "streams",
        command,
        goal=0,
        streams=MIXED_STREAMS,
        connected=median("connected"),
        load=load,
        runs=per_run,
    )
    storm = mixed_run(STORM_RATE, STORM_SECONDS, STORM_IN_FLIGHT)
    record(
        "mixed_storm_delivery_p99_s",
        storm["p99_s"],
        "s",
        f"nox -s bench -- mixed  (the storm: one run, {STORM_IN_FLIGHT} posts at a time)",
        streams_dropped=storm["connected"] - storm["still_open"],
        write_rate=storm["write_rate"],
        read_share=storm["read_share"],
        missed=storm["missed"],
        load=(
            f"{MIXED_STREAMS} event streams open while notes are posted back to back, "
            f"{STORM_IN_FLIGHT} at a time, for {STORM_SECONDS} s, and wrk reads inside "
            "that window; two eventlet workers, SQLite"
        ),
    )


# --- cross-node fan-out -------------------------------------------------------------


def bench_fanout() -> None:
    with new_database("mariadb") as (url, data):
        node_a = Server(url, data, "eventlet")
        node_b = Server(url, data, "eventlet")
        node_a.migrate()
        with node_a, node_b:
            cookie = node_a.sign_in()
            result = sse_client(node_b.port, 50, post_port=node_a.port, events=30, cookie=cookie)
    print(f"bench: fanout: {json.dumps(result)}")
    command = "nox -s bench -- fanout"
    record(
        "fanout_p99_s",
        round(result["p99_s"], 3),
        "s",
        command,
        goal=2,
        p50_s=round(result["p50_s"], 3),
        streams=50,
        events=30,
        missed=result["missed"],
        database="mariadb",
        poll_seconds=os.environ.get("SSE_POLL_SECONDS", "0.5 (default)"),
    )


# --- memory of the production containers --------------------------------------------

COMPOSE_PROD = ROOT / "docker" / "docker-compose.prod.yml"
MEMORY_IMAGE = "noticeboard-bench:memory"
MARIADB_STANDIN = "local/mariadb:11.8"
# The load the memory figures are taken under: streams held open while wrk posts and
# reads notes. Below the production default of 2 workers x 1000 connections.
MEMORY_STREAMS = 1000
MEMORY_WRK_SECONDS = WRK_SECONDS


def cgroup_memory(container_id: str) -> dict:
    """A container's memory as its cgroup counts it, in bytes.

    ``used`` is what ``docker stats`` shows: the cgroup's usage minus inactive file
    cache, which the kernel reclaims before the limit's OOM killer acts. cgroup v1
    (``memory.usage_in_bytes``, ``total_inactive_file``) and v2 (``memory.current``,
    ``inactive_file``) are both read from the host.
    """
    candidates = [
        (Path(f"/sys/fs/cgroup/memory/docker/{container_id}"), "memory.usage_in_bytes"),
        (Path(f"/sys/fs/cgroup/system.slice/docker-{container_id}.scope"), "memory.current"),
        (Path(f"/sys/fs/cgroup/docker/{container_id}"), "memory.current"),
    ]
    for path, usage_file in candidates:
        if (path / usage_file).exists():
            usage = int((path / usage_file).read_text())
            stat = dict(line.split() for line in (path / "memory.stat").read_text().splitlines())
            inactive = int(stat.get("total_inactive_file", stat.get("inactive_file", 0)))
            anon = int(stat.get("total_rss", stat.get("anon", 0)))
            return {"used": usage - inactive, "usage": usage, "anon": anon, "source": usage_file}
    raise RuntimeError(
        f"no cgroup memory files for container {container_id[:12]} under /sys/fs/cgroup; "
        "the memory group reads them from the host running the Docker engine"
    )


class Stack:
    """The production compose file as a throwaway project: unique name, own volumes."""

    def __init__(self, mariadb: bool):
        self.name = f"nb-bench-mem-{secrets.token_hex(3)}"
        self.mariadb = mariadb
        self.tmp = tempfile.TemporaryDirectory(prefix="nb-bench-mem-")
        password = secrets.token_urlsafe(18)
        env = {
            "SECRET_KEY": secrets.token_urlsafe(48),
            "NOTICEBOARD_IMAGE": MEMORY_IMAGE,
            "MARIADB_IMAGE": MARIADB_STANDIN,
            "NOTICEBOARD_PUBLISH": "127.0.0.1:0",
            "LOG_LEVEL": "WARNING",
        }
        if mariadb:
            env["MARIADB_PASSWORD"] = password
            env["DATABASE_URL"] = f"mysql+pymysql://noticeboard:{password}@mariadb:3306/noticeboard"
        # The first admin's password, as the compose file's secret: readable by the
        # app's uid inside, the temporary directory (0700) keeps it from everyone else.
        admin_secret = Path(self.tmp.name) / "admin_password"
        admin_secret.write_text(BENCH_PASSWORD + "\n")
        admin_secret.chmod(0o644)
        env["ADMIN_USERNAME"] = BENCH_ADMIN
        env["ADMIN_PASSWORD_SECRET"] = str(admin_secret)
        env_file = Path(self.tmp.name) / "bench.env"
        env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
        env_file.chmod(0o600)
        self.base = [testbed.docker_cli(), "compose", "-p", self.name]
        self.base += ["--env-file", str(env_file), "-f", str(COMPOSE_PROD)]
        if mariadb:
            self.base += ["--profile", "mariadb"]
        # Only this project's settings: none of the caller's COMPOSE_* variables.
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_")}

    def compose(self, *args: str, timeout: float = 600) -> str:
        result = subprocess.run(
            [*self.base, *args], capture_output=True, text=True, env=self.env, timeout=timeout
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"docker compose {' '.join(args)} failed ({result.returncode}):\n"
                f"{result.stderr[-3000:]}"
            )
        return result.stdout

    def __enter__(self) -> Stack:
        try:
            self.compose("up", "-d", "--wait", "--wait-timeout", "300")
        except Exception:
            print(self.compose("logs", "--no-color", "--tail", "50"), file=sys.stderr)
            self.__exit__(None, None, None)
            raise
        return self

    def container(self, service: str) -> str:
        return self.compose("ps", "-q", service).strip()

    def address(self, service: str) -> str:
        """The container's address on the project's front-end network.

        The load goes there directly, not through the published port, so that Docker's
        userland proxy neither doubles the connections nor takes the CPU the app needs.
        """
        out = subprocess.run(
            [
                testbed.docker_cli(),
                "inspect",
                "-f",
                "{{range $k, $v := .NetworkSettings.Networks}}{{$k}}={{$v.IPAddress}} {{end}}",
                self.container(service),
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        return next(v.split("=", 1)[1] for v in out if v.startswith(f"{self.name}_frontend="))

    def limit(self, service: str) -> int:
        out = subprocess.run(
            [
                testbed.docker_cli(),
                "inspect",
                "-f",
                "{{.HostConfig.Memory}}",
                self.container(service),
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return int(out)

    def __exit__(self, *exc) -> None:
        with contextlib.suppress(Exception):
            self.compose("down", "-v", "--remove-orphans", "--timeout", "30")
        self.tmp.cleanup()


class Sampler:
    """Samples the cgroup memory of some containers every half second, keeping the peak."""

    def __init__(self, ids: dict[str, str]):
        self.ids = ids
        self.peak = dict.fromkeys(ids, 0)
        self.peak_total = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def sample(self) -> dict[str, int]:
        now = {name: cgroup_memory(cid)["used"] for name, cid in self.ids.items()}
        for name, used in now.items():
            self.peak[name] = max(self.peak[name], used)
        self.peak_total = max(self.peak_total, sum(now.values()))
        return now

    def run(self) -> None:
        while not self.stop.wait(0.5):
            self.sample()

    def __enter__(self) -> Sampler:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()
        self.sample()


def idle_memory(ids: dict[str, str], seconds: float = 10) -> dict[str, int]:
    """The settled figure: the highest of a few samples after the stack has calmed down."""
    highest = dict.fromkeys(ids, 0)
    for _ in range(int(seconds / 2)):
        for name, cid in ids.items():
            highest[name] = max(highest[name], cgroup_memory(cid)["used"])
        time.sleep(2)
    return highest


def memory_under_load(stack: Stack, ids: dict[str, str]) -> dict:
    host = stack.address("app")
    base = f"http://{host}:8000/api/notes"
    cookie = sign_in(host, 8000)
    seen = {}
    with Sampler(ids) as sampler:

        def load(_connected) -> None:
            seconds = MEMORY_WRK_SECONDS
            seen["wrk_post"] = wrk(base, WRK_POST, cookie=cookie, seconds=seconds)
            seen["wrk_get"] = wrk(base + "?limit=20", None, cookie=cookie, seconds=seconds)

        result = sse_client(8000, MEMORY_STREAMS, host=host, events=1, on_idle=load, cookie=cookie)
    return {
        "peak": sampler.peak,
        "peak_total": sampler.peak_total,
        "sse": result,
        "get_rps": seen["wrk_get"]["rps"],
        "post_rps": seen["wrk_post"]["rps"],
    }


def ensure_memory_images() -> None:
    """The app image from this checkout and the MariaDB stand-in (layer cache makes both cheap)."""
    testbed.ensure_engine()
    testbed.ensure_compose()
    testbed.ensure_images(["trixie"])
    builds = [
        [sys.executable, str(ROOT / "docker" / "build.py"), "--testbed", "--tag", MEMORY_IMAGE],
        [
            *testbed.build_cli(),
            "--build-arg",
            f"BASE={testbed.IMAGES['trixie'].tag}",
            "-t",
            MARIADB_STANDIN,
            str(ROOT / "docker" / "standins" / "mariadb"),
        ],
    ]
    for cmd in builds:
        done = subprocess.run(cmd, capture_output=True, text=True, env=testbed.build_env())
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")


def mb(n: int) -> float:
    return round(n / 2**20, 1)


def load_served(loaded: dict) -> dict:
    """How much of the load a memory run actually served: its figures are a floor when
    the CPU-starved app connected fewer streams or answered fewer requests."""
    return {
        "streams_connected": loaded["sse"]["connected"],
        "streams_still_open": loaded["sse"]["still_open"],
        "sse_p99_s": loaded["sse"]["p99_s"],
        "get_rps": loaded["get_rps"],
        "post_rps": loaded["post_rps"],
        "app_log": loaded.get("app_log_warnings", {}),
    }


def app_log_warnings(container: str) -> dict[str, int]:
    """What the app's log says happened during a run, counted: worker (re)starts, worker
    timeouts, kills, errors, and event streams dropped for falling behind."""
    logs = subprocess.run(
        ["docker", "logs", container], capture_output=True, text=True, check=False
    )
    words = (
        *("WORKER TIMEOUT", "SIGKILL", "out of memory", "Booting worker", "ERROR", "CRITICAL"),
        "dropping a subscriber",
    )
    text = logs.stdout + logs.stderr
    return {word: text.count(word) for word in words if word in text}


def bench_memory() -> None:
    """App (SQLite) and app + MariaDB, in the production compose file's containers."""
    ensure_memory_images()
    command = "nox -s bench -- memory  (docker/docker-compose.prod.yml, its limits)"
    how = (
        "cgroup memory of the container read from the host: usage minus inactive file "
        "cache (what docker stats shows); load = peak of 0.5 s samples"
    )
    load_desc = (
        f"{MEMORY_STREAMS} SSE streams held while wrk posts then reads notes "
        f"({MEMORY_WRK_SECONDS} s each, 16 connections), then one note fanned out"
    )
    with Stack(mariadb=False) as stack:
        ids = {"app": stack.container("app")}
        limit = stack.limit("app")
        idle = idle_memory(ids)
        loaded = memory_under_load(stack, ids)
        loaded["app_log_warnings"] = app_log_warnings(ids["app"])
    print(f"bench: memory sqlite: idle {idle} load {json.dumps(loaded)}", flush=True)
    record(
        "app_rss_idle_mb",
        mb(idle["app"]),
        "MB",
        command,
        goal=120,
        database="sqlite",
        limit_mb=mb(limit),
        measured_by=how,
        workers="2 eventlet (the image's defaults)",
    )
    record(
        "app_rss_load_mb",
        mb(loaded["peak"]["app"]),
        "MB",
        command,
        goal=120,
        database="sqlite",
        limit_mb=mb(limit),
        measured_by=how,
        load=load_desc,
        **load_served(loaded),
    )
    with Stack(mariadb=True) as stack:
        ids = {"app": stack.container("app"), "mariadb": stack.container("mariadb")}
        limits = {name: stack.limit(name) for name in ids}
        idle = idle_memory(ids)
        loaded = memory_under_load(stack, ids)
        loaded["app_log_warnings"] = app_log_warnings(ids["app"])
    print(f"bench: memory mariadb: idle {idle} load {json.dumps(loaded)}", flush=True)
    record(
        "stack_rss_mariadb_mb",
        mb(loaded["peak_total"]),
        "MB",
        command,
        goal=320,
        database="mariadb",
        app_load_mb=mb(loaded["peak"]["app"]),
        mariadb_load_mb=mb(loaded["peak"]["mariadb"]),
        app_idle_mb=mb(idle["app"]),
        mariadb_idle_mb=mb(idle["mariadb"]),
        idle_total_mb=mb(sum(idle.values())),
        limits_mb={name: mb(v) for name, v in limits.items()},
        measured_by=how,
        load=load_desc,
        **load_served(loaded),
    )


# --- image ------------------------------------------------------------------------


def build(context: Path, tag: str, *extra: str) -> float:
    """Build with docker/build.py on the test-bed bases; the seconds it reports."""
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "docker" / "build.py"),
            "--testbed",
            "--context",
            str(context),
            "--tag",
            tag,
            "--json",
            *extra,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    platforms = json.loads(out)["platforms"]
    return sum(p["seconds"] for p in platforms.values())


def image_bytes(ref: str) -> int:
    out = subprocess.run(
        ["docker", "image", "inspect", "-f", "{{.Size}}", ref],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return int(out)


def bench_image() -> None:
    """Size, and a cold build against a one-line rebuild.

    "Cold" means no layer cache (``--no-cache``) in a fresh copy of the checkout; the
    download caches (apt, pip, npm mounts) stay warm, as on any machine that built once.
    """
    testbed.ensure_engine()
    testbed.ensure_images(["trixie"])
    with tempfile.TemporaryDirectory(prefix="nb-bench-ctx-") as tmp:
        context = testbed.copy_checkout(Path(tmp))
        tag = "noticeboard-bench:size"
        cold = build(context, tag, "--no-cache")
        size = image_bytes(tag)
        base = image_bytes("local/debian:trixie")
        with (context / "src" / "noticeboard" / "web.py").open("a") as fh:
            # Unique per run: the same line as last run's would come from the layer cache.
            fh.write(f"\n# a one-line change, as a developer makes it ({secrets.token_hex(8)})\n")
        rebuild = build(context, tag)
    THIS_RUN["amd64_cold_build_s"] = round(cold, 1)
    command = "nox -s bench -- image  (docker/build.py --testbed [--no-cache])"
    record(
        "image_size_mb",
        round(size / 1e6, 1),
        "MB",
        command,
        goal=160,
        platform="linux/amd64",
        uncompressed=True,
    )
    record(
        "image_above_base_mb",
        round((size - base) / 1e6, 1),
        "MB",
        command,
        goal=60,
        base="local/debian:trixie (debootstrap minbase, trimmed)",
        base_mb=round(base / 1e6, 1),
    )
    record(
        "rebuild_ratio",
        round(rebuild / cold, 3),
        "ratio",
        command,
        goal=0.15,
        cold_s=round(cold, 1),
        rebuild_s=round(rebuild, 1),
        change="one line appended to src/noticeboard/web.py",
    )
    subprocess.run(["docker", "image", "rm", tag], capture_output=True, check=False)


def bench_arm64() -> None:
    """The arm64 build without layer cache, under QEMU, against this run's amd64 build.

    Only Debian's package configuration and a load check of the extension modules run
    emulated; the front end, the wheels, apt's dependency resolution and the
    byte-compilation run natively (docker/Dockerfile, docker/debian-python.sh).
    """
    testbed.ensure_engine()
    testbed.ensure_binfmt()
    testbed.ensure_images(["trixie", "trixie-arm64"])
    tag = "noticeboard-bench:arm64"
    with tempfile.TemporaryDirectory(prefix="nb-bench-ctx-") as tmp:
        context = testbed.copy_checkout(Path(tmp))
        arm64 = build(context, tag, "--no-cache", "--platform", "linux/arm64")
    size = image_bytes(tag)
    base = image_bytes("local/debian-arm64:trixie")
    amd64 = THIS_RUN.get("amd64_cold_build_s")
    record(
        "arm64_build_s",
        round(arm64, 1),
        "s",
        "nox -s bench -- arm64  (docker/build.py --testbed --no-cache --platform linux/arm64)",
        goal=None,
        baseline=amd64,
        baseline_is="the amd64 build without layer cache in the same run (image group)",
        ratio=None if amd64 is None else round(arm64 / amd64, 2),
        note="no layer cache, under qemu-user-static",
        size_mb=round(size / 1e6, 1),
        above_base_mb=round((size - base) / 1e6, 1),
    )
    subprocess.run(["docker", "image", "rm", tag], capture_output=True, check=False)


# --- through the proxy, with TLS -----------------------------------------------------

LB_ROLE = ROOT / "roles" / "loadbalancer"
PROXY_IMAGE = "noticeboard-bench:haproxy"


def lb_template(template: str, server_host: str, server_port: int) -> str:
    """One of roles/loadbalancer's templates, rendered with the role's defaults and one server.

    The template itself, so the figures follow the role's settings (TLS, timeouts,
    server-side connection handling, no response buffering) as they change. Variables
    the role derives from the inventory or from facts are set here; the role's other
    templated variables are rendered from these, as Ansible would; a variable the template
    gains that can be neither stops the group by its name.
    """
    import jinja2  # Flask's, in the bench session
    from ansible.plugins.filter.core import FilterModule  # ansible-core, in the bench session

    # Ansible's template module trims blocks, keeps the last newline (HAProxy refuses a
    # file without it) and escapes nothing (no HTML here). The template and the role's
    # variables may use any of ansible-core's own filters (`bool`, `comment`, ...).
    env = jinja2.Environment(
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,  # noqa: S701 - a configuration file, not HTML
    )
    env.filters.update(FilterModule().filters())

    values = {
        "ansible_managed": "bench/run.py (proxy_tls group)",
        "noticeboard_lb_server_name": "noticeboard.bench",
        "_noticeboard_lb_servers": [{"name": "app1", "address": server_host, "port": server_port}],
        # The bench makes its own certificate (own files), and its one server is a plain
        # app container, not one of a single host's slots.
        "noticeboard_lb_tls_mode": "own",
        "_noticeboard_lb_slotted": False,
    }
    templated = {}
    for path in (LB_ROLE / "defaults" / "main.yml", LB_ROLE / "vars" / "main.yml"):
        for name, value in yaml_load(path).items():
            if name in values:
                continue
            if isinstance(value, str) and ("{{" in value or "{%" in value):
                templated[name] = value
            else:
                values[name] = value
    # Render the templated ones from what is known, as often as that adds one; those that
    # need facts or registered results stay unset (the template must not need them).
    while templated:
        rendered = {}
        for name, value in templated.items():
            try:
                rendered[name] = env.from_string(value).render(values)
            except (jinja2.UndefinedError, jinja2.TemplateAssertionError):
                continue  # needs facts, a registered result or a collection's filter
        if not rendered:
            break
        values.update(rendered)
        for name in rendered:
            del templated[name]
    return env.from_string((LB_ROLE / "templates" / template).read_text()).render(values)


def haproxy_config(server_host: str, server_port: int) -> str:
    """The role's haproxy.cfg for one server."""
    return lb_template("haproxy.cfg.j2", server_host, server_port)


def lb_default(name: str):
    return yaml_load(LB_ROLE / "defaults" / "main.yml")[name]


def yaml_load(path: Path) -> dict:
    import yaml  # ansible-core's, in the bench session

    return yaml.safe_load(path.read_text())


class HAProxy:
    """HAProxy as roles/loadbalancer runs it, in front of one Gunicorn on this machine.

    The test-bed's stand-in image (Debian's haproxy, docker/standins/haproxy), the role's
    rendered configuration, its container settings (user 99, read-only, no capabilities,
    the CPU and memory limits) and a self-signed P-256 certificate as the role makes one.
    The clients connect to the container's address on the HTTPS port inside it (the role
    publishes it as the host's 443), as the memory group reaches its app: not through a
    published port, whose userland proxy would double the connections on loopback.
    """

    def __init__(self, server_host: str, server_port: int):
        self.server_host, self.server_port = server_host, server_port
        self.name = f"nb-bench-proxy-{secrets.token_hex(3)}"
        self.https_port = yaml_load(LB_ROLE / "vars" / "main.yml")[
            "_noticeboard_lb_container_ports"
        ]["https"]
        self.address = ""
        self.tmp = tempfile.TemporaryDirectory(prefix="nb-bench-proxy-")

    def __enter__(self) -> HAProxy:
        top = Path(self.tmp.name)
        config, run_dir = top / "config", top / "run"
        (config / "certs").mkdir(parents=True)
        run_dir.mkdir()
        cert = config / "certs" / "site.pem"
        subprocess.run(
            [
                "openssl", "req", "-x509", "-newkey", "ec",
                "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", f"{cert}.key", "-out", str(cert), "-days", "2",
                "-subj", "/CN=noticeboard.bench",
                "-addext", "subjectAltName=DNS:noticeboard.bench",
            ],
            check=True,
            capture_output=True,
        )  # fmt: skip
        (config / "haproxy.cfg").write_text(haproxy_config(self.server_host, self.server_port))
        # The role's own page for "no server is up", which the configuration names.
        (config / "maintenance.html").write_text(
            lb_template("maintenance.html.j2", self.server_host, self.server_port)
        )
        # HAProxy runs as uid 99: it reads the configuration and writes its sockets.
        for path in (top, config, config / "certs"):
            path.chmod(0o755)
        files = ("haproxy.cfg", "maintenance.html")
        for path in (cert, Path(f"{cert}.key"), *(config / name for name in files)):
            path.chmod(0o644)
        os.chown(run_dir, 99, 99)
        uid, gid = lb_default("noticeboard_lb_uid"), lb_default("noticeboard_lb_gid")
        container = [
            "--user", f"{uid}:{gid}", "--read-only", "--cap-drop", "ALL",
            "--security-opt", "no-new-privileges:true",
            "-v", f"{config}:/usr/local/etc/haproxy:ro", "-v", f"{run_dir}:/run/haproxy",
        ]  # fmt: skip
        # `haproxy -c` first, as the role checks a configuration before it writes it.
        check = subprocess.run(
            [
                testbed.docker_cli(), "run", "--rm", *container, PROXY_IMAGE,
                "haproxy", "-c", "-f", "/usr/local/etc/haproxy/haproxy.cfg",
            ],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if check.returncode != 0:
            self.tmp.cleanup()
            raise RuntimeError(f"haproxy -c refused the rendered configuration:\n{check.stderr}")
        cmd = [
            testbed.docker_cli(), "run", "-d", "--name", self.name, *container,
            "--cpus", str(lb_default("noticeboard_lb_cpus")),
            "--memory", str(lb_default("noticeboard_lb_memory_limit")),
            PROXY_IMAGE, "haproxy", "-f", "/usr/local/etc/haproxy/haproxy.cfg",
        ]  # fmt: skip
        subprocess.run(cmd, check=True, capture_output=True)
        try:
            self.address = subprocess.run(
                [
                    testbed.docker_cli(), "inspect", "-f",
                    "{{.State.Running}} {{.NetworkSettings.IPAddress}}", self.name,
                ],
                capture_output=True, text=True, check=True,
            ).stdout.split()[1]  # fmt: skip
        except (IndexError, subprocess.CalledProcessError):
            self.__exit__(None, None, None)
            raise RuntimeError(f"HAProxy ({self.name}) did not start:\n{self.logs()}") from None
        return self

    def logs(self) -> str:
        done = subprocess.run(
            [testbed.docker_cli(), "logs", "--tail", "30", self.name],
            capture_output=True,
            text=True,
            check=False,
        )
        return done.stdout + done.stderr

    def wait_ready(self, timeout: float = 40) -> None:
        """Until the app answers /readyz through HAProxy (its health checks mark the
        server up again after the server of the previous step stopped)."""
        import ssl

        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        url = f"https://{self.address}:{self.https_port}/readyz"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(url, timeout=2, context=context) as response,
            ):
                if response.status == 200:
                    return
            time.sleep(0.5)
        raise RuntimeError(f"{url} did not answer 200 within {timeout} s:\n{self.logs()}")

    def memory(self) -> int:
        container = subprocess.run(
            [testbed.docker_cli(), "inspect", "-f", "{{.Id}}", self.name],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return cgroup_memory(container)["used"]

    def __exit__(self, *exc) -> None:
        subprocess.run(
            [testbed.docker_cli(), "rm", "-f", self.name], capture_output=True, check=False
        )
        self.tmp.cleanup()


def bridge_gateway() -> str:
    """The host's address on Docker's default bridge: the proxy container reaches the
    Gunicorn servers there, and the direct runs use it too (a local address: loopback)."""
    return subprocess.run(
        [
            testbed.docker_cli(), "network", "inspect", "bridge",
            "-f", "{{range .IPAM.Config}}{{.Gateway}}{{end}}",
        ],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip


def ratio(value: float | None, baseline: float | None) -> float | None:
    """value / baseline, rounded; None when either is missing or the baseline is 0."""
    if value is None or not baseline:
        return None
    return round(value / baseline, 2)


# Alternating wrk runs per route and kind of request in the proxy_tls group, and their
# seconds: 36 s of requests in all.
PROXY_API_ROUNDS = 3
PROXY_API_SECONDS = 3


def proxy_api(direct: Route, proxied: Route) -> dict[str, dict[str, dict]]:
    """GET and POST requests/s straight to one Gunicorn and through the proxy to the same
    one, in alternating short wrk runs, so that a load that comes and goes on the shared
    machine weighs on both routes alike. Each route's figure is its median run."""
    runs: dict[str, dict[str, list[dict]]] = {"direct": {}, "proxy": {}}
    with sqlite_dir() as (url, data):
        server = direct.server(url, data, "eventlet")
        server.migrate()
        with server:
            bases = {route.name: route.url(server, "/api/notes") for route in (direct, proxied)}
            cookie = server.sign_in()
            for base in bases.values():
                wrk(base, WRK_POST, cookie=cookie, seconds=1)
                wrk(base + "?limit=20", None, cookie=cookie, seconds=1)
            for verb, script, query in (("post", WRK_POST, ""), ("get", None, "?limit=20")):
                for _ in range(PROXY_API_ROUNDS):
                    for name, base in bases.items():
                        run = wrk(base + query, script, cookie=cookie, seconds=PROXY_API_SECONDS)
                        runs[name].setdefault(verb, []).append(run)
    figures = {
        name: {verb: median_run(verb_runs) for verb, verb_runs in by_verb.items()}
        for name, by_verb in runs.items()
    }
    print(f"bench: proxy_tls api: {json.dumps(figures)}", flush=True)
    return figures


def median_run(runs: list[dict]) -> dict:
    """The run with the median requests/s (its latencies with it), and every run's rate."""
    ordered = sorted(runs, key=lambda run: run["rps"])
    return {**ordered[(len(ordered) - 1) // 2], "rps_runs": [run["rps"] for run in runs]}


def bench_proxy_tls() -> None:
    """Event streams per worker and API requests/s through HAProxy with TLS, against the
    same figures straight to Gunicorn, in the same run: one eventlet worker on SQLite."""
    testbed.ensure_engine()
    testbed.ensure_images(["trixie"])
    build = [
        *testbed.build_cli(),
        "--build-arg",
        f"BASE={testbed.IMAGES['trixie'].tag}",
        "-t",
        PROXY_IMAGE,
        str(ROOT / "docker" / "standins" / "haproxy"),
    ]
    done = subprocess.run(build, capture_output=True, text=True, env=testbed.build_env())
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(build)} failed:\n{done.stderr[-3000:]}")
    host = bridge_gateway()
    # One port for every server of the group: the proxy's configuration names it once.
    port = free_port(host)
    # Both servers trust one proxy, as a deployment behind it does; the proxy is then
    # the only difference between the two routes.
    env = {"TRUSTED_PROXY_COUNT": "1"}
    direct = Route(host, port, env=env)
    command = "nox -s bench -- proxy_tls"
    with HAProxy(host, port) as proxy:
        proxied = Route(host, port, proxy, env=env)
        api = proxy_api(direct, proxied)
        if SSE_THIS_RUN:
            # The sse group searched the same ladder straight to a worker earlier in
            # this run: its answer is the baseline, and the group saves that search.
            direct_best, direct_tried = SSE_THIS_RUN["best"], SSE_THIS_RUN["tried"]
            baseline_from = "the sse group's eventlet search, earlier in this run"
        else:
            direct_best, direct_tried = sse_search("eventlet", direct)
            baseline_from = "the same ladder straight to Gunicorn, in this group"
        # The proxy is asked for at most what the worker held without it.
        # The role's `noticeboard_lb_maxconn` caps the connections HAProxy accepts: a step
        # above it cannot hold through the proxy whatever the worker does, so the proxy's
        # search starts at the worker's figure or the last step under that cap.
        maxconn = lb_default("noticeboard_lb_maxconn")
        cap = max((n for n in SSE_LADDER if n <= maxconn), default=SSE_LADDER[0])
        top = min(direct_best["streams"] if direct_best else SSE_LADDER[0], cap)
        proxy_best, proxy_tried = sse_search("eventlet", proxied, first=top, top=top)
    setup = {
        "worker_class": "eventlet, 1 worker, SQLite",
        "proxy": (
            "HAProxy from the test-bed's stand-in image (Debian's haproxy), "
            "roles/loadbalancer/templates/haproxy.cfg.j2 with the role's defaults, "
            "its container limits, a self-signed P-256 certificate; clients reach "
            "the container's HTTPS port over the Docker bridge"
        ),
    }
    for verb in ("get", "post"):
        via, base = api["proxy"][verb], api["direct"][verb]
        record(
            f"proxy_tls_{verb}_rps",
            round(via["rps"], 1),
            "requests/s",
            f"{command}  ({via['command']})",
            baseline=round(base["rps"], 1),
            baseline_is="the same requests straight to Gunicorn, in the same run",
            ratio=ratio(via["rps"], base["rps"]),
            p50_ms=via["p50_ms"],
            p99_ms=via["p99_ms"],
            baseline_p50_ms=base["p50_ms"],
            baseline_p99_ms=base["p99_ms"],
            non_2xx=via["non_2xx"],
            rps_runs=via["rps_runs"],
            baseline_rps_runs=base["rps_runs"],
            runs=f"{PROXY_API_ROUNDS} of {PROXY_API_SECONDS} s per route, alternating; the median",
            **setup,
        )
    held = proxy_best["streams"] if proxy_best else 0
    direct_held = direct_best["streams"] if direct_best else 0
    record(
        "proxy_tls_sse_streams_per_worker",
        held,
        "streams",
        command,
        baseline=direct_held,
        baseline_is=baseline_from,
        ratio=ratio(held, direct_held),
        p99_s=proxy_best["p99_s"] if proxy_best else None,
        baseline_p99_s=direct_best["p99_s"] if direct_best else None,
        proxy_mb=proxy_best.get("proxy_streams_mb") if proxy_best else None,
        tried=proxy_tried,
        baseline_tried=direct_tried,
        ladder=list(SSE_LADDER),
        top=top,
        **setup,
    )


# --- README table -------------------------------------------------------------------


def write_readme() -> None:
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    rows = [
        "| figure | value | goal | baseline | measured | load |",
        "|---|---|---|---|---|---|",
    ]
    for name, fig in sorted(results.items()):
        goal = "" if fig["goal"] is None else f"{fig['goal']} {fig['unit']}"
        base = "" if fig["baseline"] is None else f"{fig['baseline']} {fig['unit']}"
        rows.append(
            f"| `{name}` | {fig['value']} {fig['unit']} | {goal} | {base} "
            f"| {fig['measured_at'][:10]} | {fig.get('load_avg_1m', '')} |"
        )
    text = README.read_text() if README.exists() else "# Benchmarks\n\n"
    start, end = "<!-- results:start -->", "<!-- results:end -->"
    table = "\n".join([start, *rows, end])
    if start in text:
        text = re.sub(re.escape(start) + ".*?" + re.escape(end), table, text, flags=re.S)
    else:
        text += "\n" + table + "\n"
    README.write_text(text)


GROUPS = {
    "sse": bench_sse,
    "api": bench_api,
    "mixed": bench_mixed,
    "fanout": bench_fanout,
    "memory": bench_memory,
    "image": bench_image,
    "deploy": lambda: deploy.bench_deploy(record),
    "rolling": lambda: rolling.bench_rolling(record),
    "single": lambda: single.bench_single(record),
    "arm64": bench_arm64,
    "proxy_tls": bench_proxy_tls,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "groups",
        nargs="*",
        help=f"any of: {', '.join(GROUPS)} (default: all)",
    )
    args = parser.parse_args()
    unknown = [g for g in args.groups if g not in GROUPS]
    if unknown:
        parser.error(f"unknown group(s) {', '.join(unknown)}; choose from {', '.join(GROUPS)}")
    raise_fd_limit()
    # A stopped run still stops its servers and compose projects (context managers).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    for name in args.groups or list(GROUPS):
        started = time.monotonic()
        GROUPS[name]()
        print(f"bench: group {name} took {time.monotonic() - started:.0f} s", flush=True)
    write_readme()


if __name__ == "__main__":
    main()
