"""harden ebs migrate against the emulator: volumes, snapshots, encrypted copies, attach/detach and
stop/start are all real emulator calls. Faults are injected with a botocore `before-call` handler
on the session's cached EC2 client (the client the migration uses), raising once.

Only GetEbsDefaultKmsKeyId is stubbed (botocore's Stubber, checked against the real EC2 model):
the emulator does not implement it.
"""

from __future__ import annotations

import json
from contextlib import contextmanager

import pytest
from botocore.exceptions import ClientError
from typer.testing import CliRunner

from provisioner.baseline import parse_baseline
from provisioner.controls import CheckContext
from provisioner.controls.ebs import KeyNotUsable, chosen_key_arn, no_unencrypted_volumes
from provisioner.migrate import (
    _placement,
    MigrateOptions,
    MigrationError,
    resolve_key,
    run_cleanup,
    run_migration,
    tags_of,
)
from tests.stubbing import OperationStubber

REGION = "eu-west-1"
AZ = "eu-west-1a"
AMI = "ami-12c6146b"


# -- the account ----------------------------------------------------------------------------------

@pytest.fixture(autouse=True)
def _no_default_amis(monkeypatch):
    """Speed: on its first EC2 call in a region the emulator loads ~1,300 default AMIs and their
    snapshots (a quarter of a second after every reset, and every describe_snapshots pages through
    them). These tests need none: the emulator launches from an AMI id it does not know (it
    validates none by default). It runs in this process and reads the variable when it builds a
    region, so the next test gets its AMIs back."""
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")


def _baseline(**ebs):
    return parse_baseline({"regions": [REGION], "home_region": REGION, **({"ebs": ebs} if ebs else {})})


def _key(aws, alias: str | None = "alias/harden-ebs") -> str:
    kms = aws.client("kms", REGION)
    arn = kms.create_key(Description="ebs")["KeyMetadata"]["Arn"]
    if alias:
        kms.create_alias(AliasName=alias, TargetKeyId=arn)
    return arn


def _options(**kwargs) -> MigrateOptions:
    return MigrateOptions(delay=0.01, timeout=5, **kwargs)


def _ec2(aws):
    return aws.client("ec2", REGION)


def _launch(aws, *, running: bool = True, tags: dict[str, str] | None = None) -> str:
    """An instance with three unencrypted volumes: the gp2 root (DeleteOnTermination true), a gp3
    data volume with IOPS/throughput/tags (DeleteOnTermination false) and an io1 volume
    (DeleteOnTermination set to true)."""
    ec2 = _ec2(aws)
    spec = [{"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}] if tags else []
    instance_id = ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1, InstanceType="t3.micro",
                                    Placement={"AvailabilityZone": AZ},
                                    TagSpecifications=spec)["Instances"][0]["InstanceId"]
    data = ec2.create_volume(AvailabilityZone=AZ, Size=20, VolumeType="gp3", Iops=4000, Throughput=250,
                             TagSpecifications=[{"ResourceType": "volume", "Tags": [
                                 {"Key": "Name", "Value": "data"}, {"Key": "Team", "Value": "db"}]}])["VolumeId"]
    logs = ec2.create_volume(AvailabilityZone=AZ, Size=10, VolumeType="io1", Iops=500,
                             TagSpecifications=[{"ResourceType": "volume", "Tags": [
                                 {"Key": "Name", "Value": "logs"}]}])["VolumeId"]
    ec2.attach_volume(VolumeId=data, InstanceId=instance_id, Device="/dev/sdf")
    ec2.attach_volume(VolumeId=logs, InstanceId=instance_id, Device="/dev/sdg")
    ec2.modify_instance_attribute(InstanceId=instance_id, BlockDeviceMappings=[
        {"DeviceName": "/dev/sdg", "Ebs": {"VolumeId": logs, "DeleteOnTermination": True}}])
    if not running:
        ec2.stop_instances(InstanceIds=[instance_id])
    return instance_id


def _instance(aws, instance_id: str) -> dict:
    return _ec2(aws).describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]


