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
