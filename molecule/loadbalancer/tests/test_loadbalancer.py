"""What the loadbalancer role promises, seen from an app host acting as a client.

The lb host runs HAProxy in Docker; app1 and app2 run files/backend.py on port 8000.
Requests go from app2 (a host on the same network, like any client) to the lb host's
published ports; the scenario shortens health-check and server timeouts (molecule.yml).
HTTPS is in the acme mode: its certificate comes from the test-bed's Pebble, whose DNS
(pebble-challtestsrv) points the site's name at the lb host (prepare.yml).
"""

# The clients write their results to files in the test hosts' /tmp.
# ruff: noqa: S108

from __future__ import annotations

import itertools
import json
import os
import shlex
import time
from pathlib import Path

import pytest
import yaml
from verifylib import PlaybookRun, converge, host_named, http, run_playbook, wait_until

LB, APP1, APP2 = (f"nb-mol-loadbalancer-{n}" for n in ("lb", "app1", "app2"))
LB_DIR = "/opt/noticeboard-lb"
SOCKETS = f"{LB_DIR}/run"
NAME = "lb.noticeboard.test"
RENEWAL = "noticeboard-lb-acme-renew"
# The CA of Pebble's API certificate, made by scripts/testbed.py; Pebble's issuing roots
# are fetched from its management API (a new one each time Pebble starts).
PEBBLE_API_CA = (
    Path(os.environ.get("NB_TESTBED_CACHE", "/var/cache/noticeboard-testbed")) / "pebble" / "ca.pem"
)
PEBBLE_DNS = "http://pebble:8055"


@pytest.fixture(scope="module")
def lb():
    return host_named(LB)


@pytest.fixture(scope="module")
def app1():
    return host_named(APP1)


@pytest.fixture(scope="module")
def client():
    return host_named(APP2)


@pytest.fixture(scope="module")
def lb_ip(lb):
    return lb.interface("eth0").addresses[0]


@pytest.fixture(autouse=True)
def every_server_in_rotation(lb):
    """Each test starts, and leaves the next one, with both servers UP."""
    yield
    for server in (APP1, APP2):
        admin(lb, f"set server app/{server} state ready")
    for server in (APP1, APP2):
        wait_status(lb, server, "UP")


def get(client, url: str, *headers: str) -> dict:
    args = " ".join(f"--header {h!r}" for h in headers)
    return json.loads(client.check_output(f"nb-test-client get {url!r} {args}"))


def backends_serving(client, lb_ip: str, count: int = 12) -> list[str]:
    out = client.check_output(
        f"for i in $(seq {count}); do nb-test-client get 'https://{lb_ip}/'; done"
    )
    return [json.loads(line)["body"]["backend"] for line in out.splitlines()]


def admin(lb, command: str) -> str:
    return lb.check_output(f"echo {command!r} | socat -t 5 stdio unix-connect:{SOCKETS}/admin.sock")


def server_status(lb, server: str) -> str:
    for line in admin(lb, "show stat app 4 -1").splitlines():
        fields = line.split(",")
        if len(fields) > 17 and fields[1] == server:
            return fields[17]
    raise AssertionError(f"no server {server} in HAProxy")


def wait_status(lb, server: str, wanted: str, timeout: float = 20) -> None:
    wait_until(lambda: server_status(lb, server) == wanted, f"{server} {wanted}", timeout, 0.5)


def start_stream(client, url: str, seconds: float, out: str) -> None:
    client.check_output(
        f"rm -f {out}; nohup nb-test-client stream {url!r} --seconds {seconds} > {out} 2>&1 &"
    )


def read_stream(client, out: str, timeout: float) -> dict:
    wait_until(
        lambda: client.file(out).exists and client.file(out).content_string.strip(),
        "the stream client wrote its result",
        timeout,
        0.5,
    )
    return json.loads(client.file(out).content_string)


def runtime(state: str, server: str) -> PlaybookRun:
    """Run the role's server_state entry point as upgrade.yml does, through ansible-playbook."""
    return run_playbook(
        "runtime.yml",
        *("-e", f"lb_state={state}", "-e", f"lb_server={server}"),
        timeout=180,
        ok=None,
    )


