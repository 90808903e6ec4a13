"""playbooks/uninstall.yml on the load balancer: HAProxy's container, network, image and
directory go (it keeps no data), the app hosts behind it are left as they were, and the
role puts it back. Files run in name order: this one comes last.
"""

from __future__ import annotations

import json

import pytest
from verifylib import converge, host_named, hosts_in, run_playbook

LB = hosts_in("lb")[0]
APP1, APP2 = hosts_in("app")
LB_DIR = "/opt/noticeboard-lb"
PROJECT = "label=com.docker.compose.project=noticeboard-lb"
IMAGE = "registry:5000/testbed/haproxy-standin:3.0"


def leftovers(lb) -> str:
    return lb.check_output(
        f"docker ps --all --quiet --filter {PROJECT}; docker network ls --quiet --filter {PROJECT}"
    )


def installed(lb) -> bool:
    return lb.file(f"{LB_DIR}/compose.yml").exists


def backend_pid(host) -> str:
    return host.check_output("cat /run/nb-test-backend.pid")


@pytest.mark.timeout(600)
def test_uninstall_removes_haproxy_and_leaves_the_app_hosts_alone():
    lb, app1 = host_named(LB), host_named(APP1)
    backend_before = backend_pid(app1)
    if installed(lb):
        assert leftovers(lb)
        # --check reports and changes nothing.
        assert run_playbook("uninstall", check_mode=True).counter(LB) > 0
        assert installed(lb) and leftovers(lb)

        assert run_playbook("uninstall").counter(LB) > 0

    assert not lb.file(LB_DIR).exists
    assert leftovers(lb) == ""
    assert lb.run(f"docker image inspect {IMAGE}").rc != 0
    # Docker stays (its removal was not asked for); the app hosts' servers run on.
    assert lb.service("docker").is_running
    assert backend_pid(app1) == backend_before
    assert app1.run(f"kill -0 {backend_before}").rc == 0

    # Nothing is left to do: a second run changes nothing on any host.
    assert {row["changed"] for row in run_playbook("uninstall").recap.values()} == {0}


@pytest.mark.timeout(600)
def test_the_role_puts_haproxy_back():
    lb, client = host_named(LB), host_named(APP2)
    if not installed(lb):
        converge()
    lb_ip = lb.interface("eth0").addresses[0]
    served = {
        json.loads(client.check_output(f"nb-test-client get 'https://{lb_ip}/'"))["body"]["backend"]
        for _ in range(12)
    }
    assert served == {APP1, APP2}
