# Copyright: noticeboard maintainers
# MIT License (see LICENSE)
"""Whether a value is an IP address or network, as the app's AUTH_PROXY_TRUSTED reads it."""

from __future__ import annotations

import ipaddress

DOCUMENTATION = r"""
name: ip_network
short_description: Whether a value is an IPv4 or IPv6 address or network
version_added: 0.3.0
author: noticeboard maintainers
description:
  - True for one address (C(10.0.0.5), C(fd00::1)) or one network in CIDR notation
    (C(172.18.0.0/16)); host bits in a network are allowed (C(10.0.0.5/24)), as the app
    allows them in C(AUTH_PROXY_TRUSTED).
  - False for anything else - host names, lists, ranges, empty strings, non-strings.
options:
  _input:
    description: The value to test.
    type: raw
    required: true
"""

EXAMPLES = r"""
- name: Refuse a trusted proxy that is not an address or network
  ansible.builtin.assert:
    that: noticeboard_auth_proxy_trusted | reject('noticeboard.deploy.ip_network') | list == []
"""

RETURN = r"""
_value:
  description: Whether the value is an address or network.
  type: bool
"""


def ip_network(value: object) -> bool:
    if not isinstance(value, str) or not value or value != value.strip():
        return False
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False
    return True


class TestModule:
    """noticeboard.deploy's tests."""

    def tests(self):
        return {"ip_network": ip_network}
