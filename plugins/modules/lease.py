#!/usr/bin/python
# Copyright: noticeboard maintainers
# MIT License (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: lease
short_description: Take, renew and give back a lease that lets one run at a time change a host
version_added: 0.3.0
description:
  - A lease is a JSON record in a file on the host (I(path)) naming the run that holds it and
    when it expires. Reading and changing the record happens under an exclusive C(flock) of
    that file, so two runs never both see the lease free.
  - The same run (the same I(run_id)) taking a lease it already holds extends it instead of
    waiting for itself, so a playbook that imports another one does not deadlock.
  - A lease whose expiry has passed is taken over, with a warning naming the run that held
    it. With I(break_held=true) a lease held by another run is taken anyway, with a warning
    naming that run.
  - In check mode nothing is written; a lease held by another run is reported with a warning.
author:
  - noticeboard maintainers (@noticeboard)
options:
  path:
    description:
      - The lease's record. Its directory is created (mode C(0700)) when missing. The file
        stays after a release (emptied), so that every run locks the same file.
    type: path
    required: true
  state:
    description:
      - C(acquired) takes the lease, waiting up to I(wait) seconds while another run holds it,
        then fails naming that run.
      - C(renewed) extends a lease this run holds to I(ttl) seconds from now; it fails when the
        lease is no longer this run's (it expired and was taken over, or was broken).
      - C(released) gives back a lease this run holds; a lease held by another run is left
        alone.
    type: str
    choices: [acquired, renewed, released]
    default: acquired
  run_id:
    description: Identifies the run; the same id re-enters a lease it holds.
    type: str
    required: true
  holder:
    description:
      - What the record says about the run, shown to a run that finds the lease held, such as
        C(playbook), C(controller) (user@host) and C(started).
    type: dict
    default: {}
  ttl:
    description: Seconds the lease lasts after it is taken or renewed.
    type: int
    default: 1800
  wait:
    description: Seconds to wait for a lease held by another run before failing; C(0) tries once.
    type: int
    default: 0
  poll:
    description: Seconds between two looks at a held lease while waiting.
    type: float
    default: 1.0
  ended_run_id:
    description:
      - The run id of a run known to have ended (the caller checked that its process on the
        controller is gone). A lease still held by exactly that run is taken over at once, as
        an expired one; a lease taken by any other run in the meantime is not.
    type: str
  break_held:
    description:
      - Take the lease even when another run holds it and it has not expired. Meant for a
        lease left by a run that can no longer give it back; the warning names that run.
    type: bool
    default: false
notes:
  - The host's clock decides expiry; the record also holds the times as UTC ISO 8601 text.
attributes:
  check_mode:
    description: Reads the record and reports a lease another run holds; writes nothing.
    support: full
  diff_mode:
    description: No diff is shown.
    support: none
"""

EXAMPLES = r"""
- name: Take the lease, waiting up to five minutes for another run
  noticeboard.deploy.lease:
    path: /var/lib/noticeboard/lock
    run_id: "{{ run_id }}"
    holder:
      playbook: upgrade.yml
      controller: ops@laptop
      started: "2026-12-06T18:00:00Z"
    ttl: 1800
    wait: 300

- name: Extend it at the start of a later play
  noticeboard.deploy.lease:
    path: /var/lib/noticeboard/lock
    run_id: "{{ run_id }}"
    state: renewed
    ttl: 1800

- name: Give it back at the end
  noticeboard.deploy.lease:
    path: /var/lib/noticeboard/lock
    run_id: "{{ run_id }}"
    state: released
"""

RETURN = r"""
acquired:
  description: Whether this run holds the lease now.
  returned: with I(state=acquired)
  type: bool
reentered:
  description: The lease was already this run's and was extended.
  returned: with I(state=acquired)
  type: bool
held:
  description: Another run holds the lease (and this one does not).
  returned: with I(state=acquired)
  type: bool
record:
  description:
    - The lease's record as it is now (empty when free), with C(run_id), C(holder),
      C(acquired), C(renewed), C(expires) (UTC ISO 8601) and C(expires_epoch).
  returned: always
  type: dict
previous:
  description: The record of another run's lease that this run took over or broke.
  returned: when a lease was taken over or broken
  type: dict
taken_over:
  description: An expired lease of another run, or one of a run that has ended, was taken over.
  returned: with I(state=acquired)
  type: bool
ended:
  description: The lease taken over was that of I(ended_run_id).
  returned: with I(state=acquired)
  type: bool
