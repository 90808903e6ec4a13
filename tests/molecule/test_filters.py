"""The collection's filter plugins, called as Ansible calls them (plugins/filter/)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError

ROOT = Path(__file__).resolve().parents[2]


def _plugin(kind: str, name: str):
    """The function a plugin file under plugins/KIND (filter, test) registers as NAME."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "plugins" / kind / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if kind == "filter":
        return module.FilterModule().filters()[name]
    return module.TestModule().tests()[name]


host_address = _plugin("filter", "host_address")

FACTS = {"default_ipv4": {"address": "10.0.0.5"}}
HOSTVARS = {
    "pinned": {"own_address": "192.0.2.9", "ansible_facts": FACTS, "ansible_host": "p.lan"},
    "gathered": {"ansible_facts": FACTS, "ansible_host": "g.lan"},
    "no-route": {"ansible_facts": {"default_ipv4": {}}, "ansible_host": "n.lan"},
    "named": {"ansible_facts": {}, "ansible_host": "db.lan"},
    "bare": {},
}


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("pinned", "192.0.2.9"),
        ("gathered", "10.0.0.5"),
        ("no-route", "n.lan"),
        ("named", "db.lan"),
        ("bare", "bare"),
    ],
)
def test_the_first_known_address_wins(host, expected):
    assert host_address(host, HOSTVARS, "own_address") == expected


def test_the_override_is_read_only_when_named():
    assert host_address("pinned", HOSTVARS) == "10.0.0.5"


def test_without_names_only_the_variable_or_the_facts_count():
    assert host_address("pinned", HOSTVARS, "own_address", names=False) == "192.0.2.9"
    assert host_address("gathered", HOSTVARS, names=False) == "10.0.0.5"
    assert host_address("named", HOSTVARS, names=False) == ""
    assert host_address("bare", HOSTVARS, names=False) == ""


def test_an_unknown_host_is_refused_by_name():
    with pytest.raises(AnsibleFilterError, match="'ghost' is not in the inventory"):
        host_address("ghost", HOSTVARS)


ip_network = _plugin("test", "ip_network")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("10.0.0.5", True),
        ("172.18.0.0/16", True),
        ("10.0.0.5/24", True),  # host bits set: the app accepts it as its network
        ("fd00::1", True),
        ("2001:db8::/32", True),
        ("sso.example.org", False),
        ("10.0.0.256", False),
        ("10.0.0.0/33", False),
        (" 10.0.0.5", False),
        ("10.0.0.5,10.0.0.6", False),
        ("", False),
        (None, False),
        (["10.0.0.5"], False),
        (167772165, False),
    ],
)
def test_ip_network_accepts_what_auth_proxy_trusted_accepts(value, expected):
    assert ip_network(value) is expected
