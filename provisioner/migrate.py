"""`harden ebs migrate`: encrypt EBS volumes that are in use, carefully and resumably.

EBS cannot encrypt a volume in place. The way out (Cloud Custodian's `encrypt-instance-volumes`,
the seed document's boto3 steps) is, per instance with an unencrypted attached volume:

    stop the instance (if it runs)
    for each unencrypted volume:
        create_snapshot -> copy_snapshot(Encrypted, KmsKeyId) -> create_volume (same AZ, type,
        size, iops, throughput, tags) -> detach the old volume -> attach the new one on the same
        device -> DeleteOnTermination as it was
    start the instance again (if it ran)

Safety rules, in the order they matter:

* Dry run unless `apply`: the plan is read-only (describe calls only, not even a tag).
* Nothing is ever deleted by a migration. The original volume and both snapshots stay, tagged
  (`harden:migration=original|snapshot|encrypted-copy`, `harden:migrated-to/-from`); only
  `run_cleanup` with `apply` deletes them, and only for migrations tagged `completed`.
* Progress is recorded as tags on the original volume after every step, so a re-run after an
  interruption continues where it stopped, reusing the snapshot, the copy and the new volume.
  The instance's run state is recorded on the instance before it is stopped, so a re-run after a
  crash still starts it again.
* A failure while swapping rolls back to the original volume on its device; then the instance
  gets its run state back. Nothing is deleted.
* A snapshot is reused only while it still holds the volume's current data: once the instance has
  run on the original volume again (our own roll-back restarts it; on AWS a changed LaunchTime
  shows any other start), what was made from it is marked stale and made again. Reusing it would
  silently lose every write made since.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Literal

import botocore.exceptions
from botocore.waiter import WaiterModel, create_waiter_with_client

from provisioner.aws import AwsSession, describe_error, error_code, paginate
from provisioner.baseline import Baseline
from provisioner.controls import CheckContext
from provisioner.instance_lock import LOCK_PREFIX, InstanceLock, iso, new_run_id, parse_iso, server_time
from provisioner.controls.ebs import (
    AWS_MANAGED_EBS_ALIAS,
    KeyNotUsable,
    chosen_key_arn,
    ebs_key_alias,
    is_aws_managed_alias,
    unencrypted_volumes,
    usable_key_arn,
)
from provisioner.tables import print_table

# -- tags: the migration's durable state ---------------------------------------------------------

TAG_ROLE = "harden:migration"                     # original | snapshot | encrypted-copy | stale-copy
TAG_STEP = "harden:migration-step"                # on the original: the last step done
TAG_INSTANCE = "harden:migration-instance"
TAG_DEVICE = "harden:migration-device"
TAG_DELETE_ON_TERMINATION = "harden:migration-delete-on-termination"
TAG_SNAPSHOT = "harden:migration-snapshot"
TAG_COPY = "harden:migration-encrypted-snapshot"
TAG_NEW_VOLUME = "harden:migration-new-volume"
TAG_LAUNCH_TIME = "harden:migration-launch-time"  # the instance's LaunchTime when the snapshot was taken
TAG_STALE = "harden:migration-stale"              # on snapshots that no longer hold the current data
TAG_FROM = "harden:migrated-from"
TAG_TO = "harden:migrated-to"
TAG_RUN_STATE = "harden:migration-run-state"      # on the instance, while harden keeps it stopped
# Who stopped the instance and when (the account's clock), its LaunchTime then, and the state
# reason AWS gave that stop: a re-run starts the instance again only while that stop is still
# the last thing that happened to it (never when its owner started and stopped it since).
TAG_STOPPED_BY = "harden:migration-stopped-by"
TAG_STOP_REQUESTED = "harden:migration-stop-requested"
TAG_STOP_LAUNCH_TIME = "harden:migration-stop-launch-time"
TAG_STOP_REASON = "harden:migration-stop-reason"
_STOP_TAGS = (TAG_RUN_STATE, TAG_STOPPED_BY, TAG_STOP_REQUESTED, TAG_STOP_LAUNCH_TIME, TAG_STOP_REASON)
# On the original volume: when its migration started and completed (the account's clock), and
# the ids of what earlier, rolled-back attempts made from it: what --cleanup may prove is harden's.
TAG_STARTED_AT = "harden:migration-started-at"
TAG_COMPLETED_AT = "harden:migration-completed-at"
TAG_STALE_IDS = "harden:migration-stale-ids"
ASG_TAG = "aws:autoscaling:groupName"

STEPS = ("started", "snapshot", "encrypted-copy", "new-volume", "detached", "attached", "completed")
_SWAP_STEPS = frozenset({"detached", "attached"})
_PROGRESS_TAGS = (TAG_SNAPSHOT, TAG_COPY, TAG_NEW_VOLUME, TAG_LAUNCH_TIME)

# Which volume types take which performance settings (CreateVolume rejects the others).
IOPS_TYPES = frozenset({"io1", "io2", "gp3"})
THROUGHPUT_TYPES = frozenset({"gp3"})
MULTI_ATTACH_TYPES = frozenset({"io1", "io2"})

INSTANCE_ID_RE = re.compile(r"^i-[0-9a-f]{8,17}$")
EMULATOR_DELAY = 0.1         # seconds between polls when AWS_ENDPOINT_URL points at an emulator
DEFAULT_TIMEOUT = 3600.0     # per wait: a snapshot of a large volume takes a while

Status = Literal["planned", "migrated", "failed", "refused", "skipped", "deleted", "busy"]


class MigrationError(Exception):
    """Something a person must fix before (or after) a migration: one line."""


# -- options, progress, results --------------------------------------------------------------------

@dataclass(frozen=True)
class MigrateOptions:
    apply: bool = False
    force: bool = False                    # migrate instances of Auto Scaling groups too
    instance_ids: tuple[str, ...] = ()     # narrow to these instances
    timeout: float = DEFAULT_TIMEOUT       # seconds, per wait
    delay: float | None = None             # seconds between polls; None: see poll_delay()
    run_id: str = ""                       # names this run's instance locks; empty: a new one
    lock_settle: float | None = None       # seconds before reading a lock back; None: 0 on an emulator, else 2

    def poll_delay(self) -> float | None:
        """Short polls on an emulator (it completes at once); the waiters' own delays on AWS."""
        if self.delay is not None:
            return self.delay
        return EMULATOR_DELAY if os.environ.get("AWS_ENDPOINT_URL") else None

    def settle(self) -> float:
        if self.lock_settle is not None:
            return self.lock_settle
        return 0.0 if os.environ.get("AWS_ENDPOINT_URL") else 2.0


@dataclass(frozen=True)
class Progress:
    region: str
    instance_id: str
    volume_id: str | None
    step: str
    detail: str = ""


ProgressFn = Callable[[Progress], None]


@dataclass
class VolumeResult:
    region: str
    instance_id: str
    volume_id: str
    device: str
    status: Status
    new_volume_id: str | None = None
    message: str = ""
    plan: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"region": self.region, "instance": self.instance_id, "volume": self.volume_id,
                "device": self.device, "new_volume": self.new_volume_id, "status": self.status,
                "message": self.message, "plan": list(self.plan)}


@dataclass
class MigrationReport:
    mode: Literal["migrate", "cleanup"]
    applied: bool
    regions: list[str]
    keys: dict[str, str] = field(default_factory=dict)   # region -> the KMS key ARN used
    results: list[VolumeResult] = field(default_factory=list)

    def count(self, status: Status) -> int:
        return sum(r.status == status for r in self.results)

    def exit_code(self) -> int:
        """3 a step failed; 1 work is left (a dry run's plan, a refused instance, an instance
        another run holds); 0 done."""
        if self.count("failed"):
            return 3
        if self.count("planned") or self.count("refused") or self.count("busy"):
            return 1
        return 0

    def to_dict(self) -> dict[str, Any]:
        statuses = ("planned", "migrated", "deleted", "failed", "refused", "skipped", "busy")
        return {"mode": self.mode, "applied": self.applied, "regions": list(self.regions),
                "kms_keys": dict(self.keys), "volumes": [r.to_dict() for r in self.results],
                "summary": {s: self.count(s) for s in statuses}}


