"""One operation at a time (roles/lock): a run that finds the lock held by a backup.yml
run waits its turn; a run killed half-way on this controller is named and its lease
taken over at once; a lease held from another controller stops a run after its wait, is
reported by --check, is taken over once it expires, and is broken on purpose, loudly;
a run whose --limit leaves out localhost, where the lock is taken, stops before it changes
anything.

Runs that only need the lock are limited to it (`--tags noticeboard_lock`: the lock's
tasks are tagged `always` as well, so every playbook locks under any --tags)."""

from __future__ import annotations

import json
import os
import pwd
import re
import time

from verifylib import (
    PROJECT,
    SCENARIO,
    PlaybookRun,
    host_named,
    run_playbook,
    start_playbook,
    wait_until,
)

LOCK = "/var/lib/noticeboard/lock"
HOST = "noticeboard-pi"
# ansible-playbook's controller as the lock records it: user@host.
CONTROLLER = f"{pwd.getpwuid(os.getuid()).pw_name}@{os.uname().nodename}"
ONLY_THE_LOCK = "noticeboard_lock"
# backup.yml's plays gather facts, and here pi_facts (the scenario's library) adds to them;
# converge.yml finds it beside itself, a collection playbook does not.
PI_FACTS = {"ANSIBLE_LIBRARY": str(SCENARIO / "library")}
# A run that only takes and gives back the lock needs no facts: seconds saved per run.
LOCK_ONLY = {**PI_FACTS, "ANSIBLE_GATHERING": "explicit"}
STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
# Every playbook of the collection that takes the lock.
LOCKING = sorted(
    path.stem
    for path in (PROJECT / "playbooks").glob("*.yml")
    if "tasks_from: acquire" in path.read_text()
)


def root(host):
    """The Pi as root (over `docker exec`): the lock is root's."""
    return host_named(host.check_output("hostname"))


def lock_record(host) -> dict:
    text = root(host).check_output("cat %s 2>/dev/null || true", LOCK)
    return json.loads(text) if text.strip() else {}


def holder(record: dict) -> str:
    """How a message names the run that holds RECORD's lease."""
    return (
        f"{record['holder']['playbook']} from {record['holder']['controller']} "
        f"(run {record['run_id']}), started {record['holder']['started']}, "
        f"lease expires {record['expires']}"
    )


def held_elsewhere(host, ttl: float) -> dict:
    """A lease as a run of upgrade.yml on another controller leaves it, for TTL seconds."""
    now = time.time()
    record = {
        "run_id": "elsewhere1",
        "holder": {
            "playbook": "upgrade.yml",
            "controller": "ops@elsewhere",
            "started": "2026-01-02T03:04:05Z",
            "pid": "4242",
            "pid_started": "Fri Jan  2 03:04:05 2026",
        },
        "acquired": "2026-01-02T03:04:05.000Z",
        "renewed": "2026-01-02T03:04:05.000Z",
        "expires": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(now + ttl)),
        "expires_epoch": now + ttl,
    }
    root(host).run_test(
        "mkdir -p -m 0700 %s && printf %%s %s > %s",
        os.path.dirname(LOCK),
        json.dumps(record),
        LOCK,
    )
    return record


def held_span(run: PlaybookRun) -> tuple[str, str]:
    """When RUN took the Pi's lease and when it gave it back (the host's clock, UTC)."""
    taken = re.search(rf"holds {HOST} \(taken at ({STAMP}),", run.said)
    released = re.search(rf"released {HOST} at ({STAMP})", run.said)
    assert taken and released, run.tail()
    return taken.group(1), released.group(1)


def killed_while_holding(host, **extra_vars) -> dict:
    """A backup.yml run SIGKILLed once it holds the lock; the lease it left behind."""
    run = start_playbook("backup", extra_vars=extra_vars, env=PI_FACTS)
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


