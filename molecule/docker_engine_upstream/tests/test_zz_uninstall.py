"""The same uninstall checks on Docker from Docker's repository (docker-ce and friends).

Named to sort last: files run in name order, and this one takes Docker away.
"""

import importlib.util
import os

_spec = importlib.util.spec_from_file_location(
    "docker_engine_uninstall",
    os.path.join(os.path.dirname(__file__), "../../docker_engine/tests/test_uninstall.py"),
)
_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_module)

test_uninstall_removes_docker_when_asked_and_keeps_its_data = (
    _module.test_uninstall_removes_docker_when_asked_and_keeps_its_data
)
