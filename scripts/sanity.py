#!/usr/bin/env python3
"""Check the collection as it ships, with the ansible-core this interpreter has.

Builds the Galaxy artifact, installs it into a temporary
ansible_collections/noticeboard/deploy with this ansible-core's ansible-galaxy (as a
user would), then runs there:

- `ansible-test sanity` on the installed tree, so it sees what ships and not src/,
  tests/ or molecule/;
- `ansible-playbook --syntax-check` of every shipped playbook by its fully qualified
  name, which loads the roles the plays name (their tasks, static imports and argument
  specs) and resolves every module against the dependency collections.

The dependency collections come from the directories in NB_DEPENDENCY_COLLECTIONS (the
tooling venv's `ansible` package bundles them): the ones every other test runs with.

ansible-test makes a virtualenv per sanity test under ~/.ansible/test and fetches its pip
bootstrap script from a host this project's machines cannot reach, so HOME is
NB_SANITY_HOME (a cache the noxfile names) and the bootstrap script cached there is a
stand-in that takes pip from PyPI instead.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

# Run by ansible-test with the sanity virtualenv's python and pip's own arguments:
# pip from the interpreter's bundled wheel (ensurepip, in a child process so that its
# PIP_CONFIG_FILE=/dev/null does not hide the machine's pip configuration), then the
# packages ansible-test asked for. get-pip.py's own options have no pip equivalent.
GET_PIP_STANDIN = """\
import subprocess, sys
subprocess.run([sys.executable, "-m", "ensurepip"], check=True)
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", *args], check=True)
"""


def run(cmd: list[str], **kwargs) -> None:
    print("sanity: $", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, **kwargs)


def pip_bootstrap_version() -> str:
    import ansible_test._internal.python_requirements as requirements

    found = re.search(r"pip='([0-9.]+)'", Path(requirements.__file__).read_text())
    if not found:
        sys.exit("sanity: cannot tell which pip this ansible-test bootstraps")
    return found.group(1)


def main() -> int:
    home = Path(os.environ["NB_SANITY_HOME"])
    cache = home / ".ansible" / "test" / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    standin = cache / f"get_pip_{pip_bootstrap_version().replace('.', '_')}.py"
    standin.write_text(GET_PIP_STANDIN)

    with tempfile.TemporaryDirectory(prefix="nb-sanity-") as tmp:
        # An empty ansible.cfg, not the repository's: that one finds the collection through
        # a link to the checkout, which is what this check must not see.
        config = Path(tmp) / "ansible.cfg"
        config.write_text("")
        env = {**os.environ, "HOME": str(home), "ANSIBLE_CONFIG": str(config)}
        out = Path(tmp) / "dist"
        run(
            [str(BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(out)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
        )
        (artifact,) = out.glob("noticeboard-deploy-*.tar.gz")
        collections = Path(tmp) / "collections"
        run(
            [
                str(BIN / "ansible-galaxy"),
                "collection",
                "install",
                "--no-deps",
                "-p",
                str(collections),
                str(artifact),
            ],
            cwd=tmp,
            env=env,
            stdout=subprocess.DEVNULL,
        )
        installed = collections / "ansible_collections" / "noticeboard" / "deploy"

        started = time.monotonic()
        python = f"{sys.version_info.major}.{sys.version_info.minor}"
        run(
            [str(BIN / "ansible-test"), "sanity", "--python", python, "--color", "no"],
            cwd=installed,
            env=env,
        )
        print(f"sanity: ansible-test took {time.monotonic() - started:.1f} s", flush=True)

        paths = [str(collections), *os.environ["NB_DEPENDENCY_COLLECTIONS"].split(os.pathsep)]
        play_env = {**env, "ANSIBLE_COLLECTIONS_PATH": os.pathsep.join(paths)}
        for playbook in sorted((installed / "playbooks").glob("*.yml")):
            name = f"noticeboard.deploy.{playbook.stem}"
            if not playbook.stem.isidentifier():
                # Ansible resolves a collection's playbook only by a Python-identifier
                # name, so this one can only be run by its path.
                print(f"sanity: WARNING: {name} cannot be run by that name", flush=True)
                name = str(playbook)
            inventory = str(installed / "inventories" / "cluster")
            run(
                [str(BIN / "ansible-playbook"), "--syntax-check", "-i", inventory, name],
                cwd=tmp,
                env=play_env,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