lost:
  description: With I(state=renewed), the lease is no longer this run's.
  returned: when renewing failed for that reason
  type: bool
broken:
  description: A live lease of another run was broken (I(break_held=true)).
  returned: with I(state=acquired)
  type: bool
waited:
  description: Seconds spent waiting for another run's lease.
  returned: with I(state=acquired)
  type: float
released:
  description: When this run's lease was given back (UTC ISO 8601).
  returned: when I(state=released) freed the lease
  type: str
"""

# ansible-test wants the documentation first; ruff, imports first.
import errno  # noqa: E402
import fcntl  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import time  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402


def iso(epoch):
    """UTC ISO 8601 to the millisecond: runs one after another are told apart."""
    whole = int(epoch)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
    return f"{stamp}.{int((epoch - whole) * 1000):03d}Z"


def describe(record):
    """One line naming the run that holds RECORD, for messages."""
    holder = record.get("holder") or {}
    return (
        f"{holder.get('playbook', 'an unnamed playbook')} from "
        f"{holder.get('controller', 'an unknown controller')} (run {record.get('run_id', '?')}), "
        f"started {holder.get('started', record.get('acquired', '?'))}, "
        f"lease expires {record.get('expires', '?')}"
    )


class Lease:
    """The record in PATH, read and changed only while its flock is held."""

    def __init__(self, path, clock=time.time, sleep=time.sleep):
        self.path = path
        self.clock = clock
        self.sleep = sleep

    def _open(self, create, flags=os.O_RDONLY):
        if create:
            directory = os.path.dirname(self.path)
            if directory and not os.path.isdir(directory):
                os.makedirs(directory, 0o700)
            return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            return os.open(self.path, flags)
        except OSError as e:
            if e.errno == errno.ENOENT:
                return None
            raise

    @staticmethod
    def _read(fd):
        os.lseek(fd, 0, os.SEEK_SET)
        chunks = []
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
        text = b"".join(chunks).decode("utf-8", "replace").strip()
        if not text:
            return {}
        try:
            record = json.loads(text)
        except ValueError:
            # A record cut short (a full disk) holds nothing anybody can wait for.
            return {}
        return record if isinstance(record, dict) else {}

    @staticmethod
    def _write(fd, record):
        data = json.dumps(record, sort_keys=True).encode("utf-8") + b"\n" if record else b""
        os.lseek(fd, 0, os.SEEK_SET)
        os.ftruncate(fd, 0)
        os.write(fd, data)
        os.fsync(fd)

    def peek(self):
        """The record as it is, without changing anything (check mode)."""
        fd = self._open(create=False)
        if fd is None:
            return {}
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            return self._read(fd)
        finally:
            os.close(fd)

    def live(self, record, now):
        return bool(record.get("run_id")) and float(record.get("expires_epoch", 0)) > now

    def _new(self, run_id, holder, ttl, now, acquired=None):
        return {
            "run_id": run_id,
            "holder": holder,
            "acquired": acquired or iso(now),
            "renewed": iso(now),
            "expires": iso(now + ttl),
            "expires_epoch": now + ttl,
        }

    def acquire(
        self, run_id, holder, ttl, wait=0, poll=1.0, break_held=False, check=False, ended=None
    ):
        started = self.clock()
        while True:
            result = self._try(run_id, holder, ttl, break_held, check, ended)
            result["waited"] = round(self.clock() - started, 1)
            if not result["held"] or check:
                return result
            if self.clock() - started >= wait:
                return result
            self.sleep(min(poll, max(0.0, wait - (self.clock() - started))))

    def _try(self, run_id, holder, ttl, break_held, check, ended=None):
        result = {
            "acquired": False,
            "reentered": False,
            "held": False,
            "taken_over": False,
            "ended": False,
            "broken": False,
            "changed": False,
        }
        now = self.clock()
        if check:
            record = self.peek()
            mine = record.get("run_id") == run_id
            result.update(record=record, held=self.live(record, now) and not mine)
            return result
        fd = self._open(create=True)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            record = self._read(fd)
            if record.get("run_id") == run_id:
                new = self._new(
                    run_id, record.get("holder") or holder, ttl, now, record.get("acquired")
                )
                result["reentered"] = True
            elif self.live(record, now) and not break_held and not self._ended(record, ended):
                result.update(record=record, held=True)
                return result
            else:
                new = self._new(run_id, holder, ttl, now)
                if record.get("run_id"):
                    result["previous"] = record
                    if self._ended(record, ended):
                        result["taken_over"] = result["ended"] = True
                    elif self.live(record, now):
                        result["broken"] = True
                    else:
                        result["taken_over"] = True
            self._write(fd, new)
            result.update(record=new, acquired=True, changed=True)
            return result
        finally:
            os.close(fd)

    @staticmethod
    def _ended(record, ended):
        return bool(ended) and record.get("run_id") == ended

    def renew(self, run_id, ttl, check=False):
        """Extend this run's lease; returns (result, error message or None)."""
        now = self.clock()
        if check:
            record = self.peek()
            return {"record": record, "changed": False}, None
        fd = self._open(create=True)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            record = self._read(fd)
            if record.get("run_id") != run_id:
                if record.get("run_id"):
                    why = f"it is now held by {describe(record)}"
                else:
                    why = "it was released or broken and is free"
                return {"record": record, "changed": False, "lost": True}, (
                    f"This run no longer holds the lease in {self.path}: {why}. It stops here so "
                    "that two runs never change the host at once."
                )
            new = self._new(run_id, record.get("holder") or {}, ttl, now, record.get("acquired"))
            self._write(fd, new)
            return {"record": new, "changed": True}, None
        finally:
            os.close(fd)

    def release(self, run_id, check=False):
        """Give back this run's lease; returns (result, warning or None)."""
        if check:
            return {"record": self.peek(), "changed": False}, None
        fd = self._open(create=False, flags=os.O_RDWR)
        if fd is None:
            return {"record": {}, "changed": False}, None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            record = self._read(fd)
            if not record:
                return {"record": {}, "changed": False}, None
            if record.get("run_id") != run_id:
                return {"record": record, "changed": False}, (
                    f"The lease in {self.path} is not this run's, it was left as it is: held by "
                    f"{describe(record)}."
                )
            self._write(fd, {})
            return {"record": {}, "changed": True, "released": iso(self.clock())}, None
        finally:
            os.close(fd)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            state=dict(type="str", default="acquired", choices=["acquired", "renewed", "released"]),
            run_id=dict(type="str", required=True),
            holder=dict(type="dict", default={}),
            ttl=dict(type="int", default=1800),
            wait=dict(type="int", default=0),
            poll=dict(type="float", default=1.0),
            break_held=dict(type="bool", default=False),
            ended_run_id=dict(type="str"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if p["ttl"] < 1 or p["wait"] < 0 or p["poll"] <= 0:
        module.fail_json(msg="ttl must be at least 1, wait 0 or more and poll more than 0 seconds")
    lease = Lease(p["path"])
    check = module.check_mode
    try:
        if p["state"] == "acquired":
            result = lease.acquire(
                p["run_id"],
                p["holder"],
                p["ttl"],
                p["wait"],
                p["poll"],
                p["break_held"],
                check,
                p["ended_run_id"],
            )
            record = result.get("record") or {}
            if result["held"]:
                if check:
                    module.warn(
                        f"Check mode takes no lease; {p['path']} is held by {describe(record)}."
                    )
                    module.exit_json(**result)
                module.fail_json(
                    msg=f"The lease in {p['path']} is held by {describe(record)}. Waited "
                    f"{result['waited']} s. Let that run finish, or, when it can no longer give "
                    "the lease back, wait for the lease to expire or run again with "
                    "noticeboard_lock_break=true.",
                    **result,
                )
            if result["broken"]:
                module.warn(
                    f"BROKE the lease in {p['path']} that was held by "
                    f"{describe(result['previous'])}. That run may still be changing the host."
                )
            if result["ended"]:
                module.warn(
                    f"Took over the lease in {p['path']} of {describe(result['previous'])}: that "
                    "run has ended (its ansible-playbook process on this controller is gone)."
                )
            elif result["taken_over"]:
                module.warn(
                    f"Took over the expired lease in {p['path']} of {describe(result['previous'])}."
                )
            module.exit_json(**result)
        if p["state"] == "renewed":
            result, error = lease.renew(p["run_id"], p["ttl"], check)
            if error:
                module.fail_json(msg=error, **result)
            module.exit_json(**result)
        result, warning = lease.release(p["run_id"], check)
        if warning:
            module.warn(warning)
        module.exit_json(**result)
    except OSError as e:
        module.fail_json(msg=f"Cannot use the lease in {p['path']}: {e}")


if __name__ == "__main__":
    main()