def test_https_serves_every_app_host(client, lb_ip):
    assert set(backends_serving(client, lb_ip)) == {APP1, APP2}


# Run on a test host: the certificate the lb serves for NAME, checked once against
# Pebble's issuing root alone and once against the host's own trust store.
TLS_PROBE = """
import json, socket, ssl, sys, urllib.request
ip, name, api_ca = sys.argv[1:4]
api = ssl.create_default_context(cadata=api_ca)
root = urllib.request.urlopen("https://pebble:15000/roots/0", context=api).read().decode()

def handshake(context):
    with socket.create_connection((ip, 443), 10) as raw:
        with context.wrap_socket(raw, server_hostname=name) as tls:
            return tls.getpeercert()

pebble_only = ssl.create_default_context(cadata=root)
cert = handshake(pebble_only)
try:
    handshake(ssl.create_default_context())
    system = "trusted"
except ssl.SSLCertVerificationError as error:
    system = error.verify_message
print(json.dumps({"serial": cert["serialNumber"], "issuer": cert["issuer"], "system": system}))
"""


def served_certificate(host, lb_ip: str) -> dict:
    """Serial and issuer of what the lb serves, verified against Pebble's root only."""
    args = shlex.join(["python3", "-c", TLS_PROBE, lb_ip, NAME, PEBBLE_API_CA.read_text()])
    out = host.run(args)
    assert out.rc == 0, out.stderr
    return json.loads(out.stdout)


def worker_pid(lb) -> str:
    return next(
        line.split(":")[1].strip()
        for line in admin(lb, "show info").splitlines()
        if line.startswith("Pid:")
    )


def pebble_dns(host, name: str, address: str) -> None:
    """Point NAME at ADDRESS alone in Pebble's DNS (pebble-challtestsrv's management API,
    whose add-a adds to the addresses a name has)."""
    post = (
        "import sys, urllib.request as u; "
        f"u.urlopen(u.Request('{PEBBLE_DNS}/' + sys.argv[1], sys.argv[2].encode(), method='POST'))"
    )
    for path, body in (
        ("clear-a", {"host": name}),
        ("add-a", {"host": name, "addresses": [address]}),
    ):
        host.check_output(shlex.join(["python3", "-c", post, path, json.dumps(body)]))


def renew(lb):
    """Start the renewal service as its timer does (systemctl waits for the oneshot);
    its result and what this run of it logged."""
    since = lb.check_output("date +%s")
    started = lb.run(f"systemctl start {RENEWAL}.service")
    return started, lb.check_output(f"journalctl -u {RENEWAL} --since @{since} --no-pager")


def test_the_acme_certificate_is_pebbles_and_only_the_tests_trust_it(lb, client, lb_ip):
    for host in (lb, client):
        served = served_certificate(host, lb_ip)
        assert "Pebble Intermediate" in json.dumps(served["issuer"])
        # Neither the lb host nor a client trusts Pebble: lego got its API's CA alone.
        assert served["system"] != "trusted"
    assert "Pebble" not in lb.check_output(
        "cat /etc/ssl/certs/ca-certificates.crt | openssl "
        "crl2pkcs7 -nocrl -certfile /dev/stdin | openssl "
        "pkcs7 -print_certs -noout"
    )


def test_renewal_is_timed_by_systemd(lb):
    timer = lb.service(f"{RENEWAL}.timer")
    assert timer.is_running and timer.is_enabled
    assert f"{RENEWAL}.timer" in lb.check_output(f"systemctl list-timers {RENEWAL}.timer")


def test_acme_challenges_on_port_80_are_not_redirected(client, lb_ip):
    # lego's own server answers them only while it runs; otherwise HAProxy says 503.
    answer = get(client, f"http://{lb_ip}/.well-known/acme-challenge/probe", f"Host:{NAME}")
    assert answer["status"] == 503 and answer["location"] is None


def test_hsts_is_not_sent_by_default(client, lb_ip):
    assert get(client, f"https://{lb_ip}/")["hsts"] is None


