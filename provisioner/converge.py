"""Create what provisioner/resources.py describes, with boto3, as the Terraform module would.

Each `ensure_*` is idempotent: it reads first, creates what is missing, brings what it owns back
to the description (retention, key, inline policies), and returns the ARN. Dependencies are
explicit in the order of the calls: a key before the log group or bucket it encrypts, the bucket
policy before the trail that delivers into it, a role and its policy before the service that
assumes it. Only remediate's actions call these (never a planner: they write).
"""

from __future__ import annotations

import json
import time
from typing import Any, Callable

import botocore.exceptions

from provisioner.aws import describe_error, error_code
from provisioner.resources import Bucket, Key, LogGroup, Role, Site


def _tag_list(tags: dict[str, str], key: str = "Key", value: str = "Value") -> list[dict[str, str]]:
    return [{key: k, value: v} for k, v in tags.items()]


# -- KMS ------------------------------------------------------------------------------------------

def key_by_alias(kms, alias: str) -> dict[str, Any] | None:
    try:
        return kms.describe_key(KeyId=alias)["KeyMetadata"]
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) != "NotFoundException":
            raise
        return None


def ensure_key(kms, key: Key) -> str:
    """The ARN of the key behind key.alias, created (policy, tags, rotation, alias) when missing.
    An existing key that is not enabled is an error: remediate never re-enables or replaces a key
    someone disabled."""
    meta = key_by_alias(kms, key.alias)
    if meta is not None:
        if meta.get("KeyState") != "Enabled":
            raise RuntimeError(f"the key {key.alias} ({meta['Arn']}) is {meta.get('KeyState')}: enable it first")
        return meta["Arn"]
    created = kms.create_key(Description=key.description, KeyUsage="ENCRYPT_DECRYPT", KeySpec="SYMMETRIC_DEFAULT",
                             MultiRegion=False, Policy=json.dumps(key.policy),
                             Tags=_tag_list(key.tags, "TagKey", "TagValue"))["KeyMetadata"]
    try:
        kms.enable_key_rotation(KeyId=created["KeyId"])
        kms.create_alias(AliasName=key.alias, TargetKeyId=created["KeyId"])
    except botocore.exceptions.ClientError as exc:
        # Say which key exists now, so a person can finish it or schedule its deletion.
        raise RuntimeError(f"created key {created['Arn']}, then {describe_error(exc)}") from None
    return created["Arn"]


# -- CloudWatch Logs ------------------------------------------------------------------------------

def find_log_group(logs, name: str) -> dict[str, Any] | None:
    listed = logs.describe_log_groups(logGroupNamePrefix=name).get("logGroups", [])
    return next((g for g in listed if g["logGroupName"] == name), None)


def ensure_log_group(logs, kms, group: LogGroup) -> str:
    """The group, encrypted with its key (the key first: CloudWatch Logs checks the key policy when
    the group is created or associated), with its retention. An existing group is brought to
    the key and retention; its events are kept."""
    key_arn = ensure_key(kms, group.key) if group.key else None
    found = find_log_group(logs, group.name)
    if found is None:
        kwargs: dict[str, Any] = {"logGroupName": group.name, "tags": dict(group.tags)}
        if key_arn:
            kwargs["kmsKeyId"] = key_arn
        logs.create_log_group(**kwargs)
        found = {}
    elif key_arn and found.get("kmsKeyId") != key_arn:
        logs.associate_kms_key(logGroupName=group.name, kmsKeyId=key_arn)
    if found.get("retentionInDays") != group.retention_days:
        logs.put_retention_policy(logGroupName=group.name, retentionInDays=group.retention_days)
    return group.name


# -- IAM ------------------------------------------------------------------------------------------

