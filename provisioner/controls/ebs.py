"""ebs.*: encryption by default with a customer key in every region; no unencrypted volume."""

from __future__ import annotations

import json
from typing import Any

import botocore.exceptions

from provisioner import converge, resources
from provisioner.aws import dns_suffix_for, error_code, paginate, partition_for
from provisioner.controls import CheckContext, Mappings, control
from provisioner.key_policy import Caller, allows, outside_principals
from provisioner.findings import Finding
from provisioner.remediate import Action, fix

# The key EBS uses when nobody chose one. It cannot be shared, its policy cannot be changed and
# it cannot be rotated on demand, hence "customer-managed" in CIS 2.2.1 / EC2.7 reviews.
AWS_MANAGED_EBS_ALIAS = "alias/aws/ebs"

# Volumes in these states no longer hold data anyone can read back.
_GONE_STATES = frozenset({"deleting", "deleted"})


partition = partition_for  # the one partition lookup (provisioner.aws); the controls import it from here


def default_encryption_resource(ctx: CheckContext) -> str:
    """A stable id for the region's EBS default-encryption setting (it has no ARN of its own)."""
    return f"arn:{partition(ctx.region)}:ec2:{ctx.region}:{ctx.account_id}:ebs-default-encryption"


# -- ebs.default_encryption ----------------------------------------------------------------------

def is_aws_managed_alias(key_ref: str) -> bool:
    # GetEbsDefaultKmsKeyId answers "alias/aws/ebs" or its ARN form "arn:...:alias/aws/ebs".
    return key_ref == AWS_MANAGED_EBS_ALIAS or key_ref.endswith(":" + AWS_MANAGED_EBS_ALIAS)


def _describe_default_key(ctx: CheckContext, key_ref: str) -> dict[str, Any]:
    """Resolve the default key (id, alias or ARN) to its metadata. A key that does not exist is
    a finding, not an error: EBS then fails every encrypted volume creation in the region."""
    if not key_ref or is_aws_managed_alias(key_ref):
        return {"key_arn": None, "key_manager": "AWS", "key_state": None, "alias": AWS_MANAGED_EBS_ALIAS}
    try:
        meta = ctx.client("kms").describe_key(KeyId=key_ref)["KeyMetadata"]
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) != "NotFoundException":
            raise
        return {"key_arn": None, "key_manager": None, "key_state": "NotFound"}
    return {"key_arn": meta["Arn"], "key_manager": meta.get("KeyManager"), "key_state": meta.get("KeyState")}


def _default_key_problems(key: dict[str, Any], key_ref: str, wanted: str | None) -> list[str]:
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
    if key.get("ec2_can_use") is False:
        problems.append(f"the policy of the default key {key['key_arn']} no longer lets this account's principals "
                        "use it through EC2 (kms:CreateGrant for AWS resources, kms:GenerateDataKey*): encrypted "
                        "launches fail")
    if key.get("key_policy_outside_principals"):
        problems.append(f"the policy of the default key {key['key_arn']} lets principals outside the account in: "
                        f"{', '.join(key['key_policy_outside_principals'])}")
    return problems


def _key_policy_facts(ctx: CheckContext, key_arn: str) -> dict[str, Any]:
    """What the default key's policy allows: EC2 using it for a principal of this account (the
    calls EBS makes on its behalf, through EC2: kms:ViaService and kms:GrantIsForAWSResource as
    https://docs.aws.amazon.com/ebs/latest/userguide/ebs-encryption-requirements.html lists them),
    and which principals outside the account it lets in."""
    policy = json.loads(ctx.client("kms").get_key_policy(KeyId=key_arn, PolicyName="default")["Policy"])
    via_ec2 = {"kms:ViaService": f"ec2.{ctx.region}.{dns_suffix_for(ctx.region)}", "kms:CallerAccount": ctx.account_id}
    someone = Caller(f"arn:{partition(ctx.region)}:iam::{ctx.account_id}:role/harden-probe", context={
        **via_ec2, "kms:GrantIsForAWSResource": "true"})
    can_use = allows(policy, someone, "kms:CreateGrant") and allows(policy, someone, "kms:GenerateDataKeyWithoutPlaintext")
    return {"ec2_can_use": can_use, "key_policy_outside_principals": outside_principals(policy, ctx.account_id)}


@control("ebs.default_encryption", title="EBS encryption by default is on, with a customer-managed key",
         scope="regional", severity="medium",
         rationale="new volumes (and snapshots shared from them) are created unencrypted until someone "
         "remembers to ask; the exposure grows with every launch",
         mappings=Mappings(cis_v3=("2.2.1",), cis_v4=("5.1.1",), securityhub=("EC2.7",)),
         fix="turn on EBS encryption by default with the baseline key (`harden remediate --controls "
         "ebs.default_encryption`, or the ebs_encryption module)",
         terraform="ebs_encryption/aws_ebs_encryption_by_default.this")