def test_a_renewal_serves_a_new_certificate_without_a_reload_or_a_cut(lb, client, lb_ip):
    before, pid, started = served_certificate(client, lb_ip), worker_pid(lb), started_at(lb)
    start_stream(client, f"https://{lb_ip}/events?count=0", 14, "/tmp/renew-stream.json")
    client.check_output(
        "rm -f /tmp/renew-requests.txt; nohup sh -c 'for i in $(seq 40); do "
        f"nb-test-client get https://{lb_ip}/ >> /tmp/renew-requests.txt "
        "|| echo failed >> /tmp/renew-requests.txt; sleep 0.2; done' >/dev/null 2>&1 &"
    )
    time.sleep(2)
    renewed, log = renew(lb)
    assert renewed.rc == 0, log
    assert "loaded without a reload" in log
    assert served_certificate(client, lb_ip)["serial"] != before["serial"]
    # The same worker serves: the certificate was swapped in the running process.
    assert worker_pid(lb) == pid and started_at(lb) == started
    stream = read_stream(client, "/tmp/renew-stream.json", 30)
    assert stream["closed_after"] is None
    assert [t for t, line in stream["lines"] if line == ": heartbeat"][-1] > 11
    wait_until(
        lambda: len(client.file("/tmp/renew-requests.txt").content_string.splitlines()) >= 40,
        "the request loop ended",
        60,
    )
    answers = client.file("/tmp/renew-requests.txt").content_string.splitlines()
    assert [json.loads(a)["status"] for a in answers if a != "failed"] == [200] * 40, answers


def test_a_failed_renewal_fails_the_unit_and_keeps_the_certificate(lb, client, lb_ip):
    before = served_certificate(client, lb_ip)
    # Pebble now looks for the name at its own loopback, where nothing answers on port 80.
    pebble_dns(lb, NAME, "127.0.0.1")
    try:
        failed, log = renew(lb)
    finally:
        pebble_dns(lb, NAME, lb_ip)
        lb.run(f"systemctl reset-failed {RENEWAL}.service")
    assert failed.rc != 0, log
    assert f"could not renew the certificate for {NAME}" in log
    assert "port 80" in log and "keeps serving its current certificate" in log
    assert served_certificate(client, lb_ip)["serial"] == before["serial"]


def test_the_private_key_is_readable_by_haproxy_only(lb):
    key = lb.file(f"{LB_DIR}/config/certs/site.pem.key")
    assert key.user == "root" and key.gid == 99 and key.mode == 0o640


def test_plain_http_redirects_permanently_to_https(client, lb_ip):
    answer = get(client, f"http://{lb_ip}/api/notes?page=2", f"Host:{NAME}")
    assert answer["status"] == 301
    assert answer["location"] == f"https://{NAME}/api/notes?page=2"


# Issue 20's front door: what a client may not tell the app through HAProxy.
FORWARDING = ("X-Forwarded-For", "Forwarded", "X-Real-IP", "X-Forwarded-Host", "X-Forwarded-Prefix")


def forged_headers(names) -> list[str]:
    """Each name twice, in mixed case and with '_' for '-' (a WSGI server reads both as
    the same variable), all claiming to be someone else."""
    out = []
    for name in names:
        mixed = "".join(c.upper() if i % 2 else c.lower() for i, c in enumerate(name))
        out += [f"{mixed}:admin", f"{name.replace('-', '_')}:admin"]
    return out


def received(body: dict) -> dict[str, list[str]]:
    seen: dict[str, list[str]] = {}
    for name, value in body["headers"]:
        seen.setdefault(name.lower().replace("_", "-"), []).append(value)
    return seen


@pytest.fixture(scope="module")
def identity_headers():
    """The role's list, which this scenario keeps (a role default: not in the inventory)."""
    root = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"])
    defaults = root / "roles" / "loadbalancer" / "defaults" / "main.yml"
    return yaml.safe_load(defaults.read_text())["noticeboard_lb_identity_headers"]


def test_the_app_learns_the_client_address_and_scheme_and_no_forged_identity(
    client, lb_ip, identity_headers
):
    client_ip = client.interface("eth0").addresses[0]
    spoofed = ("X-Forwarded-Proto:http", *forged_headers([*identity_headers, *FORWARDING]))
    body = get(client, f"https://{lb_ip}/", *spoofed)["body"]
    assert body["x_forwarded_proto"] == ["https"]
    # Exactly the address HAProxy saw: the app trusts one proxy (TRUSTED_PROXY_COUNT=1).
    assert body["x_forwarded_for"] == [client_ip], body["headers"]
    seen = received(body)
    leaked = {n.lower() for n in [*identity_headers, *FORWARDING[1:]]} & seen.keys()
    assert not leaked, body["headers"]


