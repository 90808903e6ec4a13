"""The published-ports firewall (docker_engine_published_ports_allowed: [18080]): another
host reaches that published port and no other; the Docker host itself still reaches
both; the rules are back after a restart of Docker.

Files run in name order: this one comes before test_uninstall.py takes Docker away.
"""

from __future__ import annotations

import pytest
from verifylib import host_named, hosts_in, probe, wait_until

IMAGE = "registry:5000/testbed/debian:trixie"
DOCKER_HOST = hosts_in("docker_hosts")[0]
PROBE = hosts_in("probes")[0]
ALLOWED, OTHER = 18080, 18081
SCRIPT = "/usr/local/sbin/noticeboard-published-firewall"
# The image has no python3; its perl-base listens and greets each client.
LISTEN = (
    "perl -MIO::Socket::INET -e '$s = IO::Socket::INET->new(LocalPort => 8000, Listen => 5,"
    ' ReuseAddr => 1) or die; while ($c = $s->accept) { print $c "hello\\n"; close $c }\''
)


def address(name: str) -> str:
    """The host's address on the test network (not docker0's)."""
    return host_named(name).interface("eth0").addresses[0]


def reach(source: str, port: int) -> str:
    return probe(host_named(source), address(DOCKER_HOST), port, timeout=3)


@pytest.fixture(scope="module")
def listeners():
    """Two published containers on the Docker host, one on an allowed port; they come
    back by themselves when Docker restarts."""
    host = host_named(DOCKER_HOST)
    names = [f"nb-verify-port-{port}" for port in (ALLOWED, OTHER)]
    host.run("docker rm -f %s %s", *names)
    for name, port in zip(names, (ALLOWED, OTHER), strict=True):
        host.check_output(
            f"docker run -d --name {name} --restart always -p {port}:8000 {IMAGE} {LISTEN}"
        )
    for port in (ALLOWED, OTHER):
        wait_until(lambda p=port: reach(DOCKER_HOST, p).startswith("ok hello"), f"port {port}")
    yield host
    host.run("docker rm -f %s %s", *names)


def assert_only_the_allowed_port_is_reachable_from_outside():
    assert reach(PROBE, ALLOWED).startswith("ok hello")
    # Dropped, not refused: the probe waits in vain for an answer.
    assert reach(PROBE, OTHER).startswith("error TimeoutError")


def test_another_host_reaches_only_the_allowed_published_port(listeners):
    assert_only_the_allowed_port_is_reachable_from_outside()


def test_the_docker_host_itself_reaches_every_published_port(listeners):
    for port in (ALLOWED, OTHER):
        assert reach(DOCKER_HOST, port).startswith("ok hello")
        assert probe(listeners, "127.0.0.1", port, timeout=3).startswith("ok hello")


def test_the_rules_are_back_after_docker_restarts(listeners):
    listeners.check_output("systemctl restart docker")
    wait_until(lambda: reach(DOCKER_HOST, ALLOWED).startswith("ok hello"), "the container back")
    assert listeners.run(f"{SCRIPT} check").rc == 0
    assert listeners.service("noticeboard-published-firewall").is_enabled
    assert_only_the_allowed_port_is_reachable_from_outside()
