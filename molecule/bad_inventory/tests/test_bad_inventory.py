"""Each bad input is refused before any change, with a message naming what to fix.

The cases are ../cases.yml. One ansible-playbook run tries them all, a block/rescue per
case, and writes down which task refused each and what it said; the tests below read that
record, one test per case, and compare the host before and after the whole run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
import yaml
from verifylib import EPHEMERAL, SCENARIO, PlaybookRun, host_named, run_playbook

HOST = "nb-mol-bad_inventory"
TWIN = f"{HOST}-twin"  # twin-inventory.yml: the same container under a second name
SPEC = yaml.safe_load((SCENARIO / "cases.yml").read_text())
CASES = SPEC["cases"]
# Ansible's own task, which validates an entry point's meta/argument_specs.yml.
ARGUMENT_SPEC_TASK = "Validating arguments against arg spec"

# A Docker CLI for the cases that need one, unpacked from Debian's packages into a
# directory outside the snapshot and put on those cases' PATH only: installed with apt it
# would be there for every case, and the cases without it prove that a host without
# Docker is refused. DOCKER_CONFIG picks the Compose plugin: the real one, or one that
# answers `compose version` with an old version and hands everything else on.
CLI_DIR = "/root/nb-bad-inventory-cli"
CLI_PACKAGES = "docker-cli docker-compose"
REAL_PLUGIN = f"{CLI_DIR}/root/usr/libexec/docker/cli-plugins/docker-compose"
OLD_COMPOSE = "2.12.2"
FAKE_PLUGIN_SCRIPT = f"""#!/bin/sh
if [ "$1" = compose ] && [ "$2" = version ]; then echo {OLD_COMPOSE}; exit 0; fi
exec {REAL_PLUGIN} "$@"
"""
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CLI_ENVIRONMENT = {
    kind: {
        "PATH": f"{CLI_DIR}/root/usr/bin:" + SYSTEM_PATH,
        "DOCKER_CONFIG": f"{CLI_DIR}/{kind}",
    }
    for kind in ("real", "old")
}

# What a refusal could have changed, cheaply: the files under these trees (type, size,
# mode, owner, mtime), the top of /var/lib and /var/backups, the installed packages.
SNAPSHOT = r"""
find /etc /opt /srv /usr/local -xdev -printf '%p %y %s %m %u %T@\n' | sort
ls -la --time-style=+%s /var/lib /var/backups
dpkg-query -W -f '${Package} ${Version} ${db:Status-Abbrev}\n'
"""


def _case_block(case: dict) -> dict:
    """One case: include the role with the case's variables. callback_plugins/ notes
    what refused it; the rescue only lets the next case run."""
    role = case["role"]
    wanted = {**SPEC["baselines"][role], **case.get("vars", {})}
    for name in case.get("drop", []):
        wanted.pop(name)
    include: dict = {"name": f"noticeboard.deploy.{role}"}
    if "tasks_from" in case:
        include["tasks_from"] = case["tasks_from"]
    if "docker_cli" in case:
        include["apply"] = {"environment": CLI_ENVIRONMENT[case["docker_cli"]]}
    block = {
        "name": f"Case {case['id']}",
        "vars": {"bad_inventory_case": case["id"]},
        "block": [
            {"name": "Include the role", "ansible.builtin.include_role": include, "vars": wanted}
        ],
        "rescue": [{"name": "Go on with the next case", "ansible.builtin.meta": "noop"}],
    }
    if "pretend" in case:
        block["block"].insert(0, {"name": "Pretend", "pretend_facts": {"facts": case["pretend"]}})
        real = {k: f"{{{{ bad_inventory_real_facts[{k!r}] }}}}" for k in case["pretend"]}
        block["always"] = [{"name": "Stop pretending", "pretend_facts": {"facts": real}}]
    return block


def _playbook() -> list[dict]:
    plays = []
    for twin in (False, True):
        cases = [c for c in CASES if bool(c.get("twin")) == twin]
        plays.append(
            {
                "name": "Bad inventory cases" + (" with two app hosts" if twin else ""),
                "hosts": f"{HOST}:{TWIN}" if twin else HOST,
                # What the roles read: architecture, distribution, service manager.
                "gather_subset": ["min"],
                "tasks": [
                    {
                        "name": "Keep the facts that cases pretend to be otherwise",
                        "ansible.builtin.set_fact": {
                            "bad_inventory_real_facts": "{{ ansible_facts }}"
                        },
                    },
                    *map(_case_block, cases),
                ],
            }
        )
    return plays


@dataclass
class Attempt:
    run: PlaybookRun
    started: list[str]
    refused: dict[str, dict[str, dict]]
    before: str
    after: str


@pytest.fixture(scope="module")
def target():
    return host_named(HOST)


@pytest.fixture(scope="module")
def docker_cli(target):
    target.run_test(
        f"rm -rf {CLI_DIR} && mkdir -p {CLI_DIR}/real/cli-plugins {CLI_DIR}/old/cli-plugins"
        f" && cd {CLI_DIR} && apt-get update -qq && apt-get download -qq {CLI_PACKAGES}"
        " && for deb in *.deb; do dpkg-deb -x $deb root; done"
    )
    target.run_test(f"ln -s {REAL_PLUGIN} {CLI_DIR}/real/cli-plugins/docker-compose")
    fake = f"{CLI_DIR}/old/cli-plugins/docker-compose"
    target.run_test("printf '%%s' %s > %s && chmod 755 %s", FAKE_PLUGIN_SCRIPT, fake, fake)
    for kind, version in (("real", None), ("old", OLD_COMPOSE)):
        env = " ".join(f"{k}={v}" for k, v in CLI_ENVIRONMENT[kind].items())
        found = target.check_output(f"env {env} docker compose version --short")
        assert found == (version or found) and found, (kind, found)
    assert target.run("command -v docker").rc != 0, "the host itself must have no Docker CLI"
    yield
    target.run_test(f"rm -rf {CLI_DIR}")


@pytest.fixture(scope="module")
def attempted(target, docker_cli) -> Attempt:
    record = EPHEMERAL / "bad-inventory-record.json"
    record.unlink(missing_ok=True)
    playbook = EPHEMERAL / "bad-inventory-cases.yml"
    playbook.write_text(yaml.safe_dump(_playbook(), sort_keys=False))
    before = target.check_output(SNAPSHOT)
    run = run_playbook(
        playbook,
        inventories=[SCENARIO / "twin-inventory.yml"],
        env={
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_ACTION_PLUGINS": str(SCENARIO / "action_plugins"),
            "ANSIBLE_CALLBACK_PLUGINS": str(SCENARIO / "callback_plugins"),
            "ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.profile_tasks,bad_inventory_record",
            "BAD_INVENTORY_RECORD": str(record),
        },
        ok=True,
    )
    after = target.check_output(SNAPSHOT)
    done = json.loads(record.read_text())
    return Attempt(run, done["started"], done["refused"], before, after)


def test_the_case_ids_are_unique():
    ids = [c["id"] for c in CASES]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_bad_input_is_refused_naming_what_to_fix(attempted, case):
    assert case["id"] in attempted.started, f"the case never ran: {attempted.run.tail()}"
    done = attempted.refused.get(HOST, {}).get(case["id"])
    assert done is not None, "nothing refused this input"
    said = " ".join(" ".join(m.split()) for m in done["msgs"])
    if case["refusal"] == "argument spec":
        assert done["task"].startswith(ARGUMENT_SPEC_TASK), (done["task"], said)
    else:
        assert done["task"] == case["refusal"], said
    for text in case["names"]:
        assert text in said, said
    if case.get("twin"):
        assert attempted.refused[TWIN][case["id"]] == done


def test_no_case_changed_anything(attempted):
    for name in (HOST, TWIN):
        assert attempted.run.counter(name, "changed") == 0, attempted.run.changed_tasks()
        assert attempted.run.counter(name, "failed") == 0, attempted.run.tail()
    assert attempted.before.splitlines() == attempted.after.splitlines()


def test_nothing_was_installed_or_written(target, attempted):
    assert not target.file("/opt/noticeboard").exists
    assert not target.file("/etc/docker").exists
    assert not target.package("docker.io").is_installed
    assert not target.package("docker-cli").is_installed
