"""playbooks/uninstall.yml on the load balancer: HAProxy's container, network, image and
directory go (it keeps no data), the app hosts in front of which it ran are left as they
were, and the role puts it back. Files run in name order: this one comes last.
"""

from __future__ import annotations

import os
import re
import subprocess

import pytest
from test_loadbalancer import APP1, APP2, INVENTORY, LB, LB_DIR, SCENARIO, _host, backends_serving

PLAYBOOK = os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "playbooks", "uninstall.yml")
PROJECT = "label=com.docker.compose.project=noticeboard-lb"
IMAGE = "registry:5000/testbed/haproxy-standin:3.0"


def run(playbook: str, *extra: str) -> dict[str, int]:
    """Run a playbook against the scenario's hosts; each host's changed= count."""
    done = subprocess.run(
        ["ansible-playbook", "-i", INVENTORY, playbook, *extra],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    return {
        name: int(count)
        for name, count in re.findall(r"^(\S+)\s+: ok=\d+\s+changed=(\d+)", done.stdout, re.M)
    }


def leftovers(lb) -> str:
    return lb.check_output(
        f"docker ps --all --quiet --filter {PROJECT}; docker network ls --quiet --filter {PROJECT}"
    )


def installed(lb) -> bool:
    return lb.file(f"{LB_DIR}/compose.yml").exists


@pytest.mark.timeout(600)
def test_uninstall_removes_haproxy_and_leaves_the_app_hosts_alone():
    lb, app1 = _host(LB), _host(APP1)
    backend_before = app1.check_output("pgrep -f nb-test-backend")
    if installed(lb):
        assert leftovers(lb)
        # --check reports and changes nothing.
        assert run(PLAYBOOK, "--check")[LB] > 0
        assert installed(lb) and leftovers(lb)

        assert run(PLAYBOOK)[LB] > 0

    assert not lb.file(LB_DIR).exists
    assert leftovers(lb) == ""
    assert lb.run(f"docker image inspect {IMAGE}").rc != 0
    # Docker stays (not asked to go), and the app hosts were not the load balancer's.
    assert lb.service("docker").is_running
    assert app1.check_output("pgrep -f nb-test-backend") == backend_before

    # Nothing is left to do: a second run changes nothing anywhere.
    assert set(run(PLAYBOOK).values()) == {0}


@pytest.mark.timeout(600)
def test_the_role_puts_haproxy_back():
    lb = _host(LB)
    if not installed(lb):
        run(str(SCENARIO / "converge.yml"))
    lb_ip = lb.interface("eth0").addresses[0]
    assert set(backends_serving(_host(APP2), lb_ip)) == {APP1, APP2}
