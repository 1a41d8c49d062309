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
import urllib.parse
from typing import Any, Callable

import botocore.exceptions

from provisioner.aws import describe_error, error_code, paginate
from provisioner.resources import Bucket, Key, LogGroup, Role, Site


def _tag_list(tags: dict[str, str], key: str = "Key", value: str = "Value") -> list[dict[str, str]]:
    return [{key: k, value: v} for k, v in tags.items()]


# -- KMS ------------------------------------------------------------------------------------------
#
# A key is known by its alias; CreateKey and CreateAlias are two calls, so a run can die, or lose
# a race with another `harden remediate --apply`, between them. Every key harden creates carries
# the tag `harden:key-for=<alias>`, so ensure_key:
#
# 1. the alias exists: that key is used (an error unless it is enabled);
# 2. an enabled key tagged for the alias has no alias (a run died between the two calls): it is
#    adopted (rotation on, alias created), not duplicated. Tags prove nothing (anyone allowed to
#    tag can write them), so only a key whose policy is exactly the one harden gives is adopted:
#    such a key is what harden would have created;
# 3. otherwise a new key is created, tagged, rotation on, then the alias: if another run created
#    the alias first, the new key is redundant and its deletion is scheduled (the shortest window,
#    7 days, so it can still be cancelled); if creating the alias fails for another reason the key
#    is kept and a re-run adopts it. The note says which.
# 4. once the alias is ours, any other key of step 2's kind (enabled, tagged for the alias, harden's
#    policy, no alias) is redundant and its deletion is scheduled the same way: KMS CreateKey takes
#    no idempotency token (https://docs.aws.amazon.com/kms/latest/APIReference/API_CreateKey.html),
#    so when its answer is lost on the way back botocore retries a call that already made a key,
#    and the run would otherwise leave that first key enabled, unused and billed.

KEY_TAG = "harden:key-for"
PENDING_WINDOW_DAYS = 7   # the shortest KMS allows: https://docs.aws.amazon.com/kms/latest/developerguide/deleting-keys.html
# What ensure_key may call, for an action's list of calls. CreateKey with Tags needs
# kms:TagResource as well: https://docs.aws.amazon.com/kms/latest/developerguide/tagging-permissions.html
KEY_CALLS = ["kms:CreateKey", "kms:TagResource", "kms:EnableKeyRotation", "kms:CreateAlias", "kms:ListKeys",
             "kms:ListResourceTags", "kms:ListAliases", "kms:DescribeKey", "kms:GetKeyPolicy",
             "kms:ScheduleKeyDeletion"]


def said(notes: list[str]) -> str:
    """What the ensure_* calls did, as a suffix for an action's message: " (a; b)", or nothing."""
    return f" ({'; '.join(notes)})" if notes else ""


def key_calls(kms, alias: str) -> list[str]:
    """KEY_CALLS when no key is behind the alias (the action will adopt or create one), else none:
    for an action's list of calls, decided when it is planned."""
    return [] if key_by_alias(kms, alias) is not None else list(KEY_CALLS)


def key_by_alias(kms, alias: str) -> dict[str, Any] | None:
    try:
        return kms.describe_key(KeyId=alias)["KeyMetadata"]
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) != "NotFoundException":
            raise
        return None


