"""`harden ebs migrate --apply` under faults, with real processes against the emulator:
kill -9 at every line it prints, two runs at once, a leftover tag after its owner's own stop,
and --cleanup in front of snapshots anyone could have tagged.

The processes are forked from one zygote (tests/fault_cli.py) that imported the CLI once: each run
is its own process running `harden ebs migrate`, killed with SIGKILL by its own stderr write.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from provisioner.migrate import _snapshot_not_ours, run_cleanup, run_migration, tags_of
from tests.test_migrate import (  # noqa: F401  (_no_default_amis: autouse, emulator speed)
    AMI,
    AZ,
    REGION,
    _baseline,
    _devices,
    _ec2,
    _instance,
    _key,
    _no_default_amis,
    _options,
)

def _config(tmp_path: Path) -> Path:
    cfg = tmp_path / "harden.toml"
    cfg.write_text(f'home_region = "{REGION}"\nregions = ["{REGION}"]\n')
    return cfg


def _two_volume_instance(aws) -> str:
    """A running instance with a gp2 root (DeleteOnTermination true) and a tagged gp3 data volume
    (DeleteOnTermination false)."""
    ec2 = _ec2(aws)
    instance_id = ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1, InstanceType="t3.micro",
                                    Placement={"AvailabilityZone": AZ})["Instances"][0]["InstanceId"]
    data = ec2.create_volume(AvailabilityZone=AZ, Size=20, VolumeType="gp3", Iops=4000, Throughput=250,
                             TagSpecifications=[{"ResourceType": "volume", "Tags": [
                                 {"Key": "Name", "Value": "data"}]}])["VolumeId"]
    ec2.attach_volume(VolumeId=data, InstanceId=instance_id, Device="/dev/sdf")
    return instance_id


HARDEN_INSTANCE_TAGS = ("harden:migration-run-state", "harden:migration-stopped-by",
                        "harden:migration-stop-requested", "harden:migration-stop-launch-time",
                        "harden:migration-stop-reason")


def _check_invariants(aws, instance_id: str, before: dict[str, dict], state: str) -> None:
    ec2 = _ec2(aws)
    instance = _instance(aws, instance_id)
    assert instance["State"]["Name"] == state
    left = [k for k in tags_of(instance) if k in HARDEN_INSTANCE_TAGS or k.startswith("harden:migration-lock")]
    assert left == [], left
    after = _devices(aws, instance_id)
    assert set(after) == set(before)                                  # every device has a volume
    for device, old in before.items():
        new = after[device]
        original = ec2.describe_volumes(VolumeIds=[old["VolumeId"]])["Volumes"][0]  # never deleted
        assert not original["Encrypted"]
        recorded = tags_of(original)
        assert new["Encrypted"] and new["VolumeId"] != old["VolumeId"], device
        assert new["DeleteOnTermination"] == old["DeleteOnTermination"], device
        assert (new["Size"], new["VolumeType"]) == (old["Size"], old["VolumeType"])
        # The data: the new volume was made from the encrypted copy recorded on the original, and
        # the snapshot recorded there is a snapshot of the original itself (EBS sets VolumeId).
        assert new["SnapshotId"] == recorded["harden:migration-encrypted-snapshot"]
        snap = ec2.describe_snapshots(SnapshotIds=[recorded["harden:migration-snapshot"]])["Snapshots"][0]
        assert snap["VolumeId"] == old["VolumeId"]
        assert recorded["harden:migrated-to"] == new["VolumeId"]
        # No orphan: the only volume made from the original is the one in use.
        made = ec2.describe_volumes(Filters=[{"Name": "tag:harden:migrated-from", "Values": [old["VolumeId"]]}])
        assert [v["VolumeId"] for v in made["Volumes"]] == [new["VolumeId"]], device
        snapshots = ec2.describe_snapshots(OwnerIds=["self"], Filters=[
            {"Name": "tag:harden:migrated-from", "Values": [old["VolumeId"]]},
            {"Name": "tag:harden:migration", "Values": ["snapshot"]}])["Snapshots"]
        assert len(snapshots) == 1, device


def test_kill_9_at_every_line_then_a_rerun_finishes_the_job(aws, tmp_path, zygote):
    _key(aws)
    cfg = _config(tmp_path)
    started = time.monotonic()
    # A run that is not killed: how many lines a migration prints.
    reference = _two_volume_instance(aws)
    answer, _, err = zygote.run("ebs", "migrate", "-c", str(cfg), "--apply", "--instance", reference)
    assert answer == {"code": 0}, err
    lines = err.splitlines()
    assert len(lines) >= 20 and any(" stop " in f" {line} " for line in lines)

    # One instance per kill point; the killed runs go at the same time (each has its own
    # instance and its own process), then so do the re-runs.
    points = range(1, len(lines) + 1)
    instances = {k: _two_volume_instance(aws) for k in points}
    before = {k: _devices(aws, instances[k]) for k in points}
    migrate = ["ebs", "migrate", "-c", str(cfg), "--apply", "--instance"]
    killed = zygote.run_together([(migrate + [instances[k]], {"HARDEN_FAULT_KILL_AT_LINE": str(k)}) for k in points])
    for k, (answer, _, err) in zip(points, killed):
        assert answer == {"signal": 9}, (k, answer, err)
        assert len(err.splitlines()) == k
    reruns = zygote.run_together([(migrate + [instances[k]], {}) for k in points])
    for k, (answer, out, err) in zip(points, reruns):
        assert answer == {"code": 0}, (k, killed[k - 1][2].splitlines()[-1], out, err)
        _check_invariants(aws, instances[k], before[k], "running")
    elapsed = time.monotonic() - started
    print(f"{len(lines)} kill points, {2 * len(lines) + 1} runs in {elapsed:.1f}s")


def _gmt(moment: datetime) -> str:
    return f"User initiated ({moment.strftime('%Y-%m-%d %H:%M:%S')} GMT)"


def test_a_leftover_stop_tag_never_starts_an_instance_its_owner_stopped_since(aws, tmp_path, zygote):
    """harden records who stopped the instance, when (the account's clock), its LaunchTime and the
    stop's state reason; a re-run starts it only while that stop is the last thing that happened.
    The emulator stamps stop reasons to the second and never changes LaunchTime on a start, so
    "earlier" is made by writing harden's recorded time back ten minutes (what the tags would
    say had the owner acted ten minutes after the crash)."""
    _key(aws)
    cfg = _config(tmp_path)
    ec2 = _ec2(aws)
    earlier = datetime.now(timezone.utc) - timedelta(minutes=10)
    restarted, late_stop, relaunched, untouched = (_two_volume_instance(aws) for _ in range(4))

    def kill_at(instance_id: str, k: int, step: str) -> None:
        answer, _, err = zygote.run("ebs", "migrate", "-c", str(cfg), "--apply", "--instance", instance_id,
                                    HARDEN_FAULT_KILL_AT_LINE=str(k))
        assert answer == {"signal": 9} and f" {step} " in err.splitlines()[-1] + " ", err

    # Killed once its stop was done and recorded; then the owner started and stopped it again.
    kill_at(restarted, 2, "stopped")
    ec2.create_tags(Resources=[restarted], Tags=[{"Key": "harden:migration-stop-reason", "Value": _gmt(earlier)}])
    ec2.start_instances(InstanceIds=[restarted])
    ec2.stop_instances(InstanceIds=[restarted])
    # Killed after it recorded the stop it was about to ask for, before asking; the owner
    # stopped it later.
    kill_at(late_stop, 1, "stop")
    assert _instance(aws, late_stop)["State"]["Name"] == "running"
    ec2.create_tags(Resources=[late_stop], Tags=[{"Key": "harden:migration-stop-requested",
                                                  "Value": earlier.strftime("%Y-%m-%dT%H:%M:%SZ")}])
    ec2.stop_instances(InstanceIds=[late_stop])
    # Killed after its stop; the instance was launched again since (its LaunchTime differs).
    kill_at(relaunched, 2, "stopped")
    ec2.create_tags(Resources=[relaunched], Tags=[{"Key": "harden:migration-stop-launch-time",
                                                   "Value": earlier.isoformat()}])
    # Killed after its stop, nothing happened since: harden's to start again.
    kill_at(untouched, 2, "stopped")
    devices = {i: _devices(aws, i) for i in (restarted, late_stop, relaunched, untouched)}

    answer, out, err = zygote.run("ebs", "migrate", "-c", str(cfg), "--apply", "--format", "json")

    assert answer == {"code": 0}, out + err
    report = json.loads(out)
    messages = {v["instance"]: v["message"] for v in report["volumes"] if v["message"]}
    for owned_by_owner in (restarted, late_stop, relaunched):
        _check_invariants(aws, owned_by_owner, devices[owned_by_owner], "stopped")
        assert "as its owner left it" in " ".join(
            v["message"] for v in report["volumes"] if v["instance"] == owned_by_owner), messages
    _check_invariants(aws, untouched, devices[untouched], "running")


def test_cleanup_deletes_only_what_harden_provably_made(aws):
    """Anyone with ec2:CreateTags can write harden's tags; only what harden recorded on the
    original while migrating it, and what EBS's own fields (a snapshot's VolumeId, a volume's
    SnapshotId, a description fixed at creation, start times within the run) agree with, goes."""
    _key(aws)
    ec2 = _ec2(aws)
    instance_id = _two_volume_instance(aws)
    assert {r.status for r in run_migration(aws, _baseline(), options=_options(apply=True)).results} == {"migrated"}
    originals = {tags_of(v)["harden:migration-device"]: v for v in ec2.describe_volumes(Filters=[
        {"Name": "tag:harden:migration", "Values": ["original"]}])["Volumes"]}
    root = originals["/dev/sda1"]
    root_tags = tags_of(root)
    harden_made = [root_tags["harden:migration-snapshot"], root_tags["harden:migration-encrypted-snapshot"]]

    other = ec2.create_volume(AvailabilityZone=AZ, Size=1)["VolumeId"]
    other_snap = ec2.create_snapshot(VolumeId=other)["SnapshotId"]            # of another volume
    backup = ec2.create_snapshot(VolumeId=root["VolumeId"], Description="nightly backup")["SnapshotId"]
    extra = ec2.create_volume(AvailabilityZone=AZ, Size=1)["VolumeId"]
    for resource in (other_snap, backup, extra):
        ec2.create_tags(Resources=[resource], Tags=[{"Key": "harden:migrated-from", "Value": root["VolumeId"]},
                                                    {"Key": "harden:migration", "Value": "snapshot"}])
    # `backup` is even written on the original's list of rolled-back attempts.
    ec2.create_tags(Resources=[root["VolumeId"]], Tags=[{"Key": "harden:migration-stale-ids", "Value": backup}])
    # A volume dressed up as a completed migration's original, copying the real one's records.
    lookalike = ec2.create_volume(AvailabilityZone=AZ, Size=8)["VolumeId"]
    ec2.create_tags(Resources=[lookalike], Tags=[{"Key": k, "Value": v} for k, v in root_tags.items()])

    dry = run_cleanup(aws, _baseline(), options=_options())

    not_ours = {r.volume_id: r.message for r in dry.results if r.message.startswith("skipped, not ours")}
    assert set(not_ours) == {other_snap, backup, extra}, not_ours
    assert "not recorded" in not_ours[other_snap] and "description" in not_ours[backup]
    kept = next(r for r in dry.results if r.volume_id == lookalike)
    assert kept.status == "skipped" and "cannot be proven" in kept.message, kept.message
    assert sorted(r.volume_id for r in dry.results if r.status == "planned") == \
        sorted(v["VolumeId"] for v in originals.values())

    applied = run_cleanup(aws, _baseline(), options=_options(apply=True))

    assert sorted(r.volume_id for r in applied.results if r.status == "deleted") == \
        sorted(v["VolumeId"] for v in originals.values())
    snapshots = {s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}
    assert {other_snap, backup} <= snapshots and not snapshots & set(harden_made)
    volumes = {v["VolumeId"] for v in ec2.describe_volumes()["Volumes"]}
    assert {other, extra, lookalike} <= volumes and not volumes & {v["VolumeId"] for v in originals.values()}
    assert _instance(aws, instance_id)["State"]["Name"] == "running"


def test_cleanup_needs_a_snapshot_to_start_within_its_migration():
    """The time rule on its own (the emulator does everything within one second): a snapshot
    harden recorded must have started after the volume's migration started and before it
    completed, by the account's clock."""
    vol = "vol-0123456789abcdef0"
    started = datetime(2026, 1, 1, 10, 0, 0, tzinfo=timezone.utc)
    tags = {"harden:migration-snapshot": "snap-1", "harden:migration-started-at": "2026-01-01T10:00:00Z",
            "harden:migration-completed-at": "2026-01-01T10:30:00Z"}
    snap = {"SnapshotId": "snap-1", "VolumeId": vol, "Encrypted": False,
            "Description": f"harden ebs migrate: {vol} (i-1 /dev/sda1)"}
    recorded = {"snap-1"}
    completed = started + timedelta(minutes=30)

    def why(start):
        return _snapshot_not_ours({**snap, "StartTime": start}, vol, tags, recorded, started, completed)

    assert why(started + timedelta(minutes=1)) is None
    assert "after the migration completed" in why(completed + timedelta(minutes=5))
    assert "before the migration started" in why(started - timedelta(minutes=5))
    assert "of vol-other" in _snapshot_not_ours({**snap, "VolumeId": "vol-other", "StartTime": started},
                                                vol, tags, recorded, started, completed)