def _devices(aws, instance_id: str) -> dict[str, dict]:
    """device -> the attached volume, with the mapping's DeleteOnTermination."""
    instance = _instance(aws, instance_id)
    out = {}
    for mapping in instance["BlockDeviceMappings"]:
        volume = _ec2(aws).describe_volumes(VolumeIds=[mapping["Ebs"]["VolumeId"]])["Volumes"][0]
        out[mapping["DeviceName"]] = {**volume, "DeleteOnTermination": mapping["Ebs"]["DeleteOnTermination"]}
    return out


def _account_state(aws) -> dict:
    """Everything a migration could change, in a comparable form."""
    ec2 = _ec2(aws)
    volumes = sorted((v["VolumeId"], v["State"], v["Encrypted"], v.get("KmsKeyId"),
                      tuple(sorted((a["InstanceId"], a["Device"]) for a in v.get("Attachments", []))),
                      tuple(sorted(tags_of(v).items())))
                     for v in ec2.describe_volumes()["Volumes"])
    snapshots = sorted(s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"])
    instances = sorted((i["InstanceId"], i["State"]["Name"], tuple(sorted(tags_of(i).items())),
                        tuple(sorted((m["DeviceName"], m["Ebs"]["VolumeId"], m["Ebs"]["DeleteOnTermination"])
                                     for m in i.get("BlockDeviceMappings", []))))
                       for r in ec2.describe_instances()["Reservations"] for i in r["Instances"])
    return {"volumes": volumes, "snapshots": snapshots, "instances": instances}


def _made_from(aws, volume_id: str) -> dict[str, list[str]]:
    """What harden made from a volume: snapshots by role, and volumes."""
    ec2 = _ec2(aws)
    snaps = ec2.describe_snapshots(OwnerIds=["self"], Filters=[
        {"Name": "tag:harden:migrated-from", "Values": [volume_id]}])["Snapshots"]
    volumes = ec2.describe_volumes(Filters=[{"Name": "tag:harden:migrated-from", "Values": [volume_id]}])["Volumes"]
    made: dict[str, list[str]] = {"snapshot": [], "encrypted-copy": [],
                                  "volumes": sorted(v["VolumeId"] for v in volumes)}
    for s in snaps:
        made[tags_of(s)["harden:migration"]].append(s["SnapshotId"])
    return {k: sorted(v) for k, v in made.items()}


def _unencrypted_volume_findings(aws) -> list:
    """What verify's ebs.unencrypted_volumes reports now (a new context: no cached volume list)."""
    return no_unencrypted_volumes(CheckContext(aws=aws, baseline=_baseline(), region=REGION,
                                               account_id=aws.account_id(), control_id="ebs.unencrypted_volumes"))


def _unencrypted_attached_to(aws, instance_id: str) -> list[str]:
    """What verify's ebs.unencrypted_volumes reports as attached to the instance."""
    return [f.resource for f in _unencrypted_volume_findings(aws) if f.status == "fail"
            and any(a["instance_id"] == instance_id for a in f.evidence["attachments"])]


@contextmanager
def failing_once(aws, operation: str, error: BaseException | None = None):
    """The next `operation` call on the session's EC2 client raises (ClientError by default)."""
    client = _ec2(aws)
    fired: list[str] = []

    def boom(**_kwargs) -> None:
        if not fired:
            fired.append(operation)
            raise error or ClientError({"Error": {"Code": "InternalError",
                                                  "Message": f"injected {operation} failure"}}, operation)

    event = f"before-call.ec2.{operation}"
    client.meta.events.register(event, boom)
    try:
        yield fired
    finally:
        client.meta.events.unregister(event, boom)


# -- end to end -------------------------------------------------------------------------------------

def test_running_instance_is_migrated_keeping_every_attribute_then_nothing_is_left(aws):
    key = _key(aws)
    instance_id = _launch(aws, running=True)
    before = _devices(aws, instance_id)
    assert all(not v["Encrypted"] for v in before.values()) and len(before) == 3
    events = []

    report = run_migration(aws, _baseline(), options=_options(apply=True), progress=events.append)

    assert [(r.device, r.status) for r in report.results] == [
        ("/dev/sda1", "migrated"), ("/dev/sdf", "migrated"), ("/dev/sdg", "migrated")], report.to_dict()
    assert report.exit_code() == 0 and report.keys == {REGION: key}
    instance = _instance(aws, instance_id)
    assert instance["State"]["Name"] == "running"
    assert "harden:migration-run-state" not in tags_of(instance)
    after = _devices(aws, instance_id)
    assert set(after) == set(before)
    for device, old in before.items():
        new = after[device]
        assert new["VolumeId"] != old["VolumeId"]
        assert new["Encrypted"] is True and new["KmsKeyId"] == key
        for attr in ("Size", "VolumeType", "AvailabilityZone"):
            assert new[attr] == old[attr], (device, attr)
        if old["VolumeType"] in ("gp3", "io1"):
            assert new["Iops"] == old["Iops"], device
        if old["VolumeType"] == "gp3":
            assert new["Throughput"] == old["Throughput"]
        assert new["DeleteOnTermination"] == old["DeleteOnTermination"], device
        assert tags_of(new) == {**tags_of(old), "harden:migrated-from": old["VolumeId"]}
        # The original is kept, detached and tagged; so are both snapshots.
        original = _ec2(aws).describe_volumes(VolumeIds=[old["VolumeId"]])["Volumes"][0]
        assert original["State"] == "available" and not original["Encrypted"]
        kept = tags_of(original)
        assert kept["harden:migration"] == "original" and kept["harden:migration-step"] == "completed"
        assert kept["harden:migrated-to"] == new["VolumeId"]
        made = _made_from(aws, old["VolumeId"])
        assert len(made["snapshot"]) == 1 and len(made["encrypted-copy"]) == 1
        assert made["volumes"] == [new["VolumeId"]]
        copy = _ec2(aws).describe_snapshots(SnapshotIds=made["encrypted-copy"])["Snapshots"][0]
        assert copy["Encrypted"] is True and copy["KmsKeyId"] == key
    assert before["/dev/sda1"]["DeleteOnTermination"] is True and before["/dev/sdf"]["DeleteOnTermination"] is False
    assert _unencrypted_attached_to(aws, instance_id) == []
    steps = [e.step for e in events]
    assert steps[0] == "stop" and steps[-1] == "start" and steps.count("completed") == 3

    again = run_migration(aws, _baseline(), options=_options(apply=True))
    assert again.results == [] and again.exit_code() == 0


def test_stopped_instance_stays_stopped_and_the_baseline_key_is_used(aws):
    _key(aws)  # the alias key exists, but the baseline names another one: that one wins
    chosen = _key(aws, alias=None)
    instance_id = _launch(aws, running=False)

    report = run_migration(aws, _baseline(kms_key_arns={REGION: chosen}), options=_options(apply=True))

    assert {r.status for r in report.results} == {"migrated"} and len(report.results) == 3
    assert _instance(aws, instance_id)["State"]["Name"] == "stopped"
    assert {v["KmsKeyId"] for v in _devices(aws, instance_id).values()} == {chosen}
    assert _unencrypted_attached_to(aws, instance_id) == []


def test_dry_run_plans_per_instance_and_volume_and_changes_nothing(aws):
    key = _key(aws)
    instance_id = _launch(aws, running=True)
    before = _account_state(aws)

    report = run_migration(aws, _baseline(), options=_options())

    assert _account_state(aws) == before
    assert [r.status for r in report.results] == ["planned"] * 3 and report.exit_code() == 1
    first, _, last = report.results
    assert first.plan[0].startswith(f"stop {instance_id}") and last.plan[-1].startswith(f"start {instance_id}")
    data = next(r for r in report.results if r.device == "/dev/sdf")
    text = "\n".join(data.plan)
    assert f"encrypted with {key}" in text and "20 GiB gp3, 4000 IOPS, 250 MiB/s" in text
    assert "attach the new volume on /dev/sdf, DeleteOnTermination=false" in text
    assert report.to_dict()["summary"]["planned"] == 3


def test_instance_filter_narrows_the_run(aws):
    _key(aws)
    chosen, other = _launch(aws, running=False), _launch(aws, running=False)
    report = run_migration(aws, _baseline(), options=_options(apply=True, instance_ids=(chosen, "i-0000000000000000f")))
    assert {r.instance_id for r in report.results if r.status == "migrated"} == {chosen}
    assert [r.status for r in report.results if r.instance_id == "i-0000000000000000f"] == ["skipped"]
    assert len(_unencrypted_attached_to(aws, other)) == 3
    with pytest.raises(MigrationError, match="expected an instance id"):
        run_migration(aws, _baseline(), options=_options(instance_ids=("web-1",)))


def test_auto_scaling_instances_are_refused_unless_forced(aws):
    _key(aws)
    plain = _launch(aws, running=True)
    ec2 = _ec2(aws)
    ec2.create_launch_template(LaunchTemplateName="web-lt",
                               LaunchTemplateData={"ImageId": AMI, "InstanceType": "t3.micro"})
    aws.client("autoscaling", REGION).create_auto_scaling_group(
        AutoScalingGroupName="web", LaunchTemplate={"LaunchTemplateName": "web-lt"}, MinSize=1, MaxSize=1,
        DesiredCapacity=1, AvailabilityZones=[AZ])
    grouped = next(i["InstanceId"] for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]
                   if tags_of(i).get("aws:autoscaling:groupName") == "web")
    grouped_volumes = _account_state(aws)["volumes"]

    report = run_migration(aws, _baseline(), options=_options(apply=True))

    refused = [r for r in report.results if r.instance_id == grouped]
    assert refused and {r.status for r in refused} == {"refused"}
    assert "launch template" in refused[0].message and "--force" in refused[0].message
    assert {r.status for r in report.results if r.instance_id == plain} == {"migrated"}
    assert report.exit_code() == 1
    assert len(_unencrypted_attached_to(aws, grouped)) == len(refused)
    assert [v for v in _account_state(aws)["volumes"] if grouped in str(v)] == \
        [v for v in grouped_volumes if grouped in str(v)]  # untouched

    forced = run_migration(aws, _baseline(), options=_options(apply=True, force=True))
    assert {r.status for r in forced.results} == {"migrated"} and {r.instance_id for r in forced.results} == {grouped}
    assert _unencrypted_attached_to(aws, grouped) == []


