"""The one entry point for linting, testing, building the docs and benchmarking.

Every session prepares what it needs through ``scripts/testbed.py`` (Docker engine,
base images, registry) so that a bare machine needs nothing done by hand. Each pytest
run writes a JUnit file under ``build/junit/`` that ``scripts/test-all`` sums into one
closing line.
"""

from __future__ import annotations

import os
import re
import sys
import sysconfig
from importlib.metadata import version
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent
JUNIT = ROOT / "build" / "junit"
TESTBED = [sys.executable, str(ROOT / "scripts" / "testbed.py")]

# Sessions with python=False use the tools installed beside nox (.venv/bin), also when
# nox is started by its full path without activating that venv.
os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["lint", "tests", "image", "molecule", "docs"]

DEV_REQUIREMENTS = str(ROOT / "requirements" / "dev.txt")
APP_REQUIREMENTS = str(ROOT / "requirements" / "app.txt")


def _pytest(session: nox.Session, name: str, *args: str) -> None:
    JUNIT.mkdir(parents=True, exist_ok=True)
    session.run(
        "pytest",
        f"--junitxml={JUNIT / name}.xml",
        "-o",
        f"junit_suite_name={name}",
        *args,
        *session.posargs,
    )


def _testbed(session: nox.Session, *args: str) -> None:
    session.run(*TESTBED, *args, external=True)


def _frontend(session: nox.Session) -> None:
    """Build the page's assets with the lock file's exact packages."""
    frontend = str(ROOT / "frontend")
    session.run("npm", "ci", "--no-audit", "--no-fund", "--prefix", frontend, external=True)
    session.run("npm", "run", "build", "--prefix", frontend, external=True)


# The lowest ansible-core meta/runtime.yml claims and the one requirements/dev.txt brings:
# the collection is checked with both (the sanity sessions below).
_FLOOR = re.search(r'requires_ansible: ">=([0-9.]+)"', (ROOT / "meta" / "runtime.yml").read_text())
SANITY_HOME = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "noticeboard-sanity"
ANSIBLE_CORE = {"floor": _FLOOR.group(1) if _FLOOR else "", "pinned": version("ansible-core")}


@nox.session(python=False)
def lint(session: nox.Session) -> None:
    """Linters (scripts/lint.py), then the sanity sessions with both ansible-cores."""
    session.run(sys.executable, str(ROOT / "scripts" / "lint.py"), *session.posargs)
    for label in ANSIBLE_CORE:
        session.notify(f"sanity({label})", posargs=[])


@nox.session
@nox.parametrize("core", list(ANSIBLE_CORE.values()), ids=list(ANSIBLE_CORE))
def sanity(session: nox.Session, core: str) -> None:
    """ansible-test sanity and playbook syntax on the installed artifact (run by lint)."""
    if not core:
        session.error('meta/runtime.yml: no requires_ansible ">=X.Y.Z" to take the floor from')
    # distlib for galaxy.yml's manifest, at the version the tooling pins.
    pins = Path(DEV_REQUIREMENTS).read_text().splitlines()
    distlib = next(line for line in pins if line.startswith("distlib=="))
    session.install(f"ansible-core=={core}", distlib)
    session.run(
        "python",
        str(ROOT / "scripts" / "sanity.py"),
        env={
            # ansible-test's per-test virtualenvs (keyed by their requirements, so both
            # sessions and every checkout on this machine share them) and pip's cache.
            "NB_SANITY_HOME": str(SANITY_HOME),
            # community.docker, community.crypto and ansible.posix: the tooling's.
            "NB_DEPENDENCY_COLLECTIONS": sysconfig.get_paths()["purelib"],
        },
    )


@nox.session
def tests(session: nox.Session) -> None:
    """The application against real SQLite, MariaDB, PostgreSQL and Chromium."""
    session.install("-r", APP_REQUIREMENTS)
    session.install("--no-deps", "-e", ".")
    session.install("-r", str(ROOT / "requirements" / "test.txt"))
    _frontend(session)
    _pytest(session, "tests", "tests/app")


@nox.session(python=False)
def image(session: nox.Session) -> None:
    """Build the image offline, run it and both compose files, amd64 and arm64."""
    # trixie is the image's base; trixie-arm64 the base of the emulated arm64 build.
    _testbed(session, "up", "--images", "trixie,trixie-arm64")
    _pytest(
        session,
        "image",
        "tests/image",
        "tests/testbed",
        "-p",
        "no:cacheprovider",
        "--durations=15",
    )


MOLECULE_HOSTS = "systemd-host,systemd-host-bookworm,docker-host"


@nox.session(python=False)
def molecule_images(session: nox.Session) -> None:
    """The Molecule session's host images and every scenario's images, built ahead.

    scripts/test-all runs this beside the app and image tests, while cores are idle; the
    Molecule session then finds them in the cache (it builds them itself when run alone).
    """
    _testbed(session, "up", "--images", MOLECULE_HOSTS)
    session.run(sys.executable, str(ROOT / "tests" / "molecule" / "images.py"), external=True)


@nox.session(python=False)
def molecule(session: nox.Session) -> None:
    """Every Molecule scenario, or the ones named after ``--``."""
    _testbed(session, "up", "--images", MOLECULE_HOSTS)
    JUNIT.mkdir(parents=True, exist_ok=True)
    session.run(
        "pytest",
        "-v",
        "--durations=0",
        f"--junitxml={JUNIT / 'molecule'}.xml",
        "-o",
        "junit_suite_name=molecule",
        # Each scenario has its own hosts; side by side they share the machine's cores
        # while one waits on apt, pulls or health checks. MOLECULE_JOBS=1 runs them in turn.
        "-n",
        os.environ.get("MOLECULE_JOBS", "3"),
        # One scenario at a time per worker, in the longest-first order of the list.
        "--dist",
        "load",
        "--maxschedchunk",
        "1",
        "tests/molecule",
        # Scenarios named after `--`, else those in MOLECULE_SCENARIOS, else all.
        env={
            "MOLECULE_SCENARIOS": ",".join(session.posargs)
            or os.environ.get("MOLECULE_SCENARIOS", "")
        },
    )
    # Every host booted systemd: the machine's own cgroup mount must be as it was.
    _testbed(session, "mounts")


@nox.session(python=False)
def docs(session: nox.Session) -> None:
    """Sphinx with warnings as errors, a check of internal links, and the docs' commands run."""
    _testbed(session, "packages", "graphviz")
    out = ROOT / "build" / "docs"
    session.run("sphinx-build", "-W", "--keep-going", "-b", "html", "docs", str(out / "html"))
    session.run(
        "sphinx-build",
        "-W",
        "-b",
        "linkcheck",
        "-D",
        "linkcheck_ignore=^https?://",
        "docs",
        str(out / "linkcheck"),
    )
    _testbed(session, "up", "--images", "trixie", "--no-docker-repo")
    _pytest(session, "docs", "tests/docs")


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks; results go to bench/results.json with the command that made them."""
    session.install("-r", APP_REQUIREMENTS)
    # The rolling group runs a Molecule scenario (molecule, testinfra, ansible).
    session.install("-r", DEV_REQUIREMENTS)
    session.install("--no-deps", "-e", ".")
    # The registry, the host images (the rolling group's Molecule hosts, the deploy
    # group's rollout-local host) and the arm64 base of the emulated build.
    _testbed(
        session,
        "up",
        "--images",
        "trixie,trixie-arm64,systemd-host,docker-host",
        "--no-docker-repo",
    )
    session.run("python", str(ROOT / "bench" / "run.py"), *session.posargs)