# -- small helpers ---------------------------------------------------------------------------------

def tags_of(resource: dict) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resource.get("Tags", []) or []}


def _tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def _is_harden_migration_tag(key: str) -> bool:
    return key.startswith("harden:migration") or key.startswith("harden:migrated-")


def _carried_tags(original: dict) -> dict[str, str]:
    """The original's own tags, for its replacement: not AWS's reserved ones, not our progress."""
    return {k: v for k, v in tags_of(original).items()
            if not k.lower().startswith("aws:") and not _is_harden_migration_tag(k)}


def _why(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, MigrationError) else describe_error(exc)


def _launch_time(instance: dict) -> str:
    value = instance.get("LaunchTime")
    return value.isoformat() if hasattr(value, "isoformat") else str(value or "")


# "User initiated (2017-06-06 22:40:33 GMT)": the stop's time, in a state transition reason.
_REASON_TIME = re.compile(r"\((\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}) (?:GMT|UTC)\)")
STOP_CLOCK_SLACK = timedelta(seconds=5)
STOP_REQUEST_WINDOW = timedelta(seconds=120)   # a stop this long after harden asked is not harden's


def _reason_time(reason: str) -> datetime | None:
    match = _REASON_TIME.search(reason)
    return datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc) if match else None


def _not_found(exc: botocore.exceptions.ClientError) -> bool:
    return (error_code(exc) or "").endswith(".NotFound")


# -- the key ---------------------------------------------------------------------------------------

def _remedy(region: str) -> str:
    return (f"apply the ebs_encryption module (harden apply) or run `harden remediate --controls "
            f"ebs.default_encryption --apply --regions {region}`, or name a key in ebs.kms_key_arns")


def resolve_key(aws: AwsSession, baseline: Baseline, region: str) -> str:
    """The customer-managed key the copies are encrypted with: the baseline's key for the region,
    else the alias/<prefix>-ebs key the ebs_encryption module creates (the key the
    ebs.default_encryption fix chooses), else the region's default EBS key. Never the AWS-managed
    alias/aws/ebs: it cannot be shared or have its policy changed, which is what the migration is
    meant to get away from. Whether a key is usable is ebs.key_problems' rule."""
    ctx = CheckContext(aws=aws, baseline=baseline, region=region, account_id=aws.account_id(),
                       control_id="ebs.unencrypted_volumes")
    try:
        chosen = chosen_key_arn(ctx)
        if chosen:
            return chosen
        default = aws.client("ec2", region).get_ebs_default_kms_key_id().get("KmsKeyId") or ""
        if not default or is_aws_managed_alias(default):
            raise MigrationError(f"{region}: no customer-managed EBS key: the region's default EBS key is the "
                                 f"AWS-managed {AWS_MANAGED_EBS_ALIAS} and neither ebs.kms_key_arns nor "
                                 f"{ebs_key_alias(ctx)} names one; {_remedy(region)}")
        return usable_key_arn(ctx, default, "the region's default EBS key")
    except KeyNotUsable as exc:
        raise MigrationError(f"{region}: {exc.fact}; {_key_remedy(exc.meta, region)}") from None


def _key_remedy(meta: dict | None, region: str) -> str:
    if meta is None or meta.get("KeyManager") != "CUSTOMER":  # harden can make a key of its own
        return _remedy(region)
    if meta.get("KeyState") != "Enabled":
        return "enable it or name another customer-managed key in ebs.kms_key_arns"
    return "name another customer-managed key in ebs.kms_key_arns"


# -- what to migrate -------------------------------------------------------------------------------

@dataclass
class VolumeTarget:
    volume: dict                   # describe_volumes entry of the original volume
    device: str
    delete_on_termination: bool

    @property
    def id(self) -> str:
        return self.volume["VolumeId"]

    @property
    def tags(self) -> dict[str, str]:
        return tags_of(self.volume)

    @property
    def step(self) -> str | None:
        return self.tags.get(TAG_STEP)


@dataclass
class InstanceTarget:
    region: str
    instance: dict                 # describe_instances entry
    volumes: list[VolumeTarget]

    @property
    def id(self) -> str:
        return self.instance["InstanceId"]

    @property
    def state(self) -> str:
        return self.instance["State"]["Name"]

    @property
    def run_state(self) -> str:
        """The state to give back: "running" when it runs now, or when an interrupted run of
        harden stopped it and that stop is still the last thing that happened to it."""
        return "running" if self.state in ("running", "pending") or self.stopped_by_harden() is True else self.state

    def stopped_by_harden(self) -> bool | str | None:
        """None: no harden stop is recorded. True: harden stopped it and nothing happened since.
        Otherwise why harden must not start it (its owner started or stopped it since)."""
        tags, instance = tags_of(self.instance), self.instance
        if tags.get(TAG_RUN_STATE) != "running" or self.state in ("running", "pending"):
            return None
        recorded_launch = tags.get(TAG_STOP_LAUNCH_TIME)
        if recorded_launch and recorded_launch != _launch_time(instance):
            return (f"it was started again after harden stopped it (launched {_launch_time(instance)}) and is "
                    f"{self.state} now: left {self.state}, as its owner left it")
        reason = instance.get("StateTransitionReason") or ""
        recorded_reason = tags.get(TAG_STOP_REASON)
        if recorded_reason:
            ours = reason == recorded_reason
        else:  # interrupted between the stop request and recording its reason: compare the times
            stopped_at, requested = _reason_time(reason), parse_iso(tags.get(TAG_STOP_REQUESTED))
            ours = bool(stopped_at and requested and
                        requested - STOP_CLOCK_SLACK <= stopped_at <= requested + STOP_REQUEST_WINDOW)
        if ours:
            return True
        return (f"its last stop ({reason or 'no reason given'}) is not the one harden made "
                f"({recorded_reason or 'requested ' + tags.get(TAG_STOP_REQUESTED, '?')} by "
                f"{tags.get(TAG_STOPPED_BY, '?')}): left {self.state}, as its owner left it")

    def refusal(self, force: bool) -> str | None:
        if self.state not in ("running", "stopped", "stopping"):
            return f"instance is {self.state}: re-run when it is running or stopped"
        group = tags_of(self.instance).get(ASG_TAG)
        if group and not force:
            return (f"in Auto Scaling group {group}, which would replace the stopped instance: encrypt the "
                    "group's launch template block devices (or turn on EBS default encryption) and refresh "
                    "the group instead; --force migrates it anyway (suspend the group's HealthCheck and "
                    "ReplaceUnhealthy processes first)")
        return None


def _unencrypted_in_use(aws: AwsSession, baseline: Baseline, region: str) -> list[dict]:
    # The ebs.unencrypted_volumes check's own data: what verify reports is what gets migrated.
    ctx = CheckContext(aws=aws, baseline=baseline, region=region, account_id=aws.account_id(),
                       control_id="ebs.unencrypted_volumes")
    return [v for v in unencrypted_volumes(ctx) if v.get("State") not in ("deleting", "deleted", "error")]


def _placement(volume: dict) -> tuple[str, str] | str | None:
    """(instance, device) the volume belongs to, a refusal reason, or None (not ours to migrate)."""
    tags = tags_of(volume)
    attachments = volume.get("Attachments", [])
    if len(attachments) > 1:
        return (f"attached to {len(attachments)} instances (Multi-Attach): stopping one instance does "
                "not quiesce it; migrate it by hand")
    if attachments:
        att = attachments[0]
        if tags.get(TAG_STEP) == "completed":
            return (f"harden migrated this volume to {tags.get(TAG_TO)} before, and it is attached again "
                    f"(to {att['InstanceId']}); check the instance by hand")
        if att.get("State") != "attached":
            return f"its attachment to {att['InstanceId']} is {att.get('State')}: re-run when it settles"
        return att["InstanceId"], att["Device"]
    # Detached: only an unfinished migration of ours (the swap was interrupted) is a target.
    if tags.get(TAG_ROLE) == "original" and tags.get(TAG_STEP) != "completed" and tags.get(TAG_INSTANCE):
        return tags[TAG_INSTANCE], tags.get(TAG_DEVICE, "")
    return None