def test_multi_attach_volume_is_refused():
    # The emulator keeps one attachment per volume (a second attach replaces the first), so the
    # Multi-Attach shape is given as describe_volumes returns it on AWS.
    volume = {"VolumeId": "vol-0123456789abcdef0", "State": "in-use", "MultiAttachEnabled": True, "Attachments": [
        {"InstanceId": "i-0123456789abcdef0", "Device": "/dev/sdh", "State": "attached"},
        {"InstanceId": "i-0123456789abcdef1", "Device": "/dev/sdh", "State": "attached"}]}
    assert "Multi-Attach" in _placement(volume)
    single = {**volume, "Attachments": volume["Attachments"][:1]}
    assert _placement(single) == ("i-0123456789abcdef0", "/dev/sdh")
    settling = {**volume, "Attachments": [{**volume["Attachments"][0], "State": "detaching"}]}
    assert "detaching" in _placement(settling)
    assert _placement({**volume, "Attachments": []}) is None  # detached and not harden's: not a target


# -- the key ----------------------------------------------------------------------------------------

def test_key_falls_back_to_the_default_ebs_key(aws):
    key = _key(aws, alias=None)
    with OperationStubber(_ec2(aws), "GetEbsDefaultKmsKeyId") as stub:  # not in the emulator
        stub.add_response("get_ebs_default_kms_key_id", {"KmsKeyId": key}, expected_params={})
        assert resolve_key(aws, _baseline(), REGION) == key
        stub.assert_no_pending_responses()


