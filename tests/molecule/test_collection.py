"""The collection's sources: role docs in step with their specs, inventories, apt tasks.

What the Galaxy artifact holds is checked in test_artifact.py.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def test_role_defaults_specs_and_readmes_agree():
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "role-docs.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def _entry_points() -> dict[str, dict[str, dict]]:
    """Every role's argument specs: {role: {entry point: spec}}."""
    return {
        spec.parents[1].name: yaml.safe_load(spec.read_text())["argument_specs"]
        for spec in sorted(ROOT.glob("roles/*/meta/argument_specs.yml"))
    }


def _spec_options() -> set[str]:
    """Every option any entry point of any role declares."""
    return {
        name
        for entries in _entry_points().values()
        for body in entries.values()
        for name in body.get("options", {})
    }


def test_a_variable_several_roles_read_has_one_type_and_default():
    # An inventory sets noticeboard_dir once for every role that reads it; a role whose
    # spec defaulted it differently would act on another directory when it is not set.
    seen: dict[str, dict[tuple, list[str]]] = {}
    for role, entries in _entry_points().items():
        for entry, body in entries.items():
            for name, opt in body.get("options", {}).items():
                key = (opt.get("type", "str"), repr(opt.get("default")), bool(opt.get("required")))
                seen.setdefault(name, {}).setdefault(key, []).append(f"{role}:{entry}")
    shared = {name: kinds for name, kinds in seen.items() if len(kinds) > 1}
    assert not shared, f"declared differently by different entry points: {shared}"


def _inventory_variables(data: object) -> set[str]:
    """Variable names set anywhere in an inventory file: group_vars, host entries, vars."""
    found: set[str] = set()
    if isinstance(data, dict):
        for key, value in data.items():
            if isinstance(key, str) and key.startswith(("noticeboard_", "docker_engine_")):
                found.add(key)
            found |= _inventory_variables(value)
    elif isinstance(data, list):
        for item in data:
            found |= _inventory_variables(item)
    return found


@pytest.mark.parametrize(
    "inventory", sorted(p.name for p in (ROOT / "inventories").iterdir() if p.is_dir())
)
def test_every_inventory_variable_is_declared_by_a_role(inventory):
    # Ansible ignores a variable nobody reads, so a misspelt or retired name in a shipped
    # inventory would silently change nothing.
    declared = _spec_options()
    used: dict[str, set[str]] = {}
    for path in sorted((ROOT / "inventories" / inventory).rglob("*.yml")):
        for name in _inventory_variables(yaml.safe_load(path.read_text())):
            used.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    assert used, f"inventories/{inventory} sets no noticeboard_* or docker_engine_* variable"
    unknown = {name: sorted(paths) for name, paths in used.items() if name not in declared}
    assert not unknown, f"variables no role's argument spec declares: {unknown}"


def test_every_test_bed_override_is_declared_by_a_role():
    # The scenarios that load a shipped inventory change it only through these files; a
    # misspelt override would leave the shipped value in place without a word.
    declared = _spec_options()
    files = [
        path
        for path in [
            *(ROOT / "molecule" / "inventories").glob("*.yml"),
            *(ROOT / "molecule").glob("*/inventory/**/*.yml"),
        ]
        if not path.is_symlink() and not path.read_text().startswith("$ANSIBLE_VAULT")
    ]
    assert len(files) >= 3, files
    unknown = {
        str(path.relative_to(ROOT)): sorted(names - declared)
        for path in files
        if (names := _inventory_variables(yaml.safe_load(path.read_text()))) - declared
    }
    assert not unknown, f"overrides no role's argument spec declares: {unknown}"


def test_no_apt_task_can_trust_a_stamp_over_missing_lists():
    # A literal cache_valid_time lets apt skip reading package lists that a minimal image
    # deleted (its lists directory is new, so the cache looks fresh): the install then
    # fails with "No package matching". It must be 0 whenever something is to be installed.
    offenders = []
    for path in sorted(
        [
            *ROOT.glob("roles/**/*.yml"),
            *ROOT.glob("molecule/**/*.yml"),
            *ROOT.glob("playbooks/*.yml"),
        ]
    ):
        text = path.read_text()
        if "cache_valid_time" not in text:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            key, _, value = line.strip().partition(":")
            if key == "cache_valid_time" and value.strip().isdigit():
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


def _role_calls(data: object):
    """Every include_role/import_role in a parsed playbook or task file: (module args, vars)."""
    if isinstance(data, dict):
        for key in ("ansible.builtin.include_role", "ansible.builtin.import_role"):
            if key in data:
                yield data[key], data.get("vars", {})
        for value in data.values():
            yield from _role_calls(value)
    elif isinstance(data, list):
        for item in data:
            yield from _role_calls(item)


