"""What the single-host tests share: the host, its proxy, its slots and the load (verifylib's
Load, in this host's container).

inventories/pi puts its one host in `app` and `lb`: HAProxy (roles/loadbalancer) on ports
80 and 443 in front of the app's two slots (`blue` and `green`, one compose project, fixed
addresses on the Docker network noticeboard-slots), of which one serves.
"""

from __future__ import annotations

import json
import time

import pytest
from verifylib import Load, http, session_cookie, variables

HOST = "noticeboard-pi"
# molecule.yml: the container of this scenario's host (not its inventory name).
CONTAINER = "nb-mol-single"
APP_DIR = "/opt/noticeboard"
LB_ADMIN_SOCKET = "/opt/noticeboard-lb/run/admin.sock"
LB_CONTAINER = "noticeboard-lb-haproxy-1"
URL = "https://127.0.0.1"
# The site's name: the certificate's (the test-bed's acme name, registered with Pebble's
# DNS by prepare; inventories/pi itself leaves the role's default, the inventory hostname).
SITE = variables(HOST, "noticeboard_lb_server_name")["noticeboard_lb_server_name"]
IMAGE = variables(HOST, "noticeboard_image")["noticeboard_image"]
# v1 plus an expand-only migration (tests/molecule/images.py): a real upgrade, since a
# tag of the same image id is "nothing to do" for upgrade.yml.
UPGRADE_TAG = "upgrade-v2"

# Runs inside the host: downloads each note's attachment through the proxy, with the
# Cookie header COOKIE ("" for none); prints {note id: "<status> <sha256>"}.
DOWNLOAD = """
import hashlib, json, ssl, sys, urllib.error, urllib.request
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
url, site, ids, cookie = sys.argv[1:5]
headers = {"Host": site, **({"Cookie": cookie} if cookie else {})}
seen = {}
for note in ids.split(","):
    req = urllib.request.Request(f"{url}/api/notes/{note}/attachment", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30, context=ctx) as r:
            seen[note] = f"{r.status} {hashlib.sha256(r.read()).hexdigest()}"
    except urllib.error.HTTPError as e:
        seen[note] = f"{e.code} -"
print(json.dumps(seen))
"""

# Runs inside an app container: rows of a read-only query of the SQLite database.
QUERY = """
import json, sqlite3, sys
db = sqlite3.connect("file:/data/noticeboard.db?mode=ro", uri=True)
print(json.dumps(db.execute(sys.argv[1]).fetchall()))
"""


def via_proxy(host, method: str, path: str, body: dict | None = None, **request):
    """A request to HAProxy's HTTPS port, from the host itself."""
    return http(host, method, f"{URL}{path}", body, host_header=SITE, **request)


def plain_http(host, path: str = "/") -> tuple[int, str]:
    """Status and Location of a request to port 80, redirects not followed."""
    script = (
        "import http.client, sys; c = http.client.HTTPConnection('127.0.0.1', 80, timeout=10);"
        f" c.request('GET', {path!r}, headers={{'Host': {SITE!r}}}); r = c.getresponse();"
        " print(r.status, r.getheader('Location') or '')"
    )
    status, _, location = host.check_output("python3 -c %s", script).partition(" ")
    return int(status), location


def slots(host) -> dict:
    return json.loads(host.file(f"{APP_DIR}/slots.json").content_string)


def serving_container(host) -> str:
    return f"noticeboard-{slots(host)['active']}-1"


def container_state(host, name: str) -> str:
    """`running IMAGE`, `exited IMAGE`, or `absent`."""
    got = host.run("docker inspect -f '{{.State.Status}} {{.Config.Image}}' %s", name)
    return got.stdout.strip() if got.rc == 0 else "absent"


def sql(host, statement: str) -> list:
    out = host.check_output(
        "docker exec %s python3 -c %s %s", serving_container(host), QUERY, statement
    )
    return json.loads(out)


def servers(host) -> dict[str, str]:
    """HAProxy's state of each slot (runtime API `show stat`); {} while it does not answer."""
    got = host.run("echo 'show stat app 4 -1' | socat -t 5 stdio unix-connect:%s", LB_ADMIN_SOCKET)
    lines = [line for line in got.stdout.splitlines() if line]
    if got.rc != 0 or not lines or not lines[0].startswith("# "):
        return {}
    header = lines[0].removeprefix("# ").split(",")
    rows = [dict(zip(header, line.split(","), strict=False)) for line in lines[1:]]
    return {row["svname"]: row["status"] for row in rows if row["svname"] != "BACKEND"}


def wait_servers(host, want: dict[str, str], timeout: float = 60) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while True:
        got = servers(host)
        if got == want or time.monotonic() > deadline:
            return got
        time.sleep(1)


def upload(host, name: str, size: int) -> tuple[str, str]:
    """A note with SIZE random bytes attached, through the proxy: (id, sha256 sent)."""
    sent = via_proxy(
        host,
        "POST",
        "/api/notes",
        form={"body": f"upload {name}"},
        file={"field": "attachment", "name": name, "size": size},
        timeout=30,
    )
    assert sent.status == 201, (sent.status, sent.body)
    return str(sent.body["id"]), sent.sent_sha256


def wrong_downloads(host, sums: dict[str, str]) -> dict[str, str]:
    """Attachments that did not download through the proxy byte for byte as uploaded."""
    ids, cookie = ",".join(sums), session_cookie(host, URL, host_header=SITE)
    out = host.check_output("python3 -c %s %s %s %s %s", DOWNLOAD, URL, SITE, ids, cookie)
    seen = json.loads(out)
    return {n: seen.get(n, "never asked") for n in sums if seen.get(n) != f"200 {sums[n]}"}


def load(host, since: int, tag: str, streams: int, *, url: str = URL, site: str = SITE) -> Load:
    """The load through HAProxy's HTTPS port (or URL, with SITE as the Host header), run
    inside this scenario's container."""
    return Load(
        host,
        container=CONTAINER,
        url=url,
        site=site,
        since=since,
        tag=tag,
        streams=streams,
        pause=0.3,
        upload_every=5,
        max_seconds=600,
        max_requests=20000,
        settle=30,
    )


def last_event_id(host) -> int:
    return int(sql(host, "SELECT COALESCE(MAX(id), 0) FROM events")[0][0])


def stored_writes(host, tag: str) -> dict[int, str]:
    # TAG is letters, digits and '-' (uuid hex): nothing to escape in the SQL literal.
    rows = sql(host, f"SELECT id, title FROM notes WHERE title LIKE '{tag}-w%'")  # noqa: S608
    return {int(note_id): title for note_id, title in rows}


@pytest.fixture(scope="module")
def pi(host):
    return host
