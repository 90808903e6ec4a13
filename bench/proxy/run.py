#!/usr/bin/env python3
"""Measure HAProxy and Caddy, as Debian 13 packages them, for the proxy decision record
(docs/decisions/0001-single-host-proxy.md). Needs only Docker and Python 3.

  python3 bench/proxy/run.py [SCENARIO ...]     # default: all of them
  scenarios: haproxy-reload haproxy-runtime caddy-reload caddy-api memory acme-caddy acme-haproxy

Everything it creates is named nbc-* (image nbc-proxybench:trixie, network nbc-proxy,
containers nbc-*) and the containers and network are removed at the end, also on
failure. Results are printed and written to bench/proxy/results.json.
"""

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
IMAGE = "nbc-proxybench:trixie"
NET = "nbc-proxy"
CONTAINERS = set()
SWAP_AT = 5  # seconds into a probe run when the swap starts
OLD_STOPS_AFTER = 3  # seconds after the swap when the old app stops (its drain time)


def sh(*cmd, check=True, stdin=None):
    res = subprocess.run(cmd, input=stdin, capture_output=True, text=True)
    if check and res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {res.stderr.strip() or res.stdout.strip()}")
    return res.stdout


def run(name, *cmd, alias=(), env=()):
    args = ["docker", "run", "-d", "--name", name, "--network", NET, "--memory", "256m"]
    args += [x for a in alias for x in ("--network-alias", a)]
    args += [x for e in env for x in ("-e", e)]
    args += ["-v", f"{HERE}:/bench:ro", "-v", f"{WORK}:/w", IMAGE, *cmd]
    sh(*args)
    CONTAINERS.add(name)


def rm(name):
    sh("docker", "rm", "-f", name, check=False)
    CONTAINERS.discard(name)


def ex(name, script, stdin=None, check=True):
    return sh("docker", "exec", "-i", name, "sh", "-c", script, stdin=stdin, check=check)


def wait_http(container, url, seconds=30, extra=""):
    for _ in range(seconds * 4):
        if ex(container, f"curl -fsS -m 2 {extra} {url}", check=False):
            return
        time.sleep(0.25)
    raise RuntimeError(f"{url} did not answer from {container}")


def apps():
    for name in ("a", "b"):
        if f"nbc-app-{name}" not in CONTAINERS:
            run(
                f"nbc-app-{name}",
                "python3",
                "/bench/sse_backend.py",
                name.upper(),
                "8000",
                alias=[f"app-{name}"],
            )
    for name in ("a", "b"):
        wait_http(f"nbc-app-{name}", "http://127.0.0.1:8000/readyz")


class Timeline(dict):
    """What the driver did, in seconds on the probe's clock (to read its cuts against)."""

    def __init__(self, t0):
        super().__init__()
        self.t0 = t0

    def mark(self, what, value=None):
        self[what] = round(time.monotonic() - self.t0, 2) if value is None else value


def probe(host, port, seconds, action=None, streams=1, rate=20, tls=None, sni=None):
    """Run probe.py in nbc-client while ACTION (a function) runs at SWAP_AT seconds."""
    cmd = [
        "docker",
        "run",
        "--rm",
        "--name",
        "nbc-client",
        "--network",
        NET,
        "-v",
        f"{HERE}:/bench:ro",
        "-v",
        f"{WORK}:/w",
        IMAGE,
        "python3",
        "/bench/probe.py",
        host,
        str(port),
        str(seconds),
        "--streams",
        str(streams),
        "--rate",
        str(rate),
    ]
    if tls:
        cmd += ["--tls", tls, "--sni", sni]
    CONTAINERS.add("nbc-client")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    proc.stdout.readline()  # "start": the probe's clock starts now
    t0 = time.monotonic()
    timeline = Timeline(t0)
    try:
        if action:
            time.sleep(SWAP_AT)
            timeline.mark("swap_starts")
            action(timeline)
            timeline.mark("swap_done")
    except RuntimeError as exc:
        timeline.mark("action_failed", str(exc)[-300:])
    finally:
        out, _ = proc.communicate()
    CONTAINERS.discard("nbc-client")
    result = json.loads(out)
    result["timeline"] = dict(timeline)
    return result


