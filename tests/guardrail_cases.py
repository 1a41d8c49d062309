"""The guardrail case table: (principal, action, resource, context) -> allow or deny under harden's
SCPs, for every path of the threat model (issue 9), the attacker's call and the legitimate one.

One baseline (GUARDED) and one table, run by tests/test_guardrails.py against the documents
harden computes, by tests/test_policies.py against what `harden render` gives Terraform, and by
tests/controls/test_fix_scp.py against what `harden remediate --apply` attaches.
"""

from __future__ import annotations

from provisioner.baseline import parse_baseline
from tests.policy_eval import Request, scp_verdict

ACCT = "111122223333"
NET_ADMIN = f"arn:aws:iam::{ACCT}:role/NetworkAdmin"
PIPELINE = f"arn:aws:iam::{ACCT}:role/harden-pipeline"
DEV = f"arn:aws:iam::{ACCT}:role/Developer"
GUARDED_CONFIG = {
    "allocate_address": {"allowed_principals": [NET_ADMIN], "allowed_regions": ["eu-west-1", "us-east-1"]},
    "scp": {"targets": ["r-ab12"], "admin_principals": ["arn:aws:iam::*:role/harden-pipeline"]},
}
GUARDED = parse_baseline(GUARDED_CONFIG)

EIP = f"arn:aws:ec2:us-east-1:{ACCT}:elastic-ip/eipalloc-0123456789abcdef0"
HARDEN_KEY = f"arn:aws:kms:us-east-1:{ACCT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
RULE = f"arn:aws:config:us-east-1:{ACCT}:config-rule/config-rule-ab12cd"
TOPIC = f"arn:aws:sns:us-east-1:{ACCT}:harden-security-alarms"
TRAIL = f"arn:aws:cloudtrail:us-east-1:{ACCT}:trail/harden-trail"


def _r(region: str, **more) -> dict:
    return {"aws:RequestedRegion": region, **more}


def _key(aliases, **more) -> dict:
    return _r("us-east-1", **{"kms:ResourceAliases": list(aliases)}, **more)