def test_a_trusted_proxy_keeps_its_identity_headers_and_its_client(app1, lb_ip):
    # molecule.yml lists app1 in noticeboard_lb_trusted_proxies: a single sign-on proxy.
    sent = (
        "Remote-User:alice",
        "Remote-Groups:admins",
        "X-Forwarded-For:198.51.100.7, 203.0.113.5",
    )
    seen = received(get(app1, f"https://{lb_ip}/", *sent)["body"])
    assert seen["remote-user"] == ["alice"] and seen["remote-groups"] == ["admins"], seen
    # The client it saw, its last address, is the one the app gets.
    assert seen["x-forwarded-for"] == ["203.0.113.5"], seen


def test_a_server_that_is_not_ready_gets_no_traffic(lb, app1, client, lb_ip):
    app1.check_output("touch /tmp/backend-not-ready")
    try:
        wait_status(lb, APP1, "DOWN")
        assert set(backends_serving(client, lb_ip)) == {APP2}
    finally:
        app1.check_output("rm -f /tmp/backend-not-ready")
    wait_status(lb, APP1, "UP")
    assert set(backends_serving(client, lb_ip)) == {APP1, APP2}


def test_events_arrive_one_by_one_and_idle_streams_live_on_heartbeats(client, lb_ip):
    # Two streams at once: one with the backend's heartbeats (every 2 s), one without.
    # timeout server is 10 s here; the first must outlive it three times over, the second
    # shows that the timeout is real.
    out = client.check_output(
        f"nb-test-client stream 'https://{lb_ip}/events?count=3&every=1' --seconds 32 "
        "> /tmp/hb.json & "
        f"nb-test-client stream 'https://{lb_ip}/events?count=1&every=1&heartbeat=0' --seconds 32; "
        "wait; cat /tmp/hb.json"
    )
    silent, beating = (json.loads(line) for line in out.splitlines())
    assert beating["status"] == 200 and beating["content_type"] == "text/event-stream"
    events = [t for t, line in beating["lines"] if line.startswith("data:")]
    # Each event is delivered when it is sent, a second apart, not when the stream ends.
    assert len(events) == 4
    assert all(0.5 < b - a < 1.8 for a, b in itertools.pairwise(events))
    assert beating["closed_after"] is None
    assert beating["lines"][-1][0] > 29 and beating["lines"][-1][1] == ": heartbeat"
    assert silent["closed_after"] is not None and 9 < silent["closed_after"] < 15


def test_a_reload_keeps_open_streams(lb, client, lb_ip):
    start_stream(client, f"https://{lb_ip}/events?count=0", 8, "/tmp/reload.json")
    time.sleep(2)
    reloaded = lb.check_output(
        f"echo reload | socat -t 30 stdio unix-connect:{SOCKETS}/master.sock"
    )
    assert "Success=1" in reloaded
    stream = read_stream(client, "/tmp/reload.json", 20)
    assert stream["closed_after"] is None
    assert [t for t, line in stream["lines"] if line == ": heartbeat"][-1] > 6


# drain waits for the requests in flight, maintenance does not; both end in MAINT.
@pytest.mark.parametrize(
    ("state", "server", "other"), [("drain", APP1, APP2), ("maintenance", APP2, APP1)]
)
def test_out_of_rotation_stops_new_requests_and_enabled_brings_the_server_back(
    lb, client, lb_ip, state, server, other
):
    out = runtime(state, server)
    assert out.returncode == 0, out.stdout[-3000:]
    assert server_status(lb, server) == "MAINT"
    assert set(backends_serving(client, lb_ip)) == {other}

    enabled = runtime("enabled", server)
    assert enabled.returncode == 0, enabled.stdout[-3000:]
    assert server_status(lb, server) == "UP"
    assert set(backends_serving(client, lb_ip)) == {APP1, APP2}


