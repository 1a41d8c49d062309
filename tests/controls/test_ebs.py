"""ebs.* against the emulator.

The emulator has no GetEbsDefaultKmsKeyId (and reports every KMS key as customer-managed), so
those two answers come from botocore's Stubber, which checks the request and the response
against the real EC2/KMS service models; every other call goes to the emulator.
"""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from tests.stubbing import OperationStubber

from provisioner.baseline import parse_baseline
from provisioner.controls import CheckContext
from provisioner.controls.ebs import default_encryption, no_unencrypted_volumes
from provisioner.verify import run_verify

REGION = "eu-west-1"


def _ctx(aws, baseline=None, control_id="ebs.default_encryption"):
    return CheckContext(aws=aws, baseline=baseline or parse_baseline({}), region=REGION,
                        account_id=aws.account_id(), control_id=control_id)


def _resource(aws):
    return f"arn:aws:ec2:{REGION}:{aws.account_id()}:ebs-default-encryption"


def _run_default_encryption(aws, key_ref, baseline=None):
    """Run the check with GetEbsDefaultKmsKeyId answering key_ref (not in the emulator)."""
    with OperationStubber(aws.client("ec2", REGION), "GetEbsDefaultKmsKeyId") as stub:
        stub.add_response("get_ebs_default_kms_key_id", {"KmsKeyId": key_ref}, expected_params={})
        findings = default_encryption(_ctx(aws, baseline))
        stub.assert_no_pending_responses()
    assert len(findings) == 1
    return findings[0]


def _key(aws, alias=None):
    kms = aws.client("kms", REGION)
    arn = kms.create_key(Description="ebs default")["KeyMetadata"]["Arn"]
    if alias:
        kms.create_alias(AliasName=alias, TargetKeyId=arn)
    return arn


# -- ebs.default_encryption ----------------------------------------------------------------------

def test_default_encryption_passes_with_customer_key(aws):
    aws.client("ec2", REGION).enable_ebs_encryption_by_default()
    key = _key(aws)
    f = _run_default_encryption(aws, key)
    assert f.status == "pass", f.message
    assert f.resource == _resource(aws)
    assert f.evidence["encryption_by_default"] is True
    assert f.evidence["key_arn"] == key and f.evidence["key_manager"] == "CUSTOMER"
    assert key in f.message


def _key_with_policy(aws, policy):
    import json

    return aws.client("kms", REGION).create_key(Description="ebs", Policy=json.dumps(policy))["KeyMetadata"]["Arn"]


def test_default_key_with_harden_module_policy_passes(aws):
    from provisioner.controls.ebs import ebs_key_policy

    aws.client("ec2", REGION).enable_ebs_encryption_by_default()
    f = _run_default_encryption(aws, _key_with_policy(aws, ebs_key_policy(_ctx(aws))))
    assert f.status == "pass", f.message
    assert f.evidence["ec2_can_use"] is True and f.evidence["key_policy_outside_principals"] == []


def test_default_key_whose_policy_was_stripped_or_opened_fails(aws):
    from provisioner.controls.ebs import ebs_key_policy

    aws.client("ec2", REGION).enable_ebs_encryption_by_default()
    harden = ebs_key_policy(_ctx(aws))
    # Stripped: the statements that let EC2 use the key for this account's principals are gone
    # (the administration statement keeps the key manageable, but names only admin actions).
    admin = dict(harden["Statement"][0], Action=["kms:Describe*", "kms:Put*", "kms:Get*", "kms:Enable*"])
    stripped = {**harden, "Statement": [admin]}
    f = _run_default_encryption(aws, _key_with_policy(aws, stripped))
    assert f.status == "fail" and "no longer lets this account's principals use it through EC2" in f.message
    assert f.evidence["ec2_can_use"] is False
    # Opened: another account may use it (through EC2 or not).
    opened = {**harden, "Statement": [*harden["Statement"], {
        "Sid": "Partner", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::444455556666:root"},
        "Action": "kms:Decrypt", "Resource": "*"}]}
    f = _run_default_encryption(aws, _key_with_policy(aws, opened))
    assert f.status == "fail" and "lets principals outside the account in: arn:aws:iam::444455556666:root" in f.message


