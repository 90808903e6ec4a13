"""One host as inventories/pi ships it: HAProxy in front of two app slots, and upgrade.yml
and rollback.yml under load through the proxy without a failed request, a missed event, a
lost write or a changed byte.

The tests run in file order, each from the state the one before left (converge: v1 in
slot blue; the upgrade: upgrade-v2 in green; the rollback: v1 in blue again).
"""

from __future__ import annotations

import json
import os
import shlex
import time
import uuid
from pathlib import Path

import pytest
from conftest import (
    APP_DIR,
    IMAGE,
    LB_CONTAINER,
    SITE,
    UPGRADE_TAG,
    container_state,
    last_event_id,
    load,
    plain_http,
    servers,
    slots,
    stored_writes,
    upload,
    via_proxy,
    wait_servers,
    wrong_downloads,
)
from verifylib import converge, run_playbook

STREAMS = 20


def test_https_through_the_proxy_and_http_redirects(pi):
    assert via_proxy(pi, "GET", "/readyz").status == 200
    status, location = plain_http(pi, "/notes?x=1")
    assert status == 301
    assert location.startswith(f"https://{SITE}"), location


# The acme mode against the test-bed's Pebble (inventory/group_vars/testbed/single.yml):
# run on the host, the certificate served for SITE, verified against Pebble's issuing root
# alone (fetched from its management API; no host trusts it).
PEBBLE_API_CA = (
    Path(os.environ.get("NB_TESTBED_CACHE", "/var/cache/noticeboard-testbed")) / "pebble" / "ca.pem"
)
SERVED = """
import json, socket, ssl, sys, urllib.request
name, api_ca = sys.argv[1:3]
api = ssl.create_default_context(cadata=api_ca)
root = urllib.request.urlopen("https://pebble:15000/roots/0", context=api).read().decode()
with socket.create_connection(("127.0.0.1", 443), 10) as raw:
    with ssl.create_default_context(cadata=root).wrap_socket(raw, server_hostname=name) as tls:
        cert = tls.getpeercert()
print(json.dumps({"serial": cert["serialNumber"], "issuer": cert["issuer"]}))
"""
RENEWAL = "noticeboard-lb-acme-renew"


def served_certificate(pi) -> dict:
    out = pi.run(shlex.join(["python3", "-c", SERVED, SITE, PEBBLE_API_CA.read_text()]))
    assert out.rc == 0, out.stderr
    return json.loads(out.stdout)


def test_the_certificate_comes_from_the_acme_ca_and_renews_without_ansible(pi):
    issued = served_certificate(pi)
    assert "Pebble Intermediate" in json.dumps(issued["issuer"])
    timer = pi.service(f"{RENEWAL}.timer")
    assert timer.is_enabled and timer.is_running
    # What the timer starts, started now (Pebble's certificates are due at once).
    pid = pi.check_output("docker inspect -f '{{.State.Pid}}' %s", LB_CONTAINER)
    renewed = pi.run(f"systemctl start {RENEWAL}.service")
    assert renewed.rc == 0, pi.run(f"journalctl -u {RENEWAL} -n 30 --no-pager").stdout
    assert served_certificate(pi)["serial"] != issued["serial"]
    # Swapped in the running HAProxy: no restart of its container.
    assert pi.check_output("docker inspect -f '{{.State.Pid}}' %s", LB_CONTAINER) == pid
    assert via_proxy(pi, "GET", "/readyz").status == 200


def test_the_app_runs_in_slot_blue_and_publishes_no_port(pi):
    assert slots(pi) == {"active": "blue", "images": {"blue": f"{IMAGE}:v1"}}
    assert container_state(pi, "noticeboard-blue-1") == f"running {IMAGE}:v1"
    assert container_state(pi, "noticeboard-app-1") == "absent"
    # Only HAProxy publishes ports (80, 443, and its statistics on 127.0.0.1).
    published = pi.check_output("docker ps --format '{{.Names}} {{.Ports}}'").splitlines()
    assert [line for line in published if "->" in line and LB_CONTAINER not in line] == []
    # Nothing listens on the app's port on the host's own address.
    own = pi.check_output("hostname -I").split()[0]
    probe = (
        "import socket, sys; s = socket.socket(); s.settimeout(3);"
        " print(s.connect_ex((sys.argv[1], 8000)))"
    )
    assert pi.check_output("python3 -c %s %s", probe, own) != "0"
    # HAProxy: blue serves; green has no container, so its check fails (or it is in
    # maintenance once a switch has put it there).
    assert servers(pi)["blue"] == "UP"
    assert servers(pi)["green"] in ("DOWN", "MAINT")


