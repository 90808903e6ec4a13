"""What the loadbalancer role promises, on the cluster's lb host in front of the real app.

Clients on the network are the db host (any client) and app1 (listed in
noticeboard_lb_trusted_proxies: it stands for a single sign-on proxy in front of HAProxy);
they speak to the lb host's published ports. Which app server answered is read from
HAProxy's own counters (`show stat`). The test-bed shortens the health checks, HAProxy's
timeouts (10 s) and the app's heartbeat (2 s): inventory/group_vars/testbed/cluster.yml.
HTTPS is in the acme mode: its certificate comes from the test-bed's Pebble, whose DNS
(pebble-challtestsrv) points the site's name at the lb host (../shared/pebble-dns.yml).

Every test puts back what it takes away (a paused or stopped app container, a server in
maintenance, the echo server), so each runs alone and leaves the cluster serving.
"""

from __future__ import annotations

import itertools
import json
import os
import shlex
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from conftest import (
    APP_CONTAINER,
    IN_HOST_TLS,
    LB_ADMIN_SOCKET,
    LB_DIR,
    LB_NAME,
    RAW_REQUESTS,
    address,
    both_servers_up,
    group,
    haproxy_started_at,
    lb_admin,
    lb_servers,
    raw_get,
    served_by,
    sessions_by_server,
    via_lb,
    wait_server_status,
)
from verifylib import (
    PlaybookRun,
    host_named,
    http,
    probe,
    role_default,
    run_playbook,
    session_cookie,
    variables,
    wait_until,
)

RENEWAL = "noticeboard-lb-acme-renew"
MASTER_SOCKET = f"{LB_DIR}/run/master.sock"
# The CA of Pebble's API certificate, made by scripts/testbed.py; Pebble's issuing roots
# are fetched from its management API (a new one each time Pebble starts).
PEBBLE_API_CA = (
    Path(os.environ.get("NB_TESTBED_CACHE", "/var/cache/noticeboard-testbed")) / "pebble" / "ca.pem"
)
PEBBLE_DNS = "http://pebble:8055"
ECHO = Path(__file__).resolve().parents[1] / "files" / "echo.py"
ECHO_PORT = 8099
ECHO_SERVER = "nb-echo"


@pytest.fixture(scope="module")
def client(db):
    """The db host, standing for any client on the network."""
    return db


@pytest.fixture(scope="module")
def lb_ip(lb) -> str:
    return address(lb)


@pytest.fixture(scope="module")
def servers() -> list[str]:
    """The app servers' names in HAProxy: the app hosts' inventory names."""
    return group("app")


@pytest.fixture(autouse=True)
def every_server_in_rotation(lb, servers):
    """Each test starts, and leaves the next one, with every app server UP."""
    assert set(both_servers_up(lb).values()) == {"UP"}, lb_servers(lb)
    yield
    for server in servers:
        lb_admin(lb, f"set server app/{server} state ready")
    assert set(both_servers_up(lb).values()) == {"UP"}, lb_servers(lb)


def runtime(state: str, server: str) -> PlaybookRun:
    """The role's server_state entry point through ansible-playbook, as upgrade.yml uses it."""
    return run_playbook("runtime.yml", "-e", f"lb_state={state}", "-e", f"lb_server={server}")


# --- event streams --------------------------------------------------------------------

# Runs inside a host, in the background: reads the event stream at PATH through the load
# balancer (signed in with the Cookie header COOKIE) for SECONDS, and writes to OUT the
# time (epoch seconds) of every line that arrived and when the server closed it (null
# when it stayed open).
STREAM = (
    IN_HOST_TLS
    + """
import http.client, json, os, sys, time
ip, host, path, seconds, cookie, out = sys.argv[1:7]
started = time.time()
conn = http.client.HTTPSConnection(ip, 443, timeout=15, context=ctx)
conn.request("GET", path, headers={"Host": host, "Accept": "text/event-stream", "Cookie": cookie})
# Kept here: the connection lets go of it when the answer says it will close.
sock = conn.sock
r = conn.getresponse()
lines, closed = [], None
while (left := started + float(seconds) - time.time()) > 0:
    # A socket that timed out is read no more: the timeout is what is left of the time.
    sock.settimeout(left)
    try:
        raw = r.readline()
    except TimeoutError:
        break
    except OSError:
        raw = b""
    if not raw:
        closed = time.time()
        break
    if line := raw.decode().rstrip("\\r\\n"):
        lines.append([time.time(), line])
with open(out + ".new", "w") as f:
    json.dump({"status": r.status, "content_type": r.getheader("Content-Type"),
               "started": started, "lines": lines, "closed": closed}, f)
os.rename(out + ".new", out)
"""
)