def test_default_encryption_resolves_an_alias_to_the_baseline_key(aws):
    aws.client("ec2", REGION).enable_ebs_encryption_by_default()
    key = _key(aws, alias="alias/harden-ebs")
    baseline = parse_baseline({"ebs": {"kms_key_arns": {REGION: key}}})
    alias_arn = f"arn:aws:kms:{REGION}:{aws.account_id()}:alias/harden-ebs"
    f = _run_default_encryption(aws, alias_arn, baseline)
    assert f.status == "pass", f.message
    assert f.evidence["default_kms_key_id"] == alias_arn and f.evidence["key_arn"] == key


def test_default_encryption_off_and_aws_managed_key_fail(aws):
    # The emulator's default: encryption by default off; EBS then reports the AWS-managed alias.
    f = _run_default_encryption(aws, f"arn:aws:kms:{REGION}:{aws.account_id()}:alias/aws/ebs")
    assert f.status == "fail"
    assert f.resource == _resource(aws)
    assert "encryption by default is off" in f.message
    assert "AWS-managed alias/aws/ebs" in f.message
    assert f.evidence["encryption_by_default"] is False and f.evidence["key_manager"] == "AWS"


def test_enabled_with_aws_managed_key_still_fails(aws):
    # Stricter than "encryption is on": the AWS-managed key cannot be governed by a key policy.
    aws.client("ec2", REGION).enable_ebs_encryption_by_default()
    f = _run_default_encryption(aws, "alias/aws/ebs")
    assert f.status == "fail"
    assert "encryption by default is off" not in f.message and "AWS-managed" in f.message


def test_aws_managed_key_named_by_its_key_arn_fails(aws):
    # The emulator calls every key CUSTOMER: the KMS answer is stubbed too (real service model).
    aws.client("ec2", REGION).enable_ebs_encryption_by_default()
    managed = f"arn:aws:kms:{REGION}:{aws.account_id()}:key/0b5a1f9e-1111-2222-3333-444455556666"
    with OperationStubber(aws.client("kms", REGION), "DescribeKey") as kms_stub:
        kms_stub.add_response("describe_key", {"KeyMetadata": {
            "KeyId": managed.split("/")[-1], "Arn": managed, "KeyManager": "AWS", "KeyState": "Enabled",
            "Enabled": True}}, expected_params={"KeyId": managed})
        f = _run_default_encryption(aws, managed)
    assert f.status == "fail" and "AWS-managed" in f.message
    assert f.evidence["key_arn"] == managed


def test_default_key_other_than_the_baseline_key_fails(aws):
    aws.client("ec2", REGION).enable_ebs_encryption_by_default()
    wanted, other = _key(aws), _key(aws)
    baseline = parse_baseline({"ebs": {"kms_key_arns": {REGION: wanted}}})
    f = _run_default_encryption(aws, other, baseline)
    assert f.status == "fail"
    assert other in f.message and wanted in f.message
    assert f.evidence["expected_key_arn"] == wanted and f.evidence["key_arn"] == other


def test_disabled_default_key_fails(aws):
    aws.client("ec2", REGION).enable_ebs_encryption_by_default()
    key = _key(aws)
    aws.client("kms", REGION).disable_key(KeyId=key.split("/")[-1])  # the emulator wants the id
    f = _run_default_encryption(aws, key)
    assert f.status == "fail" and "is Disabled" in f.message
    assert f.evidence["key_state"] == "Disabled"


def test_missing_default_key_fails(aws):
    aws.client("ec2", REGION).enable_ebs_encryption_by_default()
    gone = f"arn:aws:kms:{REGION}:{aws.account_id()}:key/6f0e6a3c-0000-4000-8000-000000000000"
    f = _run_default_encryption(aws, gone)
    assert f.status == "fail" and "does not exist" in f.message
    assert f.evidence["key_state"] == "NotFound"


def test_access_denied_is_an_error_not_a_verdict(aws):
    # The engine turns the exception into an `error` finding; the check must not swallow it.
    with OperationStubber(aws.client("ec2", REGION), "GetEbsDefaultKmsKeyId") as stub:
        stub.add_client_error("get_ebs_default_kms_key_id", "UnauthorizedOperation", "denied")
        with pytest.raises(ClientError):
            default_encryption(_ctx(aws))


# -- ebs.unencrypted_volumes ---------------------------------------------------------------------

