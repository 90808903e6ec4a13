"""amd64 and arm64 images in one manifest list; the arm64 one runs under emulation."""

from __future__ import annotations

import json
import os

import httpx
import pytest
from imagetools import (
    REGISTRY,
    RUN_ID,
    TEST_REPO,
    build_image,
    docker_cli,
    host_port,
    new_secret_key,
    sh,
    wait_http,
)

PLATFORMS = ["linux/amd64", "linux/arm64"]

# Run inside each image as root: Debian's python3 as apt would have left it, although its
# packages were configured without their byte-compilation (docker/debian-python.sh made
# the .pyc files on the build machine). Prints one JSON object.
INTERPRETER_STATE = r"""
import importlib.util, json, os, pathlib, struct, subprocess, sys
roots = [pathlib.Path(os.__file__).parent, pathlib.Path("/usr/share/python3")]
checked, bad = 0, []
for root in roots:
    for src in root.rglob("*.py"):
        if {"site-packages", "dist-packages", "__pycache__"} & set(src.parts):
            continue
        pyc = pathlib.Path(importlib.util.cache_from_source(str(src)))
        try:
            head = pyc.read_bytes()[:16]
        except FileNotFoundError:
            bad.append(f"no .pyc for {src}")
            continue
        st = src.stat()
        want = importlib.util.MAGIC_NUMBER + struct.pack(
            "<3I", 0, int(st.st_mtime) & 0xFFFFFFFF, st.st_size & 0xFFFFFFFF)
        if head != want:
            bad.append(f"stale .pyc for {src}")
        checked += 1
run = lambda *cmd: subprocess.run(cmd, capture_output=True, text=True).stdout
print(json.dumps({
    "checked": checked,
    "bad": bad[:20],
    "interpreter_is_elf": open(os.path.realpath(sys.executable), "rb").read(4) == b"\x7fELF",
    "diversions": [l for l in run("dpkg-divert", "--list").splitlines() if "python" in l],
    "audit": run("dpkg", "--audit"),
    "manual": sorted(p for p in run("apt-mark", "showmanual").split() if "python" in p),
}))
"""


@pytest.fixture(scope="module")
def pushed() -> str:
    try:
        httpx.get(f"http://{REGISTRY}/v2/", timeout=10).raise_for_status()
    except httpx.HTTPError as exc:
        pytest.fail(f"the test registry does not answer at {REGISTRY} ({exc})")
    ref = f"{REGISTRY}/{TEST_REPO}:multi-{RUN_ID}"
    build_image(ref, "--platform", ",".join(PLATFORMS), "--push")
    yield ref
    for arch in ("amd64", "arm64"):
        sh(docker_cli(), "image", "rm", f"{ref}-{arch}", check=False)
    sh(docker_cli(), "image", "rm", ref, check=False)


def test_the_tag_lists_both_platforms(pushed: str) -> None:
    out = sh(
        docker_cli(),
        "manifest",
        "inspect",
        "--insecure",
        pushed,
        env={**os.environ, "DOCKER_CLI_EXPERIMENTAL": "enabled"},
    ).stdout
    manifests = json.loads(out)["manifests"]
    found = sorted(f"{m['platform']['os']}/{m['platform']['architecture']}" for m in manifests)
    assert found == PLATFORMS


def test_the_arm64_image_answers_healthz_under_emulation(containers, pushed: str) -> None:
    sh(docker_cli(), "pull", "--platform", "linux/arm64", pushed)
    arch = sh(docker_cli(), "image", "inspect", "-f", "{{.Architecture}}", pushed).stdout.strip()
    assert arch == "arm64"
    container = containers.run(
        pushed,
        platform="linux/arm64",
        environment={"SECRET_KEY": new_secret_key(), "GUNICORN_WORKERS": "1"},
        ports={"8000/tcp": ("127.0.0.1", None)},
    )
    machine = container.exec_run(["uname", "-m"])
    response = wait_http(f"http://127.0.0.1:{host_port(container)}/healthz", timeout=600)
    assert response.json() == {"status": "alive"}
    assert machine.output.decode().strip() == "aarch64"


@pytest.mark.parametrize("platform", PLATFORMS)
def test_the_interpreter_is_installed_as_apt_would_leave_it(pushed: str, platform: str) -> None:
    out = sh(
        docker_cli(),
        "run",
        "--rm",
        "--platform",
        platform,
        "--user",
        "0",
        "--entrypoint",
        "python3",
        pushed,
        "-c",
        INTERPRETER_STATE,
    ).stdout
    state = json.loads(out)
    assert state["bad"] == []
    assert state["checked"] > 500  # the standard library, not an empty directory
    assert state["interpreter_is_elf"], "the byte-compilation shim was left in place"
    assert state["diversions"] == []
    assert state["audit"] == ""
    assert state["manual"] == ["python3"]