def start_stream(lb, client, seconds: float, name: str) -> tuple[str, str]:
    """Open the event stream from CLIENT for SECONDS in the background, and wait until
    HAProxy has sent it to a server: where it will write, and that server (the one whose
    session count grew; a stream a test before left may still be closing elsewhere)."""
    lb_ip = address(lb)
    out = f"/root/{name}-{uuid.uuid4().hex[:8]}.json"
    # Signed in first: the sign-in is a request through the load balancer too.
    cookie = session_cookie(client, f"https://{lb_ip}", host_header=LB_NAME)
    before = sessions_by_server(lb)
    client.check_output(
        "setsid nohup python3 -c %s %s %s /events %s %s %s >/dev/null 2>%s &",
        STREAM,
        lb_ip,
        LB_NAME,
        str(seconds),
        cookie,
        out,
        f"{out}.err",
    )

    def server() -> str | None:
        grown = [n for n, total in sessions_by_server(lb).items() if total > before.get(n, 0)]
        assert len(grown) <= 1, grown
        return grown[0] if grown else None

    return out, wait_until(server, "HAProxy sent the stream to a server", 15, 0.2)


def read_stream(client, out: str, timeout: float) -> dict:
    """What a stream started by start_stream() received, once it has ended."""
    try:
        wait_until(lambda: client.file(out).exists, "the stream's client ended", timeout, 0.5)
    except AssertionError as missing:
        errors = client.run("cat %s", f"{out}.err").stdout
        raise AssertionError(f"{missing}; its errors: {errors[-2000:]}") from None
    stream = json.loads(client.file(out).content_string)
    client.run("rm -f %s %s", out, f"{out}.err")
    return stream


def heartbeats(stream: dict) -> list[float]:
    """When each heartbeat (the app's comment line) arrived, in seconds after the start."""
    return [t - stream["started"] for t, line in stream["lines"] if line.startswith(":")]


def timeout_server() -> float:
    """HAProxy's timeout server (and client) in seconds, as the inventory sets it."""
    value = variables(group("lb")[0], "noticeboard_lb_timeout_server")[
        "noticeboard_lb_timeout_server"
    ]
    assert value.endswith("s") and value[:-1].isdigit(), value
    return float(value[:-1])


# --- the certificate ------------------------------------------------------------------

# Run on a test host: the certificate the lb serves for the site's name, checked once
# against Pebble's issuing root alone and once against the host's own trust store.
TLS_PROBE = """
import json, socket, ssl, sys, urllib.request
ip, name, api_ca = sys.argv[1:4]
api = ssl.create_default_context(cadata=api_ca)
root = urllib.request.urlopen("https://pebble:15000/roots/0", context=api).read().decode()

def handshake(context):
    with socket.create_connection((ip, 443), 10) as raw:
        with context.wrap_socket(raw, server_hostname=name) as tls:
            return tls.getpeercert()

cert = handshake(ssl.create_default_context(cadata=root))
try:
    handshake(ssl.create_default_context())
    system = "trusted"
except ssl.SSLCertVerificationError as error:
    system = error.verify_message
print(json.dumps({"serial": cert["serialNumber"], "issuer": cert["issuer"], "system": system}))
"""


def served_certificate(host, lb_ip: str) -> dict:
    """Serial and issuer of what the lb serves, verified against Pebble's root only."""
    args = shlex.join(["python3", "-c", TLS_PROBE, lb_ip, LB_NAME, PEBBLE_API_CA.read_text()])
    out = host.run(args)
    assert out.rc == 0, out.stderr
    return json.loads(out.stdout)