def find_targets(aws: AwsSession, baseline: Baseline, region: str,
                 instance_ids: tuple[str, ...] = ()) -> tuple[list[InstanceTarget], list[VolumeResult]]:
    """Instances with an unencrypted attached volume (or an unfinished migration), and the
    volumes refused on their own (Multi-Attach, attachment in flux)."""
    wanted = set(instance_ids)
    grouped: dict[str, list[tuple[dict, str]]] = {}
    refused: list[VolumeResult] = []
    for volume in sorted(_unencrypted_in_use(aws, baseline, region), key=lambda v: v["VolumeId"]):
        place = _placement(volume)
        if place is None:
            continue
        if isinstance(place, str):
            for att in volume.get("Attachments", []):
                if not wanted or att["InstanceId"] in wanted:
                    refused.append(VolumeResult(region, att["InstanceId"], volume["VolumeId"], att["Device"],
                                                "refused", message=place))
            continue
        instance_id, device = place
        if not wanted or instance_id in wanted:
            grouped.setdefault(instance_id, []).append((volume, device))
    # Instances an interrupted run left stopped or locked, with every volume already swapped: the
    # job is not done until they have their run state back and harden's tags are gone.
    for instance_id in _left_by_interrupted_runs(aws.client("ec2", region)):
        if not wanted or instance_id in wanted:
            grouped.setdefault(instance_id, [])
    if not grouped:
        return [], refused
    instances = _describe_instances(aws.client("ec2", region), sorted(grouped))
    targets: list[InstanceTarget] = []
    for instance_id, vols in sorted(grouped.items()):
        instance = instances.get(instance_id)
        if instance is None or instance["State"]["Name"] in ("terminated", "shutting-down"):
            refused += [VolumeResult(region, instance_id, v["VolumeId"], device, "skipped",
                                     message=f"instance {instance_id} no longer exists; the volume was kept")
                        for v, device in vols]
            continue
        mappings = {m["DeviceName"]: m.get("Ebs", {}) for m in instance.get("BlockDeviceMappings", [])}
        targets.append(InstanceTarget(region, instance, [
            VolumeTarget(v, device, _delete_on_termination(v, mappings.get(device, {}), instance_id, device))
            for v, device in sorted(vols, key=lambda pair: pair[1])]))
    return targets, refused


def _left_by_interrupted_runs(ec2) -> list[str]:
    # Filter values take `*` wildcards: https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/Using_Filtering.html
    tags = paginate(ec2, "describe_tags", "Tags", Filters=[
        {"Name": "resource-type", "Values": ["instance"]},
        {"Name": "key", "Values": [TAG_RUN_STATE, LOCK_PREFIX + "*"]}])
    return sorted({t["ResourceId"] for t in tags})


def _delete_on_termination(volume: dict, mapping: dict, instance_id: str, device: str) -> bool:
    tags = tags_of(volume)
    recorded = tags.get(TAG_DELETE_ON_TERMINATION)
    # Recorded at the start of this volume's migration: the mapping may be gone by now (swap
    # interrupted). Not when the volume has moved to another instance or device since.
    if recorded is not None and (tags.get(TAG_INSTANCE), tags.get(TAG_DEVICE)) == (instance_id, device):
        return recorded == "true"
    return bool(mapping.get("DeleteOnTermination", False))


def _recorded_here(volume: VolumeTarget, instance: InstanceTarget) -> bool:
    tags = volume.tags
    return (tags.get(TAG_INSTANCE), tags.get(TAG_DEVICE)) == (instance.id, volume.device)


def _describe_instances(ec2, instance_ids: list[str]) -> dict[str, dict]:
    found: dict[str, dict] = {}
    for i in range(0, len(instance_ids), 100):
        try:
            reservations = paginate(ec2, "describe_instances", "Reservations", InstanceIds=instance_ids[i:i + 100])
        except botocore.exceptions.ClientError as exc:
            if not _not_found(exc):
                raise
            reservations = []
            for one in instance_ids[i:i + 100]:  # one of them is gone: ask one by one
                try:
                    reservations += paginate(ec2, "describe_instances", "Reservations", InstanceIds=[one])
                except botocore.exceptions.ClientError as inner:
                    if not _not_found(inner):
                        raise
        for reservation in reservations:
            for instance in reservation["Instances"]:
                found[instance["InstanceId"]] = instance
    return found


# -- the waits -------------------------------------------------------------------------------------

# EC2 has no waiter for "this attachment is attached" (volume_in_use only looks at the volume).
_CUSTOM_WAITERS = WaiterModel({"version": 2, "waiters": {"VolumeAttached": {
    "operation": "DescribeVolumes", "delay": 5, "maxAttempts": 120,
    "acceptors": [
        {"state": "success", "matcher": "pathAll", "argument": "Volumes[].Attachments[].State", "expected": "attached"},
        {"state": "failure", "matcher": "pathAny", "argument": "Volumes[].State", "expected": "deleted"},
    ]}}})


# -- one region's migrations -----------------------------------------------------------------------

@dataclass
class _Resume:
    """What an earlier run already made and can be reused (None: make it)."""
    snapshot: str | None = None
    copy: str | None = None
    new_volume: str | None = None
    stale: bool = False


class _SwapFailed(MigrationError):
    def __init__(self, message: str, rolled_back: bool) -> None:
        super().__init__(message)
        self.rolled_back = rolled_back


