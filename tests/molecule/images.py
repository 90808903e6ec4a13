"""Every image the Molecule scenarios pull, built once per run before any scenario starts.

Scenarios used to build what they needed in their own prepare step, side by side on a
small machine, several of them the same app image. Here each image is built once, in
dependency order, and pushed to the test registry (127.0.0.1:5000, `registry:5000` from
the hosts); a scenario's prepare step only sets up its hosts.

    python3 tests/molecule/images.py [SCENARIO ...]     (default: every scenario's images)

The Molecule session calls this before its first scenario (tests/molecule/conftest.py).
Builds hit BuildKit's cache when nothing changed, so a second run takes seconds.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TESTBED = [sys.executable, str(ROOT / "scripts" / "testbed.py")]
BUILD = [sys.executable, str(ROOT / "docker" / "build.py"), "--testbed"]
REGISTRY = "127.0.0.1:5000"
APP = f"{REGISTRY}/nb-molecule/noticeboard"
UPGRADE_FILES = ROOT / "molecule" / "cluster" / "files" / "upgrade"


def _push(*tags: str) -> list[list[str]]:
    return [["docker", "push", "--quiet", tag] for tag in tags]


def _retag(source: str, *tags: str) -> list[list[str]]:
    return [["docker", "tag", source, tag] for tag in tags]


def _derived(tag: str, context: Path, dockerfile: str = "Dockerfile") -> list[list[str]]:
    """A release made from v1 by a small Dockerfile (a migration added, a fault built in)."""
    return [
        [
            "docker", "build", "--quiet", "--build-arg", f"BASE={APP}:v1",
            "--file", str(context / dockerfile), "--tag", f"{APP}:{tag}", str(context),
        ],
        *_push(f"{APP}:{tag}"),
    ]  # fmt: skip


def _standin(name: str, tag: str) -> list[list[str]]:
    """A stand-in image from Debian's packages (docker/standins/NAME), pushed as testbed/."""
    local = f"local/{name}-standin:{tag}"
    remote = f"{REGISTRY}/testbed/{name}-standin:{tag}"
    return [
        [
            *TESTBED, "build", str(ROOT / "docker" / "standins" / name), "--quiet",
            "--build-arg", "BASE=local/debian:trixie", "--tag", local,
        ],
        *_retag(local, remote),
        *_push(remote),
    ]  # fmt: skip


# Each image: the commands that make and push it, and the images it is built from.
IMAGES: dict[str, tuple[list[str], list[list[str]]]] = {
    # v1 is this checkout. v2 is the same build under a new tag (an upgrade with no
    # migration); `migrate` is migrate_sqlite's; app_archive ships it as a `docker save`.
    "app": (
        [],
        [
            [*BUILD, "--tag", f"{APP}:v1", "--push"],
            *_retag(f"{APP}:v1", f"{APP}:v2", f"{APP}:migrate", "noticeboard-archive:v1"),
            *_push(f"{APP}:v2", f"{APP}:migrate"),
        ],
    ),
    # v1 plus an expand-only migration: `v3` in the app scenario, `upgrade-v2` in cluster.
    "app-next": (
        ["app"],
        [
            *_derived("v3", ROOT / "molecule" / "app" / "files" / "v3"),
            *_retag(f"{APP}:v3", f"{APP}:upgrade-v2"),
            *_push(f"{APP}:upgrade-v2"),
        ],
    ),
    # v1 under a label of its own: a release before v2 that is not v2's image, for the app
    # scenario's two upgrades (v1b -> v2 -> v3), after which pruning removes it.
    "app-prior": (["app"], _derived("v1b", ROOT / "molecule" / "app" / "files" / "v1b")),
    # The cluster drills' faulty releases.
    "app-faulty": (
        ["app"],
        [
            *_derived("upgrade-failing-migration", UPGRADE_FILES, "failing-migration.Dockerfile"),
            *_derived("upgrade-never-ready", UPGRADE_FILES, "never-ready.Dockerfile"),
        ],
    ),
    # The image as a Pi pulls it: one tag, a manifest list for amd64 and arm64.
    "app-pi": (
        [],
        [
            [*TESTBED, "binfmt"],
            [*TESTBED, "images", "trixie-arm64"],
            [*BUILD, "--platform", "linux/amd64,linux/arm64", "--tag", f"{APP}:pi", "--push"],
        ],
    ),
    "mariadb": ([], _standin("mariadb", "11.8")),
    "haproxy": ([], _standin("haproxy", "3.0")),
    # Any single-platform tag: bad_inventory reads its manifest, nothing runs it.
    "amd64-only": (
        [],
        [
            *_retag("local/debian:trixie", f"{REGISTRY}/nb-molecule/amd64-only:trixie"),
            *_push(f"{REGISTRY}/nb-molecule/amd64-only:trixie"),
        ],
    ),
}

SCENARIOS: dict[str, list[str]] = {
    "app": ["app", "app-next", "app-prior"],
    "app_archive": ["app"],
    "bad_inventory": ["amd64-only"],
    "cluster": ["app", "app-next", "app-faulty", "mariadb", "haproxy"],
    "migrate_sqlite": ["app", "mariadb"],
    "pi": ["app-pi", "haproxy"],
    "single": ["app", "app-next", "haproxy"],
}


def wanted(scenarios: list[str]) -> list[str]:
    """The images these scenarios need, each after the images it is built from."""
    order: list[str] = []

    def visit(name: str) -> None:
        if name not in order:
            for base in IMAGES[name][0]:
                visit(base)
            order.append(name)

    for scenario in scenarios:
        for name in SCENARIOS.get(scenario, []):
            visit(name)
    return order


def build(scenarios: list[str], log) -> dict[str, float]:
    """Build and push; the seconds each image took. Raises CalledProcessError on a failure."""
    took: dict[str, float] = {}
    for name in wanted(scenarios):
        started = time.monotonic()
        for cmd in IMAGES[name][1]:
            log.write(f"$ {' '.join(cmd)}\n")
            log.flush()
            subprocess.run(
                cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                check=True,
            )  # fmt: skip
        took[name] = time.monotonic() - started
    return took


if __name__ == "__main__":
    chosen = sys.argv[1:] or sorted(SCENARIOS)
    unknown = sorted(set(chosen) - {p.parent.name for p in ROOT.glob("molecule/*/molecule.yml")})
    if unknown:
        sys.exit(f"images.py: unknown scenario(s) {unknown}")
    for image, seconds in build(chosen, sys.stdout).items():
        print(f"images.py: {image} {seconds:.0f} s", flush=True)
