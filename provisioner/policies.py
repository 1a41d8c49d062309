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
)

# Deleting, disabling or rewriting the harden detections silences them just the same.
DETECTION_ACTIONS = (
    "cloudwatch:DeleteAlarms",
    "cloudwatch:DisableAlarmActions",
    "cloudwatch:PutMetricAlarm",
    "events:DeleteRule",
    "events:DisableRule",
    "events:PutRule",
    "events:PutTargets",
    "events:RemoveTargets",
    "logs:DeleteMetricFilter",
    "logs:PutMetricFilter",
    "sns:DeleteTopic",
    "sns:SetTopicAttributes",
)


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


def detection_resources(baseline: Baseline) -> list[str]:
    """The harden detections, by the names the alarms and cloudtrail modules give them. Each
    pattern names its own service, so an action never matches another service's resource.
    Partition-agnostic (arn:*:...): one document serves aws, aws-cn and aws-us-gov."""
    prefix = baseline.name_prefix
    log_group = f"/aws/cloudtrail/{baseline.trail_name}"
    return [
        f"arn:*:cloudwatch:*:*:alarm:{prefix}-*",
        f"arn:*:events:*:*:rule/{prefix}-*",
        f"arn:*:logs:*:*:log-group:{log_group}",
        f"arn:*:logs:*:*:log-group:{log_group}:*",
        f"arn:*:sns:*:*:{baseline.topic_name}",
    ]


def baseline_protection_scp(baseline: Baseline) -> dict[str, Any] | None:
    """Deny turning the baseline off, except to scp.admin_principals: every trail stays on and
    unchanged, Config keeps recording and delivering, flow logs and EBS default encryption stay;
    and harden's own detections (alarms, event rules, topic, metric filters) cannot be deleted,
    disabled or rewritten. None when scp.protect_baseline is false."""
    if not baseline.scp.protect_baseline:
        return None
    exempt = _exempt(baseline.scp.admin_principals)
    doc = {
        "Version": POLICY_VERSION,
        "Statement": [
            _deny("HardenDenyBaselineChanges", ACCOUNT_SETTING_ACTIONS + TRAIL_ACTIONS, "*", exempt),
            _deny("HardenDenyDetectionChanges", DETECTION_ACTIONS, detection_resources(baseline), exempt),
        ],
    }
    return _checked(doc, baseline_protection_policy_name(baseline), "scp.admin_principals")