class Migrator:
    """Migrates (or plans) the instances of one region with one key."""

    def __init__(self, aws: AwsSession, region: str, key_arn: str, options: MigrateOptions,
                 progress: ProgressFn | None = None,
                 find: Callable[[str], tuple[list[InstanceTarget], list[VolumeResult]]] | None = None) -> None:
        self.ec2 = aws.client("ec2", region)
        self.region = region
        self.key = key_arn
        self.options = options
        self.run_id = options.run_id or new_run_id()
        self._progress = progress
        self._aws = aws
        self._find = find            # re-reads one instance's target once it is locked
        self._caller: str | None = None

    # -- plumbing ------------------------------------------------------------------------------
    def _emit(self, instance: InstanceTarget, volume: VolumeTarget | None, step: str, detail: str = "") -> None:
        if self._progress:
            self._progress(Progress(self.region, instance.id, volume.id if volume else None, step, detail))

    def _wait(self, name: str, what: str, **kwargs: Any) -> None:
        waiter = (create_waiter_with_client(name, _CUSTOM_WAITERS, self.ec2) if name in _CUSTOM_WAITERS.waiter_names
                  else self.ec2.get_waiter(name))
        delay = self.options.poll_delay() or waiter.config.delay
        attempts = max(1, math.ceil(self.options.timeout / delay))
        try:
            waiter.wait(WaiterConfig={"Delay": delay, "MaxAttempts": attempts}, **kwargs)
        except botocore.exceptions.WaiterError as exc:
            reason = str(exc.kwargs.get("reason", exc))
            if "Max attempts exceeded" in reason:
                raise MigrationError(f"timed out after {self.options.timeout:g}s waiting for {what}") from None
            last = exc.last_response or {}
            detail = (last.get("Error") or {}).get("Message") or reason
            raise MigrationError(f"waiting for {what} failed: {' '.join(str(detail).split())[:200]}") from None

    def _tag(self, resource_id: str, tags: dict[str, str]) -> datetime:
        """Returns when the tags were written, by the account's clock."""
        return server_time(self.ec2.create_tags(Resources=[resource_id], Tags=_tag_list(tags)))

    def _untag(self, resource_id: str, keys: list[str]) -> None:
        self.ec2.delete_tags(Resources=[resource_id], Tags=[{"Key": k} for k in keys])

    def _volume(self, volume_id: str | None) -> dict | None:
        if not volume_id:
            return None
        try:
            return self.ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"][0]
        except botocore.exceptions.ClientError as exc:
            if _not_found(exc):
                return None
            raise

    def _snapshot(self, snapshot_id: str | None) -> dict | None:
        if not snapshot_id:
            return None
        try:
            found = self.ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"]
        except botocore.exceptions.ClientError as exc:
            if _not_found(exc):
                return None
            raise
        return found[0] if found else None

    def _attached_to(self, volume_id: str, instance: InstanceTarget) -> dict | None:
        volume = self._volume(volume_id)
        for att in (volume or {}).get("Attachments", []):
            if att["InstanceId"] == instance.id and att.get("State") in ("attaching", "attached"):
                return att
        return None

    # -- what can be reused ----------------------------------------------------------------------
    def resume_point(self, instance: InstanceTarget, volume: VolumeTarget) -> _Resume:
        tags = volume.tags
        original_live = any(a["InstanceId"] == instance.id for a in volume.volume.get("Attachments", []))
        recorded_launch = tags.get(TAG_LAUNCH_TIME)
        if original_live and recorded_launch and (recorded_launch != _launch_time(instance.instance)
                                                  or not _recorded_here(volume, instance)):
            # The instance was started after the snapshot (LaunchTime changes on every start), or
            # the volume moved: it has been written since, the snapshot no longer holds its data.
            return _Resume(stale=True)
        new = self._volume(tags.get(TAG_NEW_VOLUME)) or self._unrecorded_new_volume(volume)
        if new and new.get("Encrypted") and new.get("KmsKeyId") in (None, self.key) and self._new_volume_fits(
                new, instance, volume):
            return _Resume(new_volume=new["VolumeId"])
        copy = self._snapshot(tags.get(TAG_COPY))
        if copy and copy.get("State") != "error" and copy.get("Encrypted") and copy.get("KmsKeyId") == self.key:
            return _Resume(copy=copy["SnapshotId"])
        snap = self._snapshot(tags.get(TAG_SNAPSHOT)) or self._unrecorded_snapshot(instance, volume)
        if snap and snap.get("State") != "error":
            return _Resume(snapshot=snap["SnapshotId"])
        return _Resume()

    # A run killed between creating something and recording it on the original left it unrecorded.
    # Reused only when AWS's own fields prove where it came from (tags alone prove nothing).
    def _unrecorded_snapshot(self, instance: InstanceTarget, volume: VolumeTarget) -> dict | None:
        """A snapshot OF this volume (its VolumeId, set by EBS) taken by this migration (after it
        started, the instance not launched since), tagged by harden."""
        started = parse_iso(volume.tags.get(TAG_STARTED_AT))
        launched = instance.instance.get("LaunchTime")
        if not started or tags_of(volume.volume).get(TAG_SNAPSHOT) or (
                isinstance(launched, datetime) and launched > started):
            return None
        found = [s for s in paginate(self.ec2, "describe_snapshots", "Snapshots", OwnerIds=["self"], Filters=[
            {"Name": "volume-id", "Values": [volume.id]}, {"Name": f"tag:{TAG_ROLE}", "Values": ["snapshot"]}])
            if TAG_STALE not in tags_of(s) and s.get("StartTime") and s["StartTime"] >= started]
        return max(found, key=lambda s: s["StartTime"]) if found else None

    def _unrecorded_new_volume(self, volume: VolumeTarget) -> dict | None:
        """A volume made from this migration's recorded encrypted copy (its SnapshotId, set by EBS)."""
        copy_id = volume.tags.get(TAG_COPY)
        if not copy_id or volume.tags.get(TAG_NEW_VOLUME):
            return None
        found = [v for v in paginate(self.ec2, "describe_volumes", "Volumes", Filters=[
            {"Name": "snapshot-id", "Values": [copy_id]}, {"Name": f"tag:{TAG_FROM}", "Values": [volume.id]}])
            if tags_of(v).get(TAG_ROLE) != "stale-copy"]
        return min(found, key=lambda v: v["CreateTime"]) if found else None

    @staticmethod
    def _new_volume_fits(new: dict, instance: InstanceTarget, volume: VolumeTarget) -> bool:
        if new.get("State") == "available":
            return True
        # Already swapped in by an interrupted run: attached to this instance on this device.
        return any(a["InstanceId"] == instance.id and a["Device"] == volume.device
                   for a in new.get("Attachments", []))

    # -- the dry run -------------------------------------------------------------------------------
    def plan(self, instance: InstanceTarget) -> list[VolumeResult]:
        results = []
        for volume in instance.volumes:
            steps = self._plan_volume(instance, volume)
            results.append(VolumeResult(self.region, instance.id, volume.id, volume.device, "planned",
                                        message="dry run: nothing changed", plan=steps))
        if not results:  # only an interrupted run's leftovers: its run state and tags
            owned = instance.stopped_by_harden()
            results.append(VolumeResult(self.region, instance.id, "-", "-", "planned",
                                        message="dry run: nothing changed", plan=[
                f"start {instance.id} again (an interrupted run stopped it)" if owned is True else
                f"leave {instance.id} {instance.state}" + (f": {owned}" if isinstance(owned, str) else ""),
                "remove the interrupted run's tags from it"]))
            return results
        if instance.state == "running":
            results[0].plan.insert(0, f"stop {instance.id} (running) and wait until it is stopped")
            results[-1].plan.append(f"start {instance.id} again and wait until it is running")
        elif instance.run_state == "running":
            results[-1].plan.append(f"start {instance.id} again (an interrupted run stopped it)")
        else:
            results[0].plan.insert(0, f"{instance.id} is stopped and stays stopped")
        return results

    def _plan_volume(self, instance: InstanceTarget, volume: VolumeTarget) -> list[str]:
        v = volume.volume
        resume = self.resume_point(instance, volume)
        steps: list[str] = []
        if resume.stale:
            steps.append("the earlier run's snapshots are stale (the instance ran since): make them again")
        if resume.new_volume:
            steps.append(f"reuse the encrypted volume {resume.new_volume} made by an earlier run")
        else:
            if resume.copy:
                steps.append(f"reuse the encrypted snapshot {resume.copy} made by an earlier run")
            else:
                steps.append(f"reuse snapshot {resume.snapshot} made by an earlier run" if resume.snapshot else
                             f"snapshot {volume.id} and wait until it completes")
                steps.append(f"copy the snapshot encrypted with {self.key} and wait until it completes")
            steps.append(f"create a {_shape(v)} volume in {v['AvailabilityZone']} from the encrypted snapshot, "
                         f"with {volume.id}'s tags and {TAG_FROM}={volume.id}")
        if any(a["InstanceId"] == instance.id for a in v.get("Attachments", [])):
            steps.append(f"detach {volume.id} from {volume.device}")
        steps.append(f"attach the new volume on {volume.device}, DeleteOnTermination="
                     f"{str(volume.delete_on_termination).lower()}")
        steps.append(f"keep {volume.id} and both snapshots, tagged {TAG_ROLE} (delete them later with --cleanup)")
        return steps

    # -- the migration -----------------------------------------------------------------------------
    def run(self, instance: InstanceTarget) -> list[VolumeResult]:
        """Lock the instance, read it again (another run may have finished it meanwhile), then
        migrate it; the lock goes in every case but a crash (a re-run takes a dead run's over)."""
        lock = InstanceLock(self.ec2, instance.id, self.run_id, settle=self.options.settle())
        holder = lock.acquire()
        if holder is not None:
            message = (f"another harden run is migrating this instance: {holder.describe()}; backed off, "
                       "nothing changed: re-run when it has finished")
            self._emit(instance, None, "busy", message)
            return [VolumeResult(self.region, instance.id, v.id, v.device, "busy", message=message)
                    for v in instance.volumes] or [VolumeResult(self.region, instance.id, "-", "-", "busy",
                                                                message=message)]
        took_over = "; ".join(f"took over the lock: {why}" for why in lock.taken_over)
        if took_over:
            self._emit(instance, None, "lock", took_over)
        try:
            fresh = self._refresh(instance)
            results = self._run_locked(fresh, lock) if fresh else [VolumeResult(
                self.region, instance.id, v.id, v.device, "skipped",
                message="another run finished this instance meanwhile") for v in instance.volumes]
        finally:
            try:
                with self._aws.must_try():
                    lock.release()
            except Exception as exc:  # the work is done; a leftover lock is taken over once we are gone
                released = f"could not remove this run's lock tag {lock.key}: {_why(exc)}"
            else:
                released = None
        if released and results:
            results[0].message = _join(results[0].message, released)
        if took_over and results:
            results[0].message = _join(results[0].message, took_over)
        return results

    def _refresh(self, instance: InstanceTarget) -> InstanceTarget | None:
        if self._find is None:
            return instance
        found, _ = self._find(instance.id)
        return found[0] if found else None

    def _run_locked(self, instance: InstanceTarget, lock: InstanceLock) -> list[VolumeResult]:
        results = {v.id: VolumeResult(self.region, instance.id, v.id, v.device, "skipped",
                                      message="not attempted: an earlier volume of the instance failed")
                   for v in instance.volumes}
        if not instance.volumes:
            return [self._finish_interrupted(instance)]
        owned = instance.stopped_by_harden()
        run_state = instance.run_state
        try:
            self._stop(instance)
        except Exception as exc:  # nothing was changed on the volumes
            note = self._restore(instance, run_state, failed=True, safe_to_start=True)
            for result in results.values():
                result.status, result.message = "failed", _join(f"could not stop {instance.id}: {_why(exc)}", note)
            return list(results.values())
        failure: str | None = None
        safe_to_start = True
        for volume in instance.volumes:
            result = results[volume.id]
            try:
                lock.renew()
                result.new_volume_id = self._migrate_volume(instance, volume)
                result.status, result.message = "migrated", "encrypted; the original and its snapshots are kept"
            except Exception as exc:  # reported; the remaining volumes are left as they are
                failure = _why(exc)
                safe_to_start = not isinstance(exc, _SwapFailed) or exc.rolled_back
                result.status, result.message = "failed", failure
                self._emit(instance, volume, "failed", failure)
                break
        note = self._restore(instance, run_state, failed=failure is not None, safe_to_start=safe_to_start)
        if isinstance(owned, str):
            first = next(iter(results.values()))
            first.message = _join(first.message, f"{instance.id}: {owned}")
        if note:
            failed = next(r for r in results.values() if r.status == "failed") if failure else None
            target = failed or next(iter(results.values()))
            target.message = _join(target.message, note)
            if not failure:
                target.status = "failed"
        return list(results.values())

    def _finish_interrupted(self, instance: InstanceTarget) -> VolumeResult:
        """Every volume was swapped by an interrupted run: give the instance its run state back."""
        result = VolumeResult(self.region, instance.id, "-", "-", "migrated")
        owned = instance.stopped_by_harden()
        if instance.state == "stopping":
            self._wait("instance_stopped", f"{instance.id} to stop", InstanceIds=[instance.id])
        if instance.state in ("running", "pending"):  # never stopped, or started since: only the tags
            leftover = [k for k in _STOP_TAGS if k in tags_of(instance.instance)]
            if leftover:
                self._untag(instance.id, leftover)
            result.message = "finished an interrupted migration: removed its tags (the instance runs)"
            return result
        note = self._restore(instance, instance.run_state, failed=False, safe_to_start=True)
        if note:
            result.status, result.message = "failed", note
        elif owned is True:
            result.message = "finished an interrupted migration: started the instance again, removed its tags"
        else:
            result.message = _join("finished an interrupted migration: removed its tags",
                                   owned if isinstance(owned, str) else None)
        return result

    def _stop(self, instance: InstanceTarget) -> None:
        if instance.state == "stopping":
            self._wait("instance_stopped", f"{instance.id} to stop", InstanceIds=[instance.id])
            return
        if instance.state != "running":
            return
        # Recorded first: a re-run after a crash must know to start the instance again, and
        # that the stop was harden's (who, when, the LaunchTime it ran with).
        now = self._tag(instance.id, {TAG_RUN_STATE: "running", TAG_STOPPED_BY: self._identity(),
                                      TAG_STOP_LAUNCH_TIME: _launch_time(instance.instance)})
        self._tag(instance.id, {TAG_STOP_REQUESTED: iso(now)})
        self._emit(instance, None, "stop", "stopping the instance")
        self.ec2.stop_instances(InstanceIds=[instance.id])
        self._wait("instance_stopped", f"{instance.id} to stop", InstanceIds=[instance.id])
        reason = _describe_instances(self.ec2, [instance.id]).get(instance.id, {}).get("StateTransitionReason")
        if reason:
            self._tag(instance.id, {TAG_STOP_REASON: reason[:256]})
            self._emit(instance, None, "stopped", reason)

    def _identity(self) -> str:
        if self._caller is None:
            try:
                self._caller = self._aws.client("sts").get_caller_identity()["Arn"]
            except Exception:  # only a note for people: not worth failing the migration
                self._caller = "unknown"
        return self._caller[:256]

    def _restore(self, instance: InstanceTarget, run_state: str, *, failed: bool, safe_to_start: bool) -> str | None:
        """Give the instance its run state back. Returns a note when that was not possible."""
        if run_state != "running":
            leftover = [k for k in _STOP_TAGS if k in tags_of(instance.instance)]
            try:
                if leftover:
                    with self._aws.must_try():
                        self._untag(instance.id, leftover)
            except Exception as exc:
                return f"could not remove harden's stop tags from {instance.id}: {_why(exc)}; re-run to finish"
            return None
        if not safe_to_start:
            return (f"{instance.id} was left stopped: its original volume could not be re-attached; "
                    "re-run to finish, or attach it by hand")
        try:
            with self._aws.must_try():  # even after a timeout in this region (aws.must_try)
                if failed:
                    self._invalidate_live_progress(instance)
                self._emit(instance, None, "start", "starting the instance again")
                self.ec2.start_instances(InstanceIds=[instance.id])
                self._wait("instance_running", f"{instance.id} to run", InstanceIds=[instance.id])
                self._untag(instance.id, list(_STOP_TAGS))
        except Exception as exc:
            return f"could not start {instance.id} again: {_why(exc)}; re-run or start it by hand"
        return None

    def _invalidate_live_progress(self, instance: InstanceTarget) -> None:
        """Before the instance runs on an original volume again: what was made from that volume
        stops being its current data, so a re-run must not reuse it."""
        for volume in instance.volumes:
            current = self._volume(volume.id)
            if current is None or not any(a["InstanceId"] == instance.id for a in current.get("Attachments", [])):
                continue  # swapped already: the instance runs on the new volume
            tags = tags_of(current)
            if any(k in tags for k in _PROGRESS_TAGS):
                self._mark_stale(current["VolumeId"], tags)

    def _start_volume(self, volume: VolumeTarget, tags: dict[str, str]) -> None:
        """Step "started", and when, by the account's clock (what the snapshot must be newer than)."""
        started = self._tag(volume.id, {**tags, TAG_STEP: "started"})
        self._tag(volume.id, {TAG_STARTED_AT: iso(started)})
        kept = {**{k: v for k, v in volume.tags.items() if k not in _PROGRESS_TAGS}, **tags,
                TAG_STEP: "started", TAG_STARTED_AT: iso(started)}
        volume.volume["Tags"] = _tag_list(kept)

    def _mark_stale(self, volume_id: str, tags: dict[str, str]) -> None:
        for key in (TAG_SNAPSHOT, TAG_COPY):
            if tags.get(key) and self._snapshot(tags[key]):
                self._tag(tags[key], {TAG_STALE: "true"})
        if tags.get(TAG_NEW_VOLUME) and self._volume(tags[TAG_NEW_VOLUME]):
            self._tag(tags[TAG_NEW_VOLUME], {TAG_ROLE: "stale-copy"})
        # Still recorded as made by harden, so that --cleanup can prove they are its own.
        made = [tags[k] for k in (TAG_SNAPSHOT, TAG_COPY, TAG_NEW_VOLUME) if tags.get(k)]
        stale_ids = _join_ids(tags.get(TAG_STALE_IDS, "").split() + made)
        self._tag(volume_id, {TAG_STEP: "started", **({TAG_STALE_IDS: stale_ids} if stale_ids else {})})
        self._untag(volume_id, [k for k in (*_PROGRESS_TAGS, TAG_STARTED_AT) if k in tags])

    def _migrate_volume(self, instance: InstanceTarget, volume: VolumeTarget) -> str:
        if volume.tags.get(TAG_ROLE) != "original" or not _recorded_here(volume, instance) \
                or not volume.tags.get(TAG_STARTED_AT):
            self._start_volume(volume, {
                TAG_ROLE: "original", TAG_INSTANCE: instance.id, TAG_DEVICE: volume.device,
                TAG_DELETE_ON_TERMINATION: str(volume.delete_on_termination).lower()})
        resume = self.resume_point(instance, volume)
        if resume.stale:
            self._emit(instance, volume, "stale", "the instance ran since the last snapshot: starting over")
            self._mark_stale(volume.id, volume.tags)
            self._start_volume(volume, {})
            resume = _Resume()
        new_id = resume.new_volume
        if new_id and volume.tags.get(TAG_NEW_VOLUME) != new_id:  # made, not recorded, by a killed run
            self._tag(volume.id, {TAG_NEW_VOLUME: new_id, TAG_STEP: "new-volume"})
        if resume.snapshot and volume.tags.get(TAG_SNAPSHOT) != resume.snapshot:
            self._tag(volume.id, {TAG_SNAPSHOT: resume.snapshot, TAG_STEP: "snapshot",
                                  TAG_LAUNCH_TIME: _launch_time(instance.instance)})
        if new_id:
            self._emit(instance, volume, "reuse", f"encrypted volume {new_id}")
        else:
            copy_id = resume.copy
            if copy_id:
                self._emit(instance, volume, "reuse", f"encrypted snapshot {copy_id}")
            else:
                snap_id = resume.snapshot or self._make_snapshot(instance, volume)
                if resume.snapshot:
                    self._emit(instance, volume, "reuse", f"snapshot {snap_id}")
                self._wait("snapshot_completed", f"snapshot {snap_id}", SnapshotIds=[snap_id])
                copy_id = self._make_copy(instance, volume, snap_id)
            self._wait("snapshot_completed", f"encrypted snapshot {copy_id}", SnapshotIds=[copy_id])
            new_id = self._make_volume(instance, volume, copy_id)
        if (self._volume(new_id) or {}).get("State") != "in-use":
            self._wait("volume_available", f"volume {new_id}", VolumeIds=[new_id])
        self._swap(instance, volume, new_id)
        self._emit(instance, volume, "delete-on-termination", str(volume.delete_on_termination).lower())
        self._set_delete_on_termination(instance, volume, new_id)
        done = self._tag(volume.id, {TAG_STEP: "completed", TAG_TO: new_id})
        self._tag(volume.id, {TAG_COMPLETED_AT: iso(done)})
        self._emit(instance, volume, "completed", f"{volume.id} -> {new_id}")
        return new_id

    def _set_delete_on_termination(self, instance: InstanceTarget, volume: VolumeTarget, attached_id: str) -> None:
        self.ec2.modify_instance_attribute(InstanceId=instance.id, BlockDeviceMappings=[{
            "DeviceName": volume.device,
            "Ebs": {"VolumeId": attached_id, "DeleteOnTermination": volume.delete_on_termination}}])

    def _make_snapshot(self, instance: InstanceTarget, volume: VolumeTarget) -> str:
        self._emit(instance, volume, "snapshot", "creating the snapshot")
        snap_id = self.ec2.create_snapshot(
            VolumeId=volume.id, Description=_snapshot_description(volume.id, f"{instance.id} {volume.device})"),
            TagSpecifications=[{"ResourceType": "snapshot",
                                "Tags": _tag_list({TAG_ROLE: "snapshot", TAG_FROM: volume.id})}])["SnapshotId"]
        self._emit(instance, volume, "snapshot-created", snap_id)
        self._tag(volume.id, {TAG_SNAPSHOT: snap_id, TAG_STEP: "snapshot",
                              TAG_LAUNCH_TIME: _launch_time(instance.instance)})
        return snap_id

    def _make_copy(self, instance: InstanceTarget, volume: VolumeTarget, snap_id: str) -> str:
        self._emit(instance, volume, "encrypted-copy", f"copying {snap_id} encrypted")
        copy_id = self.ec2.copy_snapshot(
            SourceSnapshotId=snap_id, SourceRegion=self.region, Encrypted=True, KmsKeyId=self.key,
            Description=_copy_description(volume.id),
            TagSpecifications=[{"ResourceType": "snapshot",
                                "Tags": _tag_list({TAG_ROLE: "encrypted-copy", TAG_FROM: volume.id})}])["SnapshotId"]
        self._emit(instance, volume, "copy-created", copy_id)
        self._tag(volume.id, {TAG_COPY: copy_id, TAG_STEP: "encrypted-copy"})
        return copy_id

    def _make_volume(self, instance: InstanceTarget, volume: VolumeTarget, copy_id: str) -> str:
        v = volume.volume
        self._emit(instance, volume, "new-volume", f"{_shape(v)} in {v['AvailabilityZone']}")
        params: dict[str, Any] = {
            "AvailabilityZone": v["AvailabilityZone"], "SnapshotId": copy_id, "VolumeType": v["VolumeType"],
            "Size": v["Size"], "Encrypted": True, "KmsKeyId": self.key,
            "TagSpecifications": [{"ResourceType": "volume",
                                   "Tags": _tag_list({**_carried_tags(v), TAG_FROM: volume.id})}],
        }
        if v["VolumeType"] in IOPS_TYPES and v.get("Iops"):
            params["Iops"] = v["Iops"]
        if v["VolumeType"] in THROUGHPUT_TYPES and v.get("Throughput"):
            params["Throughput"] = v["Throughput"]
        if v["VolumeType"] in MULTI_ATTACH_TYPES and v.get("MultiAttachEnabled"):
            params["MultiAttachEnabled"] = True
        # The same token for the same copy: AWS returns the volume it already made from it
        # (https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-idempotency.html).
        params["ClientToken"] = f"harden-{volume.id}-{copy_id}"[:64]
        new_id = self.ec2.create_volume(**params)["VolumeId"]
        self._emit(instance, volume, "volume-created", new_id)
        self._tag(volume.id, {TAG_NEW_VOLUME: new_id, TAG_STEP: "new-volume"})
        return new_id

    def _swap(self, instance: InstanceTarget, volume: VolumeTarget, new_id: str) -> None:
        try:
            if self._attached_to(volume.id, instance):
                self._emit(instance, volume, "detach", f"{volume.id} from {volume.device}")
                self.ec2.detach_volume(VolumeId=volume.id, InstanceId=instance.id, Device=volume.device)
                self._wait("volume_available", f"{volume.id} to detach", VolumeIds=[volume.id])
                self._tag(volume.id, {TAG_STEP: "detached"})
            if not self._attached_to(new_id, instance):
                self._emit(instance, volume, "attach", f"{new_id} on {volume.device}")
                self.ec2.attach_volume(VolumeId=new_id, InstanceId=instance.id, Device=volume.device)
            self._wait("VolumeAttached", f"{new_id} to attach", VolumeIds=[new_id])
            self._tag(volume.id, {TAG_STEP: "attached"})
        except Exception as exc:
            problem = _why(exc)
            back_on, trouble = self._roll_back(instance, volume, new_id)
            if not back_on:
                raise _SwapFailed(f"{problem}; roll-back failed: {trouble}", rolled_back=False) from exc
            raise _SwapFailed(_join(f"{problem}; rolled back: {volume.id} is attached on {volume.device} again, "
                                    f"{new_id} is kept (available)", trouble), rolled_back=True) from exc

    def _roll_back(self, instance: InstanceTarget, volume: VolumeTarget, new_id: str) -> tuple[bool, str | None]:
        """Put the original back on its device; the new volume stays, available and tagged.
        Returns whether the original is attached again, and what went wrong."""
        self._emit(instance, volume, "roll-back", f"{volume.id} back on {volume.device}")
        with self._aws.must_try():  # the swap may have failed on a timeout: try anyway
            return self._put_original_back(instance, volume, new_id)

    def _put_original_back(self, instance: InstanceTarget, volume: VolumeTarget, new_id: str) -> tuple[bool, str | None]:
        try:
            if self._attached_to(new_id, instance):
                self.ec2.detach_volume(VolumeId=new_id, InstanceId=instance.id, Device=volume.device)
                self._wait("volume_available", f"{new_id} to detach", VolumeIds=[new_id])
            if not self._attached_to(volume.id, instance):
                self.ec2.attach_volume(VolumeId=volume.id, InstanceId=instance.id, Device=volume.device)
            self._wait("VolumeAttached", f"{volume.id} to attach", VolumeIds=[volume.id])
        except Exception as exc:
            return False, _why(exc)
        try:
            # AttachVolume leaves DeleteOnTermination false: give the original its own value back.
            self._set_delete_on_termination(instance, volume, volume.id)
            self._tag(volume.id, {TAG_STEP: "new-volume"})
        except Exception as exc:  # the original works; only the bookkeeping is behind
            return True, (f"DeleteOnTermination of {volume.device} may be false now "
                          f"(was {str(volume.delete_on_termination).lower()}): {_why(exc)}")
        return True, None


