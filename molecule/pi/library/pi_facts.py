#!/usr/bin/python
"""Facts of a Raspberry Pi running 64-bit Raspberry Pi OS, for a container that is not one.

The pi scenario lists this module after ``ansible.builtin.setup`` in
``ansible_facts_modules`` (serially: ``ansible_facts_parallel: false``), so that every
play's fact gathering ends with these values winning over what setup found. Only what a
container cannot be is overridden: the machine and the distribution. Raspberry Pi OS
(64-bit) calls itself Debian in /etc/os-release, so Ansible reports it as Debian.
"""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: pi_facts
short_description: Pretend the host is a Raspberry Pi 4 with Raspberry Pi OS 13 (arm64).
description:
  - Returns architecture, machine and distribution facts of a Raspberry Pi, and the
    device-tree model a real Pi reports, as C(ansible_facts). Test use only.
options: {}
author: noticeboard maintainers
"""

PI_FACTS = {
    "architecture": "aarch64",
    "machine": "aarch64",
    "distribution": "Debian",
    "distribution_major_version": "13",
    "distribution_version": "13",
    "distribution_release": "trixie",
    "os_family": "Debian",
    # What /proc/device-tree/model says on the board this host stands in for.
    "device_model": "Raspberry Pi 4 Model B Rev 1.5",
}


def main() -> None:
    module = AnsibleModule(argument_spec={}, supports_check_mode=True)
    # setup returns its facts with the ansible_ prefix; the same keys make the merge
    # replace its values rather than add a second spelling.
    module.exit_json(changed=False, ansible_facts={f"ansible_{k}": v for k, v in PI_FACTS.items()})


if __name__ == "__main__":
    main()