def stop_old_app(timeline):
    """The old release finishes: after its drain time its container stops."""
    time.sleep(OLD_STOPS_AFTER)
    sh("docker", "stop", "-t", "0", "nbc-app-a")
    timeline.mark("old_app_stopped")


def restart_old_app():
    sh("docker", "start", "nbc-app-a")
    wait_http("nbc-app-a", "http://127.0.0.1:8000/readyz")


# ---------------------------------------------------------------- HAProxy

HAPROXY_CFG = """
global
    stats socket /w/admin.sock mode 600 level admin expose-fd listeners
    hard-stop-after {hard_stop_after}
defaults
    mode http
    option redispatch 1
    retries 3
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-request 10s
frontend http
    bind :80
{acme_frontend}    default_backend app
{https}
backend app
    option http-server-close
    option httpchk GET /readyz
    default-server check inter 1s rise 2 fall 2 init-addr last,libc,none
{servers}
{acme_backend}
"""
# HTTP-01 challenges go to lego's own listener on this host (up only while lego runs).
ACME_FRONTEND = "    use_backend acme if { path_beg /.well-known/acme-challenge/ }\n"
ACME_BACKEND = "backend acme\n    server lego 127.0.0.1:8888\n"
HTTPS_FRONTEND = (
    "frontend https\n    bind :443 ssl crt /w/certs/site.pem\n    default_backend app\n"
)


def haproxy_cfg(servers, hard_stop_after="10m", acme=False):
    text = HAPROXY_CFG.format(
        hard_stop_after=hard_stop_after,
        servers="\n".join(f"    server {s}" for s in servers),
        acme_frontend=ACME_FRONTEND if acme else "",
        acme_backend=ACME_BACKEND if acme else "",
        https=HTTPS_FRONTEND if acme else "",
    )
    (WORK / "haproxy.cfg").write_text(text)


def haproxy_start(alias=()):
    run(
        "nbc-haproxy",
        "haproxy",
        "-W",
        "-db",
        "-f",
        "/w/haproxy.cfg",
        "-S",
        "/w/master.sock",
        alias=alias,
    )
    wait_http("nbc-haproxy", "http://127.0.0.1/")


def haproxy_master(cmd):
    return ex("nbc-haproxy", "socat -t 30 stdio unix-connect:/w/master.sock", stdin=cmd + "\n")


def haproxy_admin(cmd):
    return ex("nbc-haproxy", "socat -t 5 stdio unix-connect:/w/admin.sock", stdin=cmd + "\n")


def haproxy_status(server):
    rows = haproxy_admin("show stat app 4 -1").splitlines()
    header = rows[0].lstrip("# ").split(",")
    for row in rows[1:]:
        fields = dict(zip(header, row.split(","), strict=False))
        if fields.get("svname") == server:
            return fields["status"]
    return None


def haproxy_reload():
    """Swap by configuration: the file names app B instead of A, the master reloads."""
    apps()
    haproxy_cfg(["a app-a:8000"], hard_stop_after="10m")
    haproxy_start()

    def swap(timeline):
        haproxy_cfg(["b app-b:8000"], hard_stop_after="10m")
        out = haproxy_master("reload")
        timeline.mark("reloaded", "Success=1" in out)
        timeline.mark("reload_answered")
        stop_old_app(timeline)

    try:
        return probe("nbc-haproxy", 80, 16, swap)
    finally:
        rm("nbc-haproxy")
        restart_old_app()