def test_a_second_run_changes_nothing(pi):
    started = pi.check_output("docker inspect -f '{{.State.StartedAt}}' noticeboard-blue-1")
    run = converge()
    assert run.counter("noticeboard-pi") == 0, run.changed_tasks()
    assert pi.check_output("docker inspect -f '{{.State.StartedAt}}' noticeboard-blue-1") == started


def run_under_load(pi, tag: str, playbook: str, *extra: str) -> tuple[dict, dict, float]:
    """PLAYBOOK while the load runs; (load result, writes acknowledged, seconds)."""
    uploaded = dict(upload(pi, f"{tag}-before-{i}.bin", 4096 + 977 * i) for i in range(2))
    assert wrong_downloads(pi, uploaded) == {}
    with load(pi, last_event_id(pi), tag, STREAMS) as running:
        started = time.monotonic()
        done = run_playbook(playbook, *extra, ok=None)
        seconds = time.monotonic() - started
    result, streams = running.result, running.result["streams"]
    writes = {int(note_id): title for note_id, title in result["writes"]}
    summary = {
        "seconds": round(seconds, 1),
        "rc": done.returncode,
        **{k: v for k, v in result.items() if k not in ("writes", "uploads")},
        "writes": len(writes),
        "uploads": len(result["uploads"]),
    }
    print(f"{playbook} under load:", json.dumps(summary))
    if os.environ.get("NB_SINGLE_REPORT"):
        Path(os.environ["NB_SINGLE_REPORT"] + f".{playbook}.json").write_text(
            json.dumps(summary, indent=2) + "\n"
        )
    assert done.returncode == 0, done.tail()

    # The load ran through the whole switch, and not one request failed.
    assert result["failed"] == 0, result["failures"]
    assert writes and result["reads"] > 0 and result["uploads"], result["requests"]
    assert streams["opened"] == streams["clients"] == STREAMS, streams
    # Every acknowledged write is stored, and nothing else under its tag.
    assert stored_writes(pi, tag) == writes
    # Every stream got the event of every write, in order and once; each was closed by the
    # drain of the old slot and resumed (Last-Event-ID) on the new one.
    assert streams["missed"] == 0, streams["missed_sample"]
    assert streams["delivered"] == len(writes) * STREAMS, streams
    assert streams["not_increasing"] == 0, streams
    assert streams["resumed"] == STREAMS, streams
    # Attachments from before and during the switch download byte for byte.
    assert wrong_downloads(pi, uploaded | result["uploads"]) == {}
    return result, writes, seconds


@pytest.mark.timeout(1200)
def test_upgrade_under_load_switches_slots_without_a_failure(pi):
    assert slots(pi)["active"] == "blue"
    tag = f"upgrade-{uuid.uuid4().hex[:8]}"
    run_under_load(pi, tag, "upgrade", "-e", f"noticeboard_image_tag={UPGRADE_TAG}")
    # The new release serves from green; blue is stopped and kept (the image to go back to).
    assert slots(pi) == {
        "active": "green",
        "images": {"blue": f"{IMAGE}:v1", "green": f"{IMAGE}:{UPGRADE_TAG}"},
    }
    assert container_state(pi, "noticeboard-green-1") == f"running {IMAGE}:{UPGRADE_TAG}"
    assert container_state(pi, "noticeboard-blue-1") == f"exited {IMAGE}:v1"
    assert servers(pi) == {"blue": "MAINT", "green": "UP"}


def test_a_restart_of_haproxy_keeps_the_serving_slot(pi):
    # The runtime API's states live in memory; the server-state file carries them over:
    # without it the stopped slot would come back as DOWN instead of in maintenance.
    serving = slots(pi)["active"]
    want = {name: "UP" if name == serving else "MAINT" for name in ("blue", "green")}
    assert servers(pi) == want
    pi.check_output("docker restart %s", LB_CONTAINER)
    assert wait_servers(pi, want) == want
    assert via_proxy(pi, "GET", "/readyz").status == 200


@pytest.mark.timeout(1200)
def test_rollback_under_load_switches_back_without_a_failure(pi):
    record = json.loads(pi.file(f"{APP_DIR}/release-previous.json").content_string)
    assert record["image"] == f"{IMAGE}:v1"
    tag = f"rollback-{uuid.uuid4().hex[:8]}"
    # The previous release runs on the expanded schema: back without a restore, so
    # without downtime (with a restore the app stops while the data is swapped).
    run_under_load(pi, tag, "rollback", "-e", "noticeboard_rollback_restore=never")
    assert slots(pi)["active"] == "blue"
    assert container_state(pi, "noticeboard-blue-1") == f"running {IMAGE}:v1"
    assert container_state(pi, "noticeboard-green-1").startswith("exited ")
    assert servers(pi) == {"blue": "UP", "green": "MAINT"}
    assert pi.file(f"{APP_DIR}/release-rolled-back.json").exists