# (why, principal, action, resource, context, expected)
CASES = [
    # -- Elastic IP lifecycle ------------------------------------------------------------------
    *[(f"outsider {a}", DEV, f"ec2:{a}", EIP, _r("us-east-1"), "deny")
      for a in ("AllocateAddress", "AssociateAddress", "DisassociateAddress", "ReleaseAddress",
                "EnableAddressTransfer", "AcceptAddressTransfer", "AssociateNatGatewayAddress")],
    *[(f"allow-listed {a} in an allowed Region", NET_ADMIN, f"ec2:{a}", EIP, _r(region), "allow")
      for a in ("AllocateAddress", "AssociateAddress", "DisassociateAddress", "ReleaseAddress",
                "EnableAddressTransfer", "AcceptAddressTransfer") for region in ("us-east-1", "eu-west-1")],
    *[(f"allow-listed {a} outside allowed_regions", NET_ADMIN, f"ec2:{a}", EIP, _r(region), "deny")
      for a in ("AllocateAddress", "AssociateAddress", "ReleaseAddress") for region in ("ap-south-1", "xx-new-1")],
    ("the admin pipeline is not on the EIP allow-list", PIPELINE, "ec2:AllocateAddress", "*", _r("us-east-1"), "deny"),
    # -- other ways to a public IPv4 address ------------------------------------------------------
    *[(f"outsider {a}", DEV, a, "*", _r(region), "deny")
      for a, region in (("ec2:ProvisionByoipCidr", "us-east-1"), ("ec2:AdvertiseByoipCidr", "us-east-1"),
                        ("ec2:CreatePublicIpv4Pool", "us-east-1"), ("ec2:ProvisionPublicIpv4PoolCidr", "us-east-1"),
                        ("globalaccelerator:CreateAccelerator", "us-west-2"),
                        ("globalaccelerator:CreateCustomRoutingAccelerator", "us-west-2"),
                        ("lightsail:AllocateStaticIp", "eu-west-1"), ("lightsail:AttachStaticIp", "eu-west-1"))],
    ("allow-listed Global Accelerator (us-west-2 only, not Region-bound)", NET_ADMIN,
     "globalaccelerator:CreateAccelerator", "*", _r("us-west-2"), "allow"),
    # The regional ways to a public IPv4 address are bound to allowed_regions like the Elastic IP calls.
    *[(f"allow-listed {a} outside allowed_regions", NET_ADMIN, a, "*", _r("ap-south-1"), "deny")
      for a in ("ec2:ProvisionByoipCidr", "ec2:CreatePublicIpv4Pool", "lightsail:AllocateStaticIp")],
    ("allow-listed Lightsail static IP in an allowed Region", NET_ADMIN, "lightsail:AllocateStaticIp", "*",
     _r("eu-west-1"), "allow"),
    # -- ordinary workloads ------------------------------------------------------------------------
    ("workload RunInstances", DEV, "ec2:RunInstances", "*", _r("ap-south-1"), "allow"),
    ("workload DescribeAddresses", DEV, "ec2:DescribeAddresses", "*", _r("us-east-1"), "allow"),
    ("workload PassRole of its own role", DEV, "iam:PassRole", f"arn:aws:iam::{ACCT}:role/app-role", {}, "allow"),
    ("workload trust policy of its own role", DEV, "iam:UpdateAssumeRolePolicy",
     f"arn:aws:iam::{ACCT}:role/app-role", {}, "allow"),
    ("workload Decrypt with a harden key", DEV, "kms:Decrypt", HARDEN_KEY, _key(["alias/harden-ebs"]), "allow"),
    ("EC2 grant for an encrypted volume", DEV, "kms:CreateGrant", HARDEN_KEY,
     _key(["alias/harden-ebs"], **{"kms:GrantIsForAWSResource": "true"}), "allow"),
    ("workload's own key policy", DEV, "kms:PutKeyPolicy", HARDEN_KEY, _key(["alias/app"]), "allow"),
    ("workload's own Config rule", DEV, "config:DeleteConfigRule", RULE, _r("us-east-1"), "allow"),
    ("workload publishes to its own topic", DEV, "sns:Publish", f"arn:aws:sns:us-east-1:{ACCT}:app", {}, "allow"),
    # -- taking over an exempt principal -----------------------------------------------------------
    *[(f"outsider {a} on the allow-listed role", DEV, f"iam:{a}", NET_ADMIN, {}, "deny")
      for a in ("UpdateAssumeRolePolicy", "PassRole", "CreateRole", "DeleteRole", "PutRolePolicy")],
    *[(f"outsider {a} on an allow-listed user", DEV, f"iam:{a}", f"arn:aws:iam::{ACCT}:role/NetworkAdmin", {}, "deny")
      for a in ("CreateAccessKey", "CreateLoginProfile", "UpdateLoginProfile", "UpdateAccessKey",
                "CreateServiceSpecificCredential", "DeactivateMFADevice")],
    ("outsider takes over the admin role", DEV, "iam:UpdateAssumeRolePolicy", PIPELINE, {}, "deny"),
    ("the allow-listed role takes over the admin", NET_ADMIN, "iam:UpdateAssumeRolePolicy", PIPELINE, {}, "deny"),
    ("admin rotates the allow-listed role's trust", PIPELINE, "iam:UpdateAssumeRolePolicy", NET_ADMIN, {}, "allow"),
    # -- switching the baseline off: keys ----------------------------------------------------------
    *[(f"outsider {a} on a harden key", DEV, f"kms:{a}", HARDEN_KEY, _key(["alias/harden-cloudtrail"]), "deny")
      for a in ("PutKeyPolicy", "ReplicateKey", "UpdatePrimaryRegion", "RevokeGrant", "DisableKey",
                "ScheduleKeyDeletion", "DisableKeyRotation")],
    ("outsider grant on a harden key", DEV, "kms:CreateGrant", HARDEN_KEY,
     _key(["alias/harden-cloudtrail"], **{"kms:GrantIsForAWSResource": "false"}), "deny"),
    ("a second alias does not hide the key", DEV, "kms:PutKeyPolicy", HARDEN_KEY,
     _key(["alias/app", "alias/harden-security-alarms"]), "deny"),
    ("admin rewrites a harden key policy", PIPELINE, "kms:PutKeyPolicy", HARDEN_KEY, _key(["alias/harden-ebs"]), "allow"),
    ("outsider deletes a harden alias", DEV, "kms:DeleteAlias", f"arn:aws:kms:us-east-1:{ACCT}:alias/harden-ebs",
     _r("us-east-1"), "deny"),
    ("outsider moves a harden alias", DEV, "kms:UpdateAlias", f"arn:aws:kms:us-east-1:{ACCT}:alias/harden-cloudtrail",
     _r("us-east-1"), "deny"),
    # -- Config rules (by tag), the organization, the topic, the trail -----------------------------
    *[(f"outsider {a} on harden's rule", DEV, f"config:{a}", RULE,
       _r("us-east-1", **{"aws:ResourceTag/HardenGuardrail": "harden"}), "deny")
      for a in ("DeleteConfigRule", "PutConfigRule", "UntagResource", "TagResource")],
    ("admin deletes harden's rule", PIPELINE, "config:DeleteConfigRule", RULE,
     _r("us-east-1", **{"aws:ResourceTag/HardenGuardrail": "harden"}), "allow"),
    ("outsider leaves the organization", DEV, "organizations:LeaveOrganization", "*", {}, "deny"),
    *[(f"outsider {a} on the alarm topic", DEV, f"sns:{a}", resource, {}, "deny")
      for a, resource in (("SetTopicAttributes", TOPIC), ("DeleteTopic", TOPIC), ("AddPermission", TOPIC),
                          ("RemovePermission", TOPIC),
                          # A data protection policy with an inbound Deny statement blocks every
                          # publish its data identifier matches: the alarms stop reaching anyone.
                          ("PutDataProtectionPolicy", TOPIC), ("Unsubscribe", f"{TOPIC}:0b9d3e6c-1111-2222-3333-444455556666"),
                          ("SetSubscriptionAttributes", f"{TOPIC}:0b9d3e6c-1111-2222-3333-444455556666"))],
    ("outsider stops the trail", DEV, "cloudtrail:StopLogging", TRAIL, _r("us-east-1"), "deny"),
    ("admin updates the trail", PIPELINE, "cloudtrail:UpdateTrail", TRAIL, _r("us-east-1"), "allow"),
]


def mismatches(scps: list[dict]) -> list[str]:
    """The cases whose verdict under these SCP documents is not the expected one."""
    wrong = []
    for why, principal, action, resource, context, expected in CASES:
        got = scp_verdict(scps, Request(principal, action, resource, context))
        if got != expected:
            wrong.append(f"{why}: {action} by {principal} on {resource} {context}: {got}, expected {expected}")
    return wrong
