"""The maintenance page: while no app server is up (both backends stopped, as when the
app is stopped for a restore), HAProxy answers 503 with its small HTML page and
Retry-After instead of its bare error; once a server is back, requests reach it again.
"""

from __future__ import annotations

import json

from verifylib import host_named, wait_until

LB, APP1, APP2 = (f"nb-mol-loadbalancer-{n}" for n in ("lb", "app1", "app2"))
PIDFILE = "/run/nb-test-backend.pid"
ADMIN = "/opt/noticeboard-lb/run/admin.sock"
# One request through the balancer from a client host: status, headers and body.
REQUEST = """
import json, ssl, sys, urllib.error, urllib.request
ctx = ssl._create_unverified_context()
try:
    resp = urllib.request.urlopen(sys.argv[1], context=ctx, timeout=10)
except urllib.error.HTTPError as err:
    resp = err
# HAProxy writes the header names it makes in lower case.
print(json.dumps({"status": resp.status,
                  "headers": {name.lower(): value for name, value in resp.headers.items()},
                  "body": resp.read().decode(errors="replace")}))
"""


def request(client, url: str) -> dict:
    return json.loads(client.check_output("python3 -c %s %s", REQUEST, url))


def server_status(lb, server: str) -> str:
    out = lb.check_output(f"echo 'show stat app 4 -1' | socat -t 5 stdio unix-connect:{ADMIN}")
    return next(
        line.split(",")[17] for line in out.splitlines() if line.split(",")[1:2] == [server]
    )


def start_backend(app, name: str) -> None:
    # As prepare.yml starts it (the heartbeat is the scenario's test_backend_heartbeat).
    app.check_output(
        "start-stop-daemon --start --oknodo --background --make-pidfile --pidfile %s"
        " --exec /usr/bin/python3 -- /usr/local/bin/nb-test-backend --name %s --port 8000"
        " --heartbeat 2",
        PIDFILE,
        name,
    )


def test_with_every_server_down_the_balancer_shows_the_maintenance_page():
    lb, client = host_named(LB), host_named(APP2)
    apps = {name: host_named(name) for name in (APP1, APP2)}
    url = f"https://{lb.interface('eth0').addresses[0]}/"
    try:
        for app in apps.values():
            app.check_output("start-stop-daemon --stop --oknodo --retry 10 --pidfile %s", PIDFILE)
        for name in apps:
            wait_until(lambda n=name: server_status(lb, n) == "DOWN", f"{name} DOWN", timeout=30)
        page = request(client, url)
        assert page["status"] == 503
        assert page["headers"]["content-type"].startswith("text/html")
        assert page["headers"]["retry-after"] == "60"
        assert "down for maintenance" in page["body"]
    finally:
        for name, app in apps.items():
            start_backend(app, name)
        for name in apps:
            wait_until(lambda n=name: server_status(lb, n) == "UP", f"{name} UP", timeout=30)
    assert request(client, url)["status"] == 200