def _keys_left_without_alias(kms, key: Key) -> list[dict[str, Any]]:
    """Enabled customer keys tagged as made for key.alias, with exactly key.policy, that no alias
    points to, oldest first."""
    found = []
    for listed in paginate(kms, "list_keys", "Keys"):
        key_id = listed["KeyId"]
        try:
            tags = {t["TagKey"]: t["TagValue"] for t in paginate(kms, "list_resource_tags", "Tags", KeyId=key_id)}
            if tags.get(KEY_TAG) != key.alias:
                continue
            meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
            if meta.get("KeyState") != "Enabled" or meta.get("KeyManager") != "CUSTOMER":
                continue
            if paginate(kms, "list_aliases", "Aliases", KeyId=key_id):
                continue
            if json.loads(kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"]) != key.policy:
                continue
        except botocore.exceptions.ClientError as exc:
            if error_code(exc) in ("AccessDeniedException", "NotFoundException"):
                continue  # a key we may not read is not one we made
            raise
        found.append(meta)
    return sorted(found, key=lambda m: (str(m.get("CreationDate")), m["KeyId"]))


def ensure_key(kms, key: Key, notes: list[str] | None = None) -> str:
    """The ARN of the key behind key.alias, adopted or created (policy, tags, rotation, alias) as
    above. What was done, if anything, is appended to `notes` (a redundant key's scheduled
    deletion with the command that cancels it). An existing key that is not enabled is an error:
    remediate never re-enables or replaces a key someone disabled."""
    notes = [] if notes is None else notes
    meta = key_by_alias(kms, key.alias)
    if meta is not None:
        if meta.get("KeyState") != "Enabled":
            raise RuntimeError(f"the key {key.alias} ({meta['Arn']}) is {meta.get('KeyState')}: enable it first")
        return meta["Arn"]
    orphans = _keys_left_without_alias(kms, key)
    if orphans:
        made, how = orphans[0], "adopted"
    else:
        made, how = kms.create_key(
            Description=key.description, KeyUsage="ENCRYPT_DECRYPT", KeySpec="SYMMETRIC_DEFAULT", MultiRegion=False,
            Policy=json.dumps(key.policy),
            Tags=_tag_list({**key.tags, KEY_TAG: key.alias}, "TagKey", "TagValue"))["KeyMetadata"], "created"
    try:
        kms.enable_key_rotation(KeyId=made["KeyId"])
        kms.create_alias(AliasName=key.alias, TargetKeyId=made["KeyId"])
    except botocore.exceptions.ClientError as exc:
        retired = _retired_by_the_winner(kms, key, made, exc)
        if retired:
            notes.append(f"another run created {key.alias} first and scheduled the deletion of the {how} key "
                         f"{made['Arn']} (aws kms cancel-key-deletion --region {kms.meta.region_name} --key-id "
                         f"{made['KeyId']} keeps it): using its key {retired}")
            return retired
        if error_code(exc) != "AlreadyExistsException":
            # Say which key exists now: the next run adopts it.
            raise RuntimeError(f"{how} key {made['Arn']}, then {describe_error(exc)}; the key is kept, tagged "
                               f"{KEY_TAG}={key.alias}: a re-run adopts it") from None
        winner = key_by_alias(kms, key.alias)
        if winner and winner["KeyId"] == made["KeyId"]:  # another run adopted our key: the same outcome
            notes.append(f"{how} {made['Arn']} as {key.alias}")
            return made["Arn"]
        if winner is None or winner.get("KeyState") != "Enabled":
            raise RuntimeError(f"{how} key {made['Arn']}, but another run created {key.alias} first and it is "
                               f"{'gone' if winner is None else winner.get('KeyState')}; the key is kept, tagged "
                               f"{KEY_TAG}={key.alias}") from None
        if how == "adopted":
            notes.append(f"another run created {key.alias} first ({winner['Arn']}); {made['Arn']} is left for a "
                         "re-run to look at")
            return winner["Arn"]
        notes.append(f"another run created {key.alias} first: using its key {winner['Arn']}; "
                     + _retire(kms, made, "the redundant new key"))
        return winner["Arn"]
    notes.append(f"{how} {made['Arn']} as {key.alias}"
                 + (" (left without its alias by an earlier run)" if how == "adopted" else ""))
    for duplicate in _keys_left_without_alias(kms, key):
        if duplicate["KeyId"] != made["KeyId"]:
            notes.append(_retire(kms, duplicate, f"the duplicate key for {key.alias} (a CreateKey retried after "
                                                 "its answer was lost, or an earlier run's)"))
    return made["Arn"]


def _retired_by_the_winner(kms, key: Key, made: dict[str, Any], exc: botocore.exceptions.ClientError) -> str | None:
    """The winner's ARN when `made` is pending deletion because another run set the alias first and
    retired it (step 4) between our CreateKey and our EnableKeyRotation/CreateAlias: KMS refuses
    both on a key pending deletion with KMSInvalidStateException,
    https://docs.aws.amazon.com/kms/latest/developerguide/key-state.html"""
    if error_code(exc) != "KMSInvalidStateException":
        return None
    winner = key_by_alias(kms, key.alias)
    if winner is None or winner.get("KeyState") != "Enabled" or winner["KeyId"] == made["KeyId"]:
        return None
    if kms.describe_key(KeyId=made["KeyId"])["KeyMetadata"].get("KeyState") != "PendingDeletion":
        return None
    return winner["Arn"]


def _retire(kms, meta: dict[str, Any], what: str) -> str:
    """Schedule the deletion of a key harden made and does not use; the note says how to keep it.
    A key already pending deletion (the answer of our ScheduleKeyDeletion was lost and the retry
    refused, or another run retired it) is left so: KMS answers KMSInvalidStateException then,
    https://docs.aws.amazon.com/kms/latest/developerguide/key-state.html"""
    try:
        kms.schedule_key_deletion(KeyId=meta["KeyId"], PendingWindowInDays=PENDING_WINDOW_DAYS)
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) != "KMSInvalidStateException" or \
                kms.describe_key(KeyId=meta["KeyId"])["KeyMetadata"].get("KeyState") != "PendingDeletion":
            raise
    return (f"scheduled the deletion of {what} {meta['Arn']} in {PENDING_WINDOW_DAYS} days (aws kms "
            f"cancel-key-deletion --region {kms.meta.region_name} --key-id {meta['KeyId']} keeps it)")


