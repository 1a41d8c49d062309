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
from dataclasses import dataclass
from typing import Any

from provisioner.baseline import Baseline

POLICY_VERSION = "2012-10-17"
# AWS counts an SCP's characters without the whitespace outside strings.
SCP_MAX_CHARS = 5120

# The Elastic IP lifecycle (Service Authorization Reference, Amazon EC2:
# https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonec2.html).
# Allocation and transfer put an address into the account; releasing one that DNS still points at
# hands it to whoever allocates next (dangling DNS).
EIP_ACTIONS = ("ec2:AcceptAddressTransfer", "ec2:AllocateAddress", "ec2:EnableAddressTransfer",
               "ec2:ReleaseAddress")
# Moving an address moves its traffic: the hijack. Switchable (allocate_address.deny_association)
# for shops whose deploy tooling re-associates addresses as it replaces instances.
EIP_ASSOCIATION_ACTIONS = ("ec2:AssociateAddress", "ec2:AssociateNatGatewayAddress",
                           "ec2:DisassociateAddress", "ec2:DisassociateNatGatewayAddress")
# Other ways to get a fixed public IPv4 address that never call AllocateAddress: bring your own
# range (BYOIP) or an IPAM public pool, a Global Accelerator (two static anycast addresses per
# accelerator; a global service whose API is in us-west-2 only, hence outside the Region
# statement: https://docs.aws.amazon.com/general/latest/gr/global_accelerator.html),
# and Lightsail static IPs. What an SCP cannot stop without breaking ordinary workloads (a public
# IPv4 address on launch, a regional NAT gateway in automatic mode that allocates its own
# addresses) is listed in the README's threat model with the detection that catches it.
PUBLIC_IPV4_ACTIONS = (
    "ec2:AdvertiseByoipCidr",
    "ec2:CreatePublicIpv4Pool",
    "ec2:ProvisionByoipCidr",
    "ec2:ProvisionPublicIpv4PoolCidr",
    "globalaccelerator:CreateAccelerator",
    "globalaccelerator:CreateCustomRoutingAccelerator",
    "lightsail:AllocateStaticIp",
    "lightsail:AttachStaticIp",
)
# The regional ones are bound to allocate_address.allowed_regions like the Elastic IP calls; Global
# Accelerator's API answers in us-west-2 only, whatever Regions the workloads use.
REGIONAL_PUBLIC_IPV4_ACTIONS = tuple(a for a in PUBLIC_IPV4_ACTIONS if not a.startswith("globalaccelerator:"))

# What turns "I can edit IAM" into "I am that principal", for the principals the SCPs exempt:
# rewrite its trust policy, give it credentials (keys, a console password, service credentials,
# SSH keys and signing certificates, reactivated keys, MFA taken off), hand it to a service that
# acts as it (PassRole), or create it where it does not exist yet (an allow-list entry names an
# ARN, not an entity: in an account without that role, whoever may CreateRole becomes it).
TAKEOVER_ACTIONS = (
    "iam:CreateAccessKey",
    "iam:CreateLoginProfile",
    "iam:CreateRole",
    "iam:CreateServiceSpecificCredential",
    "iam:CreateUser",
    "iam:DeactivateMFADevice",
    "iam:PassRole",
    "iam:ResetServiceSpecificCredential",
    "iam:UpdateAccessKey",
    "iam:UpdateAssumeRolePolicy",
    "iam:UpdateLoginProfile",
    "iam:UploadSSHPublicKey",
    "iam:UploadSigningCertificate",
)

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
    # AddPermission would let anyone publish fake alerts; Unsubscribe and Set* (a subscription
    # filter policy that drops every message) silence the real ones, and so does Put*
    # (PutDataProtectionPolicy, SNS's only Put action: an inbound Deny statement blocks every
    # publish its data identifier matches; sns:PutDataProtectionPolicy acts on the topic:
    # https://docs.aws.amazon.com/sns/latest/dg/sns-access-policy-language-api-permissions-reference.html).
    "sns:AddPermission",
    "sns:Delete*",
    "sns:Put*",
    "sns:Remove*",
    "sns:Set*",
    # UNVERIFIED on real AWS: the resource Unsubscribe and SetSubscriptionAttributes are authorized
    # against (the topic, its subscription ARN <topic>:<id>, or "*"). Both topic forms are in
    # protected_resources(); if AWS checks them against "*", these two are not denied by this SCP.
    "sns:Unsubscribe",
)