def role_arn(iam, name: str) -> str | None:
    try:
        return iam.get_role(RoleName=name)["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        return None


def ensure_role(iam, role: Role) -> str:
    """The role with its trust policy, inline policies and managed attachments. An existing role
    keeps its trust policy (someone may have widened it on purpose: that is Terraform's diff to
    show), its inline policies are put again (they are harden's, by name)."""
    arn = role_arn(iam, role.name)
    if arn is None:
        arn = iam.create_role(RoleName=role.name, AssumeRolePolicyDocument=json.dumps(role.trust),
                              Description=role.description, MaxSessionDuration=role.max_session_seconds,
                              Tags=_tag_list(role.tags))["Role"]["Arn"]
    for name, document in role.inline.items():
        iam.put_role_policy(RoleName=role.name, PolicyName=name, PolicyDocument=json.dumps(document))
    for policy_arn in role.managed:
        iam.attach_role_policy(RoleName=role.name, PolicyArn=policy_arn)
    return arn


# -- S3 -------------------------------------------------------------------------------------------

def bucket_exists(s3, name: str) -> bool:
    try:
        s3.head_bucket(Bucket=name)
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) in ("404", "NoSuchBucket", "NotFound"):
            return False
        raise
    return True


def ensure_bucket(s3, kms, bucket: Bucket, region: str) -> str:
    """The log bucket as the cloudtrail module declares it: public access blocked, owner enforced,
    versioned, SSE-KMS with a bucket key, expiring (current and noncurrent versions), the bucket
    policy last (after the public access block, as the module orders it). Only a bucket that does
    not exist is configured: an existing one is the module's (or the user's) to change."""
    if bucket_exists(s3, bucket.name):
        return bucket.name
    key_arn = ensure_key(kms, bucket.key)
    kwargs: dict[str, Any] = {"Bucket": bucket.name}
    if region != "us-east-1":  # us-east-1 takes no LocationConstraint
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    s3.create_bucket(**kwargs)
    s3.put_bucket_tagging(Bucket=bucket.name, Tagging={"TagSet": _tag_list(bucket.tags)})
    s3.put_public_access_block(Bucket=bucket.name, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
    s3.put_bucket_ownership_controls(Bucket=bucket.name, OwnershipControls={
        "Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]})
    s3.put_bucket_versioning(Bucket=bucket.name, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_encryption(Bucket=bucket.name, ServerSideEncryptionConfiguration={"Rules": [{
        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn},
        "BucketKeyEnabled": True}]})
    s3.put_bucket_lifecycle_configuration(Bucket=bucket.name, LifecycleConfiguration={"Rules": [{
        "ID": "expire-logs", "Status": "Enabled", "Filter": {"Prefix": ""},
        "Expiration": {"Days": bucket.expiration_days},
        "NoncurrentVersionExpiration": {"NoncurrentDays": bucket.expiration_days},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": bucket.abort_multipart_days}}]})
    s3.put_bucket_policy(Bucket=bucket.name, Policy=json.dumps(bucket.policy))
    return bucket.name


# -- IAM eventual consistency ---------------------------------------------------------------------

# A role created a moment ago may not be assumable yet by the service that checks it (CloudTrail
# answers InvalidCloudWatchLogsRoleArnException, EC2 flow logs a delivery error): IAM is eventually
# consistent, https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_general.html#troubleshoot_general_eventual-consistency
PROPAGATION_ERRORS = ("InvalidCloudWatchLogsRoleArnException", "InsufficientEncryptionPolicyException",
                      "InsufficientS3BucketPolicyException")


def with_propagation_retry(call: Callable[[], Any], attempts: int = 6, wait: float = 5.0,
                           sleep: Callable[[float], None] = time.sleep) -> Any:
    for attempt in range(attempts):
        try:
            return call()
        except botocore.exceptions.ClientError as exc:
            if error_code(exc) not in PROPAGATION_ERRORS or attempt == attempts - 1:
                raise
            sleep(wait)
    raise AssertionError("unreachable")


def site_of(ctx) -> Site:
    return Site(ctx.account_id, ctx.region)
