"""What every scenario's verifier needs, written once.

Molecule's testinfra verifier finds this module on its path: ../config.yml sets
PYTHONPATH to this directory for every scenario. It knows the scenario from the
variables Molecule sets for the verifier (MOLECULE_INVENTORY_FILE and friends), so the
same calls work in every scenario and in a copy of one under another name.

- ``http``, ``wait_ready``, ``probe``: requests made from inside a host, with the
  host's own python3, as a client on that host or its network would make them. ``http``
  is signed in: the first request from a host to a board's API (``/api/...``,
  ``/events``) signs in there as the inventory's admin (``POST /api/session``, the
  credentials from ``admin_credentials``) and every later request from that host to that
  origin carries the session cookie. A 401 signs in again once and repeats the request
  (a converge that changed the secret key, or a board that went back to accounts mode); a
  board that answers the sign-in with 404 has none (AUTH_MODE open or proxy) and gets no
  cookie; any other answer to it fails the test, naming it (a wrong password in the
  inventory, a board that is down or read-only for maintenance). ``signed_out=True``
  sends none, for the checks that a stranger is refused.
  ``session_cookie`` hands the same cookie to what runs in a host on its own (a load
  generator, a batch of downloads), so nothing else signs in by itself; ``Load`` runs
  ``loadgen.py`` (beside this module) in a host with it;
- ``run_playbook`` and ``converge``: ansible-playbook against the scenario's inventory,
  with the run's output and its PLAY RECAP counters (``PlaybookRun``); ``start_playbook``
  starts one in the background (``BackgroundRun``: finish it, or kill it half-way);
- ``variables`` and ``hosts_in``: the inventory as a playbook sees it; ``role_default``:
  what a role falls back on where the inventory sets nothing;
- ``booted`` and ``wait_until``: waiting for a host or a condition, within a bound;
- ``ensure``: the heart of an ensure-state fixture. It checks a state and acts only
  when the state does not hold, then checks again, so that a test can ask for the state
  it needs whether it runs alone or after every other test.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

import testinfra
import yaml
from testinfra.utils.ansible_runner import AnsibleRunner

PROJECT = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"])
SCENARIO = Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"])
# The whole inventory directory: Molecule's hosts file and whatever a scenario links
# beside it (a shipped hosts.yml, group_vars).
INVENTORY = str(Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent)
EPHEMERAL = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])


# --- the app under test ----------------------------------------------------------------


@cache
def app_head_revision() -> str:
    """The newest schema revision of the app in this checkout (src/'s Alembic versions):
    what an image built from it reports on /readyz before a test release's migration."""
    parents = {}
    for path in (PROJECT / "src" / "noticeboard" / "migrations" / "versions").glob("*.py"):
        text = path.read_text()
        found = re.search(r'^revision = "([^"]+)"', text, re.MULTILINE)
        if found:
            down = re.search(r'^down_revision = "([^"]+)"', text, re.MULTILINE)
            parents[found.group(1)] = down.group(1) if down else None
    (head,) = set(parents) - set(parents.values())
    return head


# --- the inventory ---------------------------------------------------------------------


@cache
def _runner() -> AnsibleRunner:
    return AnsibleRunner(INVENTORY)


def hosts_in(group: str) -> list[str]:
    """The inventory's hosts in GROUP, sorted; a group with no host fails the test."""
    hosts = sorted(_runner().get_hosts(group))
    assert hosts, f"the inventory has no host in group {group}"
    return hosts


def host_named(name: str):
    """A testinfra host for one of the scenario's containers, over `docker exec` (much
    faster than a round trip through Ansible for every command)."""
    return testinfra.get_host(f"docker://{name}")


def variables(host: str, *names: str) -> dict:
    """Variables as a playbook on HOST sees them: templated, vault files decrypted; None
    for a name the inventory does not set (a role's default is not the inventory's). Read
    once per run (an Ansible run each); the caller gets a copy of its own."""
    return dict(_variables(host, names))


def role_default(role: str, name: str):
    """A role's default for NAME, from the checkout's roles/ROLE/defaults/main.yml."""
    defaults = yaml.safe_load((PROJECT / "roles" / role / "defaults" / "main.yml").read_text())
    return defaults[name]


@cache
def _variables(host: str, names: tuple[str, ...]) -> dict:
    expr = (
        "{{ dict(__names | zip(__names | map('extract', hostvars[inventory_hostname])"
        " | map('default', none))) }}"
    )
    done = subprocess.run(
        [
            *("ansible", host, "-i", INVENTORY),
            *("-m", "ansible.builtin.debug", "-a", f"msg={expr}"),
            *("-e", json.dumps({"__names": list(names)})),
        ],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1", "ANSIBLE_STDOUT_CALLBACK": "json"},
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    # The JSON document comes first; profile_tasks (enabled for every scenario) follows it.
    report, _ = json.JSONDecoder().raw_decode(done.stdout)
    return report["plays"][0]["tasks"][0]["hosts"][host]["msg"]


# --- playbooks -------------------------------------------------------------------------


@dataclass
class PlaybookRun:
    """One ansible-playbook run: what it printed and its PLAY RECAP."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        # ansible-core prints task errors on stderr.
        return self.stdout + self.stderr

    @property
    def said(self) -> str:
        """The whole output with its line wrapping undone, for matching messages (the
        YAML callback folds long ones)."""
        return " ".join(self.output.split())

    @property
    def recap(self) -> dict[str, dict[str, int]]:
        """PLAY RECAP counters by host: {"host": {"ok": 3, "changed": 0, ...}}."""
        rows: dict[str, dict[str, int]] = {}
        started = False
        for line in self.stdout.splitlines():
            if line.startswith("PLAY RECAP"):
                started = True
            elif started and ":" in line and "ok=" in line:
                name, _, counters = line.partition(":")
                rows[name.strip()] = {
                    key: int(value) for key, value in (c.split("=") for c in counters.split())
                }
        return rows

    def counter(self, host: str, name: str = "changed") -> int:
        assert host in self.recap, (host, self.stdout[-3000:])
        return self.recap[host][name]

    def changed_tasks(self) -> list[str]:
        """The TASK line above each `changed:` result: what a run that should have
        changed nothing changed."""
        lines = self.stdout.splitlines()
        return [
            next((t for t in reversed(lines[:i]) if t.startswith("TASK [")), "?")
            for i, row in enumerate(lines)
            if row.startswith("changed:")
        ]

    def tail(self, out: int = 6000, err: int = 3000) -> str:
        return self.stdout[-out:] + self.stderr[-err:]


def playbook_path(playbook: str | Path) -> str:
    """A name without `.yml` is one of the collection's playbooks (`upgrade`), a fully
    qualified name (`noticeboard.deploy.site`) goes to ansible-playbook as it is, a file
    name is the scenario's own (`converge.yml`), an absolute path stays as it is."""
    name = str(playbook)
    if name.endswith((".yml", ".yaml")):
        return str(SCENARIO / name)  # an absolute path stays absolute
    if "/" not in name and name.count(".") >= 2:
        return name
    return str(PROJECT / "playbooks" / f"{name}.yml")


def run_playbook(
    playbook: str | Path,
    *extra: str,
    extra_vars: dict | None = None,
    check_mode: bool = False,
    verbosity: int = 0,
    limit: str | None = None,
    tags: str | None = None,
    inventories: Sequence[str | Path] = (),
    env: dict[str, str] | None = None,
    timeout: float | None = None,
    ok: bool | None = True,
) -> PlaybookRun:
    """ansible-playbook against the scenario's inventory (plus INVENTORIES), as a user
    would run it. OK=True expects success, False a failure, None either."""
    cmd = ["ansible-playbook", "-i", INVENTORY]
    for inventory in inventories:
        cmd += ["-i", str(inventory)]
    cmd.append(playbook_path(playbook))
    if extra_vars:
        cmd += ["-e", json.dumps(extra_vars)]
    if check_mode:
        cmd.append("--check")
    if verbosity:
        cmd.append("-" + "v" * verbosity)
    if limit:
        cmd += ["--limit", limit]
    if tags:
        cmd += ["--tags", tags]
    cmd += extra
    done = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
    run = PlaybookRun(cmd, done.returncode, done.stdout, done.stderr)
    if ok is not None:
        assert (run.returncode == 0) == ok, run.tail()
    return run


@dataclass
class BackgroundRun:
    """An ansible-playbook started by start_playbook(): running, finished or killed."""

    args: list[str]
    process: subprocess.Popen
    log: Path

    def kill(self) -> None:
        """SIGKILL to the run and every process it started, as when the controller dies."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(30)

    def finish(self, timeout: float = 600, ok: bool | None = True) -> PlaybookRun:
        """Wait for the run to end; its output (stdout and stderr as they came) as a
        PlaybookRun. OK as for run_playbook."""
        self.process.wait(timeout)
        run = PlaybookRun(self.args, self.process.returncode, self.log.read_text(), "")
        if ok is not None:
            assert (run.returncode == 0) == ok, run.tail()
        return run


def start_playbook(
    playbook: str | Path,
    *extra: str,
    extra_vars: dict | None = None,
    check_mode: bool = False,
    tags: str | None = None,
    env: dict[str, str] | None = None,
) -> BackgroundRun:
    """ansible-playbook as run_playbook() runs it, but in the background, in a process
    group of its own (kill() ends all of it), its output going to a file in the
    scenario's ephemeral directory."""
    cmd = ["ansible-playbook", "-i", INVENTORY, playbook_path(playbook)]
    if extra_vars:
        cmd += ["-e", json.dumps(extra_vars)]
    if check_mode:
        cmd.append("--check")
    if tags:
        cmd += ["--tags", tags]
    cmd += extra
    log = EPHEMERAL / f"background-{time.time_ns()}.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
            env={**os.environ, **(env or {})},
        )
    return BackgroundRun(cmd, process, log)


def converge(*extra: str, **options) -> PlaybookRun:
    """The scenario's converge playbook again, as a user re-running the deployment."""
    return run_playbook("converge.yml", *extra, **options)


def group_inventory(host: str, groups: Sequence[str]) -> Path:
    """A small inventory that puts HOST in GROUPS (beside the scenario's own)."""
    path = EPHEMERAL / f"{'-'.join(groups)}-group.yml"
    path.write_text("".join(f"{g}:\n  hosts:\n    {host}: {{}}\n" for g in groups))
    return path


# --- requests from inside a host -------------------------------------------------------

# Runs inside a host with its python3: one request described by a JSON document (method,
# url, headers, a JSON body or a multipart form, timeout); prints one JSON line with the
# status (0: no HTTP answer at all), the answer's text (only its first line with
# `first_line`, for an event stream that would not end), its sha256, its headers (a
# Set-Cookie among them) and, for a form with a file, the sha256 of the bytes sent.
# HTTPS certificates are not verified: the test load balancer's is self-signed.
_CLIENT = r"""
import hashlib, json, os, ssl, sys, urllib.error, urllib.request, uuid
spec = json.loads(sys.argv[1])
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
headers, data, sent = dict(spec["headers"]), None, None
if spec.get("form") is not None:
    form, boundary, crlf = spec["form"], uuid.uuid4().hex, "\r\n"
    head = f"--{boundary}{crlf}Content-Disposition: form-data; name="
    parts = [f'{head}"{k}"{crlf}{crlf}{v}{crlf}'.encode() for k, v in form["fields"].items()]
    if form.get("file"):
        name, field, text, size = (form["file"].get(k) for k in ("name", "field", "text", "size"))
        content = text.encode() if text is not None else os.urandom(int(size))
        sent = hashlib.sha256(content).hexdigest()
        parts.append(f'{head}"{field}"; filename="{name}"{crlf}'.encode()
                     + f"Content-Type: application/octet-stream{crlf}{crlf}".encode()
                     + content + crlf.encode())
    parts.append(f"--{boundary}--{crlf}".encode())
    data = b"".join(parts)
    headers["Content-Type"] = f"multipart/form-data; boundary={boundary}"
elif spec.get("json") is not None:
    data = json.dumps(spec["json"]).encode()
req = urllib.request.Request(spec["url"], data=data, method=spec["method"], headers=headers)
try:
    r = urllib.request.urlopen(req, timeout=spec["timeout"], context=ctx)
except urllib.error.HTTPError as e:
    r = e
except OSError as e:
    print(json.dumps({"status": 0, "text": f"{type(e).__name__}: {e}", "sha256": "", "sent": sent,
                      "headers": []}))
    sys.exit()
body = r.readline() if spec.get("first_line") else r.read()
print(json.dumps({"status": r.status, "text": body.decode(errors="replace"),
                  "sha256": hashlib.sha256(body).hexdigest(), "sent": sent,
                  "headers": list(r.headers.items())}))
"""

JSON_HEADERS = {"Content-Type": "application/json", "X-Requested-With": "molecule"}


@dataclass
class Response:
    """An answer as the in-host client saw it. STATUS 0: no HTTP answer at all
    (nothing listens, the connection broke or timed out); BODY is parsed JSON when the
    text is JSON; HEADERS as the server sent them, in order (Set-Cookie may repeat)."""

    status: int
    text: str
    sha256: str
    sent_sha256: str | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: object = field(init=False)

    def __post_init__(self) -> None:
        try:
            self.body = json.loads(self.text)
        except ValueError:
            self.body = self.text

    def cookie(self, name: str) -> str | None:
        """The value the answer's Set-Cookie gives cookie NAME, or None when it sets none."""
        for header, value in self.headers:
            if header.lower() == "set-cookie":
                pair = value.split(";", 1)[0]
                key, sep, content = pair.partition("=")
                if sep and key.strip() == name:
                    return content.strip()
        return None


# The board's session cookie (noticeboard.auth.COOKIE_NAME).
SESSION_COOKIE = "noticeboard_session"
# Paths whose answer depends on who asks: a request to one signs in first.
_GUARDED = ("/api/", "/events")
# (host, scheme://address:port, Host header) -> the Cookie header to send there, or ""
# for a board that has no sign-in (its AUTH_MODE is not accounts).
_sessions: dict[tuple[str, str, str], str] = {}


@cache
def admin_credentials() -> dict[str, str]:
    """The first admin's username and password as the inventory gives them to the app
    role (noticeboard_admin_username, else the role's default, and
    noticeboard_admin_password), from the first host in `app` (the only host, in
    scenarios without that group): the JSON body of POST /api/session."""
    hosts = sorted(_runner().get_hosts("app")) or hosts_in("all")
    found = variables(hosts[0], "noticeboard_admin_username", "noticeboard_admin_password")
    username = found["noticeboard_admin_username"] or role_default(
        "app", "noticeboard_admin_username"
    )
    password = found["noticeboard_admin_password"]
    assert password, f"the inventory gives {hosts[0]} no noticeboard_admin_password"
    return {"username": username, "password": password}


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _session_key(host, origin: str, host_header: str) -> tuple[str, str, str]:
    return (host.backend.get_hostname(), _origin(origin), host_header)


def _send(host, spec: dict) -> Response:
    out = host.check_output("python3 -c %s %s", _CLIENT, json.dumps(spec))
    answer = json.loads(out)
    return Response(
        answer["status"],
        answer["text"],
        answer["sha256"],
        answer["sent"],
        [tuple(pair) for pair in answer["headers"]],
    )


def _sign_in(host, origin: str, host_header: str) -> str:
    """POST /api/session at ORIGIN from inside HOST as the inventory's admin: the Cookie
    header for later requests, or "" when the board has no sign-in (404: AUTH_MODE open or
    proxy). Any other answer fails the test, naming it: a wrong password in the inventory,
    a board that is down or read-only for maintenance."""
    credentials = admin_credentials()
    headers = dict(JSON_HEADERS)
    if host_header:
        headers["Host"] = host_header
    spec = {
        "method": "POST",
        "url": f"{_origin(origin)}/api/session",
        "headers": headers,
        "json": credentials,
        "timeout": 30,
    }
    answer = _send(host, spec)
    where = f"{_origin(origin)} (Host: {host_header or '-'}) from {host.backend.get_hostname()}"
    if answer.status == 404:
        return ""
    assert answer.status == 200, (
        f"signing in as {credentials['username']} at {where}: {answer.status} {answer.text[:300]}"
    )
    value = answer.cookie(SESSION_COOKIE)
    assert value, f"signing in at {where} answered 200 without a {SESSION_COOKIE} cookie"
    return f"{SESSION_COOKIE}={value}"


def session_cookie(host, origin: str, *, host_header: str = "", again: bool = False) -> str:
    """The Cookie header that http() sends from inside HOST to ORIGIN (a URL; only its
    scheme, address and port count) with HOST_HEADER: the admin's session there, signed in
    once and kept, or "" for a board without sign-in. AGAIN signs in afresh. For what runs
    in a host on its own (a load generator, a batch of downloads), which gets it passed."""
    key = _session_key(host, origin, host_header)
    if again or key not in _sessions:
        _sessions[key] = _sign_in(host, origin, host_header)
    return _sessions[key]


def http(
    host,
    method: str,
    url: str,
    body: dict | None = None,
    *,
    host_header: str = "",
    headers: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
    file: dict | None = None,
    timeout: float = 15,
    signed_out: bool = False,
    first_line: bool = False,
) -> Response:
    """One request from inside HOST (a testinfra host). BODY goes as JSON; FORM (fields)
    and FILE ({"field", "name", and "text" or "size" random bytes}) as multipart.

    Signed in as the inventory's admin (the module's docstring says how), unless
    SIGNED_OUT. FIRST_LINE reads only the first line of the answer (an event stream)."""
    path = urlsplit(url).path
    key = _session_key(host, url, host_header)
    # Signing out ends every session of the account: the admin's, which all tests share.
    assert signed_out or not (method.upper() == "DELETE" and path == "/api/session"), (
        "http() would sign the shared admin out everywhere; sign out with signed_out=True"
    )
    sent_headers = {**JSON_HEADERS, **(headers or {})}
    if host_header:
        sent_headers["Host"] = host_header
    spec = {
        "method": method,
        "url": url,
        "headers": sent_headers,
        "json": body,
        "form": None if form is None and file is None else {"fields": form or {}, "file": file},
        "timeout": timeout,
        "first_line": first_line,
    }
    if signed_out:
        return _send(host, spec)

    def with_cookie(cookie: str) -> dict:
        return {**spec, "headers": {"Cookie": cookie, **sent_headers}} if cookie else spec

    if key in _sessions or path.startswith(_GUARDED):
        answer = _send(host, with_cookie(session_cookie(host, url, host_header=host_header)))
    else:
        answer = _send(host, spec)
    if answer.status != 401:
        return answer
    # Refused: the session ended (a new secret key, a restored database) or the board has
    # had sign-in switched on since. Once more with a fresh one, if it gives one.
    cookie = session_cookie(host, url, host_header=host_header, again=True)
    return _send(host, with_cookie(cookie)) if cookie else answer


def wait_ready(host, url: str, *, within: float = 300, interval: float = 1, **request) -> Response:
    """GET URL (a /readyz) from inside HOST until it answers 200 or WITHIN seconds have
    passed; the last answer (the caller asserts on it). REQUEST goes to http()."""
    deadline = time.monotonic() + within
    while True:
        answer = http(host, "GET", url, **request)
        if answer.status == 200 or time.monotonic() > deadline:
            return answer
        time.sleep(interval)


class Load:
    """loadgen.py (beside this module) running inside a host for the duration of a `with`
    block: reads, writes, uploads and STREAMS event streams through URL (with SITE as the
    Host header), signed in with http()'s session for that origin. Afterwards `result`
    holds the summary it printed last. CONTAINER is the host's container (a docker://
    testinfra host's own name by default); the other arguments go to loadgen.py."""

    def __init__(
        self,
        host,
        *,
        url: str,
        site: str,
        since: int,
        tag: str,
        streams: int,
        pause: float,
        upload_every: int,
        max_seconds: int,
        max_requests: int,
        settle: int,
        container: str = "",
    ) -> None:
        self.host, self.tag = host, tag
        self.container = container or host.backend.name
        # Not /tmp: systemd mounts a tmpfs there, which hides what `docker cp` writes.
        self.stop_file = f"/root/{tag}.stop"
        self.script = f"/root/{tag}.py"
        loadgen = str(Path(__file__).with_name("loadgen.py"))
        subprocess.run(["docker", "cp", loadgen, f"{self.container}:{self.script}"], check=True)
        self.cookie = session_cookie(host, url, host_header=site)
        self.args = [
            *("--url", url, "--host", site, "--since", str(since), "--streams", str(streams)),
            *("--writers", "2", "--readers", "2", "--pause", str(pause)),
            *("--upload-every", str(upload_every), "--settle", str(settle)),
            *("--max-seconds", str(max_seconds), "--max-requests", str(max_requests)),
            *("--stop-file", self.stop_file, "--tag", tag),
        ]
        self.process: subprocess.Popen[str] | None = None
        self.result: dict = {}

    def __enter__(self) -> Load:
        # The cookie goes by environment (`-e NAME` copies it from docker's own), not argv.
        self.process = subprocess.Popen(
            [
                *("docker", "exec", "-e", "LOADGEN_COOKIE", self.container),
                *("python3", self.script, *self.args),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "LOADGEN_COOKIE": self.cookie},
        )
        first = json.loads(self.process.stdout.readline() or "{}")
        if first.get("phase") != "running":
            self.__exit__(None, None, None)
            raise AssertionError(f"the load did not start: {first} {self.result}")
        return self

    def __exit__(self, *exc) -> None:
        self.host.run("touch %s", self.stop_file)
        out, err = self.process.communicate(timeout=300)
        lines = out.strip().splitlines()
        assert lines, f"loadgen printed nothing; stderr: {err[-3000:]}"
        self.result = json.loads(lines[-1])
        self.host.run("rm -f %s %s", self.stop_file, self.script)


# Runs inside a host: opens a TCP connection and prints what the server says first
# (MariaDB greets) or the error: "ok <greeting>" / "error <exception>". A server that
# says nothing first (HTTP) is "ok" once connected.
_PROBE = """
import socket, sys
timeout = float(sys.argv[3])
try:
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=timeout)
except OSError as e:
    print("error", type(e).__name__, e)
    sys.exit()
with s:
    s.settimeout(timeout)
    try:
        print("ok", s.recv(512).decode("latin-1").replace("\\n", " "))
    except OSError:
        print("ok", "(connected; the server sent nothing first)")
"""


def probe(host, target: str, port: int, timeout: float = 5.0) -> str:
    """A TCP connection from inside HOST to TARGET:PORT: "ok ..." or "error ..."."""
    return host.check_output("python3 -c %s %s %s %s", _PROBE, target, str(port), str(timeout))


# --- waiting ---------------------------------------------------------------------------


def wait_until(check: Callable[[], object], what: str, timeout: float = 180, interval: float = 1):
    """Call CHECK until it returns something true; fail naming WHAT after TIMEOUT."""
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        time.sleep(interval)
    return result


def booted(host, timeout: float = 120) -> str:
    """The state systemd reaches once a (re)booting host has finished booting
    ("running", or "degraded" with a failed unit); systemd answers nothing until its
    bus is up, a restarting container not even that, and before PID 1 has made
    /run/systemd/system systemctl says "offline"."""
    deadline = time.monotonic() + timeout
    not_yet = ("", "offline", "unknown", "starting", "initializing")
    while True:
        state = host.run("timeout 120 systemctl is-system-running --wait").stdout.strip()
        if state not in not_yet or time.monotonic() > deadline:
            return state
        time.sleep(1)


# --- ensure-state fixtures -------------------------------------------------------------


def ensure(what: str, holds: Callable[[], bool], act: Callable[[], object]) -> bool:
    """Bring about the state WHAT: nothing when HOLDS() already says it is there (a full
    run reaches it through the tests before), else ACT() and check again. True when it
    had to act."""
    if holds():
        return False
    print(f"ensure: {what} did not hold; setting it up")
    act()
    assert holds(), f"ensure: {what} still does not hold after setting it up"
    return True


# --- a host's state, to compare before and after a run that must change nothing --------

_STATE = r"""
dirs="$1"
echo '## containers'
if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
  ids=$(docker ps -aq)
  [ -z "$ids" ] || docker inspect $ids \
    -f '{{.Name}} {{.Id}} {{.Image}} {{.State.Status}} {{.State.StartedAt}}' | sort
  echo '## images'
  docker images --all --no-trunc --format '{{.Repository}}:{{.Tag}} {{.ID}}' | sort
fi
echo '## files'
for dir in $dirs; do
  [ -e "$dir" ] || { echo "$dir absent"; continue; }
  # A file: path, mode, owner, size, sha256 (the checksum's own path dropped).
  find "$dir" -xdev \( -type f -printf '%p %m %u:%g %s ' -exec sha256sum {} \; \) -o \
    \( ! -type f -printf '%p %y %m %u:%g\n' \) \
    | awk '{ if (NF > 5) print $1, $2, $3, $4, $5; else print }' | sort
done
echo '## packages'
dpkg-query -W -f '${Package} ${Version} ${Status}\n' | sort
"""


def host_state(host, *dirs: str) -> dict[str, list[str]]:
    """What a run that changes nothing must leave as it was: every container (its id,
    image id, status and start time), the engine's images, every file and directory under
    DIRS (mode, owner, size and sha256) and the installed packages, by section. Read in one
    round trip; a host without Docker has no container or image section."""
    out = host.check_output(f"bash -c {shlex.quote(_STATE)} state {shlex.quote(' '.join(dirs))}")
    sections: dict[str, list[str]] = {}
    current = ""
    for line in out.splitlines():
        if line.startswith("## "):
            current = line[3:]
            sections[current] = []
        elif current:
            sections[current].append(line)
    return sections
