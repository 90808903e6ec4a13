"""Override gathered facts with the ones given, for cases about hosts a container is not.

A task of this action after fact gathering replaces, until the next one, the facts it
names (``architecture``, ``distribution``...) as setup would have reported them. An action
rather than a module: it runs on the controller, so a case that pretends costs no round
trip to the host.
"""

from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

DOCUMENTATION = r"""
action: pretend_facts
short_description: Replace some gathered facts for the rest of the play (tests only).
options:
  facts:
    description: Facts by name without the C(ansible_) prefix, for example C(architecture).
    type: dict
    required: true
author: noticeboard maintainers
"""


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        facts = self._task.args.get("facts")
        if not isinstance(facts, dict):
            raise AnsibleActionFail("pretend_facts needs facts: a mapping of fact names to values")
        result.update(changed=False, ansible_facts={f"ansible_{k}": v for k, v in facts.items()})
        return result