def haproxy_runtime():
    """Swap without a reload: B is a configured server in maintenance; the runtime API
    readies B, drains A, closes A's remaining streams and puts A in maintenance."""
    apps()
    haproxy_cfg(["a app-a:8000", "b app-b:8000 disabled"])
    haproxy_start()

    def swap(timeline):
        haproxy_admin("set server app/b state ready")
        t = time.monotonic()
        while haproxy_status("b") != "UP" and time.monotonic() - t < 10:
            time.sleep(0.1)
        timeline.mark("b_up")
        haproxy_admin("set server app/a state drain")
        timeline.mark("a_drain")
        time.sleep(OLD_STOPS_AFTER)
        haproxy_admin("shutdown sessions server app/a")
        haproxy_admin("set server app/a state maint")
        timeline.mark("a_closed_and_maint")

    try:
        return probe("nbc-haproxy", 80, 16, swap)
    finally:
        rm("nbc-haproxy")


# ---------------------------------------------------------------- Caddy


def caddy_json(upstream, flush=False):
    """Caddy flushes text/event-stream responses at once by itself; FLUSH sets
    flush_interval -1 explicitly, as many guides for SSE advise."""
    proxy = {"handler": "reverse_proxy", "upstreams": [{"@id": "upstream", "dial": upstream}]}
    if flush:
        proxy["flush_interval"] = -1
    return {
        "admin": {"listen": "localhost:2019"},
        "apps": {
            "http": {
                "servers": {
                    "srv0": {
                        "listen": [":80"],
                        "automatic_https": {"disable": True},
                        "routes": [{"handle": [proxy]}],
                    }
                }
            }
        },
    }


def caddy_start(flush=False):
    (WORK / "caddy.json").write_text(json.dumps(caddy_json("app-a:8000", flush)))
    run(
        "nbc-caddy",
        "caddy",
        "run",
        "--config",
        "/w/caddy.json",
        env=["XDG_DATA_HOME=/w/caddy-data"],
    )
    wait_http("nbc-caddy", "http://127.0.0.1/")


def caddy_probe(swap):
    """Run the swap under load through Caddy; note any panic it logged; clean up."""
    try:
        res = probe("nbc-caddy", 80, 16, swap)
        logs = subprocess.run(["docker", "logs", "nbc-caddy"], capture_output=True, text=True)
        res["caddy_panic"] = [line for line in logs.stderr.splitlines() if line.startswith("panic")]
        return res
    finally:
        rm("nbc-caddy")
        restart_old_app()


def caddy_reload(flush=False):
    """Swap by configuration: `caddy reload` with a file that names app B."""
    apps()
    caddy_start(flush)

    def swap(timeline):
        (WORK / "caddy.json").write_text(json.dumps(caddy_json("app-b:8000", flush)))
        ex("nbc-caddy", "caddy reload --config /w/caddy.json")
        timeline.mark("reload_answered")
        stop_old_app(timeline)

    return caddy_probe(swap)


def caddy_api():
    """Swap through the admin API: PATCH the upstream's address (by its @id)."""
    apps()
    caddy_start()

    def swap(timeline):
        ex(
            "nbc-caddy",
            "curl -fsS -X PATCH -H 'Content-Type: application/json' "
            "-d '\"app-b:8000\"' http://localhost:2019/id/upstream/dial",
        )
        timeline.mark("patch_answered")
        stop_old_app(timeline)

    return caddy_probe(swap)


# ---------------------------------------------------------------- memory


def rss_kib(container, process):
    out = ex(container, "ps -eo rss=,comm=")
    return sum(int(line.split()[0]) for line in out.splitlines() if process in line)


def memory():
    apps()
    result = {}
    for proxy, start, process in (
        ("haproxy", lambda: (haproxy_cfg(["a app-a:8000"]), haproxy_start()), "haproxy"),
        ("caddy", caddy_start, "caddy"),
    ):
        start()
        container = f"nbc-{proxy}"
        time.sleep(2)
        idle = rss_kib(container, process)
        got = {}

        def measure(timeline, container=container, process=process, got=got):
            time.sleep(2)
            got["streams"] = rss_kib(container, process)

        res = probe(container, 80, 10, measure, streams=100, rate=0)
        result[proxy] = {
            "idle_rss_kib": idle,
            "rss_100_streams_kib": got["streams"],
            "events": res["events"],
            "cuts": res["cuts_total"],
        }
        rm(container)
    return result


# ---------------------------------------------------------------- ACME against Pebble

