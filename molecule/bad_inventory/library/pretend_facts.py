#!/usr/bin/python
"""Override gathered facts with the ones given, for cases about hosts a container is not.

A task of this module after fact gathering replaces, for the rest of the play, the facts
it names (``architecture``, ``distribution``...) as setup would have reported them.
"""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: pretend_facts
short_description: Replace some gathered facts for the rest of the play (tests only).
options:
  facts:
    description: Facts by name without the C(ansible_) prefix, for example C(architecture).
    type: dict
    required: true
author: noticeboard maintainers
"""


def main() -> None:
    module = AnsibleModule(argument_spec={"facts": {"type": "dict", "required": True}})
    facts = {f"ansible_{k}": v for k, v in module.params["facts"].items()}
    module.exit_json(changed=False, ansible_facts=facts)


if __name__ == "__main__":
    main()
