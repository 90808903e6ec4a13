#!/usr/bin/env python3
"""Build the noticeboard image for one or more platforms, optionally push a manifest list.

Usage::

    docker/build.py [--tag REF] [--platform P[,P...]] [--target runtime|dev]
                    [--base IMAGE | --base PLATFORM=IMAGE ...] [--build-base IMAGE]
                    [--testbed] [--push] [--version V] [--revision R] [--source URL]
                    [--build-arg NAME=VALUE ...] [--no-cache] [--context DIR] [--json]

Examples::

    # amd64 image in the local store, on the test-bed's Debian base
    docker/build.py --testbed --tag noticeboard:dev

    # v1 for amd64 and arm64 in the test registry, joined into one manifest list
    docker/build.py --testbed --platform linux/amd64,linux/arm64 \\
        --tag 127.0.0.1:5000/noticeboard:v1 --push

What it does:

* Each platform is built with BuildKit (``docker buildx build --load`` when the buildx
  plugin exists, else Debian's 20.10 CLI with its built-in BuildKit), with the
  machine's CA bundle as build secret ``ca`` when the file exists
  (``NB_CA_BUNDLE``, default ``/etc/ssl/certs/ca-certificates.crt``).
* One platform: the image is tagged ``REF`` (and pushed with ``--push``).
* Several platforms need ``--push``, because a local image store holds one
  architecture per tag: each is tagged ``REF-<arch>`` (e.g. ``...:v1-arm64``), pushed,
  and ``REF`` becomes a manifest list of them (``docker manifest create/push
  --insecure``, so a plain-HTTP test registry works).
* ``--base`` sets the build argument ``BASE`` (runtime and venv stages) for every
  platform, ``--base linux/arm64=IMAGE`` for one. ``--build-base`` is the image the
  front end and the wheel are built on (the build machine's architecture).
  ``--testbed`` means: bases ``local/debian:trixie`` and, for arm64,
  ``local/debian-arm64:trixie``, as made by ``scripts/testbed.py``.
* ``--context`` builds another checkout (e.g. a copy with a change, for benchmarks);
  ``--no-cache`` ignores the layer cache (pip, npm and apt download caches stay).
* Labels: ``--version`` defaults to pyproject's version, ``--revision`` to
  ``git rev-parse HEAD`` (with ``-dirty`` for a modified tree), ``--source`` to the
  ``origin`` remote when there is one.

Prints one line per built reference; with ``--json`` instead a JSON object::

    {"ref": REF, "platforms": {"linux/amd64": {"ref": ..., "seconds": 41.2}, ...},
     "manifest": true|false}

Exit status is non-zero when a build, push or manifest step fails.
"""

# Running docker and git with arguments this script assembles is its whole job.
# ruff: noqa: S603, S607

from __future__ import annotations

import argparse
import json
import os
import platform as host_platform
import subprocess
import sys
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import testbed  # noqa: E402 - the test-bed owns how to reach BuildKit and the CA bundle

TESTBED_BASES = {"linux/amd64": "local/debian:trixie", "linux/arm64": "local/debian-arm64:trixie"}
ARCH_OF = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64", "amd64": "amd64"}


def host_platform_name() -> str:
    return f"linux/{ARCH_OF.get(host_platform.machine(), host_platform.machine())}"


def project_version() -> str:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return data["project"]["version"]


