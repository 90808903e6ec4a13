"""AUTH_MODE=proxy through the app role (noticeboard_auth_mode=proxy): the app believes the
user and group headers of a single sign-on proxy only when the peer that connects to it is
in noticeboard_auth_proxy_trusted, whatever X-Forwarded-For claims; from a trusted peer the
user is who the header says, a member, or an admin in the group `noticeboard-admins`.

The host's own client stands for the proxy: a request from the host to the published port
reaches the app from Docker's bridge gateway of the compose network. The test converges
twice with overrides and leaves the scenario's own configuration (accounts mode, on the
release that ran before) behind it, so it runs alone or among the others.
"""

from __future__ import annotations

import pytest
from conftest import APP_URL, ensure_release
from verifylib import Response, converge, ensure, http

# TEST-NET-1 (RFC 5737): a proxy that never connects here.
ELSEWHERE = "192.0.2.1"
ADMINS = "noticeboard-admins"
# The app role's compose project is `noticeboard`; Compose names its network after it.
NETWORK = "noticeboard_default"


def mode(host) -> str | None:
    """The AUTH_MODE the running app reports (GET /api/session), None when it does not
    answer."""
    answer = http(host, "GET", f"{APP_URL}/api/session", signed_out=True)
    return answer.body.get("mode") if isinstance(answer.body, dict) else None


def as_sent(host, method: str, path: str, headers: dict[str, str], body=None) -> Response:
    """A request with exactly HEADERS (no session cookie), as the proxy would send it."""
    return http(host, method, APP_URL + path, body, headers=headers, signed_out=True)


def running_tag(host) -> str | None:
    """The image tag of the app's container, None when there is none."""
    state = host.run("docker inspect -f '{{.Config.Image}}' noticeboard-app-1")
    return state.stdout.strip().rpartition(":")[2] if state.rc == 0 else None


def gateway(host) -> str:
    """Where a request from the host to the published port comes from, as the app sees it:
    the compose network's gateway on the host (Docker's userland proxy connects from
    there, and so does its NAT without one)."""
    return host.check_output(
        "docker network inspect -f '{{range .IPAM.Config}}{{.Gateway}}{{end}}' %s", NETWORK
    )


def converge_proxy(tag: str, trusted: list[str]) -> None:
    converge(
        extra_vars={
            "noticeboard_image_tag": tag,
            "noticeboard_auth_mode": "proxy",
            "noticeboard_auth_proxy_trusted": trusted,
        }
    )


@pytest.fixture
def tag_then_own_configuration(host):
    """The release the host runs (v1 when none runs), and after the test the scenario's
    own configuration on it again: accounts mode, no proxy trusted."""
    if running_tag(host) is None:
        ensure_release(host, "v1")
    tag = running_tag(host)
    yield tag
    ensure(
        f"the scenario's own configuration (accounts mode) on release {tag}",
        lambda: mode(host) == "accounts",
        lambda: converge(extra_vars={"noticeboard_image_tag": tag}),
    )


# Three runs of converge.yml, each restarting the app: minutes on a busy machine.
@pytest.mark.timeout(1800)
def test_the_user_header_is_believed_from_a_trusted_peer_only(host, tag_then_own_configuration):
    tag, peer = tag_then_own_configuration, gateway(host)
    assert peer and peer != ELSEWHERE, peer

    # A proxy elsewhere is trusted; the host's requests do not come from it, and saying
    # they do in X-Forwarded-For changes nothing.
    converge_proxy(tag, [ELSEWHERE])
    assert mode(host) == "proxy"
    for forged in ({}, {"X-Forwarded-For": ELSEWHERE}):
        refused = as_sent(host, "GET", "/api/notes", {"Remote-User": "alice", **forged})
        assert refused.status == 401, (forged, refused.status, refused.text[:300])

    # The peer itself trusted: the header names the user, and without it nobody is there.
    converge_proxy(tag, [peer])
    assert mode(host) == "proxy"
    alice = {"Remote-User": "alice"}
    listed = as_sent(host, "GET", "/api/notes", alice)
    assert listed.status == 200, listed.text[:300]
    who = as_sent(host, "GET", "/api/session", alice).body
    assert (who["username"], who["role"]) == ("alice", "member"), who
    nobody = as_sent(host, "GET", "/api/notes", {})
    assert nobody.status == 401, nobody.text[:300]

    # A member posts but may not delete; the same user in the admins' group may.
    posted = as_sent(host, "POST", "/api/notes", alice, {"body": "posted through the proxy"})
    assert posted.status == 201, posted.text[:300]
    note = f"/api/notes/{posted.body['id']}"
    assert as_sent(host, "DELETE", note, alice).status == 403
    admin = {**alice, "Remote-Groups": f"staff, {ADMINS}"}
    who = as_sent(host, "GET", "/api/session", admin).body
    assert (who["username"], who["role"]) == ("alice", "admin"), who
    assert as_sent(host, "DELETE", note, admin).status == 204