def test_a_run_that_finds_the_lock_held_names_the_holder_and_waits_its_turn(host):
    # A whole backup.yml takes the lease; one that only takes the lock starts once it is
    # held, names the holder, waits, and goes in only after the backup gave it back. (Which
    # of two runs asking at the same instant gets the lease is test_lease.py's: exactly one.)
    # Started blind, half a second apart, the short run could meet the lease in its last
    # two seconds and find it free on its first wait: no retry to see (CI once had that).
    wait = {"noticeboard_lock_wait": 120, "noticeboard_lock_poll": 2}
    backup = start_playbook("backup", extra_vars=wait, env=PI_FACTS)
    try:
        wait_until(
            lambda: lock_record(host).get("run_id"),
            "the backup.yml run holds the lock",
            timeout=120,
            interval=0.3,
        )
        waiter = start_playbook("backup", extra_vars=wait, tags=ONLY_THE_LOCK, env=LOCK_ONLY)
    except BaseException:
        backup.kill()
        raise
    done = [run.finish(timeout=600) for run in (backup, waiter)]
    assert "is held by backup.yml" not in done[0].said, done[0].tail(1500, 500)
    assert "is held by backup.yml" in done[1].said, done[1].tail(1500, 500)
    assert "Waiting up to 120 s (noticeboard_lock_wait)" in done[1].said
    assert f"FAILED - RETRYING: [localhost -> {HOST}]: Wait for the lock on {HOST}" in (
        done[1].said
    )
    # Never both inside: the backup gave the lease back before the other took it.
    backup_span, waiter_span = (held_span(run) for run in done)
    assert backup_span[1] <= waiter_span[0], (backup_span, waiter_span)
    # The backup was taken, and the lease is free again.
    assert "TASK [noticeboard.deploy.backup" in done[0].output
    assert lock_record(host) == {}


def test_a_run_killed_half_way_is_named_and_its_lease_taken_over_at_once(host):
    # Its ansible-playbook process is gone from this controller: it can give nothing back,
    # so the next run from here need not wait for the lease to expire.
    record = killed_while_holding(host, noticeboard_lock_ttl=600)
    assert record["holder"]["playbook"] == "backup.yml"
    assert record["holder"]["controller"] == CONTROLLER
    taker = run_playbook(
        "backup", extra_vars={"noticeboard_lock_wait": 0}, tags=ONLY_THE_LOCK, env=LOCK_ONLY
    )
    assert f"Took over the lease in {LOCK} of {holder(record)}: that run has ended" in taker.said, (
        taker.tail()
    )
    assert lock_record(host) == {}


def test_a_held_lock_stops_the_next_run_after_the_wait_and_check_mode_takes_nothing(host):
    # A run from another controller, whose process this one cannot see: only its lease's
    # expiry or a break frees the host.
    record = held_elsewhere(host, ttl=600)
    stopped = run_playbook(
        "backup",
        extra_vars={"noticeboard_lock_wait": 2, "noticeboard_lock_poll": 1},
        tags=ONLY_THE_LOCK,
        env=LOCK_ONLY,
        ok=False,
    )
    assert f"The noticeboard lock on {HOST} is held by {holder(record)}" in stopped.said
    assert "waited 2 s (noticeboard_lock_wait) and changed nothing" in stopped.said
    assert lock_record(host) == record

    preview = run_playbook("backup", check_mode=True, tags=ONLY_THE_LOCK, env=LOCK_ONLY)
    assert f"Check mode takes no lease; {LOCK} is held by {holder(record)}" in preview.said
    assert lock_record(host) == record


def test_an_expired_lease_is_taken_over_and_its_holder_named(host):
    record = held_elsewhere(host, ttl=4)
    taker = run_playbook(
        "backup",
        extra_vars={"noticeboard_lock_wait": 60, "noticeboard_lock_poll": 2},
        tags=ONLY_THE_LOCK,
        env=LOCK_ONLY,
    )
    assert f"Took over the expired lease in {LOCK} of {holder(record)}" in taker.said
    assert lock_record(host) == {}


def test_breaking_a_held_lock_is_said_loudly(host):
    record = held_elsewhere(host, ttl=600)
    breaker = run_playbook(
        "backup", extra_vars={"noticeboard_lock_break": True}, tags=ONLY_THE_LOCK, env=LOCK_ONLY
    )
    assert f"BROKE the lease in {LOCK} that was held by {holder(record)}" in breaker.said
    assert lock_record(host) == {}


def test_a_limit_without_localhost_is_refused_before_anything_changes(host):
    # The lock is taken by a play on localhost, and `--limit HOST` skips that play without
    # a word: every playbook then changed its hosts holding no lease. Each one stops now,
    # naming the limit that works, before a host is touched.
    assert len(LOCKING) >= 9, LOCKING
    for playbook in LOCKING:
        refused = run_playbook(playbook, limit=HOST, env=LOCK_ONLY, ok=False)
        said = refused.said
        assert f"This run holds no lock: --limit {HOST} leaves out localhost" in said, (
            playbook,
            refused.tail(),
        )
        assert f"--limit '{HOST},localhost'" in said, (playbook, said[-1500:])
        assert refused.counter(HOST) == 0, (playbook, refused.changed_tasks())
        assert refused.counter(HOST, "failed") == 1, (playbook, refused.tail())
        assert lock_record(host) == {}, playbook
    # With localhost in the limit the lock is taken and given back as always.
    limited = run_playbook("backup", limit=f"{HOST},localhost", tags=ONLY_THE_LOCK, env=LOCK_ONLY)
    assert held_span(limited)
    assert lock_record(host) == {}