def _shape(volume: dict) -> str:
    parts = [f"{volume['Size']} GiB {volume['VolumeType']}"]
    if volume["VolumeType"] in IOPS_TYPES and volume.get("Iops"):
        parts.append(f"{volume['Iops']} IOPS")
    if volume["VolumeType"] in THROUGHPUT_TYPES and volume.get("Throughput"):
        parts.append(f"{volume['Throughput']} MiB/s")
    return ", ".join(parts)


def _snapshot_description(volume_id: str, where: str) -> str:
    return f"harden ebs migrate: {volume_id} ({where}"


def _copy_description(volume_id: str) -> str:
    return f"harden ebs migrate: {volume_id} encrypted"


def _join_ids(ids: list[str]) -> str:
    """Space-separated ids for one tag value (256 characters at most: the oldest give way)."""
    unique = list(dict.fromkeys(ids))
    while unique and len(" ".join(unique)) > 256:
        unique.pop(0)
    return " ".join(unique)


def _join(*parts: str | None) -> str:
    return "; ".join(p for p in parts if p)


# -- the command's entry points ----------------------------------------------------------------------

def validate_instance_ids(instance_ids: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    bad = [i for i in instance_ids if not INSTANCE_ID_RE.match(i)]
    if bad:
        raise MigrationError(f"--instance {bad[0]!r}: expected an instance id such as i-0123456789abcdef0")
    return tuple(dict.fromkeys(instance_ids))


def run_migration(aws: AwsSession, baseline: Baseline, *, regions: list[str] | None = None,
                  options: MigrateOptions = MigrateOptions(), progress: ProgressFn | None = None) -> MigrationReport:
    """Find the instances to migrate in every region, resolve each region's key (refusing before
    anything changes), then plan (dry run) or migrate them one instance at a time."""
    instance_ids = validate_instance_ids(options.instance_ids)
    chosen = aws.resolve_regions(regions or baseline.explicit_regions)
    report = MigrationReport("migrate", options.apply, chosen)
    work: list[tuple[str, list[InstanceTarget]]] = []
    seen: set[str] = set()
    for region in chosen:
        try:  # a region that cannot be read is reported and the others go on
            targets, others = find_targets(aws, baseline, region, instance_ids)
            ready = [t for t in targets if not t.refusal(options.force)]
            key = resolve_key(aws, baseline, region) if ready else None  # a MigrationError stops all
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            report.results.append(VolumeResult(region, "-", "-", "-", "failed",
                                               message=f"{region}: could not read: {describe_error(exc)}"))
            continue
        report.results += others
        seen |= {t.id for t in targets} | {r.instance_id for r in others}
        for target in targets:
            if reason := target.refusal(options.force):
                report.results += [VolumeResult(region, target.id, v.id, v.device, "refused", message=reason)
                                   for v in target.volumes]
        if ready:
            report.keys[region] = key
            work.append((region, ready))
    run_id = options.run_id or new_run_id()
    for region, targets in work:
        def find(instance_id: str, region: str = region):
            return find_targets(aws, baseline, region, (instance_id,))

        migrator = Migrator(aws, region, report.keys[region], replace(options, run_id=run_id), progress, find)
        for target in targets:
            try:  # one instance's failure (a lock that cannot be read, a region gone) ends only its own work
                report.results += migrator.run(target) if options.apply else migrator.plan(target)
            except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
                report.results += [VolumeResult(region, target.id, v.id, v.device, "failed",
                                                message=f"{region}: {target.id}: {describe_error(exc)}")
                                   for v in target.volumes] or [VolumeResult(
                                       region, target.id, "-", "-", "failed",
                                       message=f"{region}: {target.id}: {describe_error(exc)}")]
    for missing in (i for i in instance_ids if i not in seen):
        report.results.append(VolumeResult("-", missing, "-", "-", "skipped",
                                           message="no unencrypted attached volume found in the regions checked"))
    return report


# -- cleanup: the only place anything is deleted ------------------------------------------------------

def run_cleanup(aws: AwsSession, baseline: Baseline, *, regions: list[str] | None = None,
                options: MigrateOptions = MigrateOptions(), progress: ProgressFn | None = None) -> MigrationReport:
    """Delete the originals and intermediate snapshots of COMPLETED migrations (dry run unless
    apply): only harden-tagged resources, only when the encrypted replacement is attached to the
    instance, and the original last (if a snapshot cannot go, the original stays too)."""
    instance_ids = set(validate_instance_ids(options.instance_ids))
    chosen = aws.resolve_regions(regions or baseline.explicit_regions)
    report = MigrationReport("cleanup", options.apply, chosen)
    for region in chosen:
        ec2 = aws.client("ec2", region)
        originals = paginate(ec2, "describe_volumes", "Volumes", Filters=[
            {"Name": f"tag:{TAG_ROLE}", "Values": ["original"]}, {"Name": f"tag:{TAG_STEP}", "Values": ["completed"]}])
        for volume in sorted(originals, key=_instance_and_device):
            tags = tags_of(volume)
            if instance_ids and tags.get(TAG_INSTANCE) not in instance_ids:
                continue
            report.results += _clean_one(ec2, region, volume, tags, options.apply, progress)
    return report


def _instance_and_device(volume: dict) -> tuple[str, str]:
    tags = tags_of(volume)
    return tags.get(TAG_INSTANCE, ""), tags.get(TAG_DEVICE, "")


def _clean_one(ec2, region: str, volume: dict, tags: dict[str, str], apply: bool,
               progress: ProgressFn | None) -> list[VolumeResult]:
    vol_id, instance_id, new_id = volume["VolumeId"], tags.get(TAG_INSTANCE, "?"), tags.get(TAG_TO)
    result = VolumeResult(region, instance_id, vol_id, tags.get(TAG_DEVICE, "?"), "skipped", new_volume_id=new_id)
    blocker = _cleanup_blocker(ec2, volume, instance_id, new_id, tags)
    if blocker:
        result.message = f"kept: {blocker}"
        return [result]
    snapshots, stale, not_ours = _provenance(ec2, vol_id, tags)
    unproven = [k for k in (TAG_SNAPSHOT, TAG_COPY) if tags.get(k) not in snapshots]
    if unproven:
        # The original itself goes only when its whole migration is proven: harden's snapshot OF
        # it, harden's encrypted copy, and the volume in use made from that copy.
        result.message = ("kept: its migration cannot be proven harden's: " + "; ".join(
            f"{k}={tags.get(k, 'missing')}" + (f" ({not_ours[tags[k]]})" if tags.get(k) in not_ours else "")
            for k in unproven))
        return [result]
    skipped = [VolumeResult(region, instance_id, rid, tags.get(TAG_DEVICE, "?"), "skipped",
                            message=f"skipped, not ours: {why}") for rid, why in sorted(not_ours.items())]
    result.plan = ([f"delete stale copy {v}" for v in sorted(stale)]
                   + [f"delete snapshot {s}" for s in sorted(snapshots)]
                   + [f"delete the original volume {vol_id}"]
                   + [f"skip {rid} (not provably harden's): {why}" for rid, why in sorted(not_ours.items())])
    if not apply:
        result.status, result.message = "planned", "dry run: nothing deleted"
        return [result, *skipped]
    try:
        for stale_id in sorted(stale):
            ec2.delete_volume(VolumeId=stale_id)
        for snap_id in sorted(snapshots):
            ec2.delete_snapshot(SnapshotId=snap_id)
        ec2.delete_volume(VolumeId=vol_id)
    except Exception as exc:  # the original is deleted last: a failure leaves it in place
        result.status, result.message = "failed", _why(exc)
        return [result, *skipped]
    if progress:
        progress(Progress(region, instance_id, vol_id, "deleted",
                          f"{len(snapshots)} snapshots, {len(stale)} stale copies"))
    result.status = "deleted"
    result.message = (f"deleted {vol_id}, {len(snapshots)} snapshot(s)"
                      + (f", {len(stale)} stale copies" if stale else ""))
    return [result, *skipped]


def _provenance(ec2, vol_id: str, tags: dict[str, str]) -> tuple[list[str], list[str], dict[str, str]]:
    """What --cleanup may delete besides the original: (snapshots, stale volumes) harden recorded
    on the original while migrating it AND whose EBS-set fields agree (a snapshot's VolumeId is the
    original, it started within the run), and {id: why not} for what merely carries harden's tags
    (anyone with ec2:CreateTags can write those)."""
    started, completed = parse_iso(tags.get(TAG_STARTED_AT)), parse_iso(tags.get(TAG_COMPLETED_AT))
    stale_ids = set(tags.get(TAG_STALE_IDS, "").split())
    recorded = {tags.get(TAG_SNAPSHOT), tags.get(TAG_COPY)} - {None} | stale_ids
    tagged = paginate(ec2, "describe_snapshots", "Snapshots", OwnerIds=["self"], Filters=[
        {"Name": f"tag:{TAG_FROM}", "Values": [vol_id]}])
    found = {s["SnapshotId"]: s for s in tagged}
    missing = sorted(i for i in recorded - set(found) if i.startswith("snap-"))
    if missing:
        found.update({s["SnapshotId"]: s for s in _existing_snapshots(ec2, missing)})
    ours, not_ours = [], {}
    for snap_id, snap in sorted(found.items()):
        why = _snapshot_not_ours(snap, vol_id, tags, recorded, started, completed)
        if why:
            not_ours[snap_id] = why
        else:
            ours.append(snap_id)
    stale, new_id = [], tags.get(TAG_TO)
    for v in paginate(ec2, "describe_volumes", "Volumes", Filters=[{"Name": f"tag:{TAG_FROM}", "Values": [vol_id]}]):
        if v["VolumeId"] == new_id:
            continue
        if v["VolumeId"] in stale_ids and v.get("SnapshotId") in stale_ids and v.get("State") == "available":
            stale.append(v["VolumeId"])
        else:
            not_ours[v["VolumeId"]] = (f"volume tagged {TAG_FROM}={vol_id}, but not one harden recorded making "
                                       "from it in a rolled-back attempt" if v.get("State") == "available" else
                                       f"volume tagged {TAG_FROM}={vol_id}, {v.get('State')}")
    return ours, stale, not_ours


def _existing_snapshots(ec2, snapshot_ids: list[str]) -> list[dict]:
    found = []
    for snap_id in snapshot_ids:
        try:
            found += ec2.describe_snapshots(SnapshotIds=[snap_id])["Snapshots"]
        except botocore.exceptions.ClientError as exc:
            if not _not_found(exc):
                raise
    return found


def _snapshot_not_ours(snap: dict, vol_id: str, tags: dict[str, str], recorded: set[str],
                       started: datetime | None, completed: datetime | None) -> str | None:
    snap_id, start = snap["SnapshotId"], snap.get("StartTime")
    if snap_id not in recorded:
        return f"tagged {TAG_FROM}={vol_id}, but not recorded on {vol_id} as made by its migration"
    # A description is fixed when the snapshot is made (tags are not): harden's own words.
    wanted = _copy_description(vol_id) if snap.get("Encrypted") else _snapshot_description(vol_id, "")
    if not (snap.get("Description") or "").startswith(wanted):
        return f"its description is not the one harden gives ({snap.get('Description')!r})"
    if completed is None:
        return f"{vol_id} has no {TAG_COMPLETED_AT}: the run's time cannot be checked"
    if not start or start > completed + timedelta(seconds=1):  # the recorded time is whole seconds
        return f"started {start}, after the migration completed ({iso(completed)})"
    if snap_id == tags.get(TAG_SNAPSHOT) or not snap.get("Encrypted"):
        if snap.get("VolumeId") != vol_id:  # EBS sets VolumeId: a snapshot of another volume
            return f"a snapshot of {snap.get('VolumeId')}, not of {vol_id}"
    if snap_id in (tags.get(TAG_SNAPSHOT), tags.get(TAG_COPY)) and (started is None or start < started):
        return f"started {start}, before the migration started ({tags.get(TAG_STARTED_AT, 'not recorded')})"
    return None


def _cleanup_blocker(ec2, volume: dict, instance_id: str, new_id: str | None, tags: dict[str, str]) -> str | None:
    if volume.get("Encrypted"):
        return "it is encrypted: not a volume harden migrated"
    if volume.get("State") != "available" or volume.get("Attachments"):
        return f"it is {volume.get('State')} (attached again since the migration)"
    if not new_id:
        return f"no {TAG_TO} tag: the migration cannot be checked"
    try:
        new = ec2.describe_volumes(VolumeIds=[new_id])["Volumes"][0]
    except botocore.exceptions.ClientError as exc:
        if _not_found(exc):
            return f"its replacement {new_id} no longer exists; delete it by hand if it is not needed"
        raise
    if not new.get("Encrypted"):
        return f"its replacement {new_id} is not encrypted"
    if not any(a["InstanceId"] == instance_id for a in new.get("Attachments", [])):
        return f"its replacement {new_id} is not attached to {instance_id}: check the instance first"
    if not tags.get(TAG_COPY) or new.get("SnapshotId") != tags.get(TAG_COPY):
        # EBS sets SnapshotId: the volume in use was made from the copy this migration recorded.
        return (f"its replacement {new_id} was not made from the encrypted copy recorded on it "
                f"({tags.get(TAG_COPY, 'none')}): not provably harden's migration")
    return None


# -- for people ------------------------------------------------------------------------------------

_STYLE = {"planned": "cyan", "migrated": "green", "deleted": "green", "failed": "bold red",
          "refused": "yellow", "skipped": "dim"}


def render_table(report: MigrationReport, console) -> None:
    """The plan (dry run) per instance and volume, then one row per volume."""
    from rich.markup import escape
    from rich.table import Table

    if not report.results:
        what = "migration left to clean up" if report.mode == "cleanup" else "unencrypted volume in use"
        console.print(f"[green]nothing to do[/]: no {what} in {', '.join(report.regions) or 'no region'}")
        return
    planned = [r for r in report.results if r.status == "planned"]
    for r in planned:
        console.print(f"[bold]{escape(r.instance_id)}[/] {escape(r.volume_id)} ({escape(r.device)}) · {r.region}",
                      highlight=False)
        for step in r.plan:
            console.print(f"  - {escape(step)}", highlight=False, soft_wrap=True)
    verb = "ebs migrate --cleanup" if report.mode == "cleanup" else "ebs migrate"
    title = verb + ("" if report.applied else " (dry run: nothing was changed; add --apply to make these changes)")
    table = Table(title=title, title_justify="left")
    table.add_column("instance", no_wrap=True)
    table.add_column("device", no_wrap=True)
    table.add_column("old → new", no_wrap=True)
    table.add_column("status", no_wrap=True, min_width=8)
    wide = console.width >= 120  # below that, messages are sentences: a list under the table
    if wide:
        table.add_column("detail", overflow="fold")
    for r in report.results:
        new = r.new_volume_id or ("(new)" if r.status == "planned" and report.mode == "migrate" else "-")
        table.add_row(escape(r.instance_id), escape(r.device), f"{escape(r.volume_id)}\n→ {escape(new)}",
                      f"[{_STYLE[r.status]}]{r.status}[/]", *([escape(r.message)] if wide else []))
    print_table(console, table)
    if not wide:
        for r in report.results:
            if r.status in ("failed", "refused", "skipped"):
                console.print(f"[{_STYLE[r.status]}]{r.status}[/] {escape(r.instance_id)} {escape(r.volume_id)}: "
                              f"{escape(r.message)}", highlight=False, soft_wrap=True)
    for region, key in sorted(report.keys.items()):
        console.print(f"[dim]{region}: encrypted with {escape(key)}[/]", highlight=False, soft_wrap=True)
