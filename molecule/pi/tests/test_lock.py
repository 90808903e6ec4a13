"""One operation at a time (roles/lock): two backup.yml runs started together take turns,
and a run killed half-way holds the host only until its lease expires or is broken.

Runs that only need the lock are limited to it (`--tags noticeboard_lock`: the lock's
tasks are tagged `always` as well, so every playbook locks under any --tags)."""

from __future__ import annotations

import json
import os
import pwd
import re

from verifylib import PlaybookRun, run_playbook, start_playbook, wait_until

LOCK = "/var/lib/noticeboard/lock"
HOST = "noticeboard-pi"
# ansible-playbook's controller as the lock records it: user@host.
CONTROLLER = f"{pwd.getpwuid(os.getuid()).pw_name}@{os.uname().nodename}"
ONLY_THE_LOCK = "noticeboard_lock"
STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"


def lock_record(host) -> dict:
    text = host.check_output("cat %s 2>/dev/null || true", LOCK)
    return json.loads(text) if text.strip() else {}


def holder(record: dict) -> str:
    """How a message names the run that holds RECORD's lease."""
    return (
        f"backup.yml from {CONTROLLER} (run {record['run_id']}), started "
        f"{record['holder']['started']}, lease expires {record['expires']}"
    )


def held_span(run: PlaybookRun) -> tuple[str, str]:
    """When RUN took the Pi's lease and when it gave it back (the host's clock, UTC)."""
    taken = re.search(rf"holds {HOST} \(taken at ({STAMP}),", run.said)
    released = re.search(rf"released {HOST} at ({STAMP})", run.said)
    assert taken and released, run.tail()
    return taken.group(1), released.group(1)


def killed_while_holding(host, **extra_vars) -> dict:
    """A backup.yml run SIGKILLed once it holds the lock; the lease it left behind."""
    run = start_playbook("backup", extra_vars=extra_vars)
    try:
        record = wait_until(
            lambda: lock_record(host).get("run_id") and lock_record(host),
            "the background backup.yml holds the lock",
            timeout=90,
            interval=0.3,
        )
    finally:
        run.kill()
    return record


def test_two_runs_started_together_take_turns(host):
    wait = {"noticeboard_lock_wait": 240, "noticeboard_lock_poll": 2}
    runs = [start_playbook("backup", extra_vars=wait) for _ in range(2)]
    done = [run.finish(timeout=600) for run in runs]
    # Exactly one found the other inside, said who, and waited.
    waited = [run for run in done if "is held by backup.yml" in run.said]
    assert len(waited) == 1, [run.tail(1500, 500) for run in done]
    assert "Waiting up to 240 s (noticeboard_lock_wait)" in waited[0].said
    assert (
        f"FAILED - RETRYING: [localhost -> {HOST}]: Wait for the lock on {HOST}" in waited[0].said
    )
    # Never both inside: one gave the lease back before the other took it.
    first, second = sorted(held_span(run) for run in done)
    assert first[1] <= second[0], (first, second)
    # Both backed up, one after the other, and the lease is free again.
    assert all(run.counter(HOST, "failed") == 0 for run in done)
    assert lock_record(host) == {}


def test_a_killed_run_is_named_and_waited_for_until_its_lease_expires(host):
    record = killed_while_holding(host, noticeboard_lock_ttl=20)
    assert record["holder"]["playbook"] == "backup.yml"

    stopped = run_playbook(
        "backup",
        extra_vars={"noticeboard_lock_wait": 2, "noticeboard_lock_poll": 1},
        tags=ONLY_THE_LOCK,
        ok=False,
    )
    assert f"The noticeboard lock on {HOST} is held by {holder(record)}" in stopped.said
    assert "waited 2 s (noticeboard_lock_wait) and changed nothing" in stopped.said
    assert lock_record(host) == record

    # --check takes nothing and says who holds the lock.
    preview = run_playbook("backup", check_mode=True, tags=ONLY_THE_LOCK)
    assert f"Check mode takes no lease; {LOCK} is held by {holder(record)}" in preview.said
    assert lock_record(host) == record

    # Once the lease expires, a waiting run takes it over, says whose it was, and gives
    # it back at its end.
    taker = run_playbook(
        "backup",
        extra_vars={"noticeboard_lock_wait": 60, "noticeboard_lock_poll": 2},
        tags=ONLY_THE_LOCK,
    )
    assert f"Took over the expired lease in {LOCK} of {holder(record)}" in taker.said
    assert lock_record(host) == {}


def test_breaking_a_held_lock_is_said_loudly(host):
    record = killed_while_holding(host, noticeboard_lock_ttl=600)
    breaker = run_playbook(
        "backup", extra_vars={"noticeboard_lock_break": True}, tags=ONLY_THE_LOCK
    )
    assert f"[WARNING]: BROKE the lease in {LOCK} that was held by {holder(record)}" in breaker.said
    assert lock_record(host) == {}