def test_drain_closes_streams_left_after_its_timeout(lb, client, lb_ip):
    # An event stream never ends by itself: drain waits noticeboard_lb_drain_timeout (5 s
    # here), then closes it so that the client reconnects to another server.
    start_stream(client, f"https://{lb_ip}/events?count=0", 150, "/tmp/drain.json")
    time.sleep(2)
    rows = [line.split(",") for line in admin(lb, "show stat app 4 -1").splitlines()[1:] if line]
    busy = [row[1] for row in rows if row[4] not in ("", "0")]
    assert len(busy) == 1, rows
    started = time.monotonic()
    drained = runtime("drain", busy[0])
    assert drained.returncode == 0, drained.stdout[-3000:]
    assert time.monotonic() - started > 5
    assert server_status(lb, busy[0]) == "MAINT"
    # Closed by the drain (the client would read for 150 s), and before it returned.
    stream = read_stream(client, "/tmp/drain.json", 10)
    assert stream["closed_after"] is not None
    enabled = runtime("enabled", busy[0])
    assert enabled.returncode == 0, enabled.stdout[-3000:]


def test_stats_and_runtime_api_answer_on_the_lb_host_only(lb, client, lb_ip):
    assert http(lb, "GET", "http://127.0.0.1:8404/").status == 200
    assert "Uptime" in admin(lb, "show info")
    sockets = lb.file(SOCKETS)
    assert sockets.mode == 0o750 and sockets.uid == 99
    for port in (8404, 8080, 8443):
        probe = client.run(
            f"python3 -c \"import socket; socket.create_connection(('{lb_ip}', {port}), 3)\""
        )
        assert probe.rc != 0, f"port {port} of the lb host answers other hosts"


def test_configuration_is_managed_and_valid(lb):
    config = lb.file(f"{LB_DIR}/config/haproxy.cfg")
    assert config.content_string.startswith("#") and "Ansible managed" in config.content_string
    assert config.user == "root" and config.gid == 99 and config.mode == 0o640
    for server in (APP1, APP2):
        assert f"server {server} " in config.content_string


def started_at(lb) -> str:
    return lb.check_output(
        "docker inspect --format '{{.State.StartedAt}}' noticeboard-lb-haproxy-1"
    )


# The last tests change the configuration; the scenario is destroyed right after (and
# test_uninstall.py converges again with the scenario's own settings).
def test_a_configuration_change_is_applied_by_a_reload_not_a_restart(lb, client, lb_ip):
    before = started_at(lb)
    # With the self-signed mode, so that the next test sees what that mode serves.
    run = converge(
        "-e",
        "noticeboard_lb_health_check_rise=3",
        "-e",
        "noticeboard_lb_tls_mode=self-signed",
        timeout=600,
        ok=None,
    )
    assert run.returncode == 0, run.stdout[-3000:]
    assert "RUNNING HANDLER [noticeboard.deploy.loadbalancer : Reload HAProxy" in run.stdout
    assert "rise 3" in lb.file(f"{LB_DIR}/config/haproxy.cfg").content_string
    assert started_at(lb) == before
    assert set(backends_serving(client, lb_ip)) == {APP1, APP2}


def test_the_self_signed_certificate_names_the_site(lb):
    # Served since the previous test switched the mode; ACME renewals stopped with it.
    assert not lb.file(f"/etc/systemd/system/{RENEWAL}.timer").exists
    cert = lb.check_output(
        f"openssl x509 -in {LB_DIR}/config/certs/site.pem -noout "
        "-subject -issuer -ext subjectAltName"
    )
    assert f"subject=CN={NAME}" in cert and f"issuer=CN={NAME}" in cert
    assert f"DNS:{NAME}" in cert and f"DNS:{LB}" in cert


def test_a_configuration_haproxy_rejects_is_never_written(lb):
    good = lb.file(f"{LB_DIR}/config/haproxy.cfg").content_string
    # Preflight lets a rise of 0 through; HAProxy refuses it.
    run = converge("-e", "noticeboard_lb_health_check_rise=0", timeout=600, ok=None)
    assert run.returncode != 0
    output = run.stdout + run.stderr
    assert "failed to validate" in output and "'rise' has to be > 0" in output
    assert lb.file(f"{LB_DIR}/config/haproxy.cfg").content_string == good