def test_a_hung_swap_rolls_back_and_the_next_instance_is_reported(aws, fault_proxy):
    # One AttachVolume that never answers (read timeout 1 s) marks the region unreachable. The
    # roll-back and the restart must still be tried (aws.must_try): before, they failed at
    # once and left the instance stopped with no root volume. The second instance meets the
    # unreachable region at its lock: it is reported failed, untouched, and the run goes on
    # (before, the error escaped and the first instance's report was lost).
    from provisioner.aws import AwsSession, Timeouts

    _key(aws)
    first, second = _two_volume_instance(aws), _two_volume_instance(aws)
    before = {i: _devices(aws, i) for i in (first, second)}
    fault_proxy.add("hang", action="AttachVolume", times=1)
    session = AwsSession(region=REGION, max_attempts=3, timeouts=Timeouts(connect=2, read=1, run=60))

    report = run_migration(session, _baseline(), options=_options(apply=True))
    assert report.exit_code() == 3
    assert REGION in session.unreachable()
    by_instance = {i: [r for r in report.results if r.instance_id == i] for i in (first, second)}
    hung = next(i for i, results in by_instance.items() if "rolled back" in results[0].message)
    later = first if hung == second else second  # the order instances are migrated in is EC2's
    assert [r.status for r in by_instance[hung]] == ["failed", "skipped"], by_instance[hung]
    assert {r.status for r in by_instance[later]} == {"failed"}
    assert all("region unreachable" in r.message for r in by_instance[later]), by_instance[later]
    for instance_id in (first, second):  # both run on their original volumes, as before
        assert _instance(aws, instance_id)["State"]["Name"] == "running"
        assert {d: v["VolumeId"] for d, v in _devices(aws, instance_id).items()} == \
            {d: v["VolumeId"] for d, v in before[instance_id].items()}
        left = [k for k in tags_of(_instance(aws, instance_id)) if k.startswith("harden:")]
        assert left == [], left
    assert fault_proxy.count()[("ec2", "AttachVolume", "hang")] == 1