def test_aws_managed_default_key_is_refused_before_anything_changes(aws):
    _launch(aws, running=True)
    before = _account_state(aws)
    with OperationStubber(_ec2(aws), "GetEbsDefaultKmsKeyId") as stub:  # not in the emulator
        stub.add_response("get_ebs_default_kms_key_id",
                          {"KmsKeyId": f"arn:aws:kms:{REGION}:123456789012:alias/aws/ebs"}, expected_params={})
        with pytest.raises(MigrationError) as caught:
            run_migration(aws, _baseline(), options=_options(apply=True))
    message = str(caught.value)
    assert "AWS-managed alias/aws/ebs" in message and "\n" not in message
    assert "harden remediate --controls ebs.default_encryption --apply" in message
    assert _account_state(aws) == before


def test_a_disabled_baseline_key_is_refused(aws):
    key = _key(aws, alias=None)
    aws.client("kms", REGION).disable_key(KeyId=key.split("/")[-1])  # the emulator wants the id
    _launch(aws, running=False)
    with pytest.raises(MigrationError, match="is Disabled, not Enabled"):
        run_migration(aws, _baseline(kms_key_arns={REGION: key}), options=_options(apply=True))


@pytest.mark.parametrize("kind", ["missing", "disabled", "asymmetric"])
def test_the_migration_refuses_the_keys_the_default_encryption_fix_refuses(aws, kind):
    # One rule (controls.ebs.key_problems) for both; the migration says it with its region first.
    kms = aws.client("kms", REGION)
    if kind == "missing":
        key = f"arn:aws:kms:{REGION}:123456789012:key/00000000-0000-0000-0000-000000000000"
    elif kind == "disabled":
        key = _key(aws, alias=None)
        kms.disable_key(KeyId=key.split("/")[-1])  # the emulator wants the id
    else:
        key = kms.create_key(KeyUsage="SIGN_VERIFY", KeySpec="RSA_2048")["KeyMetadata"]["Arn"]
    baseline = _baseline(kms_key_arns={REGION: key})
    ctx = CheckContext(aws=aws, baseline=baseline, region=REGION, account_id=aws.account_id(),
                       control_id="ebs.default_encryption")
    with pytest.raises(KeyNotUsable) as fix_refusal:
        chosen_key_arn(ctx)
    with pytest.raises(MigrationError) as migration_refusal:
        resolve_key(aws, baseline, REGION)
    assert fix_refusal.value.fact.startswith(f"the baseline key (ebs.kms_key_arns) {key} ")
    assert str(migration_refusal.value).startswith(f"{REGION}: {fix_refusal.value.fact}; ")
    remedy = {"missing": "apply the ebs_encryption module", "disabled": "enable it or name another",
              "asymmetric": "name another customer-managed key"}[kind]
    assert remedy in str(migration_refusal.value)


