"""What a user would do instead of upgrade.yml, measured on the same host under the same load.

bench/single.py copies this file into its copy of the single scenario as
``tests/test_upgrade_by_plain_compose.py``, so it runs after the scenario's own upgrade
test (file order), on the same host, with the same load generator and settings. It is
not part of the suite: it proves nothing about the collection, it measures the
alternative.

The alternative is the production compose file as the repository ships it
(docker/docker-compose.prod.yml, SQLite, the app's port published), in a project of its
own beside the host's board: started on release v1, then, while the load runs against
its port, upgraded the way its README says, by setting NOTICEBOARD_IMAGE to the new
release and running ``docker compose pull && docker compose up -d``. The figures: the
seconds until the new release answers /readyz, and what the load generator counted.
The report goes to ``$NB_SINGLE_REPORT.plain-compose.json`` in the shape of the single
test's, also when an assertion fails.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest
from conftest import CONTAINER, IMAGE, UPGRADE_TAG
from conftest import load as single_load
from test_single import STREAMS
from verifylib import admin_credentials, wait_ready

# This file's place once copied: molecule/<scenario>/tests/ of a checkout copy.
COMPOSE_FILE = Path(__file__).resolve().parents[3] / "docker" / "docker-compose.prod.yml"
PROJECT = "plain"
WORKDIR = f"/root/{PROJECT}"
PORT = 8081
URL = f"http://127.0.0.1:{PORT}"
READY_WITHIN_S = 180


def compose(pi, *args: str) -> subprocess.CompletedProcess:
    """``docker compose ARGS`` in the project's directory inside the host, as a user types it."""
    command = shlex.join(["docker", "compose", *args])
    return pi.run(f"cd {WORKDIR} && {command}")


def write_env(pi, tag: str, secret_key: str) -> None:
    env = (
        f"COMPOSE_PROJECT_NAME={PROJECT}\nNOTICEBOARD_IMAGE={IMAGE}:{tag}\n"
        f"SECRET_KEY={secret_key}\nNOTICEBOARD_PUBLISH=127.0.0.1:{PORT}\n"
    )
    pi.run(f"printf %s {shlex.quote(env)} > {WORKDIR}/.env")


def test_upgrade_by_plain_compose_pull_and_up_under_the_same_load(pi):
    credentials = admin_credentials()
    pi.run(f"mkdir -p {WORKDIR}/secrets")
    subprocess.run(
        ["docker", "cp", str(COMPOSE_FILE), f"{CONTAINER}:{WORKDIR}/docker-compose.yml"],
        check=True,
    )
    with tempfile.NamedTemporaryFile("w", suffix=".secret") as secret:
        secret.write(credentials["password"])
        secret.flush()
        os.chmod(secret.name, 0o644)
        subprocess.run(
            ["docker", "cp", secret.name, f"{CONTAINER}:{WORKDIR}/secrets/admin_password"],
            check=True,
        )
    key = secrets.token_urlsafe(48)
    write_env(pi, "v1", key)
    try:
        started = compose(pi, "up", "-d", "--wait")
        assert started.rc == 0, started.stderr
        tag = f"plain-{uuid.uuid4().hex[:8]}"
        # The single test's load, with its settings, against this project's port.
        load = single_load(pi, 0, tag, STREAMS, url=URL, site=f"127.0.0.1:{PORT}")
        with load as running:
            began = time.monotonic()
            write_env(pi, UPGRADE_TAG, key)
            pulled = compose(pi, "pull")
            upped = compose(pi, "up", "-d")
            command_s = time.monotonic() - began
            ready = wait_ready(pi, f"{URL}/readyz", within=READY_WITHIN_S, interval=0.5)
            came_back = ready.status == 200
            seconds = time.monotonic() - began
            # Two seconds of load on the new release: its first answers count too.
            time.sleep(2)
        result = running.result
        summary = {
            "seconds": round(seconds, 1),
            "command_seconds": round(command_s, 1),
            "rc": pulled.rc or upped.rc,
            "ready_again": came_back,
            **{k: v for k, v in result.items() if k not in ("writes", "uploads")},
            "writes": len(result["writes"]),
            "uploads": len(result["uploads"]),
        }
        print("plain compose upgrade under load:", json.dumps(summary))
        if os.environ.get("NB_SINGLE_REPORT"):
            Path(os.environ["NB_SINGLE_REPORT"] + ".plain-compose.json").write_text(
                json.dumps(summary, indent=2) + "\n"
            )
        # The measurement holds only if the upgrade happened and the load ran through it.
        assert pulled.rc == 0 and upped.rc == 0, pulled.stderr + upped.stderr
        assert came_back, f"the new release did not answer /readyz within {READY_WITHIN_S} s"
        running_image = pi.check_output(
            "docker inspect -f '{{.Config.Image}}' %s", f"{PROJECT}-app-1"
        )
        assert running_image == f"{IMAGE}:{UPGRADE_TAG}"
        assert result["writes"] and result["reads"] > 0, result["requests"]
    finally:
        compose(pi, "down", "--volumes", "--remove-orphans")
        pi.run(f"rm -rf {WORKDIR}")


pytestmark = pytest.mark.timeout(1200)
