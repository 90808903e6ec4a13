"""Pages generated from the sources that own the facts, so the docs cannot drift.

* ``_generated/settings.rst``: every environment variable, from ``noticeboard.settings``
  (the same source as ``docker/.env.docker.example``).
* ``_generated/roles.rst``: every role's README, whose variable table
  ``scripts/role-docs.py`` generates from ``meta/argument_specs.yml``.

Files are rewritten only when their text changes, so incremental builds stay quick.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "docs" / "_generated"


def _write(name: str, text: str) -> None:
    OUT.mkdir(exist_ok=True)
    target = OUT / name
    if not target.exists() or target.read_text() != text:
        target.write_text(text)


def settings_page() -> str:
    sys.path.insert(0, str(ROOT / "src"))
    from noticeboard import settings

    return settings.rst()


def roles_page() -> str:
    lines = [
        "Role variables",
        "==============",
        "",
        "Each role checks its variables against ``meta/argument_specs.yml`` before it",
        "runs; the tables below are generated from those specifications.",
        "",
    ]
    for readme in sorted(ROOT.glob("roles/*/README.md")):
        lines += [
            f".. include:: ../../roles/{readme.parent.name}/README.md",
            "   :parser: myst_parser.sphinx_",
            "",
        ]
    return "\n".join(lines)


def generate(app) -> None:
    _write("settings.rst", settings_page())
    _write("roles.rst", roles_page())


def setup(app):
    app.connect("builder-inited", generate)
    return {"parallel_read_safe": True, "version": "1"}