# -- failures, roll-back and resuming ------------------------------------------------------------------

@pytest.mark.parametrize("operation", ["CopySnapshot", "CreateVolume", "DetachVolume", "AttachVolume"])
def test_a_failed_step_keeps_the_original_working_and_a_rerun_reuses_the_work(aws, operation):
    _key(aws)
    instance_id = _launch(aws, running=False)
    before = _devices(aws, instance_id)
    root = before["/dev/sda1"]["VolumeId"]  # migrated first (devices in order)
    volumes_before = {v[0] for v in _account_state(aws)["volumes"]}

    with failing_once(aws, operation) as fired:
        report = run_migration(aws, _baseline(), options=_options(apply=True))
    assert fired == [operation]

    statuses = {r.device: r.status for r in report.results}
    assert statuses == {"/dev/sda1": "failed", "/dev/sdf": "skipped", "/dev/sdg": "skipped"}
    failed = report.results[0]
    assert f"injected {operation} failure" in failed.message and report.exit_code() == 3
    # The instance works on its original volumes, in its original state; nothing was deleted.
    assert _instance(aws, instance_id)["State"]["Name"] == "stopped"
    assert {d: (v["VolumeId"], v["DeleteOnTermination"]) for d, v in _devices(aws, instance_id).items()} == \
        {d: (v["VolumeId"], v["DeleteOnTermination"]) for d, v in before.items()}
    assert volumes_before <= {v[0] for v in _account_state(aws)["volumes"]}
    made = _made_from(aws, root)
    if operation in ("DetachVolume", "AttachVolume"):
        assert "rolled back" in failed.message
        new = _ec2(aws).describe_volumes(VolumeIds=made["volumes"])["Volumes"][0]
        assert new["State"] == "available" and new["Encrypted"]

    rerun = run_migration(aws, _baseline(), options=_options(apply=True))

    assert {r.status for r in rerun.results} == {"migrated"}, rerun.to_dict()
    assert _unencrypted_attached_to(aws, instance_id) == []
    reused = _made_from(aws, root)
    # Nothing made twice: the snapshot (and the copy and volume, when they were made) were reused.
    assert reused["snapshot"] == made["snapshot"] and len(reused["snapshot"]) == 1
    if made["encrypted-copy"]:
        assert reused["encrypted-copy"] == made["encrypted-copy"]
    if made["volumes"]:
        assert reused["volumes"] == made["volumes"]
    assert _devices(aws, instance_id)["/dev/sda1"]["VolumeId"] in reused["volumes"]