PEBBLE_CFG = {
    "pebble": {
        "listenAddress": "0.0.0.0:14000",
        "managementListenAddress": "0.0.0.0:15000",
        "certificate": "/w/pebble/cert.pem",
        "privateKey": "/w/pebble/key.pem",
        "httpPort": 80,
        "tlsPort": 443,
        "ocspResponderURL": "",
        "externalAccountBindingRequired": False,
    }
}


def pebble():
    """Pebble with a TLS certificate for its own API (signed by a CA made here, which the
    ACME clients trust), validating HTTP-01 on port 80 of the names by Docker's DNS."""
    if "nbc-pebble" in CONTAINERS:
        return
    d = WORK / "pebble"
    d.mkdir(exist_ok=True)
    (d / "config.json").write_text(json.dumps(PEBBLE_CFG))
    sh(
        "docker",
        "run",
        "--rm",
        "-v",
        f"{WORK}:/w",
        IMAGE,
        "sh",
        "-c",
        """
        cd /w/pebble
        openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=nbc-api-ca \
            -keyout ca.key -out ca.pem 2>/dev/null
        openssl req -newkey rsa:2048 -nodes -subj /CN=pebble -keyout key.pem \
            -out req.csr 2>/dev/null
        printf 'subjectAltName=DNS:pebble,DNS:localhost' > ext
        openssl x509 -req -in req.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
            -extfile ext -out cert.pem 2>/dev/null
        chmod a+r *""",
    )
    run(
        "nbc-pebble",
        "pebble",
        "-config",
        "/w/pebble/config.json",
        alias=["pebble"],
        env=["PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0"],
    )
    wait_http("nbc-pebble", "https://127.0.0.1:14000/dir", extra="-k")
    ex("nbc-pebble", "curl -fsS -k https://127.0.0.1:15000/roots/0 > /w/pebble/issued-root.pem")


def acme_caddy():
    apps()
    pebble()
    name = "site-caddy.nbc.test"
    (WORK / "Caddyfile").write_text(f"""{{
    acme_ca https://pebble:14000/dir
    acme_ca_root /w/pebble/ca.pem
    email ops@nbc.test
}}
{name} {{
    reverse_proxy app-a:8000
}}
""")
    t = time.monotonic()
    run(
        "nbc-caddy",
        "caddy",
        "run",
        "--config",
        "/w/Caddyfile",
        "--adapter",
        "caddyfile",
        alias=[name],
        env=["XDG_DATA_HOME=/w/caddy-data"],
    )
    try:
        wait_http(
            "nbc-caddy",
            f"https://{name}/",
            seconds=90,
            extra=f"--cacert /w/pebble/issued-root.pem --resolve {name}:443:127.0.0.1",
        )
        took = round(time.monotonic() - t, 1)
        issuer = ex(
            "nbc-caddy",
            f"echo | openssl s_client -connect 127.0.0.1:443 -servername {name} "
            "2>/dev/null | openssl x509 -noout -issuer -enddate",
        )
        return {"works": True, "first_https_answer_s": took, "certificate": issuer.strip()}
    except RuntimeError as exc:
        return {
            "works": False,
            "error": str(exc),
            "log": sh("docker", "logs", "--tail", "20", "nbc-caddy", check=False),
        }
    finally:
        rm("nbc-caddy")


