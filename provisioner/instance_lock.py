"""A lock per EC2 instance, held in the instance's own tags, so two `harden ebs migrate --apply`
runs (two people, two CI jobs) never work on the same instance at once.

Tags cannot be compared-and-swapped, so each run writes a tag key of its own
(`harden:migration-lock:<run id>`, value `host pid time`) and then reads the instance's tags
back: a run goes ahead only when no other run's live lock is there. Two runs that write at the
same moment both see each other and both back off (nothing is duplicated; a re-run goes ahead).
A lock whose holder is provably dead (same host, no such process: it was killed) is taken over,
so a re-run after `kill -9` finishes the job; a lock held from another host counts as live until
it is older than `stale_after` seconds (the holder renews it at every step).

EC2 tags are eventually consistent ("Eventual consistency in the Amazon EC2 API",
https://docs.aws.amazon.com/ec2/latest/devguide/eventual-consistency.html): on AWS the read-back
waits `settle` seconds first so that a tag another run wrote just before is visible.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime

LOCK_PREFIX = "harden:migration-lock:"
DEFAULT_STALE_AFTER = 6 * 3600.0   # seconds: longer than any step's wait (DEFAULT_TIMEOUT) plus margin


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


def server_time(response: dict) -> datetime:
    """The time an AWS response was sent (its Date header): the account's clock, not ours, so
    that times harden records compare with the times AWS writes (StartTime, state reasons)."""
    date = (response.get("ResponseMetadata", {}).get("HTTPHeaders", {}) or {}).get("date")
    try:
        return parsedate_to_datetime(date).astimezone(timezone.utc) if date else datetime.now(timezone.utc)
    except (TypeError, ValueError):
        return datetime.now(timezone.utc)


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str | None) -> datetime | None:
    try:
        return datetime.strptime(text or "", "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        return None


@dataclass(frozen=True)
class Holder:
    run_id: str
    host: str
    pid: int
    since: datetime | None

    @classmethod
    def parse(cls, key: str, value: str) -> "Holder":
        parts = value.split()
        pid = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else -1
        return cls(key[len(LOCK_PREFIX):], parts[0] if parts else "?", pid, parse_iso(parts[2] if len(parts) > 2 else ""))

    def describe(self) -> str:
        since = f" since {iso(self.since)}" if self.since else ""
        return f"run {self.run_id} (host {self.host}, pid {self.pid}{since})"

    def dead(self, now: datetime, stale_after: float) -> str | None:
        """Why this holder is known to be gone, or None while it may still be working."""
        if self.host == socket.gethostname() and self.pid > 0 and not _alive(self.pid):
            return f"{self.describe()} is no longer running"
        if self.since and now - self.since > timedelta(seconds=stale_after):
            return f"{self.describe()} has not renewed its lock for over {stale_after:g}s"
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


class InstanceLock:
    """Acquire/renew/release the lock of one instance for one run."""

    def __init__(self, ec2, instance_id: str, run_id: str, *, settle: float = 0.0,
                 stale_after: float = DEFAULT_STALE_AFTER, sleep=time.sleep) -> None:
        self.ec2, self.instance_id, self.run_id = ec2, instance_id, run_id
        self.settle, self.stale_after, self._sleep = settle, stale_after, sleep
        self.key = LOCK_PREFIX + run_id
        self.taken_over: list[str] = []   # what stale locks were removed, for the report

    def _holders(self) -> tuple[list[Holder], datetime]:
        resp = self.ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [self.instance_id]}])
        holders = [Holder.parse(t["Key"], t["Value"]) for t in resp.get("Tags", [])
                   if t["Key"].startswith(LOCK_PREFIX) and t["Key"] != self.key]
        return holders, server_time(resp)

    def _write(self) -> None:
        self.ec2.create_tags(Resources=[self.instance_id], Tags=[{"Key": self.key, "Value": self._value()}])

    def _value(self) -> str:
        return f"{socket.gethostname()} {os.getpid()} {iso(datetime.now(timezone.utc))}"

    def acquire(self) -> Holder | None:
        """None: the lock is ours. Otherwise the live holder that keeps us out (we wrote nothing,
        or took our tag back)."""
        holders, now = self._holders()
        for holder in holders:
            why = holder.dead(now, self.stale_after)
            if why:
                self.ec2.delete_tags(Resources=[self.instance_id], Tags=[{"Key": LOCK_PREFIX + holder.run_id}])
                self.taken_over.append(why)
            else:
                return holder
        self._write()
        if self.settle:
            self._sleep(self.settle)
        holders, now = self._holders()
        live = [h for h in holders if not h.dead(now, self.stale_after)]
        if live:
            self.release()
            return live[0]
        return None

    def renew(self) -> None:
        self._write()

    def release(self) -> None:
        self.ec2.delete_tags(Resources=[self.instance_id], Tags=[{"Key": self.key}])