# A disabled or deleted key stops the trail, its log group, the flow-log group, the alarm topic
# and every new encrypted volume at once; a rewritten key policy, a revoked grant, a replica or a
# new primary Region does it more quietly (a key policy without the CloudTrail statement stops log
# delivery). KMS names a key by its id, never by a name an SCP could know, so keys are matched by
# their aliases: kms:ResourceAliases, multi-valued, hence ForAnyValue; it is in the request
# context of operations on the key itself only
# (https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html#conditions-kms-resource-aliases).
# KMS may take up to five minutes to see an alias change
# (https://docs.aws.amazon.com/kms/latest/developerguide/alias-authorization.html).
KEY_ACTIONS = (
    "kms:DisableKey",
    "kms:DisableKeyRotation",
    "kms:PutKeyPolicy",
    "kms:ReplicateKey",
    "kms:RevokeGrant",
    "kms:ScheduleKeyDeletion",
    "kms:UpdatePrimaryRegion",
)
# A grant hands its grantee the key (Decrypt on the trail's logs) without the key policy saying
# so. Grants EC2 and other services create for AWS resources (an encrypted volume being attached)
# carry kms:GrantIsForAWSResource = true and stay allowed: denying them breaks every launch.
GRANT_ACTIONS = ("kms:CreateGrant",)

# Config rule ARNs carry a generated id (config-rule/config-rule-ab12cd), never the rule's name, so
# harden's rules are recognised by the tag the config module puts on them; changing that tag is
# denied too, or removing it would lift the protection. aws:ResourceTag on the ConfigRule resource:
# https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsconfig.html
CONFIG_RULE_ACTIONS = (
    "config:DeleteConfigRule",
    "config:DeleteEvaluationResults",
    "config:PutConfigRule",
    "config:TagResource",
    "config:UntagResource",
)
GUARD_TAG_KEY = "HardenGuardrail"

# A member account that leaves the organization leaves every SCP behind.
ORGANIZATION_ACTIONS = ("organizations:LeaveOrganization",)

# SCPs per root, OU or account: at most 5, and FullAWSAccess (or the organization's own allow
# policy) is one of them; each at most 5,120 characters.
# https://docs.aws.amazon.com/organizations/latest/userguide/orgs_reference_limits.html
MAX_SCPS_PER_TARGET = 5
MAX_HARDEN_SCPS_PER_TARGET = MAX_SCPS_PER_TARGET - 1


class PolicyError(ValueError):
    """A policy document cannot be built as configured; the message is one line."""


@dataclass(frozen=True)
class HardenPolicy:
    """One SCP harden deploys: its name, the control it serves and its document."""

    name: str
    control: str
    description: str
    document: dict[str, Any]


def allocate_address_policy_name(baseline: Baseline) -> str:
    return f"{baseline.name_prefix}-deny-eip-allocation"


def baseline_protection_policy_name(baseline: Baseline) -> str:
    return f"{baseline.name_prefix}-protect-baseline"


ALLOCATE_ADDRESS_DESCRIPTION = ("harden scp.allocate_address: deny Elastic IP allocation, release, association "
                                "and address transfer outside the approved principals and Regions.")
BASELINE_PROTECTION_DESCRIPTION = ("harden scp.baseline_protection: deny turning off CloudTrail, Config, flow logs, "
                                   "EBS default encryption and the harden detections, except for baseline admins.")