def default_encryption(ctx: CheckContext) -> list[Finding]:
    """New volumes are encrypted by default in the region, with a customer-managed key (the
    baseline's key for the region when ebs.kms_key_arns names one)."""
    ec2 = ctx.client("ec2")
    enabled = bool(ec2.get_ebs_encryption_by_default()["EbsEncryptionByDefault"])
    key_ref = ec2.get_ebs_default_kms_key_id().get("KmsKeyId") or ""
    key = _describe_default_key(ctx, key_ref)
    if key["key_manager"] == "CUSTOMER" and key["key_state"] == "Enabled":
        key.update(_key_policy_facts(ctx, key["key_arn"]))
    wanted = ctx.baseline.ebs.kms_key_arns.get(ctx.region)

    problems = [] if enabled else [
        "encryption by default is off: new volumes are created unencrypted; "
        "turn it on (ec2 enable-ebs-encryption-by-default)"]
    problems += _default_key_problems(key, key_ref, wanted)
    evidence = {"encryption_by_default": enabled, "default_kms_key_id": key_ref, **key,
                "expected_key_arn": wanted}
    resource = default_encryption_resource(ctx)
    if problems:
        return [ctx.failed(resource, "; ".join(problems), **evidence)]
    return [ctx.passed(resource, f"encryption by default is on with customer-managed key {key['key_arn']}",
                       **evidence)]


# -- fix: ebs.default_encryption -----------------------------------------------------------------
# The key, its alias, description, policy and tags are the ebs_encryption module's
# (templates/modules/ebs_encryption/main.tf.j2), so the state converges to what Terraform declares.

EBS_USE_ACTIONS = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"]


class KeyNotUsable(ValueError):
    """A key that cannot be harden's EBS key (one line: which key, why). The message is `fact`
    (which key, what is wrong with it: for callers that say what to do in their own words) and
    `tail`; `meta` is the key's KeyMetadata (None: it does not exist)."""

    def __init__(self, fact: str, tail: str, meta: dict[str, Any] | None):
        super().__init__(f"{fact}{tail}")
        self.fact, self.meta = fact, meta


def ebs_key_alias(ctx: CheckContext) -> str:
    return resources.ebs_key_alias(ctx.baseline)


def ebs_key_policy(ctx: CheckContext) -> dict[str, Any]:
    """The module's key policy: the account root administers (without it the key is unmanageable);
    principals of this account use the key only through EC2 in this region, as with aws/ebs; the
    Auto Scaling service-linked role (matched by ARN: it may not exist yet) may use it to launch."""
    p, account = partition(ctx.region), ctx.account_id
    via_ec2 = {"kms:ViaService": f"ec2.{ctx.region}.{dns_suffix_for(ctx.region)}", "kms:CallerAccount": account}
    autoscaling = {"StringEquals": {"kms:CallerAccount": account}, "ArnEquals": {
        "aws:PrincipalArn": f"arn:{p}:iam::{account}:role/aws-service-role/autoscaling.amazonaws.com/"
                            "AWSServiceRoleForAutoScaling"}}
    for_aws_resource = {"Bool": {"kms:GrantIsForAWSResource": "true"}}
    anyone = {"AWS": "*"}
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "AccountRootAdministers", "Effect": "Allow", "Principal": {"AWS": f"arn:{p}:iam::{account}:root"},
         "Action": "kms:*", "Resource": "*"},
        {"Sid": "AccountPrincipalsUseThroughEc2Only", "Effect": "Allow", "Principal": anyone,
         "Action": EBS_USE_ACTIONS, "Resource": "*", "Condition": {"StringEquals": via_ec2}},
        {"Sid": "AccountPrincipalsGrantToAwsResourcesThroughEc2Only", "Effect": "Allow", "Principal": anyone,
         "Action": "kms:CreateGrant", "Resource": "*",
         "Condition": {"StringEquals": via_ec2, **for_aws_resource}},
        {"Sid": "AutoScalingServiceLinkedRoleUse", "Effect": "Allow", "Principal": anyone,
         "Action": EBS_USE_ACTIONS, "Resource": "*", "Condition": autoscaling},
        {"Sid": "AutoScalingServiceLinkedRoleGrantToAwsResources", "Effect": "Allow", "Principal": anyone,
         "Action": "kms:CreateGrant", "Resource": "*", "Condition": {**autoscaling, **for_aws_resource}},
    ]}


