"""Write down which task refused each bad-inventory case, and what it said.

The playbook the scenario's test generates runs every case as a block whose vars carry
``bad_inventory_case``, and rescues its failure. This callback notes, per host and case,
the first task that failed in it and its message (for a loop, the failed items'
messages too), and writes them as JSON to the file named by ``BAD_INVENTORY_RECORD``
when the run ends: ``{"started": [case, ...], "refused": {host: {case: {...}}}}``. A
callback rather than a task per case keeps the run to the tasks the cases need.
"""

from __future__ import annotations

import json
import os

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = r"""
name: bad_inventory_record
type: aggregate
short_description: Record which task refused each bad-inventory case (tests only).
description:
  - Writes the record to the file named by the environment variable BAD_INVENTORY_RECORD.
requirements:
  - enabled in callbacks_enabled
"""


def _case(task) -> str | None:
    """The case a task runs in: the vars of its block, or of a block around its include."""
    node = task
    while node is not None:
        found = (getattr(node, "vars", None) or {}).get("bad_inventory_case")
        if found:
            return str(found)
        node = getattr(node, "_parent", None)
    return None


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "bad_inventory_record"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._started: list[str] = []
        self._refused: dict[str, dict[str, dict]] = {}

    def v2_playbook_on_task_start(self, task, is_conditional):
        case = _case(task)
        if case and case not in self._started:
            self._started.append(case)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        case = _case(result._task)
        if case is None or ignore_errors:
            return
        said = result._result
        msgs = [str(said.get("msg", ""))] + [
            str(item.get("msg", "")) for item in said.get("results", []) if item.get("failed")
        ]
        refused = self._refused.setdefault(result._host.get_name(), {})
        refused.setdefault(case, {"task": result._task.name, "msgs": msgs})

    def v2_playbook_on_stats(self, stats):
        with open(os.environ["BAD_INVENTORY_RECORD"], "w", encoding="utf-8") as out:
            json.dump({"started": self._started, "refused": self._refused}, out, indent=1)
