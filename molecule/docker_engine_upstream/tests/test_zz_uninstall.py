"""The docker_engine scenario's uninstall check on Docker from Docker's repository.

Named to sort last: files run in name order, and this one takes Docker away.
"""

import importlib.util
from pathlib import Path

_path = Path(__file__).resolve().parents[2] / "docker_engine" / "tests" / "test_uninstall.py"
_spec = importlib.util.spec_from_file_location("docker_engine_uninstall", _path)
_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_module)

test_uninstall_removes_docker_when_asked_and_keeps_its_data = (
    _module.test_uninstall_removes_docker_when_asked_and_keeps_its_data
)