def test_a_failed_swap_on_a_running_instance_restarts_it_and_never_reuses_stale_data(aws):
    _key(aws)
    instance_id = _launch(aws, running=True)
    root = _devices(aws, instance_id)["/dev/sda1"]["VolumeId"]

    with failing_once(aws, "AttachVolume"):
        report = run_migration(aws, _baseline(), options=_options(apply=True))

    assert report.results[0].status == "failed" and "rolled back" in report.results[0].message
    instance = _instance(aws, instance_id)
    assert instance["State"]["Name"] == "running" and "harden:migration-run-state" not in tags_of(instance)
    assert _devices(aws, instance_id)["/dev/sda1"]["VolumeId"] == root
    # The instance writes to the original again: what was made from it is marked stale, kept.
    made = _made_from(aws, root)
    stale_volume = _ec2(aws).describe_volumes(VolumeIds=made["volumes"])["Volumes"][0]
    assert tags_of(stale_volume)["harden:migration"] == "stale-copy" and stale_volume["State"] == "available"
    for snap in _ec2(aws).describe_snapshots(SnapshotIds=made["snapshot"] + made["encrypted-copy"])["Snapshots"]:
        assert tags_of(snap)["harden:migration-stale"] == "true"

    rerun = run_migration(aws, _baseline(), options=_options(apply=True))

    assert {r.status for r in rerun.results} == {"migrated"}
    fresh = _made_from(aws, root)
    assert len(fresh["snapshot"]) == 2 and set(made["snapshot"]) < set(fresh["snapshot"])
    new_root = _devices(aws, instance_id)["/dev/sda1"]["VolumeId"]
    assert new_root != stale_volume["VolumeId"] and new_root in fresh["volumes"]
    assert _instance(aws, instance_id)["State"]["Name"] == "running"

    # Cleanup removes the stale copies and every harden snapshot too, and nothing that is in use.
    cleaned = run_cleanup(aws, _baseline(), options=_options(apply=True))
    assert {r.status for r in cleaned.results} == {"deleted"} and len(cleaned.results) == 3
    assert _made_from(aws, root) == {"snapshot": [], "encrypted-copy": [], "volumes": [new_root]}
    assert [f.status for f in _unencrypted_volume_findings(aws)] == ["pass"]


