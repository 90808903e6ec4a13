"""The development file's opt-in profiles, run for real: debugpy and the front-end watcher.

One stack with both profiles, on private copies of ``src/`` and ``frontend/``: a
Debug Adapter Protocol client attaches to debugpy and stops in a view of the
bind-mounted source; an edit to the page's script is rebuilt by the watcher and served
by the app, and neither container restarts. The ``node`` image comes from the stand-in
in docker/standins/node (Debian's nodejs), the app from the Dockerfile's dev target.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest
from imagetools import CA_BUNDLE, DEV, ROOT, Compose, wait_http


@pytest.fixture(scope="module")
def trees(tmp_path_factory) -> tuple[Path, Path]:
    """Private copies of src/ and frontend/ that the tests may edit."""
    tmp = tmp_path_factory.mktemp("dev-tree")
    src = tmp / "src"
    frontend = tmp / "frontend"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "node_modules", "dist")
    shutil.copytree(ROOT / "src", src, ignore=ignore)
    shutil.copytree(ROOT / "frontend", frontend, ignore=ignore)
    # The app's uid must be able to read the tree and the reloader to stat it.
    for path in [tmp, *tmp.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return src, frontend


@pytest.fixture(scope="module")
def stack(tmp_path_factory, trees, dev_image, node_image):
    src, frontend = trees
    tmp = tmp_path_factory.mktemp("dev-stack")
    files = [DEV]
    if CA_BUNDLE.exists():
        # npm ci talks TLS to the registry; behind this machine's intercepting proxy it
        # needs the proxy's CA, as a user's machine behind one would.
        override = tmp / "ca.override.yml"
        override.write_text(
            "services:\n"
            "  frontend:\n"
            "    environment:\n"
            "      NODE_EXTRA_CA_CERTS: /etc/ssl/certs/extra-ca.crt\n"
            "    volumes:\n"
            f"      - {CA_BUNDLE}:/etc/ssl/certs/extra-ca.crt:ro\n"
        )
        files.append(override)
    env = {
        "NOTICEBOARD_DEV_IMAGE": dev_image,
        "NODE_IMAGE": node_image,
        "NOTICEBOARD_SRC": str(src),
        "NOTICEBOARD_FRONTEND": str(frontend),
        "DEV_PUBLISH": "127.0.0.1:",
        "DEBUG_PUBLISH": "127.0.0.1:",
        "DEBUGPY_PUBLISH": "127.0.0.1:",
    }
    project = Compose(files, env, tmp, ["debug", "frontend"])
    try:
        # Without --wait: each test waits for what it uses over HTTP, which is sooner
        # than the health checks' next round.
        project("up", "-d")
        yield project
    finally:
        project.down()


def test_ports_are_published_on_loopback_only_by_default(compose_project):
    # Without the variables: the defaults the compose file ships with.
    project = compose_project([DEV], {}, profiles=["debug", "frontend"])
    published = {
        (name, port["target"]): port.get("host_ip")
        for name, service in project.config()["services"].items()
        for port in service.get("ports", [])
    }
    assert (("debug", 5678)) in published, "debugpy is not published"
    assert published == dict.fromkeys(published, "127.0.0.1"), published


class DebugAdapter:
    """A minimal Debug Adapter Protocol client: framed JSON requests, responses, events."""

    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=2)
        self.buffer = b""
        self.seq = 0
        self.pending: list[dict] = []

    def request(self, command: str, **arguments) -> int:
        self.seq += 1
        body = json.dumps(
            {"seq": self.seq, "type": "request", "command": command, "arguments": arguments}
        ).encode()
        self.sock.sendall(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        return self.seq

    def _read(self) -> dict:
        # The buffer changes only once a whole message is in it, so a receive that times
        # out loses nothing.
        while True:
            header, found, rest = self.buffer.partition(b"\r\n\r\n")
            if found:
                length = int(re.search(rb"Content-Length: *(\d+)", header, re.I).group(1))
                if len(rest) >= length:
                    self.buffer = rest[length:]
                    return json.loads(rest[:length])
            self._receive()

    def _receive(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise AssertionError("debugpy closed the connection")
        self.buffer += chunk

    def wait(self, match, timeout: float = 60, still_hoping=lambda: True) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            for message in self.pending:
                if match(message):
                    self.pending.remove(message)
                    return message
            if time.monotonic() > deadline or not still_hoping():
                raise AssertionError(f"no such message (waited for {timeout} s): {self.pending}")
            try:
                self.pending.append(self._read())
            except TimeoutError:
                continue

    def response(self, seq: int, timeout: float = 60) -> dict:
        message = self.wait(lambda m: m["type"] == "response" and m["request_seq"] == seq, timeout)
        assert message["success"], message
        return message.get("body") or {}

    def event(self, name: str, timeout: float = 60, still_hoping=lambda: True) -> dict:
        message = self.wait(
            lambda m: m["type"] == "event" and m["event"] == name, timeout, still_hoping
        )
        return message.get("body") or {}

    def close(self) -> None:
        self.sock.close()


def test_debugger_stops_in_a_view_of_the_mounted_source(stack, trees):
    src, _ = trees
    view = src / "noticeboard" / "web.py"
    line = 1 + next(
        i
        for i, text in enumerate(view.read_text().splitlines())
        if 'return jsonify({"status": "alive"})' in text
    )
    base = f"http://127.0.0.1:{stack.port('debug')}"
    wait_http(f"{base}/healthz")

    dap = DebugAdapter(stack.port("debug", 5678))
    try:
        dap.response(dap.request("initialize", adapterID="python", pathFormat="path"))
        attach = dap.request(
            "attach",
            justMyCode=False,
            pathMappings=[{"localRoot": str(src), "remoteRoot": "/app/src"}],
        )
        dap.event("initialized")
        breakpoints = dap.response(
            dap.request("setBreakpoints", source={"path": str(view)}, breakpoints=[{"line": line}])
        )["breakpoints"]
        assert breakpoints[0]["verified"], breakpoints
        dap.response(dap.request("configurationDone"))
        dap.response(attach)

        answer: dict = {}
        request = threading.Thread(
            target=lambda: answer.update(response=httpx.get(f"{base}/healthz", timeout=120))
        )
        request.start()
        # A request answered without a stop means the breakpoint's file is not the code
        # that runs: the path mapping does not hold.
        stopped = dap.event("stopped", still_hoping=request.is_alive)
        assert stopped["reason"] == "breakpoint", stopped
        frames = dap.response(dap.request("stackTrace", threadId=stopped["threadId"], levels=1))
        top = frames["stackFrames"][0]
        # Mapped back: the container runs /app/src/..., the client sees its own file.
        assert (top["source"]["path"], top["line"]) == (str(view), line), top
        assert request.is_alive(), "the request finished although the view was stopped"

        dap.response(dap.request("continue", threadId=stopped["threadId"]))
        request.join(timeout=60)
        assert answer["response"].json() == {"status": "alive"}
        dap.response(dap.request("disconnect", terminateDebuggee=False))
    finally:
        dap.close()


def test_frontend_edit_is_rebuilt_and_served_without_a_restart(stack, trees):
    _, frontend = trees
    asset = f"http://127.0.0.1:{stack.port('app')}/static/dist/app.js"
    # The watcher's first build, served by the app from the shared source tree.
    assert wait_http(asset).status_code == 200
    started = {name: stack.started_at(name) for name in ("app", "frontend")}

    marker = f"rebuilt-{uuid.uuid4().hex[:8]}"
    script = frontend / "src" / "app.js"
    edit = f'\ndocument.documentElement.dataset.build = "{marker}";\n'
    script.write_text(script.read_text() + edit)

    deadline = time.monotonic() + 120
    served = ""
    while time.monotonic() < deadline and marker not in served:
        time.sleep(1)
        served = httpx.get(asset, timeout=10).text
    assert marker in served, f"the edit was not served within 120 s\n{stack.logs()}"
    assert {name: stack.started_at(name) for name in started} == started, "a container restarted"
