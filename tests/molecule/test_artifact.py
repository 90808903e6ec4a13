"""The Galaxy artifact holds the collection, all of it and nothing else.

What ships is written down here on its own, not read from galaxy.yml's manifest, so a
directive that takes in too much or leaves something out fails: every file in the
tarball must be on this list, and every file on it must be in the tarball.
"""

from __future__ import annotations

import filecmp
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path, PurePosixPath

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

# Trees that ship whole: every file git tracks under them.
SHIPPED_TREES = (
    "roles",
    "plugins",
    "playbooks",
    "meta",
    "inventories/pi",
    "inventories/cluster",
    # ansible-test sanity's ignore files: it reads them from the installed collection.
    "tests/sanity",
)
README = "docs/collection/README.md"
CHANGELOG = "docs/collection/CHANGELOG.md"
SHIPPED_FILES = ("LICENSE", README, CHANGELOG, "changelogs/changelog.yaml")
# Written by ansible-galaxy into every artifact.
GENERATED = ("MANIFEST.json", "FILES.json")


def _tracked(*paths: str) -> set[str]:
    out = subprocess.run(
        ["git", "ls-files", "-z", "--", *paths],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {path for path in out.split("\0") if path}


@pytest.fixture(scope="module")
def artifact(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("artifact")
    subprocess.run(
        [str(BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(out)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    (path,) = out.glob("noticeboard-deploy-*.tar.gz")
    return path


def test_artifact_holds_exactly_the_allowed_files(artifact):
    assert _tracked(*SHIPPED_FILES) == set(SHIPPED_FILES), "a file meant to ship is not in git"
    expected = _tracked(*SHIPPED_TREES) | set(SHIPPED_FILES) | set(GENERATED)
    with tarfile.open(artifact) as tar:
        members = tar.getmembers()
    files = {member.name for member in members if not member.isdir()}
    unexpected = sorted(files - expected)
    missing = sorted(expected - files)
    assert not unexpected and not missing, f"unexpected: {unexpected}; missing: {missing}"
    # Directories only as the files' parents: nothing empty, nothing stray.
    dirs = {member.name for member in members if member.isdir()}
    parents = {str(p) for name in files for p in PurePosixPath(name).parents if str(p) != "."}
    assert dirs == parents, f"stray directories: {sorted(dirs - parents)}"


def test_galaxy_shows_the_collection_readme(artifact):
    # The repository's README.md opens with scripts the artifact does not contain.
    with tarfile.open(artifact) as tar:
        manifest = json.load(tar.extractfile("MANIFEST.json"))
    assert manifest["collection_info"]["readme"] == README


def test_rendered_changelog_is_up_to_date(tmp_path):
    # antsibull-changelog writes the rendered file from changelogs/changelog.yaml; a hand
    # edit of either, or a release without rendering, would ship two different stories.
    shutil.copy(ROOT / "galaxy.yml", tmp_path)
    shutil.copytree(ROOT / "changelogs", tmp_path / "changelogs")
    (tmp_path / CHANGELOG).parent.mkdir(parents=True)
    done = subprocess.run(
        [str(BIN / "antsibull-changelog"), "generate"],
        cwd=tmp_path,
        # It asks ansible-doc for the collection's plugins when it has no cache of them.
        env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert filecmp.cmp(tmp_path / CHANGELOG, ROOT / CHANGELOG, shallow=False), (
        "run `antsibull-changelog generate` and commit the result"
    )