def test_an_interrupted_run_is_resumed_and_the_instance_started_again(aws):
    _key(aws)
    instance_id = _launch(aws, running=True)
    root = _devices(aws, instance_id)["/dev/sda1"]["VolumeId"]

    # A hard stop (Ctrl-C, a killed process): no roll-back runs, only the tags remain.
    with failing_once(aws, "CreateVolume", KeyboardInterrupt()), pytest.raises(KeyboardInterrupt):
        run_migration(aws, _baseline(), options=_options(apply=True))

    instance = _instance(aws, instance_id)
    assert instance["State"]["Name"] == "stopped" and tags_of(instance)["harden:migration-run-state"] == "running"
    progress = tags_of(_ec2(aws).describe_volumes(VolumeIds=[root])["Volumes"][0])
    assert progress["harden:migration-step"] == "encrypted-copy"
    made = _made_from(aws, root)

    plan = run_migration(aws, _baseline(), options=_options())
    root_plan = "\n".join(next(r for r in plan.results if r.volume_id == root).plan)
    assert f"reuse the encrypted snapshot {made['encrypted-copy'][0]}" in root_plan
    assert plan.results[-1].plan[-1].startswith(f"start {instance_id} again")

    rerun = run_migration(aws, _baseline(), options=_options(apply=True))

    assert {r.status for r in rerun.results} == {"migrated"}
    instance = _instance(aws, instance_id)
    assert instance["State"]["Name"] == "running" and "harden:migration-run-state" not in tags_of(instance)
    after = _made_from(aws, root)
    assert after["snapshot"] == made["snapshot"] and after["encrypted-copy"] == made["encrypted-copy"]


def test_verify_names_the_originals_a_migration_keeps_and_what_to_do_with_them(aws):
    _key(aws)
    done, interrupted = _launch(aws, running=False), _launch(aws, running=False)
    run_migration(aws, _baseline(), options=_options(apply=True, instance_ids=(done,)))
    with failing_once(aws, "AttachVolume", KeyboardInterrupt()), pytest.raises(KeyboardInterrupt):
        run_migration(aws, _baseline(), options=_options(apply=True, instance_ids=(interrupted,)))
    stray = _ec2(aws).create_volume(AvailabilityZone=AZ, Size=1)["VolumeId"]  # unencrypted, not harden's

    found = {f.resource: f for f in _unencrypted_volume_findings(aws)}

    originals = {tags_of(v)["harden:migration-device"]: v for v in _ec2(aws).describe_volumes(Filters=[
        {"Name": "tag:harden:migration-instance", "Values": [done]}])["Volumes"]}
    assert sorted(originals) == ["/dev/sda1", "/dev/sdf", "/dev/sdg"]
    for device, original in originals.items():
        finding = found[original["VolumeId"]]
        new_id = tags_of(original)["harden:migrated-to"]
        assert finding.status == "fail"  # it still holds the data, unencrypted
        assert f"the original that `harden ebs migrate` kept after moving {done} {device} to the encrypted " \
               f"{new_id}" in finding.message
        assert finding.message.endswith("delete it and its migration snapshots with "
                                        "`harden ebs migrate --cleanup --apply`")
    (unfinished,) = [f for f in found.values() if "unfinished" in f.message]
    assert unfinished.resource == _ec2(aws).describe_volumes(Filters=[
        {"Name": "tag:harden:migration-step", "Values": ["detached"]}])["Volumes"][0]["VolumeId"]
    assert f"unfinished `harden ebs migrate` of {interrupted} /dev/sda1 (last step: detached)" in unfinished.message
    assert "do not delete it" in unfinished.message and "`harden ebs migrate --apply`" in unfinished.message
    assert found[stray].message.endswith("or delete it if it is no longer needed")

    run_cleanup(aws, _baseline(), options=_options(apply=True))
    left = {f.resource for f in _unencrypted_volume_findings(aws)}
    assert not left & {v["VolumeId"] for v in originals.values()} and stray in left


# -- cleanup ----------------------------------------------------------------------------------------

