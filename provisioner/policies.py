"""The harden SCP documents, computed once from the Baseline.

Three consumers share these documents: render passes them to the organization root as
`jsonencode(<literal>)` (a literal is what checkov can evaluate, so harden's own checks see the
policy), remediate creates and attaches them with boto3, and verify compares against them.

Pure functions, no AWS calls. Output is deterministic: statements in a fixed order, action,
principal and Region lists sorted and de-duplicated, so reordering harden.toml changes nothing.
`minified()` gives the exact text Terraform's jsonencode() writes for these documents (sorted
keys, no whitespace): the text AWS measures against the SCP size limit, and the text remediate
sends, so a policy remediate created shows no drift to Terraform.
"""

from __future__ import annotations

import json
from typing import Any

from provisioner.baseline import Baseline

POLICY_VERSION = "2012-10-17"
# AWS counts an SCP's characters without the whitespace outside strings.
SCP_MAX_CHARS = 5120

EIP_ACTIONS = ("ec2:AcceptAddressTransfer", "ec2:AllocateAddress", "ec2:EnableAddressTransfer")

TRAIL_ACTIONS = (
    "cloudtrail:DeleteTrail",
    "cloudtrail:PutEventSelectors",
    "cloudtrail:StopLogging",
    "cloudtrail:UpdateTrail",
)

# Account-level settings: AWS authorizes them against "*" (or the account's single recorder and
# channel). The Put* calls are in because a recorder that records nothing, or a channel that
# delivers elsewhere, switches Config off as surely as Stop/Delete does.
ACCOUNT_SETTING_ACTIONS = (
    "config:DeleteConfigurationRecorder",
    "config:DeleteDeliveryChannel",
    "config:PutConfigurationRecorder",
    "config:PutDeliveryChannel",
    "config:StopConfigurationRecorder",
    "ec2:DeleteFlowLogs",
    "ec2:DisableEbsEncryptionByDefault",
    "ec2:ModifyEbsDefaultKmsKeyId",
    # Puts the AWS managed aws/ebs key back as the default: the baseline key is gone as surely.
    "ec2:ResetEbsDefaultKmsKeyId",
)

# Deleting, disabling or rewriting what harden created switches the baseline off just the same:
# the detections (alarms, event rules, metric filters, topic), the log groups the trail and the
# flow logs deliver to (deleted, emptied, retention cut to a day, moved to a key the caller then
# disables), the log bucket (its policy, versioning, lifecycle, public access block, objects and
# object versions), the delivery roles (a policy or boundary that denies delivery) and the key
# aliases the key statement below goes by. Every action only ever meets the resource patterns of
# its own service (detection_resources), never "*", and each wildcard (SCPs allow one at the end
# only) reaches nothing but writes to those resources: kms:Delete*/Update* meet only the alias
# patterns (DeleteAlias, UpdateAlias), sns:* the topic. logs:Put* is not one of them: it would
# take the delivery roles' PutLogEvents. Size is the constraint: this statement carries the admin
# exemption, and the SCP must hold 20 long admin ARNs within AWS's 5,120 characters
# (tests/test_policies.py). Left out for that reason, as downgrades rather than switches:
# s3:PutEncryptionConfiguration, logs:DisassociateKmsKey, kms:DisableKeyRotation.
DETECTION_ACTIONS = (
    "cloudwatch:Delete*",
    "cloudwatch:Disable*",
    "cloudwatch:Put*",
    "events:Delete*",
    "events:Disable*",
    "events:Put*",
    "events:Remove*",
    "iam:Attach*",
    "iam:Delete*",
    "iam:Detach*",
    "iam:Put*",
    "iam:Update*",
    "kms:Delete*",
    "kms:Update*",
    "logs:AssociateKmsKey",
    "logs:Delete*",
    "logs:PutMetricFilter",
    "logs:PutRetentionPolicy",
    "s3:Delete*",
    "s3:PutBucket*",
    "s3:PutLifecycle*",
    "sns:Delete*",
    "sns:Remove*",
    "sns:Set*",
)

# A disabled or deleted key stops the trail, its log group, the flow-log group, the alarm topic
# and every new encrypted volume at once. KMS names a key by its id, never by a name an SCP could
# know, so keys are matched by their aliases (kms:ResourceAliases). No principal exemption, on
# purpose: the exemption list is what fills the SCP, and none is needed: an admin deletes the
# alias first (only admins may: kms:DeleteAlias above), as `terraform destroy` does anyway; KMS
# may take up to five minutes to see the alias gone.
KEY_ACTIONS = ("kms:DisableKey", "kms:ScheduleKeyDeletion")


class PolicyError(ValueError):
    """A policy document cannot be built as configured; the message is one line."""


def allocate_address_policy_name(baseline: Baseline) -> str:
    return f"{baseline.name_prefix}-deny-eip-allocation"


def baseline_protection_policy_name(baseline: Baseline) -> str:
    return f"{baseline.name_prefix}-protect-baseline"


