# Copyright: noticeboard maintainers
# MIT License (see LICENSE)
"""The address other hosts reach an inventory host by, chosen in one place."""

from __future__ import annotations

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

DOCUMENTATION = r"""
name: host_address
short_description: The address by which other hosts reach an inventory host
version_added: 0.2.0
author: noticeboard maintainers
description:
  - Picks, for one inventory host, the address that configuration on another host should
    use (a load balancer's server line, a database's grants and firewall).
  - In order, the first of these that is known wins - the host's own value of the variable
    named by O(override), when that variable is set for it; its default IPv4 address from
    gathered facts; its C(ansible_host); its inventory hostname.
options:
  _input:
    description: The inventory hostname.
    type: str
    required: true
  hostvars:
    description: Ansible's C(hostvars).
    type: dict
    required: true
  override:
    description:
      - Name of a per-host variable that, when set for the host, is taken as is.
      - Empty for none.
    type: str
    default: ""
  names:
    description:
      - When false, stop after the facts - return an empty string instead of falling
        back to C(ansible_host) or the inventory hostname. Use it to ask whether facts
        still have to be gathered.
    type: bool
    default: true
"""

EXAMPLES = r"""
- name: Where each app host is reached, unless it sets its own noticeboard_lb_backend_address
  ansible.builtin.debug:
    msg: "{{ item }}: {{ item | noticeboard.deploy.host_address(hostvars, own) }}"
  loop: "{{ groups['app'] }}"
  vars:
    own: noticeboard_lb_backend_address

- name: Gather facts only for hosts whose address is not known yet
  ansible.builtin.setup:
    gather_subset: ['!all', network]
  delegate_to: "{{ item }}"
  delegate_facts: true
  loop: "{{ groups['app'] }}"
  when: item | noticeboard.deploy.host_address(hostvars, names=false) == ''
"""

RETURN = r"""
_value:
  description: The chosen address or name; empty only with O(names=false) and no facts.
  type: str
"""


def _fact_address(facts: object) -> str:
    if not isinstance(facts, Mapping):
        return ""
    ipv4 = facts.get("default_ipv4")
    if not isinstance(ipv4, Mapping):
        return ""
    return str(ipv4.get("address") or "")


def host_address(host: str, hostvars: Mapping, override: str = "", names: bool = True) -> str:
    if not isinstance(host, str) or not host:
        raise AnsibleFilterError(f"host_address: expects an inventory hostname, got {host!r}")
    try:
        own = hostvars[host]
    except KeyError:
        raise AnsibleFilterError(f"host_address: {host!r} is not in the inventory") from None
    if override and override in own:
        return str(own[override])
    address = _fact_address(own.get("ansible_facts"))
    if address or not names:
        return address
    return str(own["ansible_host"]) if "ansible_host" in own else host


class FilterModule:
    """noticeboard.deploy's filters."""

    def filters(self):
        return {"host_address": host_address}