def _collection_yaml() -> list[Path]:
    return sorted([*ROOT.glob("playbooks/*.yml"), *ROOT.glob("roles/*/tasks/*.yml")])


def test_every_entry_point_a_caller_uses_has_an_argument_spec():
    # A tasks_from without a spec takes any variable, misspelt or not, without a word.
    specs = _entry_points()
    missing = []
    for path in _collection_yaml():
        for args, _ in _role_calls(yaml.safe_load(path.read_text())):
            role = args["name"].rsplit(".", 1)[-1]
            entry = Path(args.get("tasks_from", "main")).stem
            if entry not in specs.get(role, {}):
                missing.append(f"{path.relative_to(ROOT)}: {role} tasks_from {entry}")
    assert not missing, missing


def test_no_caller_sets_a_roles_private_variable():
    # Private (_noticeboard_*) names may change in any release; callers use the specs'.
    private = []
    for path in _collection_yaml():
        for args, role_vars in _role_calls(yaml.safe_load(path.read_text())):
            private += [
                f"{path.relative_to(ROOT)}: {args['name']} {name}"
                for name in role_vars or {}
                if name.startswith("_")
            ]
    assert not private, private


def _refusals(tasks: object):
    """Names of the tasks in a parsed task file that stop a run with their own message: an
    assert with a fail_msg or a fail with a msg, in blocks too."""
    for task in tasks if isinstance(tasks, list) else []:
        for key in ("block", "rescue", "always"):
            yield from _refusals(task.get(key))
        check = task.get("ansible.builtin.assert") or {}
        stop = task.get("ansible.builtin.fail") or {}
        if "fail_msg" in check or "msg" in stop:
            yield task["name"]


def _role_refusals(files: str = "*") -> set[tuple[str, str]]:
    """(role, task name) of every refusal in roles/*/tasks/FILES.yml."""
    return {
        (path.parts[-3], name)
        for path in ROOT.glob(f"roles/*/tasks/{files}.yml")
        for name in _refusals(yaml.safe_load(path.read_text()))
    }


def _troubleshooting_refusals() -> set[tuple[str, str]]:
    """(role, term) of the definition lists under the "Role ``X``" headings of
    docs/troubleshooting.rst."""
    lines = (ROOT / "docs" / "troubleshooting.rst").read_text().splitlines()
    found, role = set(), None
    for line, below in zip(lines, [*lines[1:], ""], strict=True):
        if below and set(below) <= set("=-~^") and len(below) >= len(line) > 0:
            role = line.split("``")[1] if line.startswith("Role ``") else None
        elif role and line and not line[0].isspace() and below.startswith("   "):
            found.add((role, line))
    return found


def test_every_refusal_is_in_the_troubleshooting_guide():
    # An operator who meets a refusal looks its task name up there: what it means, what to do.
    documented = _troubleshooting_refusals()
    refusals = _role_refusals()
    assert not refusals - documented, (
        f"not in docs/troubleshooting.rst: {sorted(refusals - documented)}"
    )
    assert not documented - refusals, f"no such task any more: {sorted(documented - refusals)}"


# Preflight refusals that bad inventory alone cannot reach on a bare host, each proven
# by the scenario that has what it needs.
REACHED_ELSEWHERE = {
    # The move runs the deployed image to learn its CLI level; the bare host has none.
    (
        "sqlite_to_mariadb",
        "Refuse a deployed image whose command line is older than the move needs",
    ),
    # Needs an engine older than Docker 25: docker_engine_upstream's Debian 12 stand-in
    # (molecule/docker_engine_upstream/tests/test_app_on_an_old_engine.py).
    ("app", "Refuse a health check start interval the engine cannot run"),
}


def test_every_preflight_refusal_has_a_bad_inventory_case():
    cases = yaml.safe_load((ROOT / "molecule" / "bad_inventory" / "cases.yml").read_text())["cases"]
    covered = {(case["role"], case["refusal"]) for case in cases}
    missing = _role_refusals("preflight") - covered - REACHED_ELSEWHERE
    assert not missing, f"no case in molecule/bad_inventory/cases.yml: {sorted(missing)}"
    roles = {path.parts[-3] for path in ROOT.glob("roles/*/meta/argument_specs.yml")}
    spec_refused = {case["role"] for case in cases if case["refusal"] == "argument spec"}
    # sqlite_to_mariadb's options are strings and paths, which take any value.
    assert roles - spec_refused <= {"sqlite_to_mariadb"}, sorted(roles - spec_refused)