def minified(doc: dict[str, Any]) -> str:
    """The document as AWS counts it and as Terraform's jsonencode() writes it."""
    return json.dumps(doc, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def _canonical(values: list[str]) -> list[str]:
    return sorted(set(values))


def _deny(sid: str, actions: tuple[str, ...], resource: str | list[str],
          condition: dict[str, Any] | None) -> dict[str, Any]:
    statement: dict[str, Any] = {"Sid": sid, "Effect": "Deny", "Action": sorted(set(actions)), "Resource": resource}
    # An empty value list would be invalid policy JSON: no exemption means no Condition at all.
    if condition:
        statement["Condition"] = condition
    return statement


def _exempt(principals: list[str]) -> dict[str, Any] | None:
    principals = _canonical(principals)
    return {"ArnNotLike": {"aws:PrincipalArn": principals}} if principals else None


def _with(condition: dict[str, Any] | None, **clauses: dict[str, Any]) -> dict[str, Any]:
    """`condition` (an exemption, or None) and more clauses, all of which must hold."""
    return {**(condition or {}), **clauses}


def _admins(baseline: Baseline) -> list[str]:
    return list(baseline.scp.admin_principals) if baseline.scp.protect_baseline else []


def exempt_principals(baseline: Baseline) -> list[str]:
    """Every principal an SCP exempts: the allow-listed ones and (with baseline protection) the
    admins. Nobody but the admins may take them over."""
    return _canonical(list(baseline.allocate_address.allowed_principals) + _admins(baseline))


def _iam_resources(principals: list[str]) -> list[str]:
    """The IAM user/role ARNs of principal patterns (an account root is not an IAM resource)."""
    return _canonical([p for p in principals if not p.endswith(":root")])


def takeover_statement(baseline: Baseline) -> dict[str, Any] | None:
    resources = _iam_resources(exempt_principals(baseline))
    if not resources:
        return None
    return _deny("HardenDenyExemptPrincipalTakeover", TAKEOVER_ACTIONS, resources, _exempt(_admins(baseline)))


def eip_actions(baseline: Baseline) -> tuple[str, ...]:
    """The Elastic IP calls the SCP denies outside the allow-list, by harden.toml."""
    association = EIP_ASSOCIATION_ACTIONS if baseline.allocate_address.deny_association else ()
    return EIP_ACTIONS + association


def allocate_address_statements(baseline: Baseline) -> list[dict[str, Any]]:
    """Deny the Elastic IP lifecycle (allocate, release, transfer and, unless switched off,
    associate/disassociate) and the other ways to a public IPv4 address to every principal outside
    allocate_address.allowed_principals (nobody, when the list is empty); with allowed_regions,
    deny the Elastic IP calls and the regional public-IPv4 ones outside those Regions to everyone. Without baseline protection, this
    policy also keeps the allow-listed principals from being taken over."""
    settings = baseline.allocate_address
    statements = [_deny("HardenDenyAllocateAddress", eip_actions(baseline) + PUBLIC_IPV4_ACTIONS, "*",
                        _exempt(settings.allowed_principals))]
    regions = _canonical(settings.allowed_regions)
    if regions:
        statements.append(_deny("HardenDenyAllocateAddressOutsideRegions",
                                eip_actions(baseline) + REGIONAL_PUBLIC_IPV4_ACTIONS, "*",
                                {"StringNotEquals": {"aws:RequestedRegion": regions}}))
    if not baseline.scp.protect_baseline and (takeover := takeover_statement(baseline)):
        statements.append(takeover)
    return statements


def allocate_address_scp(baseline: Baseline) -> dict[str, Any]:
    """The Elastic IP guardrail as one document (what harden_scps() splits when it must): the
    reference verify compares a deployed policy against."""
    return {"Version": POLICY_VERSION, "Statement": allocate_address_statements(baseline)}


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
    forms CloudWatch Logs authorizes against (log-group:NAME and log-group:NAME:*) in one entry.
    The topic's pattern ends in * for its subscriptions (<topic ARN>:<id>): Unsubscribe and
    SetSubscriptionAttributes (a filter policy that drops every message) act on those."""
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
        f"arn:*:sns:*:*:{baseline.topic_name}:*",
    ]


def baseline_protection_statements(baseline: Baseline) -> list[dict[str, Any]]:
    """Deny turning the baseline off, except to scp.admin_principals: every trail stays on and
    unchanged, Config keeps recording and delivering and keeps harden's rules, flow logs and EBS
    default encryption stay, the account stays in the organization; harden's own detections
    (alarms, event rules, topic and its subscriptions, metric filters), log groups, log bucket,
    delivery roles and key aliases cannot be deleted, disabled or rewritten; a key that carries a
    harden alias keeps its policy, grants, rotation and Region; and the principals the SCPs exempt
    cannot be taken over. Empty when scp.protect_baseline is false."""
    if not baseline.scp.protect_baseline:
        return []
    exempt = _exempt(baseline.scp.admin_principals)
    # The take-over statement's actions are IAM's and its resources IAM users and roles: merged
    # into the detection statement, which carries the same exemption, to keep the SCP small.
    takeover = takeover_statement(baseline)
    detection_actions = DETECTION_ACTIONS + (TAKEOVER_ACTIONS if takeover else ())
    detection = detection_resources(baseline) + (takeover["Resource"] if takeover else [])
    aliases = {"kms:ResourceAliases": key_alias_names(baseline)}
    return [
        _deny("HardenDenyBaselineChanges", ACCOUNT_SETTING_ACTIONS + TRAIL_ACTIONS + ORGANIZATION_ACTIONS, "*", exempt),
        _deny("HardenDenyDetectionChanges", detection_actions, _canonical(detection), exempt),
        # One statement for the key and its grants: kms:GrantIsForAWSResource is in the context of
        # CreateGrant only, so ...IfExists holds for every other key action and, for CreateGrant,
        # only when the grant is not for an AWS resource.
        _deny("HardenDenyKeyChanges", KEY_ACTIONS + GRANT_ACTIONS, "*",
              _with(exempt, **{"ForAnyValue:StringLike": aliases,
                               "BoolIfExists": {"kms:GrantIsForAWSResource": "false"}})),
        _deny("HardenDenyConfigRuleChanges", CONFIG_RULE_ACTIONS, "*",
              _with(exempt, StringEquals={f"aws:ResourceTag/{GUARD_TAG_KEY}": baseline.name_prefix})),
    ]


def baseline_protection_scp(baseline: Baseline) -> dict[str, Any] | None:
    """The baseline protection as one document (None when scp.protect_baseline is false): the
    reference verify compares a deployed policy against."""
    statements = baseline_protection_statements(baseline)
    return {"Version": POLICY_VERSION, "Statement": statements} if statements else None


# -- packing: AWS's size and count limits --------------------------------------------------------

def _size(statements: list[dict[str, Any]]) -> int:
    return len(minified({"Version": POLICY_VERSION, "Statement": statements}))


def _split_resources(statement: dict[str, Any], name: str, shorten: str) -> list[dict[str, Any]]:
    """A Deny statement too large for one SCP, as several with the same Action and Condition and a
    share of its Resource list each: a request is denied by the parts exactly when it is denied by
    the whole. The exemption (a negated condition) cannot be split that way: when it alone does
    not fit, the configuration must change."""
    if _size([statement]) <= SCP_MAX_CHARS:
        return [statement]
    resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
    parts: list[list[str]] = [[]]
    for resource in resources:
        trial = {**statement, "Resource": parts[-1] + [resource]}
        if parts[-1] and _size([trial]) > SCP_MAX_CHARS:
            parts.append([resource])
        else:
            parts[-1].append(resource)
    pieces = [{**statement, "Sid": statement["Sid"] + (f"Part{i + 1}" if len(parts) > 1 else ""), "Resource": part}
              for i, part in enumerate(parts)]
    for piece in pieces:
        size = _size([piece])
        if size > SCP_MAX_CHARS:
            raise PolicyError(f"SCP {name!r}: statement {statement['Sid']} alone would be {size} characters, over "
                              f"AWS's limit of {SCP_MAX_CHARS}: shorten {shorten} (a wildcard in a role name covers "
                              "several roles, arn:aws:iam::*:role/NAME every account)")
    return pieces


def _pack(name: str, statements: list[dict[str, Any]], shorten: str) -> list[list[dict[str, Any]]]:
    """Statements into few documents of at most SCP_MAX_CHARS: first fit, largest first (a
    statement's place in a policy means nothing to AWS); each document keeps the statements'
    order, and the one with the first statement comes first, so the result is deterministic."""
    pieces = [piece for statement in statements for piece in _split_resources(statement, name, shorten)]
    order = {id(piece): index for index, piece in enumerate(pieces)}
    documents: list[list[dict[str, Any]]] = []
    for piece in sorted(pieces, key=lambda p: (-_size([p]), order[id(p)])):
        home = next((d for d in documents if _size(d + [piece]) <= SCP_MAX_CHARS), None)
        if home is None:
            documents.append([piece])
        else:
            home.append(piece)
    for document in documents:
        document.sort(key=lambda p: order[id(p)])
    return sorted(documents, key=lambda d: order[id(d[0])])


def numbered_name(name: str, index: int) -> str:
    """The first document keeps the policy's name; the ones it overflows into are <name>-2, -3, ..."""
    return name if index == 0 else f"{name}-{index + 1}"


def harden_scps(baseline: Baseline) -> list[HardenPolicy]:
    """Every SCP harden attaches to each scp.targets entry, in order: the Elastic IP guardrail, then
    the baseline protection, each split over as many documents as AWS's 5,120-character limit
    needs. PolicyError when they cannot fit AWS's limits."""
    families = [
        ("scp.allocate_address", allocate_address_policy_name(baseline), ALLOCATE_ADDRESS_DESCRIPTION,
         allocate_address_statements(baseline), "allocate_address.allowed_principals"),
        ("scp.baseline_protection", baseline_protection_policy_name(baseline), BASELINE_PROTECTION_DESCRIPTION,
         baseline_protection_statements(baseline), "scp.admin_principals"),
    ]
    policies = []
    for control, name, description, statements, shorten in families:
        for index, part in enumerate(_pack(name, statements, shorten)):
            policies.append(HardenPolicy(numbered_name(name, index), control, description,
                                         {"Version": POLICY_VERSION, "Statement": part}))
    if len(policies) > MAX_HARDEN_SCPS_PER_TARGET:
        raise PolicyError(f"harden's SCPs need {len(policies)} policies per target, but AWS attaches at most "
                          f"{MAX_SCPS_PER_TARGET} to a root, OU or account and FullAWSAccess is one of them: shorten "
                          "allocate_address.allowed_principals and scp.admin_principals (a wildcard in a role name "
                          "covers several roles, arn:aws:iam::*:role/NAME every account)")
    return policies


def policies_for(baseline: Baseline, control: str) -> list[HardenPolicy]:
    return [p for p in harden_scps(baseline) if p.control == control]


# -- the alarm topic's policy ----------------------------------------------------------------------

@dataclass(frozen=True)
class Place:
    """Where a resource policy is for. render passes references (Terraform fills them in at plan
    time), verify and remediate the account's values: one function serves all three."""

    partition: str
    account_id: str
    region: str


ALARM_PUBLISHERS = ("cloudwatch.amazonaws.com", "events.amazonaws.com")


def alarm_topic_arn(baseline: Baseline, place: Place) -> str:
    return f"arn:{place.partition}:sns:{place.region}:{place.account_id}:{baseline.topic_name}"


def address_rule_name(baseline: Baseline) -> str:
    return f"{baseline.name_prefix}-elastic-ip-api-calls"


def alarm_state_rule_name(baseline: Baseline) -> str:
    """The home region's rule that carries the other regions' alarm state changes to the topic."""
    return f"{baseline.name_prefix}-alarm-state-changes"


def alarm_topic_policy(baseline: Baseline, place: Place) -> dict[str, Any]:
    """The alarm topic's policy: the owner manages it; only harden's alarms (CloudWatch) and the
    Elastic IP rule (EventBridge) of this account may publish, never without TLS; and an explicit
    Deny makes a Publish by anything but an AWS service fail, so an identity policy granting
    sns:Publish in the account cannot inject fake alerts (without it, IAM's same-account rule lets
    an identity-policy Allow through: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html).

    Service publishes: CloudWatch and EventBridge call as their service principals and send
    aws:SourceArn / aws:SourceAccount (https://docs.aws.amazon.com/sns/latest/dg/sns-access-policy-use-cases.html);
    the Deny keys on aws:PrincipalIsAWSService, which IAM sets on every request and is true only
    for a service principal (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html#condition-keys-principalisawsservice);
    other services are not allowed by any statement, so they stay implicitly denied."""
    p, account, region = place.partition, place.account_id, place.region
    topic = alarm_topic_arn(baseline, place)
    this_account = {"aws:SourceAccount": account}
    return {"Version": POLICY_VERSION, "Statement": [
        {"Sid": "AllowOwnerManagement", "Effect": "Allow", "Principal": {"AWS": f"arn:{p}:iam::{account}:root"},
         "Action": ["sns:GetTopicAttributes", "sns:SetTopicAttributes", "sns:AddPermission",
                    "sns:RemovePermission", "sns:DeleteTopic", "sns:Subscribe", "sns:ListSubscriptionsByTopic"],
         "Resource": topic},
        {"Sid": "AllowCloudWatchAlarmsOfThisModule", "Effect": "Allow",
         "Principal": {"Service": "cloudwatch.amazonaws.com"}, "Action": "sns:Publish", "Resource": topic,
         "Condition": {"StringEquals": this_account, "ArnLike": {
             "aws:SourceArn": f"arn:{p}:cloudwatch:{region}:{account}:alarm:{baseline.name_prefix}-*"}}},
        # The home region's two rules: Elastic IP calls (from every region, forwarded to the home
        # bus) and the alarm state changes forwarded from the other regions.
        {"Sid": "AllowElasticIpEventRule", "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"},
         "Action": "sns:Publish", "Resource": topic,
         "Condition": {"StringEquals": this_account, "ArnEquals": {"aws:SourceArn": [
             f"arn:{p}:events:{region}:{account}:rule/{address_rule_name(baseline)}",
             f"arn:{p}:events:{region}:{account}:rule/{alarm_state_rule_name(baseline)}"]}}},
        {"Sid": "DenyPublishByAnyoneButServices", "Effect": "Deny", "Principal": "*", "Action": "sns:Publish",
         "Resource": topic, "Condition": {"BoolIfExists": {"aws:PrincipalIsAWSService": "false"}}},
        {"Sid": "DenyPublishWithoutTls", "Effect": "Deny", "Principal": "*", "Action": "sns:Publish",
         "Resource": topic, "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
    ]}