# -- CloudWatch Logs ------------------------------------------------------------------------------

def find_log_group(logs, name: str) -> dict[str, Any] | None:
    listed = logs.describe_log_groups(logGroupNamePrefix=name).get("logGroups", [])
    return next((g for g in listed if g["logGroupName"] == name), None)


def ensure_log_group(logs, kms, group: LogGroup, notes: list[str] | None = None) -> str:
    """The group, encrypted with its key (the key first: CloudWatch Logs checks the key policy when
    the group is created or associated), with its retention and tags. An existing group is brought
    to the key, retention and the tags the description owns (other tags are the user's and kept);
    its events are kept. What ensure_key did, and what changed on an existing group, go to `notes`."""
    notes = [] if notes is None else notes
    key_arn = ensure_key(kms, group.key, notes) if group.key else None
    found = find_log_group(logs, group.name)
    if found is None:
        kwargs: dict[str, Any] = {"logGroupName": group.name, "tags": dict(group.tags)}
        if key_arn:
            kwargs["kmsKeyId"] = key_arn
        logs.create_log_group(**kwargs)
        logs.put_retention_policy(logGroupName=group.name, retentionInDays=group.retention_days)
        return group.name
    changed = []
    if key_arn and found.get("kmsKeyId") != key_arn:
        logs.associate_kms_key(logGroupName=group.name, kmsKeyId=key_arn)
        changed.append(f"key {key_arn}")
    if found.get("retentionInDays") != group.retention_days:
        logs.put_retention_policy(logGroupName=group.name, retentionInDays=group.retention_days)
        changed.append(f"retention {found.get('retentionInDays', 'never expire')} -> {group.retention_days} days")
    # The tagging APIs take the ARN without the trailing :* that `arn` carries:
    # https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_TagResource.html
    arn = found.get("logGroupArn") or found["arn"].removesuffix(":*")
    wrong = _tags_to_put(logs.list_tags_for_resource(resourceArn=arn).get("tags", {}), group.tags)
    if wrong:
        logs.tag_resource(resourceArn=arn, tags=wrong)
        changed.append(f"tags {', '.join(sorted(wrong))}")
    if changed:
        notes.append(f"brought the existing log group {group.name} to the baseline: {'; '.join(changed)}")
    return group.name


def _tags_to_put(current: dict[str, str], wanted: dict[str, str]) -> dict[str, str]:
    """The tags of `wanted` that `current` lacks or holds with another value. Tags outside
    `wanted` are not harden's to remove (a user's, or a tool's): the module's provider would show
    them as a diff only if they were in var.tags."""
    return {k: v for k, v in wanted.items() if current.get(k) != v}


# -- IAM ------------------------------------------------------------------------------------------