def key_metadata(ctx: CheckContext, key_ref: str) -> dict[str, Any] | None:
    """kms:DescribeKey's KeyMetadata of a key id, ARN or alias in the context's region; None when
    there is no such key."""
    try:
        return ctx.client("kms").describe_key(KeyId=key_ref)["KeyMetadata"]
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) != "NotFoundException":
            raise
        return None


def key_problems(meta: dict[str, Any]) -> list[str]:
    """What keeps a key (its KeyMetadata) from being harden's EBS key, the default key's and the
    `harden ebs migrate` copies' alike: it must be enabled, customer-managed (the AWS-managed
    aws/ebs key cannot be shared or have its policy changed) and a symmetric encryption key (all
    EBS takes). Empty: usable."""
    problems = []
    if meta.get("KeyState") != "Enabled":
        problems.append(f"is {meta.get('KeyState')}, not Enabled")
    if meta.get("KeyManager") != "CUSTOMER":
        problems.append("is AWS-managed")
    if meta.get("KeyUsage", "ENCRYPT_DECRYPT") != "ENCRYPT_DECRYPT" or \
            meta.get("KeySpec", "SYMMETRIC_DEFAULT") != "SYMMETRIC_DEFAULT":
        problems.append("is not a symmetric encryption key (EBS needs one)")
    return problems


def _usable(meta: dict[str, Any] | None, key_ref: str, named_by: str, region: str) -> str:
    if meta is None:
        raise KeyNotUsable(f"{named_by} {key_ref} does not exist", f" in {region}", None)
    problems = key_problems(meta)
    if problems:
        raise KeyNotUsable(f"{named_by} {meta.get('Arn', key_ref)} {' and '.join(problems)}",
                           f": it cannot be the default EBS key of {region}; fix the key or name another in "
                           "ebs.kms_key_arns", meta)
    return meta["Arn"]


def usable_key_arn(ctx: CheckContext, key_ref: str, named_by: str) -> str:
    """The ARN of `key_ref` when EBS can encrypt with it as harden's key; KeyNotUsable otherwise
    (remediate never enables, re-creates or replaces a key someone disabled or chose)."""
    return _usable(key_metadata(ctx, key_ref), key_ref, named_by, ctx.region)


def chosen_key_arn(ctx: CheckContext) -> str | None:
    """The region's key: ebs.kms_key_arns, else the key behind alias/<prefix>-ebs, else None (one
    is to be created); KeyNotUsable when the one found cannot be used."""
    wanted = ctx.baseline.ebs.kms_key_arns.get(ctx.region)
    if wanted:
        return usable_key_arn(ctx, wanted, "the baseline key (ebs.kms_key_arns)")
    alias = ebs_key_alias(ctx)
    meta = key_metadata(ctx, alias)
    return None if meta is None else _usable(meta, alias, f"the key behind {alias}", ctx.region)


def ebs_key(ctx: CheckContext) -> resources.Key:
    """The ebs_encryption module's key of this region, as a description converge can create."""
    prefix, region = ctx.baseline.name_prefix, ctx.region
    return resources.Key(ebs_key_alias(ctx), f"Default EBS encryption key of {region} ({prefix})",
                         ebs_key_policy(ctx), resources.tags(ctx.baseline, f"{prefix}-ebs-{region}"))


def _create_key_action(ctx: CheckContext) -> Action:
    alias, region = ebs_key_alias(ctx), ctx.region

    def run() -> dict:
        notes: list[str] = []
        # Idempotent under concurrent runs and crashes: see converge.ensure_key.
        arn = converge.ensure_key(ctx.client("kms"), ebs_key(ctx), notes)
        return {"message": "; ".join(notes) or f"{alias} exists: {arn}", "key_arn": arn}

    return Action(ctx.control_id, region, f"arn:{partition(region)}:kms:{region}:{ctx.account_id}:{alias}",
                  f"create a customer-managed KMS key {alias} for EBS in {region}: rotation on, administered by "
                  f"the account root, usable only through EC2 in {region} by this account",
                  converge.KEY_CALLS, run)


