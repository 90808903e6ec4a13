"""Real Gunicorn processes and an SSE client for the tests."""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

SECRET = "tests-only-" + "k3y-" * 10
WAIT = 30.0  # generous upper bound for anything to happen; never a speed assertion
CSRF = {"X-Requested-With": "tests"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def base_env(database_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"NOTICEBOARD_ENV", "SECRET_KEY", "DATABASE_URL", "PSYCOPG_WAIT_FUNC"}
    }
    env.update(
        NOTICEBOARD_ENV="production",
        SECRET_KEY=SECRET,
        DATABASE_URL=database_url,
        DATA_DIR=str(data_dir),
        LOG_LEVEL="INFO",
        PYTHONUNBUFFERED="1",
        # Most tests are about notes, not about who may post them, so they use the open
        # board, named here once; the access tests choose accounts or proxy through
        # ``extra``, and the default itself is tested in test_settings.py.
        AUTH_MODE="open",
    )
    env.update(extra)
    return env


def run_cli(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "noticeboard", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class Server:
    """``noticeboard serve`` in a subprocess, on a free loopback port."""

    def __init__(
        self,
        database_url: str,
        data_dir: Path,
        worker_class: str = "eventlet",
        workers: int = 2,
        **extra: str,
    ):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = data_dir / f"gunicorn-{self.port}.log"
        settings = {
            "GUNICORN_BIND": f"127.0.0.1:{self.port}",
            "GUNICORN_WORKERS": str(workers),
            "GUNICORN_WORKER_CLASS": worker_class,
            "GUNICORN_GRACEFUL_TIMEOUT": "15",
            "SSE_HEARTBEAT_SECONDS": "1",
            "SSE_POLL_SECONDS": "0.2",
            "MIGRATE_ON_START": "false",
            **extra,
        }
        self.env = base_env(database_url, data_dir, **settings)
        self.proc: subprocess.Popen | None = None

    def start(self) -> Server:
        return self.launch().wait_ready()

    def launch(self) -> Server:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "noticeboard", "serve"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        return self

    def wait_ready(self) -> Server:
        assert self.proc is not None
        deadline = time.monotonic() + 90
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited early:\n{self.log()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not answer /healthz:\n{self.log()}")
            time.sleep(0.2)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def terminate(self) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.terminate()


@dataclass
class SseEvent:
    id: int | None
    event: str
    data: str


@dataclass
class SseClient:
    """Reads an event stream in a thread; events land on ``events`` as they arrive."""

    url: str
    last_event_id: int | None = None
    events: queue.Queue = field(default_factory=queue.Queue)
    comments: int = 0
    connected: threading.Event = field(default_factory=threading.Event)
    ended: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None
    stop: bool = False

    def start(self) -> SseClient:
        return self.launch().wait_connected()

    def launch(self) -> SseClient:
        threading.Thread(target=self._run, daemon=True).start()
        return self

    def wait_connected(self) -> SseClient:
        if not self.connected.wait(WAIT):
            raise AssertionError(f"no event stream from {self.url}: {self.error!r}")
        return self

    def _run(self) -> None:
        headers = {"Accept": "text/event-stream"}
        if self.last_event_id is not None:
            headers["Last-Event-ID"] = str(self.last_event_id)
        try:
            timeout = httpx.Timeout(WAIT, read=WAIT)
            with httpx.stream("GET", self.url, headers=headers, timeout=timeout) as response:
                response.raise_for_status()
                current: dict[str, str] = {}
                for line in response.iter_lines():
                    if self.stop:
                        return
                    if line.startswith(":"):
                        self.comments += 1
                    elif line.startswith("retry:"):
                        self.connected.set()
                    elif line == "":
                        if "data" in current:
                            ident = current.get("id")
                            self.events.put(
                                SseEvent(
                                    int(ident) if ident else None,
                                    current.get("event", "message"),
                                    current["data"],
                                )
                            )
                        current = {}
                    else:
                        name, _, value = line.partition(":")
                        current[name] = value.removeprefix(" ")
        except BaseException as exc:
            self.error = exc
        finally:
            self.connected.set()
            self.ended.set()

    def take(self, count: int, timeout: float = WAIT) -> list[SseEvent]:
        got = []
        deadline = time.monotonic() + timeout
        while len(got) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"got {len(got)} of {count} events from {self.url} (error {self.error!r})"
                )
            try:
                got.append(self.events.get(timeout=min(remaining, 1)))
            except queue.Empty:
                continue
        return got

    def quiet(self, seconds: float = 1.0) -> list[SseEvent]:
        """Whatever else arrives within ``seconds``, to prove there is nothing extra."""
        extra = []
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                extra.append(self.events.get(timeout=remaining))
            except queue.Empty:
                break
        return extra


def post_note(base: str, body: str, **kwargs) -> dict:
    response = httpx.post(
        base + "/api/notes", json={"body": body, **kwargs}, headers=CSRF, timeout=WAIT
    )
    assert response.status_code == 201, response.text
    return response.json()


class Contract:
    """Answers checked against the app's own OpenAPI document, as a client reads it.

    A status the document does not list for the operation, or a JSON body its schema
    refuses, fails the test; so the document cannot promise what the code does not do.
    """

    def __init__(self, document: dict):
        from jsonschema import Draft202012Validator

        self.document = document
        self._validator = Draft202012Validator
        self._cache: dict[str, object] = {}

    def operation(self, method: str, path: str) -> dict | None:
        return self.document["paths"].get(path, {}).get(method.lower())

    def validate(self, schema: dict, value) -> None:
        key = repr(schema)
        validator = self._cache.get(key)
        if validator is None:
            validator = self._validator({**schema, "components": self.document["components"]})
            self._cache[key] = validator
        validator.validate(value)

    def check(self, method: str, path: str, response) -> None:
        """``response`` is a Werkzeug test response to ``method`` on the template ``path``."""
        operation = self.operation(method, path)
        assert operation is not None, f"{method} {path} is not in the document"
        answers = operation["responses"]
        assert str(response.status_code) in answers, (
            f"{method} {path} answered {response.status_code}, which the document does not "
            f"list ({', '.join(answers)}): {response.get_data(as_text=True)[:300]!r}"
        )
        content = answers[str(response.status_code)].get("content")
        if not content:
            return
        assert response.mimetype in content, (
            f"{method} {path} answered {response.mimetype} for {response.status_code}"
        )
        if response.mimetype == "application/json":
            self.validate(content[response.mimetype]["schema"], response.get_json())
