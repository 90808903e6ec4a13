"""playbooks/maintenance.yml: the board's read-only maintenance mode on and off from
Ansible, on every app host (this host, put in the `app` group), with the app's own
command line. On: writes are refused with the app's read-only answer, reads work, the
app says it is on, a second `on` changes nothing and `--check` of `off` only says it
would switch; off: writes work again. A value other than on/off is refused before the
lock is taken.
"""

from __future__ import annotations

import json

from verifylib import group_inventory, hosts_in, http, run_playbook, session_cookie

HOST = hosts_in("all")[0]
URL = "http://127.0.0.1:8080"


def maintenance(state: str, *extra: str, ok: bool = True):
    return run_playbook(
        "maintenance",
        *extra,
        extra_vars={"noticeboard_maintenance": state},
        inventories=[group_inventory(HOST, ["app"])],
        ok=ok,
    )


def status(host) -> dict:
    """The app's own word, from the running container."""
    return json.loads(
        host.check_output("docker exec noticeboard-app-1 noticeboard maintenance status --json")
    )


def write(host):
    return http(host, "POST", f"{URL}/api/notes", {"body": "written around maintenance"})


def test_maintenance_on_refuses_writes_serves_reads_and_off_accepts_them(host):
    # Signed in while writes work: signing in is a write, refused during maintenance.
    session_cookie(host, URL)
    try:
        assert maintenance("on").counter(HOST) > 0
        assert status(host)["maintenance"] is True
        refused = write(host)
        assert refused.status == 503, (refused.status, refused.body)
        assert refused.body["maintenance"] is True
        assert http(host, "GET", f"{URL}/api/notes?limit=1").status == 200
        assert http(host, "GET", f"{URL}/readyz").body["maintenance"] is True

        # Already on: nothing to do.
        assert maintenance("on").counter(HOST) == 0
        # --check says it would switch off, and does not.
        preview = maintenance("off", "--check")
        assert preview.counter(HOST) > 0
        assert "would be switched off" in preview.said
        assert status(host)["maintenance"] is True
    finally:
        off = maintenance("off")
    assert off.counter(HOST) > 0
    assert status(host)["maintenance"] is False
    assert write(host).status == 201


def test_a_state_other_than_on_or_off_is_refused_before_the_lock(host):
    refused = maintenance("maybe", ok=False)
    assert "-e noticeboard_maintenance=on" in refused.said
    assert "Take the lock" not in refused.output
    assert status(host)["maintenance"] is False