def test_cleanup_deletes_only_what_completed_migrations_kept(aws):
    _key(aws)
    ec2 = _ec2(aws)
    done, unfinished = _launch(aws, running=False), _launch(aws, running=False)
    assert {r.status for r in run_migration(aws, _baseline(), options=_options(
        apply=True, instance_ids=(done,))).results} == {"migrated"}
    with failing_once(aws, "CreateVolume"):
        run_migration(aws, _baseline(), options=_options(apply=True, instance_ids=(unfinished,)))
    unfinished_root = _devices(aws, unfinished)["/dev/sda1"]["VolumeId"]
    unfinished_made = _made_from(aws, unfinished_root)
    assert unfinished_made["snapshot"] and unfinished_made["encrypted-copy"]
    stray = ec2.create_volume(AvailabilityZone=AZ, Size=1)["VolumeId"]  # unencrypted, not harden's
    # Tagged like a completed migration, but its "replacement" is attached to nothing.
    lookalike = ec2.create_volume(AvailabilityZone=AZ, Size=1)["VolumeId"]
    elsewhere = ec2.create_volume(AvailabilityZone=AZ, Size=1, Encrypted=True)["VolumeId"]
    ec2.create_tags(Resources=[lookalike], Tags=[
        {"Key": "harden:migration", "Value": "original"}, {"Key": "harden:migration-step", "Value": "completed"},
        {"Key": "harden:migration-instance", "Value": done}, {"Key": "harden:migrated-to", "Value": elsewhere}])
    originals = [r.volume_id for r in run_migration(aws, _baseline(), options=_options()).results
                 if r.instance_id == done]
    assert originals == []  # nothing left to migrate on `done`
    done_originals = sorted(v["VolumeId"] for v in ec2.describe_volumes(Filters=[
        {"Name": "tag:harden:migration-instance", "Values": [done]},
        {"Name": "tag:harden:migration-step", "Values": ["completed"]}])["Volumes"] if v["VolumeId"] != lookalike)
    assert len(done_originals) == 3
    before = _account_state(aws)

    dry = run_cleanup(aws, _baseline(), options=_options())

    assert _account_state(aws) == before
    assert sorted(r.volume_id for r in dry.results if r.status == "planned") == done_originals
    kept = next(r for r in dry.results if r.volume_id == lookalike)
    assert kept.status == "skipped" and f"not attached to {done}" in kept.message
    assert dry.exit_code() == 1

    applied = run_cleanup(aws, _baseline(), options=_options(apply=True))

    assert sorted(r.volume_id for r in applied.results if r.status == "deleted") == done_originals
    existing = {v[0] for v in _account_state(aws)["volumes"]}
    assert not existing & set(done_originals)
    assert {stray, lookalike, elsewhere, unfinished_root} <= existing
    for original in done_originals:
        assert _made_from(aws, original)["snapshot"] == [] and _made_from(aws, original)["encrypted-copy"] == []
    assert _made_from(aws, unfinished_root) == unfinished_made
    assert _unencrypted_attached_to(aws, done) == []
    again = run_cleanup(aws, _baseline(), options=_options(apply=True))
    assert [r.volume_id for r in again.results] == [lookalike]


# -- the command --------------------------------------------------------------------------------------

def _cli(config, *args: str):
    # In-process (typer's runner): the same app `harden` runs, without a new interpreter per call.
    from provisioner import cli

    return CliRunner().invoke(cli.app, ["ebs", "migrate", "-c", str(config), *args], env={"COLUMNS": "200"})


def test_cli_dry_run_json_apply_table_and_bad_input(aws, tmp_path):
    _key(aws)
    instance_id = _launch(aws, running=True)
    cfg = tmp_path / "harden.toml"
    cfg.write_text(f'home_region = "{REGION}"\nregions = ["{REGION}"]\n')
    before = _account_state(aws)

    dry = _cli(cfg, "--format", "json")
    assert dry.exit_code == 1, dry.stderr
    doc = json.loads(dry.stdout)
    assert doc["applied"] is False and doc["summary"]["planned"] == 3
    assert {v["instance"] for v in doc["volumes"]} == {instance_id}
    assert _account_state(aws) == before

    bad = _cli(cfg, "--instance", "web-1")
    assert bad.exit_code == 2 and "expected an instance id" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1

    applied = _cli(cfg, "--instance", instance_id, "--apply", "--timeout", "30")
    assert applied.exit_code == 0, applied.stdout + applied.stderr
    assert applied.stdout.count("migrated") == 3
    assert "snapshot" in applied.stderr and "completed" in applied.stderr  # the progress, on stderr
    assert _unencrypted_attached_to(aws, instance_id) == []
    assert "nothing to do" in _cli(cfg, "--apply").stdout