def _default_setting_action(ctx: CheckContext, finding: Finding, key_arn: str | None) -> Action | None:
    """Point the region's default key at the baseline key, then turn encryption by default on:
    only the calls the finding shows are needed. The key first, so that encryption is never on
    with the wrong key, not even for a moment."""
    repoint = key_arn is None or finding.evidence.get("key_arn") != key_arn
    enable = not finding.evidence.get("encryption_by_default")
    if not (repoint or enable):
        return None
    alias = ebs_key_alias(ctx)

    def run() -> dict:
        ec2 = ctx.client("ec2")
        # A key created by the action before is known by its alias only.
        arn = key_arn or usable_key_arn(ctx, alias, f"the key behind {alias}")
        done = []
        if repoint:
            ec2.modify_ebs_default_kms_key_id(KmsKeyId=arn)
            done.append(f"default key {arn}")
        if enable:
            ec2.enable_ebs_encryption_by_default()
            done.append("encryption by default on")
        return {"message": ", ".join(done), "key_arn": arn}

    key_text = key_arn or f"the new key {alias}"
    steps = ([f"make {key_text} the default EBS key"] if repoint else []) + \
        (["turn on encryption by default"] if enable else [])
    calls = (["ec2:ModifyEbsDefaultKmsKeyId"] if repoint else []) + \
        (["ec2:EnableEbsEncryptionByDefault"] if enable else [])
    return Action(ctx.control_id, ctx.region, finding.resource,
                  f"{' and '.join(steps)} in {ctx.region} (applies to new volumes; existing ones are unchanged)",
                  calls, run)


@fix("ebs.default_encryption")
def enable_default_encryption(ctx: CheckContext, failed: list[Finding]) -> list[Action]:
    """Encryption by default on, with the baseline's customer key (created with its alias when the
    region has none). One finding per region: the region's default-encryption setting."""
    if not failed:
        return []
    key_arn = chosen_key_arn(ctx)
    actions = [] if key_arn else [_create_key_action(ctx)]
    return actions + [a for f in failed if (a := _default_setting_action(ctx, f, key_arn))]


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


def _left_by_migration(tags: dict[str, str]) -> str | None:
    """What `harden ebs migrate` keeps a detached original for, and what to do with it; None for a
    volume it did not migrate."""
    from provisioner.migrate import TAG_DEVICE, TAG_INSTANCE, TAG_ROLE, TAG_STEP, TAG_TO  # migrate imports us

    if tags.get(TAG_ROLE) != "original":
        return None
    was = f"{tags.get(TAG_INSTANCE, '?')} {tags.get(TAG_DEVICE, '?')}"
    if tags.get(TAG_STEP) == "completed":
        return (f"the original that `harden ebs migrate` kept after moving {was} to the encrypted "
                f"{tags.get(TAG_TO, '?')}; it still holds the data unencrypted: delete it and its migration "
                "snapshots with `harden ebs migrate --cleanup --apply`")
    return (f"the original of an unfinished `harden ebs migrate` of {was} (last step: "
            f"{tags.get(TAG_STEP, '?')}); it holds the current data: do not delete it, re-run "
            "`harden ebs migrate --apply` to finish the migration")


def _volume_finding(ctx: CheckContext, volume: dict) -> Finding:
    evidence = _volume_evidence(volume)
    size = f"{evidence['size_gib']} GiB {evidence['volume_type']}"
    fix = "migrate it to an encrypted copy (snapshot, encrypted copy, new volume, swap)"
    if evidence["attachments"]:
        where = ", ".join(f"{a['instance_id']} as {a['device']}" for a in evidence["attachments"])
        return ctx.failed(volume["VolumeId"], f"unencrypted {size} volume attached to {where}; {fix}", **evidence)
    # Detached volumes still hold data at rest, unencrypted: a finding too, said plainly.
    detached = f"unencrypted {size} volume, not attached ({evidence['state']})"
    if migration := _left_by_migration(evidence["tags"]):
        return ctx.failed(volume["VolumeId"], f"{detached}: {migration}", **evidence)
    return ctx.failed(volume["VolumeId"], f"{detached}; {fix}, or delete it if it is no longer needed", **evidence)


@control("ebs.unencrypted_volumes", title="No unencrypted EBS volume", scope="regional",
         severity="medium",
         rationale="data at rest on an unencrypted volume is readable from any snapshot copied out of "
         "the account; existing data, not a missing setting",
         mappings=Mappings(securityhub=("EC2.3",)),
         fix="encrypt the volumes in place: `harden ebs migrate --apply` (stop, snapshot, encrypted copy, swap)")
def no_unencrypted_volumes(ctx: CheckContext) -> list[Finding]:
    """Every EBS volume that still holds data (attached or not) is encrypted."""
    volumes = [v for v in unencrypted_volumes(ctx) if v.get("State") not in _GONE_STATES]
    findings = [_volume_finding(ctx, v) for v in sorted(volumes, key=lambda v: v["VolumeId"])]
    if not findings:
        findings.append(ctx.passed(ctx.region, "no unencrypted volume in this region", unencrypted_volumes=0))
    return findings
