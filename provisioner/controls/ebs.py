"""ebs.*: encryption by default with a customer key in every region; no unencrypted volume."""

from __future__ import annotations

from typing import Any

import botocore.exceptions

from provisioner.aws import error_code, paginate
from provisioner.controls import CheckContext, control
from provisioner.findings import Finding

# The key EBS uses when nobody chose one. It cannot be shared, its policy cannot be changed and
# it cannot be rotated on demand, hence "customer-managed" in CIS 2.2.1 / EC2.7 reviews.
AWS_MANAGED_EBS_ALIAS = "alias/aws/ebs"

# Volumes in these states no longer hold data anyone can read back.
_GONE_STATES = frozenset({"deleting", "deleted"})


def partition(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def default_encryption_resource(ctx: CheckContext) -> str:
    """A stable id for the region's EBS default-encryption setting (it has no ARN of its own)."""
    return f"arn:{partition(ctx.region)}:ec2:{ctx.region}:{ctx.account_id}:ebs-default-encryption"


def _skip_if_disabled(ctx: CheckContext) -> list[Finding] | None:
    if ctx.baseline.ebs.enabled:
        return None
    return [ctx.skipped(ctx.region, "ebs.enabled = false in the baseline: EBS encryption is not part of "
                        "the desired state", ebs_enabled=False)]


# -- ebs.default_encryption ----------------------------------------------------------------------

def _is_aws_managed_alias(key_ref: str) -> bool:
    # GetEbsDefaultKmsKeyId answers "alias/aws/ebs" or its ARN form "arn:...:alias/aws/ebs".
    return key_ref == AWS_MANAGED_EBS_ALIAS or key_ref.endswith(":" + AWS_MANAGED_EBS_ALIAS)


def _describe_default_key(ctx: CheckContext, key_ref: str) -> dict[str, Any]:
    """Resolve the default key (id, alias or ARN) to its metadata. A key that does not exist is
    a finding, not an error: EBS then fails every encrypted volume creation in the region."""
    if not key_ref or _is_aws_managed_alias(key_ref):
        return {"key_arn": None, "key_manager": "AWS", "key_state": None, "alias": AWS_MANAGED_EBS_ALIAS}
    try:
        meta = ctx.client("kms").describe_key(KeyId=key_ref)["KeyMetadata"]
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) != "NotFoundException":
            raise
        return {"key_arn": None, "key_manager": None, "key_state": "NotFound"}
    return {"key_arn": meta["Arn"], "key_manager": meta.get("KeyManager"), "key_state": meta.get("KeyState")}


def _key_problems(key: dict[str, Any], key_ref: str, wanted: str | None) -> list[str]:
    if key["key_state"] == "NotFound":
        return [f"the default key {key_ref} does not exist: every encrypted volume creation fails; "
                "point the default at an enabled customer-managed key (ec2 modify-ebs-default-kms-key-id)"]
    if key["key_manager"] != "CUSTOMER":
        return [f"the default key is the AWS-managed {AWS_MANAGED_EBS_ALIAS} key"
                + (f" ({key['key_arn']})" if key["key_arn"] else "")
                + "; set a customer-managed key (ec2 modify-ebs-default-kms-key-id)"]
    problems = []
    if key["key_state"] != "Enabled":
        problems.append(f"the default key {key['key_arn']} is {key['key_state']}: new volumes cannot be "
                        "encrypted with it; enable it or choose another customer-managed key")
    if wanted and key["key_arn"] != wanted:
        problems.append(f"the default key is {key['key_arn']}, the baseline names {wanted} "
                        "(ebs.kms_key_arns); make that key the default")
    return problems


@control("ebs.default_encryption", title="EBS encryption by default is on, with a customer-managed key",
         scope="regional", maps_to="CIS 2.2.1, SecurityHub EC2.7")
def default_encryption(ctx: CheckContext) -> list[Finding]:
    """New volumes are encrypted by default in the region, with a customer-managed key (the
    baseline's key for the region when ebs.kms_key_arns names one)."""
    if skipped := _skip_if_disabled(ctx):
        return skipped
    ec2 = ctx.client("ec2")
    enabled = bool(ec2.get_ebs_encryption_by_default()["EbsEncryptionByDefault"])
    key_ref = ec2.get_ebs_default_kms_key_id().get("KmsKeyId") or ""
    key = _describe_default_key(ctx, key_ref)
    wanted = ctx.baseline.ebs.kms_key_arns.get(ctx.region)

    problems = [] if enabled else [
        "encryption by default is off: new volumes are created unencrypted; "
        "turn it on (ec2 enable-ebs-encryption-by-default)"]
    problems += _key_problems(key, key_ref, wanted)
    evidence = {"encryption_by_default": enabled, "default_kms_key_id": key_ref, **key,
                "expected_key_arn": wanted}
    resource = default_encryption_resource(ctx)
    if problems:
        return [ctx.failed(resource, "; ".join(problems), **evidence)]
    return [ctx.passed(resource, f"encryption by default is on with customer-managed key {key['key_arn']}",
                       **evidence)]


# -- ebs.unencrypted_volumes ---------------------------------------------------------------------

def unencrypted_volumes(ctx: CheckContext) -> list[dict]:
    """One describe_volumes per region, filtered server-side to unencrypted volumes."""
    return ctx.cached("ec2:unencrypted_volumes", lambda: paginate(
        ctx.client("ec2"), "describe_volumes", "Volumes",
        Filters=[{"Name": "encrypted", "Values": ["false"]}]))


def _volume_evidence(volume: dict) -> dict[str, Any]:
    return {
        "volume_id": volume["VolumeId"],
        "state": volume.get("State"),
        "size_gib": volume.get("Size"),
        "volume_type": volume.get("VolumeType"),
        "availability_zone": volume.get("AvailabilityZone"),
        # io1/io2 Multi-Attach volumes have several attachments: list them all.
        "attachments": [{"instance_id": a.get("InstanceId"), "device": a.get("Device"), "state": a.get("State")}
                        for a in volume.get("Attachments", [])],
        "tags": {t["Key"]: t["Value"] for t in volume.get("Tags", [])},
    }


def _volume_finding(ctx: CheckContext, volume: dict) -> Finding:
    evidence = _volume_evidence(volume)
    size = f"{evidence['size_gib']} GiB {evidence['volume_type']}"
    fix = "migrate it to an encrypted copy (snapshot, encrypted copy, new volume, swap)"
    if evidence["attachments"]:
        where = ", ".join(f"{a['instance_id']} as {a['device']}" for a in evidence["attachments"])
        return ctx.failed(volume["VolumeId"], f"unencrypted {size} volume attached to {where}; {fix}", **evidence)
    # Detached volumes still hold data at rest, unencrypted: a finding too, said plainly.
    return ctx.failed(volume["VolumeId"], f"unencrypted {size} volume, not attached ({evidence['state']}); "
                      f"{fix}, or delete it if it is no longer needed", **evidence)


@control("ebs.unencrypted_volumes", title="No unencrypted EBS volume", scope="regional",
         maps_to="SecurityHub EC2.3")
def no_unencrypted_volumes(ctx: CheckContext) -> list[Finding]:
    """Every EBS volume that still holds data (attached or not) is encrypted."""
    if skipped := _skip_if_disabled(ctx):
        return skipped
    volumes = [v for v in unencrypted_volumes(ctx) if v.get("State") not in _GONE_STATES]
    findings = [_volume_finding(ctx, v) for v in sorted(volumes, key=lambda v: v["VolumeId"])]
    if not findings:
        findings.append(ctx.passed(ctx.region, "no unencrypted volume in this region", unencrypted_volumes=0))
    return findings
