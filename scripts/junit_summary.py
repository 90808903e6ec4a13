#!/usr/bin/env python3
"""Sum the JUnit files that the nox sessions wrote into one closing line.

Each pytest run (app tests, image tests, Molecule scenarios, docs checks) writes
``build/junit/<session>.xml``. This prints one line per file and then the total, as
``total: N passed, N failed, N skipped``, so a reader (or CI) sees the whole suite at once.
Sessions that ran no test at all are named, because a green run that tested nothing
is not a green run.
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def count(path: Path) -> tuple[int, int, int]:
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    tests = failed = skipped = 0
    for suite in suites:
        tests += int(suite.get("tests", 0))
        failed += int(suite.get("failures", 0)) + int(suite.get("errors", 0))
        skipped += int(suite.get("skipped", 0))
    return tests - failed - skipped, failed, skipped


def main(folder: str) -> int:
    totals = [0, 0, 0]
    files = sorted(Path(folder).glob("*.xml"))
    for path in files:
        passed, failed, skipped = count(path)
        note = "  (no test ran)" if passed + failed + skipped == 0 else ""
        print(f"  {path.stem:<10} {passed:>4} passed {failed:>3} failed {skipped:>3} skipped{note}")
        totals = [totals[0] + passed, totals[1] + failed, totals[2] + skipped]
    print(f"total: {totals[0]} passed, {totals[1]} failed, {totals[2]} skipped")
    return 1 if totals[1] or not files or totals[0] == 0 else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "build/junit"))