def minified(doc: dict[str, Any]) -> str:
    """The document as AWS counts it and as Terraform's jsonencode() writes it."""
    return json.dumps(doc, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def _canonical(values: list[str]) -> list[str]:
    return sorted(set(values))


def _deny(sid: str, actions: tuple[str, ...], resource: str | list[str],
          condition: dict[str, Any] | None) -> dict[str, Any]:
    statement: dict[str, Any] = {"Sid": sid, "Effect": "Deny", "Action": sorted(actions), "Resource": resource}
    # An empty value list would be invalid policy JSON: no exemption means no Condition at all.
    if condition:
        statement["Condition"] = condition
    return statement


def _exempt(principals: list[str]) -> dict[str, Any] | None:
    principals = _canonical(principals)
    return {"ArnNotLike": {"aws:PrincipalArn": principals}} if principals else None


def _checked(doc: dict[str, Any], name: str, shorten: str) -> dict[str, Any]:
    size = len(minified(doc))
    if size > SCP_MAX_CHARS:
        raise PolicyError(f"SCP {name!r} would be {size} characters, over AWS's limit of {SCP_MAX_CHARS}: "
                          f"shorten {shorten} (a wildcard in a role name covers several roles)")
    return doc


def allocate_address_scp(baseline: Baseline) -> dict[str, Any]:
    """Deny Elastic IP allocation and address transfer to every principal outside
    allocate_address.allowed_principals (nobody, when the list is empty); with allowed_regions,
    deny it outside those Regions to everyone, allow-listed principals included."""
    settings = baseline.allocate_address
    statements = [_deny("HardenDenyAllocateAddress", EIP_ACTIONS, "*", _exempt(settings.allowed_principals))]
    regions = _canonical(settings.allowed_regions)
    if regions:
        statements.append(_deny("HardenDenyAllocateAddressOutsideRegions", EIP_ACTIONS, "*",
                                {"StringNotEquals": {"aws:RequestedRegion": regions}}))
    doc = {"Version": POLICY_VERSION, "Statement": statements}
    return _checked(doc, allocate_address_policy_name(baseline), "allocate_address.allowed_principals")


def key_alias_names(baseline: Baseline) -> list[str]:
    """The aliases of the keys harden creates (alias/<prefix>-cloudtrail, -flow-logs, -ebs and
    alias/<topic name>), as patterns."""
    prefix, topic = baseline.name_prefix, baseline.topic_name
    patterns = [f"alias/{prefix}-*"]
    if not topic.startswith(f"{prefix}-"):
        patterns.append(f"alias/{topic}")
    return patterns


def log_bucket_resources(baseline: Baseline) -> list[str]:
    """The log bucket and its objects, in any account the SCP reaches. A configured name is exact;
    the root module's default <prefix>-logs-<12-digit account id>-<home region> is one pattern
    (the trailing * takes the objects too, and only names in harden's own namespace besides)."""
    if baseline.cloudtrail.bucket_name:
        return [f"arn:*:s3:::{baseline.cloudtrail.bucket_name}", f"arn:*:s3:::{baseline.cloudtrail.bucket_name}/*"]
    return [f"arn:*:s3:::{baseline.name_prefix}-logs-{'?' * 12}-{baseline.home_region}*"]


def detection_resources(baseline: Baseline) -> list[str]:
    """What harden creates, by the names the modules give it. Each pattern names its own service, so
    an action never matches another service's resource. Partition-agnostic (arn:*:...): one
    document serves aws, aws-cn and aws-us-gov. A log group pattern ends in * to take both ARN
    forms CloudWatch Logs authorizes against (log-group:NAME and log-group:NAME:*) in one entry."""
    prefix = baseline.name_prefix
    return [
        f"arn:*:cloudwatch:*:*:alarm:{prefix}-*",
        f"arn:*:events:*:*:rule/{prefix}-*",
        f"arn:*:iam::*:role/{prefix}-*",
        *(f"arn:*:kms:*:*:{alias}" for alias in key_alias_names(baseline)),
        f"arn:*:logs:*:*:log-group:/aws/cloudtrail/{baseline.trail_name}*",
        f"arn:*:logs:*:*:log-group:/aws/vpc-flow-logs/{prefix}*",
        *log_bucket_resources(baseline),
        f"arn:*:sns:*:*:{baseline.topic_name}",
    ]


def baseline_protection_scp(baseline: Baseline) -> dict[str, Any] | None:
    """Deny turning the baseline off, except to scp.admin_principals: every trail stays on and
    unchanged, Config keeps recording and delivering, flow logs and EBS default encryption stay;
    harden's own detections (alarms, event rules, topic, metric filters), log groups, log bucket,
    delivery roles and key aliases cannot be deleted, disabled or rewritten; and nobody disables
    or schedules the deletion of a key that still carries a harden alias. None when
    scp.protect_baseline is false."""
    if not baseline.scp.protect_baseline:
        return None
    exempt = _exempt(baseline.scp.admin_principals)
    doc = {
        "Version": POLICY_VERSION,
        "Statement": [
            _deny("HardenDenyBaselineChanges", ACCOUNT_SETTING_ACTIONS + TRAIL_ACTIONS, "*", exempt),
            _deny("HardenDenyDetectionChanges", DETECTION_ACTIONS, detection_resources(baseline), exempt),
            _deny("HardenDenyKeyShutdown", KEY_ACTIONS, "*",
                  {"ForAnyValue:StringLike": {"kms:ResourceAliases": key_alias_names(baseline)}}),
        ],
    }
    return _checked(doc, baseline_protection_policy_name(baseline), "scp.admin_principals")
