#!/usr/bin/env python3
"""Run every linter the project holds itself to, over the files git knows about.

ruff (check and format), yamllint, ansible-lint (production profile, from .ansible-lint),
antsibull-changelog (the collection's fragments and changelog.yaml), hadolint on every
Dockerfile and shellcheck on every shell script. `nox -s lint` runs this, then
ansible-test sanity on the built collection (scripts/sanity.py). Each runs even when
an earlier one failed, so one run shows everything; the exit code is non-zero when any
of them failed. Name linters as arguments to run only those.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def files() -> list[Path]:
    out = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [ROOT / line for line in out.splitlines() if (ROOT / line).is_file()]


def is_shell(path: Path) -> bool:
    if path.suffix in (".sh", ".bash"):
        return True
    if path.suffix or path.parent.name not in ("scripts", ".ci", "bin"):
        return False
    with path.open("rb") as fh:
        first = fh.readline()
    return first.startswith(b"#!") and (b"bash" in first or b"/sh" in first)


def is_dockerfile(path: Path) -> bool:
    return path.name == "Dockerfile" or path.name.endswith(".Dockerfile")


def tool(name: str) -> str:
    candidate = BIN / name
    return str(candidate) if candidate.exists() else name


def linters(tracked: list[Path]) -> dict[str, list[list[str]]]:
    rel = [str(p.relative_to(ROOT)) for p in tracked]
    shells = [str(p.relative_to(ROOT)) for p in tracked if is_shell(p)]
    dockerfiles = [str(p.relative_to(ROOT)) for p in tracked if is_dockerfile(p)]
    plan: dict[str, list[list[str]]] = {
        "ruff": [[tool("ruff"), "check", "."], [tool("ruff"), "format", "--check", "."]],
        "yamllint": [[tool("yamllint"), "--strict", "."]],
    }
    if "galaxy.yml" in rel:
        plan["ansible-lint"] = [[tool("ansible-lint"), "--profile", "production"]]
    if "changelogs/config.yaml" in rel:
        plan["antsibull-changelog"] = [
            [tool("antsibull-changelog"), "lint"],
            [tool("antsibull-changelog"), "lint-changelog-yaml", "changelogs/changelog.yaml"],
        ]
    if dockerfiles:
        plan["hadolint"] = [[tool("hadolint"), *dockerfiles]]
    if shells:
        plan["shellcheck"] = [[tool("shellcheck"), "--external-sources", *shells]]
    return plan


def main(argv: list[str]) -> int:
    plan = linters(files())
    chosen = argv or list(plan)
    unknown = [name for name in chosen if name not in plan]
    if unknown:
        print(f"lint: nothing to run for {', '.join(unknown)}; known: {', '.join(plan)}")
        return 2
    failed = []
    for name in chosen:
        started = time.monotonic()
        codes = [subprocess.run(cmd, cwd=ROOT).returncode for cmd in plan[name]]
        verdict = "ok" if not any(codes) else "FAILED"
        if any(codes):
            failed.append(name)
        print(f"lint: {name}: {verdict} ({time.monotonic() - started:.1f} s)", flush=True)
    if failed:
        print(f"lint: failed: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
