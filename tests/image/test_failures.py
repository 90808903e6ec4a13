"""Bad configuration ends the container quickly, non-zero, with one line naming it."""

from __future__ import annotations

import re

import pytest
from imagetools import new_secret_key

DB_WAIT = 4

CASES = {
    "missing-secret-key": ({}, "SECRET_KEY is not set"),
    "unreachable-database": (
        {
            "SECRET_KEY": new_secret_key(),
            "DATABASE_URL": "mysql+pymysql://noticeboard:pw@db.invalid:3306/noticeboard",
            "DB_WAIT_TIMEOUT": str(DB_WAIT),
        },
        # `check` tries once; `serve` and `migrate` retry for DB_WAIT_TIMEOUT first.
        rf"database (did not answer within {DB_WAIT} s|at \S+ does not answer)",
    ),
    "malformed-database-url": (
        {"SECRET_KEY": new_secret_key(), "DATABASE_URL": "not a url"},
        "DATABASE_URL",
    ),
}


@pytest.mark.parametrize("command", ["serve", "migrate", "check"])
@pytest.mark.parametrize("case", list(CASES))
def test_bad_configuration_fails_fast_with_one_clear_line(containers, image, case, command):
    environment, expected = CASES[case]
    container = containers.run(
        image, command=[command], environment=environment, network_mode="none"
    )
    # Generous bound: the retry budget plus interpreter start-up on a busy machine.
    result = container.wait(timeout=DB_WAIT + 120)
    stderr = container.logs(stdout=False, stderr=True).decode(errors="replace")
    assert result["StatusCode"] != 0, stderr
    verdicts = [line for line in stderr.splitlines() if line.startswith("noticeboard:")]
    assert len(verdicts) == 1, stderr
    assert re.search(expected, verdicts[0]), stderr
    assert stderr.rstrip().splitlines()[-1] == verdicts[0], "the reason is not the last line"
    assert "Traceback" not in stderr