def role_arn(iam, name: str) -> str | None:
    try:
        return iam.get_role(RoleName=name)["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        return None


# What ensure_role may call, for an action's list of calls.
ROLE_CALLS = ["iam:GetRole", "iam:CreateRole (if missing)", "iam:UpdateAssumeRolePolicy (if it differs)",
              "iam:UpdateRole (if it differs)", "iam:ListRoleTags", "iam:TagRole (if a tag differs)",
              "iam:GetRolePolicy", "iam:PutRolePolicy (if it differs)", "iam:ListAttachedRolePolicies",
              "iam:AttachRolePolicy (if missing)"]


def _document(value: Any) -> Any:
    """A policy document as IAM returns it (botocore decodes it; URL-encoded JSON if not), in a
    form where the order of a list and a one-element list against its element do not count: IAM
    keeps what it was given, and the module's jsonencode and a hand edit may differ there yet
    mean the same."""
    return _canonical(json.loads(urllib.parse.unquote(value)) if isinstance(value, str) else value)


def _canonical(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items()}
    if isinstance(value, list):
        items = [_canonical(v) for v in value]
        return items[0] if len(items) == 1 else sorted(items, key=lambda v: json.dumps(v, sort_keys=True))
    return value


def ensure_role(iam, role: Role, notes: list[str] | None = None) -> str:
    """The role with its trust policy, description, session length, tags, inline policies and
    managed attachments, as the module declares them. `role` is always a description from
    provisioner/resources.py, so the name is one harden gives: no other role is read or changed.
    An existing role is brought to the description: a trust policy someone widened is replaced
    (UpdateAssumeRolePolicy), the description's inline policies put again where they differ, its
    tags put where missing or different (the user's other tags kept), its managed policies
    attached; what changed goes to `notes`. Other inline policies and attachments are left: the
    module does not declare them exclusively either.
    https://docs.aws.amazon.com/IAM/latest/APIReference/API_UpdateAssumeRolePolicy.html
    https://docs.aws.amazon.com/IAM/latest/APIReference/API_TagRole.html"""
    notes = [] if notes is None else notes
    try:
        current = iam.get_role(RoleName=role.name)["Role"]
    except iam.exceptions.NoSuchEntityException:
        current = None
    if current is None:
        arn = iam.create_role(RoleName=role.name, AssumeRolePolicyDocument=json.dumps(role.trust),
                              Description=role.description, MaxSessionDuration=role.max_session_seconds,
                              Tags=_tag_list(role.tags))["Role"]["Arn"]
        for name, document in role.inline.items():
            iam.put_role_policy(RoleName=role.name, PolicyName=name, PolicyDocument=json.dumps(document))
        for policy_arn in role.managed:
            iam.attach_role_policy(RoleName=role.name, PolicyArn=policy_arn)
        return arn
    changed = []
    if _document(current.get("AssumeRolePolicyDocument", {})) != _document(role.trust):
        iam.update_assume_role_policy(RoleName=role.name, PolicyDocument=json.dumps(role.trust))
        changed.append("trust policy replaced")
    settings = [what for what, held, wanted in (
        ("description", current.get("Description", ""), role.description),
        (f"session length {role.max_session_seconds}s", current.get("MaxSessionDuration"), role.max_session_seconds))
        if held != wanted]
    if settings:
        iam.update_role(RoleName=role.name, Description=role.description,
                        MaxSessionDuration=role.max_session_seconds)
        changed.extend(settings)
    tags = {t["Key"]: t["Value"] for t in paginate(iam, "list_role_tags", "Tags", RoleName=role.name)}
    wrong = _tags_to_put(tags, role.tags)
    if wrong:
        iam.tag_role(RoleName=role.name, Tags=_tag_list(wrong))
        changed.append(f"tags {', '.join(sorted(wrong))}")
    for name, document in role.inline.items():
        try:
            held = iam.get_role_policy(RoleName=role.name, PolicyName=name)["PolicyDocument"]
        except iam.exceptions.NoSuchEntityException:
            held = None
        if held is None or _document(held) != _document(document):
            iam.put_role_policy(RoleName=role.name, PolicyName=name, PolicyDocument=json.dumps(document))
            changed.append(f"inline policy {name} {'added' if held is None else 'replaced'}")
    attached = {p["PolicyArn"] for p in paginate(iam, "list_attached_role_policies", "AttachedPolicies",
                                                 RoleName=role.name)}
    for policy_arn in role.managed:
        if policy_arn not in attached:
            iam.attach_role_policy(RoleName=role.name, PolicyArn=policy_arn)
            changed.append(f"attached {policy_arn}")
    if changed:
        notes.append(f"brought the existing role {role.name} to the baseline: {'; '.join(changed)}")
    return current["Arn"]


# -- S3 -------------------------------------------------------------------------------------------

def bucket_exists(s3, name: str) -> bool:
    try:
        s3.head_bucket(Bucket=name)
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) in ("404", "NoSuchBucket", "NotFound"):
            return False
        raise
    return True


def ensure_bucket(s3, kms, bucket: Bucket, region: str, notes: list[str] | None = None) -> str:
    """The log bucket as the cloudtrail module declares it: public access blocked, owner enforced,
    versioned, SSE-KMS with a bucket key, expiring (current and noncurrent versions), the bucket
    policy last (after the public access block, as the module orders it). Only a bucket that does
    not exist is configured: an existing one is the module's (or the user's) to change."""
    if bucket_exists(s3, bucket.name):
        return bucket.name
    key_arn = ensure_key(kms, bucket.key, notes)
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
