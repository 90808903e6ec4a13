"""The collection as shipped: role docs in step with their specs, a clean Galaxy artifact."""

from __future__ import annotations

import subprocess
import sys
import tarfile
from pathlib import Path

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


def test_galaxy_artifact_holds_the_collection_and_nothing_else(tmp_path):
    subprocess.run(
        [str(BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(tmp_path)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    (artifact,) = tmp_path.glob("noticeboard-deploy-*.tar.gz")
    with tarfile.open(artifact) as tar:
        top = {name.split("/")[0] for name in tar.getnames()}
    assert {"roles", "playbooks", "inventories", "meta", "MANIFEST.json"} <= top
    leaked = top & {
        "src",
        "tests",
        "molecule",
        "docker",
        "frontend",
        "scripts",
        ".ci",
        "bench",
        "noxfile.py",
        "pyproject.toml",
        ".venv",
        ".ansible",
        "build",
    }
    assert not leaked