def git(*args: str) -> str:
    out = subprocess.run(
        ["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=False
    )
    return out.stdout.strip() if out.returncode == 0 else ""


def git_revision() -> str:
    revision = git("rev-parse", "HEAD") or "unknown"
    if revision != "unknown" and git("status", "--porcelain", "--untracked-files=no"):
        revision += "-dirty"
    return revision


def parse_bases(values: list[str], testbed_bases: bool) -> tuple[str | None, dict[str, str]]:
    default = None
    per_platform = dict(TESTBED_BASES) if testbed_bases else {}
    for value in values:
        name, eq, image = value.partition("=")
        if eq and name.startswith("linux/"):
            per_platform[name] = image
        else:
            default = value
            per_platform = {}
    return default, per_platform


def build_one(
    args: argparse.Namespace, platform: str, ref: str, base: str | None, build_base: str | None
) -> float:
    cmd = [
        *testbed.build_cli(),
        *testbed.ca_secret_args(),
        "--platform",
        platform,
        "-f",
        str(args.context / "docker" / "Dockerfile"),
        "--target",
        args.target,
        "-t",
        ref,
        "--build-arg",
        f"VERSION={args.version}",
        "--build-arg",
        f"REVISION={args.revision}",
    ]
    if args.source:
        cmd += ["--build-arg", f"SOURCE={args.source}"]
    if base:
        cmd += ["--build-arg", f"BASE={base}"]
    if build_base:
        cmd += ["--build-arg", f"BUILD_BASE={build_base}"]
    for extra in args.build_arg:
        cmd += ["--build-arg", extra]
    if args.progress:
        cmd += ["--progress", args.progress]
    if args.no_cache:
        cmd.append("--no-cache")
    cmd.append(str(args.context))
    started = time.monotonic()
    result = subprocess.run(
        cmd, env=testbed.build_env(), check=False, stdout=sys.stderr if args.json else None
    )
    if result.returncode != 0:
        raise SystemExit(f"build.py: error: building {ref} for {platform} failed")
    return time.monotonic() - started


def docker(*args: str) -> None:
    env = {**os.environ, "DOCKER_CLI_EXPERIMENTAL": "enabled"}
    result = subprocess.run(
        [testbed.docker_cli(), *args], env=env, check=False, stdout=subprocess.DEVNULL
    )
    if result.returncode != 0:
        raise SystemExit(f"build.py: error: docker {' '.join(args)} failed")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="See the module docstring for details.",
    )
    parser.add_argument("--tag", default="noticeboard:latest", help="image reference to make")
    parser.add_argument(
        "--platform",
        default=host_platform_name(),
        help="comma-separated platforms (default: this machine's)",
    )
    parser.add_argument("--target", default="runtime", choices=["runtime", "dev"])
    parser.add_argument(
        "--base",
        action="append",
        default=[],
        help="BASE image, for all platforms or as PLATFORM=IMAGE",
    )
    parser.add_argument("--build-base", help="image the front end and wheel are built on")
    parser.add_argument(
        "--testbed", action="store_true", help="use the test-bed's local Debian bases"
    )
    parser.add_argument("--push", action="store_true", help="push (required for >1 platform)")
    parser.add_argument("--version", default=None, help="label version (default: pyproject)")
    parser.add_argument("--revision", default=None, help="label revision (default: git HEAD)")
    parser.add_argument("--source", default=None, help="label source (default: git origin)")
    parser.add_argument("--build-arg", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--progress", choices=["auto", "plain", "tty"], default=None)
    parser.add_argument("--no-cache", action="store_true", help="ignore the layer cache")
    parser.add_argument(
        "--context", type=Path, default=ROOT, help="checkout to build (default: this one)"
    )
    parser.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    args = parser.parse_args(argv)

    args.version = args.version or project_version()
    args.revision = args.revision or git_revision()
    args.source = args.source if args.source is not None else git("remote", "get-url", "origin")
    platforms = [p.strip() for p in args.platform.split(",") if p.strip()]
    if len(platforms) > 1 and not args.push:
        parser.error("several platforms need --push: a local image store keeps one per tag")
    default_base, bases = parse_bases(args.base, args.testbed)
    build_base = args.build_base or (TESTBED_BASES[host_platform_name()] if args.testbed else None)

    summary: dict[str, object] = {"ref": args.tag, "platforms": {}, "manifest": False}
    refs = []
    for platform in platforms:
        ref = args.tag if len(platforms) == 1 else f"{args.tag}-{platform.split('/')[1]}"
        base = bases.get(platform, default_base)
        if args.testbed and platform not in TESTBED_BASES:
            parser.error(f"the test-bed has no base image for {platform}")
        seconds = build_one(args, platform, ref, base, build_base)
        if args.push:
            docker("push", ref)
        refs.append(ref)
        summary["platforms"][platform] = {"ref": ref, "seconds": round(seconds, 1)}
        if not args.json:
            print(f"{ref} ({platform}) built in {seconds:.0f} s", flush=True)

    if len(platforms) > 1:
        subprocess.run(
            [testbed.docker_cli(), "manifest", "rm", args.tag], check=False, capture_output=True
        )
        docker("manifest", "create", "--insecure", args.tag, *refs)
        docker("manifest", "push", "--insecure", "--purge", args.tag)
        summary["manifest"] = True
        if not args.json:
            print(f"{args.tag}: manifest list of {', '.join(platforms)}", flush=True)
    if args.json:
        print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