def acme_haproxy():
    """HAProxy serves /.well-known/acme-challenge/ from lego's own listener (only up while
    lego runs); the certificate is then loaded through the runtime API, under an open
    HTTPS event stream that must not be cut."""
    apps()
    pebble()
    name = "site-haproxy.nbc.test"
    (WORK / "certs").mkdir(exist_ok=True)
    sh(
        "docker",
        "run",
        "--rm",
        "-v",
        f"{WORK}:/w",
        IMAGE,
        "sh",
        "-c",
        f"""
        cd /w/certs
        openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN={name} \
            -addext subjectAltName=DNS:{name} -keyout k.pem -out c.pem 2>/dev/null
        cat c.pem k.pem > site.pem && cat c.pem /w/pebble/issued-root.pem > /w/trust.pem
        chmod a+r *""",
    )
    haproxy_cfg(["a app-a:8000"], acme=True)
    haproxy_start(alias=[name])
    lego = (
        f"LEGO_CA_CERTIFICATES=/w/pebble/ca.pem lego --path /w/lego "
        f"--server https://pebble:14000/dir --email ops@nbc.test --accept-tos "
        f"--domains {name} --http --http.port 127.0.0.1:8888"
    )
    # A timer's `lego renew` should keep its random sleep (up to 8 minutes, spreading the
    # CA's load); a forced renewal in a test skips it.

    def load_cert(timeline, step):
        files = f"/w/lego/certificates/{name}"
        pem = ex("nbc-haproxy", f"cat {files}.crt {files}.key")
        out = haproxy_admin(f"set ssl cert /w/certs/site.pem <<\n{pem}\n")
        out += haproxy_admin("commit ssl cert /w/certs/site.pem")
        timeline.mark(f"{step}_committed")
        timeline.mark(f"{step}_runtime_api", " ".join(out.split())[:120])
        timeline.mark(f"{step}_serial", serial())

    def serial():
        return ex(
            "nbc-haproxy",
            f"echo | openssl s_client -connect 127.0.0.1:443 -servername {name} "
            "2>/dev/null | openssl x509 -noout -serial -issuer",
        ).strip()

    def issue_and_renew(timeline):
        ex("nbc-haproxy", f"{lego} run")
        timeline.mark("issued")
        load_cert(timeline, "issue")
        # --days longer than the certificate's life: renew now, as the timer would near expiry
        ex("nbc-haproxy", f"{lego} renew --days 100000 --no-random-sleep")
        timeline.mark("renewed")
        load_cert(timeline, "renew")

    try:
        res = probe(name, 443, 24, issue_and_renew, tls="/w/trust.pem", sni=name)
        t = res["timeline"]
        issued, renewed = t.get("issue_serial", ""), t.get("renew_serial")
        return {"works": "Pebble" in issued and renewed != issued, "probe_during": res}
    finally:
        rm("nbc-haproxy")


SCENARIOS = {
    "haproxy-reload": haproxy_reload,
    "haproxy-runtime": haproxy_runtime,
    "caddy-reload": caddy_reload,
    "caddy-api": caddy_api,
    "caddy-reload-flush": lambda: caddy_reload(flush=True),
    "memory": memory,
    "acme-caddy": acme_caddy,
    "acme-haproxy": acme_haproxy,
}


def main(names):
    global WORK
    base = os.environ.get("BASE", "local/debian:trixie")
    sh("docker", "build", "-q", "--build-arg", f"BASE={base}", "-t", IMAGE, str(HERE))
    versions = sh(
        "docker",
        "run",
        "--rm",
        IMAGE,
        "sh",
        "-c",
        "dpkg-query -W haproxy caddy pebble lego python3",
    )
    sh("docker", "network", "create", NET)
    date = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    out = HERE / "results.json"
    # A run of some scenarios updates theirs and keeps the others' last results.
    results = json.loads(out.read_text()) if names and out.exists() else {}
    results.update({"versions": versions.split("\n")[:-1], "date": date})
    try:
        with tempfile.TemporaryDirectory(prefix="nbc-proxy-") as tmp:
            WORK = Path(tmp)
            WORK.chmod(0o777)
            for name in names or SCENARIOS:
                print(f"--- {name}", file=sys.stderr, flush=True)
                try:
                    results[name] = SCENARIOS[name]()
                except Exception as exc:  # one failed scenario should not hide the others
                    results[name] = {"error": str(exc)}
                print(json.dumps(results[name], indent=1), file=sys.stderr, flush=True)
            # files written by root in the containers
            sh("docker", "run", "--rm", "-v", f"{WORK}:/w", IMAGE, "sh", "-c", "rm -rf /w/*")
    finally:
        for name in list(CONTAINERS):
            rm(name)
        sh("docker", "network", "rm", NET, check=False)
    out.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
