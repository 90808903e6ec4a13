"""Changing HAProxy's configuration with the load balancer's part of site.yml (limited
to the lb host and the role's tasks, as an operator re-applies it): a change is applied by
a reload, never a restart; the self-signed mode names the site; a configuration HAProxy
rejects is never written. The module starts from, and leaves, HAProxy as site.yml sets it
up (the acme mode, the inventory's health checks).
"""

from __future__ import annotations

import pytest
from conftest import (
    LB_DIR,
    LB_NAME,
    address,
    converge_lb,
    ensure_lb_as_site_made_it,
    group,
    haproxy_started_at,
    lb_as_site_made_it,
    served_by,
)
from verifylib import PlaybookRun, host_named

RENEWAL_TIMER = "/etc/systemd/system/noticeboard-lb-acme-renew.timer"


def config(lb) -> str:
    return lb.file(f"{LB_DIR}/config/haproxy.cfg").content_string


@pytest.fixture(scope="module")
def switched(lb) -> tuple[PlaybookRun, str]:
    """From HAProxy as site.yml sets it up, one run with a health-check change and the
    self-signed mode; that run and the container's start time before it. Afterwards the
    inventory's own settings again."""
    ensure_lb_as_site_made_it(lb)
    before = haproxy_started_at(lb)
    run = converge_lb(
        "-e", "noticeboard_lb_health_check_rise=3", "-e", "noticeboard_lb_tls_mode=self-signed"
    )
    yield run, before
    converge_lb()
    assert lb_as_site_made_it(lb)


@pytest.mark.timeout(1200)
def test_a_configuration_change_is_applied_by_a_reload_not_a_restart(lb, db, switched):
    run, started_before = switched
    assert "RUNNING HANDLER [noticeboard.deploy.loadbalancer : Reload HAProxy" in run.stdout
    assert " rise 3 " in config(lb)
    assert haproxy_started_at(lb) == started_before
    # A run limited to the lb host still writes each app host's address (from its facts).
    for name in group("app"):
        assert f"server {name} {address(host_named(name))}:8000" in config(lb)
    assert served_by(lb, db) == set(group("app"))


def test_the_self_signed_certificate_names_the_site(lb, switched):
    # Served since the switch; ACME renewals stopped with it.
    assert not lb.file(RENEWAL_TIMER).exists
    cert = lb.check_output(
        f"openssl x509 -in {LB_DIR}/config/certs/site.pem -noout "
        "-subject -issuer -ext subjectAltName"
    )
    assert f"subject=CN={LB_NAME}" in cert and f"issuer=CN={LB_NAME}" in cert
    assert f"DNS:{LB_NAME}" in cert and f"DNS:{group('lb')[0]}" in cert


@pytest.mark.timeout(1200)
def test_a_configuration_haproxy_rejects_is_never_written(lb):
    good = config(lb)
    # Preflight lets a rise of 0 through; HAProxy refuses it.
    run = converge_lb("-e", "noticeboard_lb_health_check_rise=0", ok=False)
    assert "failed to validate" in run.output and "'rise' has to be > 0" in run.output
    assert config(lb) == good
