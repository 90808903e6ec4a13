"""`--check` on a host without Docker, put in the `app` group (issue 18's fresh row).

The host is bare as a new one would be once test_uninstall.py has taken Docker away (as
uninstall.yml leaves it: no engine, no CLI, no daemon.json, nothing of the app; only
the engine's data directory stays). That costs no second host and no second converge.
site.yml (with the deploy.yml it imports) says what it would install and warns that the
app's changes cannot be predicted before Docker exists; upgrade.yml, backup.yml,
restore.yml and rollback.yml refuse because nothing is deployed. None of them changes
anything. Files run in name order: this one comes after test_uninstall.py.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from verifylib import ensure, group_inventory, host_state, hosts_in, run_playbook

HOST = hosts_in("all")[0]
# What the app role needs to get past its checks; the image is the app scenario's.
APP = {
    "noticeboard_secret_key": "molecule-only-6d2b8f0e4a1c9e7b3f5d2a8c6e0b4f1a",
    "noticeboard_admin_password": "engine-owner-only-5d1c",
    "noticeboard_image": "registry:5000/nb-molecule/noticeboard",
    "noticeboard_image_tag": "v1",
    "noticeboard_registry_insecure": True,
}
STATE = ("/opt/noticeboard", "/var/backups/noticeboard", "/etc/docker", "/usr/local/sbin")


def check(playbook: str, ok: bool):
    return run_playbook(
        playbook,
        extra_vars=APP,
        check_mode=True,
        inventories=[group_inventory(HOST, ["app"])],
        ok=ok,
    )


@pytest.fixture
def without_docker(host) -> None:
    """No Docker on the host: uninstall.yml took it away (test_uninstall.py did)."""
    ensure(
        "a host without Docker",
        lambda: host.run("command -v docker").rc != 0,
        lambda: run_playbook(
            "uninstall",
            extra_vars={"noticeboard_uninstall_docker": True},
            inventories=[group_inventory(HOST, ["app", "db", "lb"])],
        ),
    )


@pytest.mark.timeout(900)
def test_check_mode_before_docker_says_what_it_would_install_and_refuses_the_rest(
    host, without_docker
):
    before = host_state(host, *STATE)
    # Check runs change nothing, so they may run side by side.
    with ThreadPoolExecutor(5) as pool:
        site = pool.submit(check, "site", True)
        refused = {
            name: pool.submit(check, name, False)
            for name in ("upgrade", "backup", "restore", "rollback")
        }
        site, refused = site.result(), {name: run.result() for name, run in refused.items()}
    assert host_state(host, *STATE) == before

    said = site.said
    assert f"Check mode: {HOST} has no Docker yet; this run would install docker.io," in said
    assert "cannot be predicted before Docker exists" in said
    # The app role's own warning (the YAML callback doubles the apostrophe in "app's").
    assert f"WARNING: check mode on {HOST} before Docker is installed: the app" in said
    assert "Run without --check to install Docker (playbooks/site.yml), then preview again." in said
    assert site.counter(HOST) > 0
    for name, run in refused.items():
        assert "nothing is deployed" in run.said.lower(), (name, run.said[-3000:])
        assert run.counter(HOST) == 0, (name, run.changed_tasks())