def worker_pid(lb) -> str:
    return next(
        line.split(":")[1].strip()
        for line in lb_admin(lb, "show info").splitlines()
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


# --- the tests ------------------------------------------------------------------------


def test_https_from_the_network_reaches_every_app_host(lb, client, servers):
    assert served_by(lb, client) == set(servers)


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
    url = f"http://{lb_ip}/.well-known/acme-challenge/probe"
    (answer,) = raw_get(client, url, ("Host", LB_NAME))
    assert answer["status"] == 503 and "location" not in answer["headers"], answer


def test_plain_http_redirects_permanently_to_https(client, lb_ip):
    (answer,) = raw_get(client, f"http://{lb_ip}/api/notes?page=2", ("Host", LB_NAME))
    assert answer["status"] == 301
    assert answer["headers"]["location"] == f"https://{LB_NAME}/api/notes?page=2"


def test_the_private_key_is_readable_by_haproxy_only(lb):
    key = lb.file(f"{LB_DIR}/config/certs/site.pem.key")
    assert key.user == "root" and key.gid == 99 and key.mode == 0o640


@pytest.mark.timeout(600)
def test_a_renewal_serves_a_new_certificate_without_a_reload_or_a_cut(lb, client, lb_ip):
    before, pid, started = served_certificate(client, lb_ip), worker_pid(lb), haproxy_started_at(lb)
    stream, _ = start_stream(lb, client, 14, "renewal-stream")
    # 40 requests, 0.2 s apart, from the client while the certificate changes.
    log = f"/root/renewal-requests-{uuid.uuid4().hex[:8]}.json"
    spec = [{"url": f"https://{lb_ip}/readyz", "headers": [["Host", LB_NAME]]}] * 40
    loop = shlex.join(["python3", "-c", RAW_REQUESTS, json.dumps(spec), "0.2"])
    client.check_output(
        "setsid nohup sh -c %s >/dev/null 2>&1 &", f"{loop} > {log}.new && mv {log}.new {log}"
    )
    time.sleep(2)
    renewed, journal = renew(lb)
    assert renewed.rc == 0, journal
    assert "loaded without a reload" in journal
    # The CA checked port 80 again, and lego gave the authorization up afterwards: no
    # later order can skip its challenge (the next test's failure depends on that).
    assert "The server validated our request" in journal, journal
    assert "Deactivating auth" in journal, journal
    assert served_certificate(client, lb_ip)["serial"] != before["serial"]
    # The same worker serves: the certificate was swapped in the running process.
    assert worker_pid(lb) == pid and haproxy_started_at(lb) == started
    received = read_stream(client, stream, 60)
    assert received["closed"] is None
    assert heartbeats(received)[-1] > 11
    wait_until(lambda: client.file(log).exists, "the request loop ended", 120)
    answers = json.loads(client.file(log).content_string)
    client.run("rm -f %s", log)
    assert [a["status"] for a in answers] == [200] * 40, answers


@pytest.mark.timeout(600)
def test_a_failed_renewal_fails_the_unit_and_keeps_the_certificate(lb, client, lb_ip):
    before = served_certificate(client, lb_ip)
    # Pebble now looks for the name at its own loopback, where nothing answers on port 80.
    pebble_dns(lb, LB_NAME, "127.0.0.1")
    try:
        failed, journal = renew(lb)
    finally:
        pebble_dns(lb, LB_NAME, lb_ip)
        lb.run(f"systemctl reset-failed {RENEWAL}.service")
    assert failed.rc != 0, journal
    assert f"could not renew the certificate for {LB_NAME}" in journal
    assert "port 80" in journal and "keeps serving its current certificate" in journal
    assert served_certificate(client, lb_ip)["serial"] == before["serial"]


# --- the front door (issue 20): what a client may not tell the app through HAProxy -----

FORWARDING = ("X-Forwarded-For", "Forwarded", "X-Real-IP", "X-Forwarded-Host", "X-Forwarded-Prefix")


def forged_headers(names) -> list[tuple[str, str]]:
    """Each name twice, in mixed case and with '_' for '-' (a WSGI server reads both as
    the same variable), all claiming to be someone else."""
    out = []
    for name in names:
        mixed = "".join(c.upper() if i % 2 else c.lower() for i, c in enumerate(name))
        out += [(mixed, "admin"), (name.replace("-", "_"), "admin")]
    return out


def received(answer: dict) -> dict[str, list[str]]:
    """The headers the echo server got, by name in lower case with '-' for '_'."""
    assert answer["status"] == 200, answer
    seen: dict[str, list[str]] = {}
    for name, value in json.loads(answer["text"])["headers"]:
        seen.setdefault(name.lower().replace("_", "-"), []).append(value)
    return seen


@pytest.fixture(scope="module")
def identity_headers(lb) -> list[str]:
    """The inventory's list, else the role's (inventories/cluster keeps the role's)."""
    name = "noticeboard_lb_identity_headers"
    return variables(group("lb")[0], name)[name] or role_default("loadbalancer", name)


@pytest.fixture
def echo_backend(lb, apps, servers):
    """files/echo.py on the second app host, as the one server HAProxy's app backend sends
    to: added through the runtime API while the app servers are in maintenance, so that
    what it shows is what the shipped configuration passes on to the app. Removed again
    afterwards, and the app servers put back."""
    host = apps[1]
    script, pidfile = "/root/nb-echo.py", "/root/nb-echo.pid"
    subprocess.run(["docker", "cp", str(ECHO), f"{host.backend.name}:{script}"], check=True)
    host.check_output(
        "setsid nohup python3 %s --port %s >/dev/null 2>&1 & echo $! > %s",
        script,
        str(ECHO_PORT),
        pidfile,
    )
    try:
        wait_until(lambda: probe(lb, address(host), ECHO_PORT, 1).startswith("ok"), "the echo", 30)
        added = lb_admin(lb, f"add server app/{ECHO_SERVER} {address(host)}:{ECHO_PORT}")
        assert "New server registered" in added, added
        lb_admin(lb, f"enable server app/{ECHO_SERVER}")
        for server in servers:
            lb_admin(lb, f"set server app/{server} state maint")
        yield
    finally:
        for server in servers:
            lb_admin(lb, f"set server app/{server} state ready")
        if ECHO_SERVER in lb_servers(lb):
            lb_admin(lb, f"disable server app/{ECHO_SERVER}")
            lb_admin(lb, f"shutdown sessions server app/{ECHO_SERVER}")
            wait_until(
                lambda: "Server deleted" in lb_admin(lb, f"del server app/{ECHO_SERVER}"),
                "the echo server deleted from HAProxy",
                30,
            )
        host.run("kill $(cat %s); rm -f %s %s", pidfile, pidfile, script)


def test_the_app_learns_the_client_address_and_scheme_and_no_forged_identity(
    lb, client, lb_ip, identity_headers, echo_backend
):
    spoofed = [
        ("Host", LB_NAME),
        ("X-Forwarded-Proto", "http"),
        *forged_headers([*identity_headers, *FORWARDING]),
    ]
    (answer,) = raw_get(client, f"https://{lb_ip}/", *spoofed)
    seen = received(answer)
    assert seen["x-forwarded-proto"] == ["https"], seen
    # Exactly the address HAProxy saw: the app trusts one proxy (TRUSTED_PROXY_COUNT=1).
    assert seen["x-forwarded-for"] == [address(client)], seen
    leaked = {n.lower() for n in [*identity_headers, *FORWARDING[1:]]} & seen.keys()
    assert not leaked, seen


def test_a_trusted_proxy_keeps_its_identity_headers_and_its_client(lb, apps, lb_ip, echo_backend):
    proxy = apps[0]
    trusted = variables(group("lb")[0], "noticeboard_lb_trusted_proxies")
    assert address(proxy) in trusted["noticeboard_lb_trusted_proxies"], trusted
    sent = [
        ("Host", LB_NAME),
        ("Remote-User", "alice"),
        ("Remote-Groups", "admins"),
        ("X-Forwarded-For", "198.51.100.7, 203.0.113.5"),
    ]
    (answer,) = raw_get(proxy, f"https://{lb_ip}/", *sent)
    seen = received(answer)
    assert seen["remote-user"] == ["alice"] and seen["remote-groups"] == ["admins"], seen
    # The client it saw, its last address, is the one the app gets.
    assert seen["x-forwarded-for"] == ["203.0.113.5"], seen


def test_haproxy_adds_no_hsts_by_default(client, lb_ip, echo_backend):
    # Through the echo server, which sends none: the header would be HAProxy's own
    # (noticeboard_lb_hsts); the app sends none (tests/app/test_api.py).
    (answer,) = raw_get(client, f"https://{lb_ip}/", ("Host", LB_NAME))
    assert answer["status"] == 200
    assert "strict-transport-security" not in answer["headers"], answer["headers"]


# --- health checks and event streams --------------------------------------------------


@pytest.mark.timeout(600)
def test_events_arrive_one_by_one_and_an_idle_stream_lives_on_heartbeats(lb, client):
    # Four notes two seconds apart while the stream is open, then nothing: each event must
    # arrive when its note is written, not with the next one or when the stream ends, and
    # the idle stream must outlive HAProxy's timeouts (10 s here) more than twice over on
    # the app's heartbeats alone.
    limit = timeout_server()
    assert limit <= 10, limit
    stream, _ = start_stream(lb, client, 40, "events-stream")
    tag = f"one-by-one-{uuid.uuid4().hex[:8]}"
    posted = []
    for n in range(4):
        sent = time.time()
        answer = via_lb(lb, "POST", "/api/notes", {"title": f"{tag}-{n}", "body": "one by one"})
        assert answer.status == 201, answer.body
        posted.append((f"{tag}-{n}", sent, time.time()))
        time.sleep(max(0.0, 2 - (time.time() - sent)))
    got = read_stream(client, stream, 60)
    assert got["status"] == 200 and got["content_type"].startswith("text/event-stream")
    arrived = []
    for title, sent, acknowledged in posted:
        times = [t for t, line in got["lines"] if line.startswith("data:") and title in line]
        assert len(times) == 1, (title, got["lines"])
        # The stream's app host reads new events every SSE_POLL_SECONDS (0.5 s).
        assert sent <= times[0] <= acknowledged + 1.5, (title, sent, acknowledged, times)
        arrived.append(times[0])
    assert all(b - a > 1 for a, b in itertools.pairwise(arrived)), arrived
    assert got["closed"] is None
    beats = heartbeats(got)
    assert got["lines"][-1][1].startswith(":") and beats[-1] > 37, got["lines"][-3:]
    assert beats[-1] - (arrived[-1] - got["started"]) > 2.5 * limit, (arrived, beats)


@pytest.mark.timeout(600)
def test_a_server_that_is_not_ready_gets_no_traffic_and_its_silent_stream_is_cut(
    lb, apps, client, servers
):
    # A stream first, to learn which server holds it: that one is paused. Its /readyz no
    # longer answers (HAProxy marks it DOWN and sends every request to the other one) and
    # its stream falls silent, which HAProxy's timeout cuts: the heartbeats are what keep
    # the other streams open.
    stream, paused = start_stream(lb, client, 40, "silent-stream")
    (other,) = set(servers) - {paused}
    host = apps[servers.index(paused)]
    host.check_output("docker pause %s", APP_CONTAINER)
    try:
        wait_server_status(lb, paused, "DOWN")
        assert lb_servers(lb)[paused]["check_status"] != "L7OK", lb_servers(lb)[paused]
        assert served_by(lb, client) == {other}
        got = read_stream(client, stream, 60)
    finally:
        host.run("docker unpause %s", APP_CONTAINER)
    wait_server_status(lb, paused, "UP")
    assert served_by(lb, client) == set(servers)
    assert got["closed"] is not None, got["lines"][-3:]
    silent_for = got["closed"] - got["lines"][-1][0]
    limit = timeout_server()
    assert limit - 1 < silent_for < limit + 5, (silent_for, got["lines"][-3:])


@pytest.mark.timeout(600)
def test_a_reload_keeps_open_streams(lb, client):
    stream, _ = start_stream(lb, client, 8, "reload-stream")
    time.sleep(2)
    reloaded = lb.check_output("echo reload | socat -t 30 stdio unix-connect:%s", MASTER_SOCKET)
    assert "Success=1" in reloaded
    got = read_stream(client, stream, 30)
    assert got["closed"] is None
    assert heartbeats(got)[-1] > 6


# --- server_state: drain, maintenance, enabled ----------------------------------------


# drain waits for the requests in flight, maintenance does not; both end in MAINT.
@pytest.mark.timeout(600)
@pytest.mark.parametrize(("state", "index"), [("drain", 0), ("maintenance", 1)])
def test_out_of_rotation_stops_new_requests_and_enabled_brings_the_server_back(
    lb, client, servers, state, index
):
    server = servers[index]
    (other,) = set(servers) - {server}
    runtime(state, server)
    assert lb_servers(lb)[server]["status"] == "MAINT"
    assert served_by(lb, client) == {other}

    runtime("enabled", server)
    assert lb_servers(lb)[server]["status"] == "UP"
    assert served_by(lb, client) == set(servers)


@pytest.mark.timeout(600)
def test_drain_closes_streams_left_after_its_timeout(lb, client):
    # An event stream never ends by itself: drain waits noticeboard_lb_drain_timeout (5 s
    # here), then closes it so that the client reconnects to another server.
    drain_timeout = int(
        variables(group("lb")[0], "noticeboard_lb_drain_timeout")["noticeboard_lb_drain_timeout"]
    )
    stream, busy = start_stream(lb, client, 150, "drain-stream")
    started = time.monotonic()
    runtime("drain", busy)
    assert time.monotonic() - started > drain_timeout
    assert lb_servers(lb)[busy]["status"] == "MAINT"
    # Closed by the drain (the client would read for 150 s), and before it returned.
    got = read_stream(client, stream, 10)
    assert got["closed"] is not None
    runtime("enabled", busy)


# --- what only the lb host sees -------------------------------------------------------


def test_stats_and_runtime_api_answer_on_the_lb_host_only(lb, client, lb_ip):
    assert http(lb, "GET", "http://127.0.0.1:8404/").status == 200
    assert "Uptime" in lb_admin(lb, "show info")
    sockets = lb.file(str(Path(LB_ADMIN_SOCKET).parent))
    assert sockets.mode == 0o750 and sockets.uid == 99
    # The stats port, and the container's own HTTP and HTTPS ports.
    for port in (8404, 8080, 8443):
        answer = probe(client, lb_ip, port, timeout=3)
        assert answer.startswith("error "), f"port {port} of the lb host answers other hosts"


def test_configuration_is_managed_and_valid(lb, servers):
    config = lb.file(f"{LB_DIR}/config/haproxy.cfg")
    assert config.content_string.startswith("#") and "Ansible managed" in config.content_string
    assert config.user == "root" and config.gid == 99 and config.mode == 0o640
    for server in servers:
        assert f"server {server} {address(host_named(server))}:8000" in config.content_string


# --- the maintenance page -------------------------------------------------------------


@pytest.mark.timeout(600)
def test_with_every_app_server_down_the_balancer_shows_the_maintenance_page(
    lb, apps, client, lb_ip, servers
):
    # Both app containers stopped, as for a restore: HAProxy's small HTML page with
    # Retry-After instead of its bare error; once a server is back, requests reach it.
    retry_after = variables(group("lb")[0], "noticeboard_lb_maintenance_retry_after")[
        "noticeboard_lb_maintenance_retry_after"
    ] or role_default("loadbalancer", "noticeboard_lb_maintenance_retry_after")
    try:
        for app in apps:
            app.check_output("docker stop %s", APP_CONTAINER)
        for server in servers:
            wait_server_status(lb, server, "DOWN")
        (page,) = raw_get(client, f"https://{lb_ip}/", ("Host", LB_NAME))
    finally:
        for app in apps:
            app.run("docker start %s", APP_CONTAINER)
    assert page["status"] == 503
    assert page["headers"]["content-type"].startswith("text/html")
    assert page["headers"]["retry-after"] == str(retry_after)
    assert "down for maintenance" in page["text"]
    for server in servers:
        wait_server_status(lb, server, "UP", timeout=180)
    assert served_by(lb, client) == set(servers)