def test_unencrypted_volumes_attached_and_detached_fail(aws):
    ec2 = aws.client("ec2", REGION)
    instance = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1,
                                 InstanceType="t3.micro")["Instances"][0]["InstanceId"]
    data = ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=20, VolumeType="gp3")["VolumeId"]
    ec2.attach_volume(VolumeId=data, InstanceId=instance, Device="/dev/sdf")
    detached = ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=5, VolumeType="gp2")["VolumeId"]
    encrypted = ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=5, Encrypted=True)["VolumeId"]
    ec2.attach_volume(VolumeId=encrypted, InstanceId=instance, Device="/dev/sdg")

    findings = no_unencrypted_volumes(_ctx(aws, control_id="ebs.unencrypted_volumes"))
    by_id = {f.resource: f for f in findings}

    assert encrypted not in by_id
    assert all(f.status == "fail" for f in findings)
    attached = by_id[data]
    assert attached.evidence["attachments"] == [{"instance_id": instance, "device": "/dev/sdf", "state": "attached"}]
    assert attached.evidence["size_gib"] == 20 and attached.evidence["volume_type"] == "gp3"
    assert f"attached to {instance} as /dev/sdf" in attached.message
    assert "not attached" in by_id[detached].message and by_id[detached].evidence["attachments"] == []
    # The emulator's root volume is unencrypted too: it is a finding like any other.
    roots = [f for f in findings if f.resource not in (data, detached)]
    assert len(roots) == 1 and roots[0].evidence["attachments"][0]["instance_id"] == instance


def test_only_encrypted_volumes_pass(aws):
    ec2 = aws.client("ec2", REGION)
    ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=5, Encrypted=True)
    findings = no_unencrypted_volumes(_ctx(aws, control_id="ebs.unencrypted_volumes"))
    assert [(f.status, f.resource) for f in findings] == [("pass", REGION)]
    assert findings[0].evidence == {"unencrypted_volumes": 0}


def test_one_describe_volumes_per_region(aws):
    ec2 = aws.client("ec2", REGION)
    for _ in range(4):
        ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=1)
    before = aws.calls.by_operation().get("ec2:DescribeVolumes", 0)
    findings = no_unencrypted_volumes(_ctx(aws, control_id="ebs.unencrypted_volumes"))
    assert len(findings) == 4
    assert aws.calls.by_operation()["ec2:DescribeVolumes"] - before == 1


def test_volumes_being_deleted_are_not_findings(aws):
    # The emulator deletes at once and never shows a "deleting" volume: DescribeVolumes is stubbed
    # here (real EC2 model) to give one beside an available volume.
    volume = {"VolumeId": "vol-0123456789abcdef0", "Size": 8, "VolumeType": "gp3", "Encrypted": False,
              "AvailabilityZone": f"{REGION}a", "Attachments": []}
    with OperationStubber(aws.client("ec2", REGION), "DescribeVolumes") as stub:
        stub.add_response("describe_volumes", {"Volumes": [
            {**volume, "State": "deleting"},
            {**volume, "VolumeId": "vol-0fedcba9876543210", "State": "available"}]},
            {"Filters": [{"Name": "encrypted", "Values": ["false"]}]})
        findings = no_unencrypted_volumes(_ctx(aws, control_id="ebs.unencrypted_volumes"))
    assert [(f.status, f.resource) for f in findings] == [("fail", "vol-0fedcba9876543210")]


def test_disabled_baseline_skips_default_encryption_but_still_checks_volumes(aws):
    # ebs.enabled switches the ebs_encryption module; an unencrypted volume holds unencrypted data
    # whatever the switch says, and nothing but `harden ebs migrate` (opt-in) acts on it.
    volume = aws.client("ec2", REGION).create_volume(AvailabilityZone=f"{REGION}a", Size=1)["VolumeId"]
    baseline = parse_baseline({"home_region": REGION, "regions": [REGION], "ebs": {"enabled": False}})
    report = run_verify(aws, baseline, controls=["ebs"])
    by_control = {f.control: f for f in report.findings}
    assert len(report.findings) == 2
    skipped = by_control["ebs.default_encryption"]
    assert (skipped.status, skipped.region, skipped.resource) == ("skipped", REGION, REGION)
    assert skipped.message.startswith("ebs.enabled = false in the baseline")
    assert (by_control["ebs.unencrypted_volumes"].status, by_control["ebs.unencrypted_volumes"].resource) == \
        ("fail", volume)
