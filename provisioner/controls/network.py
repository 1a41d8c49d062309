"""network.*: no security group opens admin ports (or everything) to the internet; every VPC's
default security group allows no traffic.

Rules are read with DescribeSecurityGroupRules, one rule id per source (a CIDR, an IPv6 range, a
prefix list or a group), so a fix revokes exactly the offending rule and nothing that shares its
IpPermission. "Anywhere" means 0.0.0.0/0 or ::/0; a rule whose source is a prefix list or another
security group is never "anywhere" (its reach is what that list or group holds).
"""

from __future__ import annotations

import json
import shlex
from typing import Any

from provisioner import resources
from provisioner.aws import paginate
from provisioner.controls import CheckContext, Mappings, control
from provisioner.controls.eip import addresses
from provisioner.findings import Finding
from provisioner.remediate import Action, fix

ANYWHERE = frozenset({"0.0.0.0/0", "::/0"})
# EC2 returns names for these protocols but accepts (and may echo) their numbers too.
_PROTOCOL_NAMES = {"6": "tcp", "17": "udp", "1": "icmp", "58": "icmpv6"}
_PORTED = frozenset({"tcp", "udp"})


# -- what the account holds (read once per region, shared by both checks and the fixes) ---------

def security_groups(ctx: CheckContext) -> list[dict]:
    """The groups this account owns. A group another account shares with it (security group
    sharing, https://docs.aws.amazon.com/vpc/latest/userguide/security-group-sharing.html) is
    listed too, but only its owner may change its rules: it is judged, and fixed, in the owner's
    account, not failed here with a fix that could only be refused."""
    def fetch() -> list[dict]:
        groups = paginate(ctx.client("ec2"), "describe_security_groups", "SecurityGroups")
        return [g for g in groups if g.get("OwnerId") in (None, ctx.account_id)]

    return ctx.cached("ec2:security_groups", fetch)


def rules_by_group(ctx: CheckContext) -> dict[str, list[dict]]:
    def fetch() -> dict[str, list[dict]]:
        grouped: dict[str, list[dict]] = {}
        for rule in paginate(ctx.client("ec2"), "describe_security_group_rules", "SecurityGroupRules"):
            grouped.setdefault(rule["GroupId"], []).append(rule)
        return grouped

    return ctx.cached("ec2:security_group_rules", fetch)


def interfaces_by_group(ctx: CheckContext) -> dict[str, list[dict]]:
    """The network interfaces (instances, load balancers, NAT gateways, ...) each group guards,
    with the public address each one answers on, Elastic IP or not."""
    def fetch() -> dict[str, list[dict]]:
        elastic = {a.get("NetworkInterfaceId"): a for a in addresses(ctx) if a.get("NetworkInterfaceId")}
        grouped: dict[str, list[dict]] = {}
        for eni in paginate(ctx.client("ec2"), "describe_network_interfaces", "NetworkInterfaces"):
            eni_id = eni["NetworkInterfaceId"]
            eip = elastic.get(eni_id) or {}
            association = eni.get("Association") or {}
            summary = {
                "network_interface_id": eni_id,
                "instance_id": (eni.get("Attachment") or {}).get("InstanceId"),
                "interface_type": eni.get("InterfaceType"),
                "private_ip": eni.get("PrivateIpAddress"),
                "public_ip": eip.get("PublicIp") or association.get("PublicIp"),
                "elastic_ip_allocation_id": eip.get("AllocationId") or association.get("AllocationId"),
                "description": eni.get("Description") or None,
            }
            for group in eni.get("Groups") or []:
                grouped.setdefault(group["GroupId"], []).append(summary)
        return grouped

    return ctx.cached("ec2:interfaces_by_group", fetch)


# -- reading a rule --------------------------------------------------------------------------

def protocol(rule: dict) -> str:
    raw = str(rule.get("IpProtocol", "")).lower()
    return _PROTOCOL_NAMES.get(raw, raw)


def source(rule: dict) -> str:
    """Where the rule lets traffic come from (or go to, for egress), for people."""
    if rule.get("CidrIpv4"):
        return rule["CidrIpv4"]
    if rule.get("CidrIpv6"):
        return rule["CidrIpv6"]
    if rule.get("PrefixListId"):
        return f"prefix list {rule['PrefixListId']}"
    ref = rule.get("ReferencedGroupInfo") or {}
    if ref.get("GroupId"):
        owner = f" of {ref['UserId']}" if ref.get("UserId") else ""
        return f"security group {ref['GroupId']}{owner}"
    return "?"


def ports(rule: dict) -> str:
    proto = protocol(rule)
    if proto == "-1":
        return "all traffic"
    if proto not in _PORTED:
        return f"protocol {proto}"
    low, high = rule.get("FromPort"), rule.get("ToPort")
    if low in (None, -1) or (low, high) == (0, 65535):
        return f"{proto} all ports"
    return f"{proto} {low}" if low == high else f"{proto} {low}-{high}"


def describe_rule(rule: dict) -> str:
    direction = "egress to" if rule.get("IsEgress") else "ingress from"
    text = f"{rule.get('SecurityGroupRuleId')}: {ports(rule)} {direction} {source(rule)}"
    if rule.get("Description"):
        text += f" ({rule['Description']!r})"
    return text


def open_to_anywhere(rule: dict) -> bool:
    return rule.get("CidrIpv4") in ANYWHERE or rule.get("CidrIpv6") in ANYWHERE


def exposed_admin_ports(rule: dict, admin_ports: list[int]) -> list[int] | None:
    """The admin ports an ingress rule opens to the whole internet; [] when it opens every port
    and protocol (an admin port list cannot describe that); None when it is not such a rule."""
    if rule.get("IsEgress") or not open_to_anywhere(rule):
        return None
    proto = protocol(rule)
    if proto == "-1":
        return []
    if proto not in _PORTED:
        return None
    low, high = rule.get("FromPort"), rule.get("ToPort")
    if low in (None, -1):
        low, high = 0, 65535
    hit = [p for p in admin_ports if low <= p <= (high if high not in (None, -1) else 65535)]
    return hit or None


def rule_evidence(rule: dict) -> dict[str, Any]:
    return {
        "security_group_rule_id": rule.get("SecurityGroupRuleId"),
        "direction": "egress" if rule.get("IsEgress") else "ingress",
        "ip_protocol": rule.get("IpProtocol"),
        "from_port": rule.get("FromPort"),
        "to_port": rule.get("ToPort"),
        "cidr_ipv4": rule.get("CidrIpv4"),
        "cidr_ipv6": rule.get("CidrIpv6"),
        "prefix_list_id": rule.get("PrefixListId"),
        "referenced_group_id": (rule.get("ReferencedGroupInfo") or {}).get("GroupId"),
        "description": rule.get("Description"),
    }


def _group_evidence(group: dict) -> dict[str, Any]:
    return {"group_id": group["GroupId"], "group_name": group.get("GroupName"), "vpc_id": group.get("VpcId")}


def _exposure(interfaces: list[dict]) -> str:
    if not interfaces:
        return "it guards no network interface yet (any instance it is attached to later is exposed)"
    public = [i for i in interfaces if i["public_ip"]]
    parts = []
    for i in interfaces[:5]:
        who = i["instance_id"] or f"{i['interface_type'] or 'interface'} {i['network_interface_id']}"
        if i["public_ip"]:
            who += f" on {'Elastic IP ' if i['elastic_ip_allocation_id'] else ''}{i['public_ip']}"
        parts.append(who)
    more = f" and {len(interfaces) - 5} more" if len(interfaces) > 5 else ""
    reach = (f"{len(public)} of them reachable on a public address" if public
             else "none has a public address today")
    return f"it guards {', '.join(parts)}{more} ({reach})"


# -- network.admin_ports ------------------------------------------------------------------------

# Mappings checked against Prowler's prowler/compliance/aws/cis_3.0_aws.json, cis_4.0_aws.json and
# aws_foundational_security_best_practices_aws.json (the CIS numbers moved by one in v4.0).
@control("network.admin_ports", title="No security group opens admin ports or all traffic to the internet",
         scope="regional", severity="high",
         rationale="SSH/RDP (or every port) open to the whole internet on a host with a public or Elastic IP is "
         "the seed document's own example: brute force and exploits reach the host directly",
         mappings=Mappings(cis_v3=("5.2", "5.3"), cis_v4=("5.3", "5.4"), securityhub=("EC2.13", "EC2.14")),
         fix="revoke the rule or narrow its source to known addresses or a prefix list (`harden remediate "
         "--controls network.admin_ports --apply` revokes exactly that rule and prints how to restore it)")
def admin_ports(ctx: CheckContext) -> list[Finding]:
    """No ingress rule lets 0.0.0.0/0 or ::/0 reach network.admin_ports (22 and 3389 by default)
    or every port and protocol. One failed finding per offending rule, naming the network
    interfaces, instances and public (Elastic) IPs the group guards."""
    wanted = list(ctx.baseline.network.admin_ports)
    rules = rules_by_group(ctx)
    exposed = interfaces_by_group(ctx)
    findings: list[Finding] = []
    for group in sorted(security_groups(ctx), key=lambda g: g["GroupId"]):
        group_id = group["GroupId"]
        bad = []
        for rule in sorted(rules.get(group_id, []), key=lambda r: r.get("SecurityGroupRuleId", "")):
            hit = exposed_admin_ports(rule, wanted)
            if hit is not None:
                bad.append((rule, hit))
        if not bad:
            findings.append(ctx.passed(group_id, f"{group_id} ({group.get('GroupName')}) opens none of the admin "
                                       f"ports {wanted} (nor all traffic) to 0.0.0.0/0 or ::/0",
                                       admin_ports=wanted, **_group_evidence(group)))
            continue
        interfaces = exposed.get(group_id, [])
        for rule, hit in bad:
            what = "every port and protocol" if not hit else f"admin port{'s' if len(hit) > 1 else ''} {', '.join(map(str, hit))}"
            findings.append(ctx.failed(
                f"{group_id}/{rule['SecurityGroupRuleId']}",
                f"{group_id} ({group.get('GroupName')}) lets {source(rule)} reach {what} "
                f"[{describe_rule(rule)}]; {_exposure(interfaces)}. Restrict the source to known addresses "
                "or a prefix list, or reach the hosts through Session Manager instead",
                **_group_evidence(group), rule=rule_evidence(rule), exposed_ports=hit or "all",
                admin_ports=wanted, network_interfaces=interfaces,
                instances=sorted({i["instance_id"] for i in interfaces if i["instance_id"]}),
                public_ips=sorted({i["public_ip"] for i in interfaces if i["public_ip"]})))
    if not findings:
        findings.append(ctx.passed(ctx.region, "no security group in this region", security_groups=0))
    return findings


# -- network.default_security_group -----------------------------------------------------------

@control("network.default_security_group", title="Every VPC's default security group allows no traffic",
         scope="regional", severity="medium",
         rationale="whatever is launched without a group choice gets the default group; its rules (traffic "
         "from itself, all egress) reach further than intended, though they open nothing to the internet",
         mappings=Mappings(cis_v3=("5.4",), cis_v4=("5.5",), securityhub=("EC2.2",)),
         fix="no rule in any VPC's default group (the network module adopts each one with no rules; "
         "`harden remediate --controls network.default_security_group --apply`)",
         terraform="network/aws_default_security_group.this")
def default_security_group(ctx: CheckContext) -> list[Finding]:
    """The security group named "default" of every VPC has no ingress and no egress rule: a
    resource launched without a group choice gets it, and should get nothing."""
    rules = rules_by_group(ctx)
    exposed = interfaces_by_group(ctx)
    findings: list[Finding] = []
    defaults = [g for g in security_groups(ctx) if g.get("GroupName") == "default" and g.get("VpcId")]
    for group in sorted(defaults, key=lambda g: (g["VpcId"], g["GroupId"])):
        group_id = group["GroupId"]
        present = sorted(rules.get(group_id, []), key=lambda r: r.get("SecurityGroupRuleId", ""))
        users = exposed.get(group_id, [])
        if not present:
            findings.append(ctx.passed(group_id, f"the default security group of {group['VpcId']} has no rules",
                                       **_group_evidence(group), network_interfaces=users))
            continue
        listed = "; ".join(describe_rule(r) for r in present)
        in_use = (f" It is attached to {len(users)} network interface(s) "
                  f"({', '.join(sorted({u['instance_id'] or u['network_interface_id'] for u in users}))}): give them a "
                  "group of their own before the rules go." if users else "")
        findings.append(ctx.failed(
            group_id, f"the default security group of {group['VpcId']} has {len(present)} rule(s): {listed}.{in_use}",
            **_group_evidence(group), rules=[rule_evidence(r) for r in present], network_interfaces=users))
    if not findings:
        findings.append(ctx.passed(ctx.region, "no VPC in this region", vpcs=0))
    return findings


# -- fixes: revoke exactly the offending rules ---------------------------------------------------

def ip_permission(rule: dict) -> dict[str, Any]:
    """The rule as the IpPermissions entry Authorize*/Revoke* take: the form that restores it."""
    perm: dict[str, Any] = {"IpProtocol": rule["IpProtocol"]}
    if protocol(rule) != "-1":
        perm["FromPort"], perm["ToPort"] = rule.get("FromPort"), rule.get("ToPort")
    described = {"Description": rule["Description"]} if rule.get("Description") else {}
    if rule.get("CidrIpv4"):
        perm["IpRanges"] = [{"CidrIp": rule["CidrIpv4"], **described}]
    elif rule.get("CidrIpv6"):
        perm["Ipv6Ranges"] = [{"CidrIpv6": rule["CidrIpv6"], **described}]
    elif rule.get("PrefixListId"):
        perm["PrefixListIds"] = [{"PrefixListId": rule["PrefixListId"], **described}]
    else:
        ref = rule.get("ReferencedGroupInfo") or {}
        pair = {k: v for k, v in (("GroupId", ref.get("GroupId")), ("UserId", ref.get("UserId")),
                                  ("VpcPeeringConnectionId", ref.get("VpcPeeringConnectionId"))) if v}
        perm["UserIdGroupPairs"] = [{**pair, **described}]
    return perm


def restore_command(region: str, rule: dict) -> str:
    verb = "authorize-security-group-egress" if rule.get("IsEgress") else "authorize-security-group-ingress"
    permissions = json.dumps([ip_permission(rule)], separators=(",", ":"))
    return (f"aws ec2 {verb} --region {shlex.quote(region)} --group-id {shlex.quote(rule['GroupId'])} "
            f"--ip-permissions {shlex.quote(permissions)}")


_COMPARED = ("GroupId", "IsEgress", "IpProtocol", "FromPort", "ToPort", "CidrIpv4", "CidrIpv6", "PrefixListId")


def _revoke_action(ctx: CheckContext, rule: dict, why: str) -> Action:
    region, group_id, rule_id = ctx.region, rule["GroupId"], rule["SecurityGroupRuleId"]
    egress = bool(rule.get("IsEgress"))

    def run() -> dict[str, Any]:
        ec2 = ctx.client("ec2")
        # Re-read the rule right before revoking: if it changed since verify read it, the rule
        # shown to the user is not the one that would go.
        current = ec2.describe_security_group_rules(SecurityGroupRuleIds=[rule_id])["SecurityGroupRules"]
        if not current:
            return {"message": f"{rule_id} is already gone: nothing revoked"}
        if any(current[0].get(k) != rule.get(k) for k in _COMPARED):
            raise RuntimeError(f"{rule_id} changed since it was read ({describe_rule(current[0])}); run again")
        revoke = ec2.revoke_security_group_egress if egress else ec2.revoke_security_group_ingress
        resp = revoke(GroupId=group_id, SecurityGroupRuleIds=[rule_id])
        if resp.get("UnknownIpPermissions"):
            raise RuntimeError(f"EC2 did not match {rule_id}: {resp['UnknownIpPermissions']}")
        undo = restore_command(region, current[0])
        return {"message": f"revoked {rule_id} (the command that restores it follows the table)",
                "restore_command": undo,
                "revoked_rule": rule_evidence(current[0])}

    verb = "RevokeSecurityGroupEgress" if egress else "RevokeSecurityGroupIngress"
    return Action(ctx.control_id, region, f"{group_id}/{rule_id}",
                  f"revoke {'egress' if egress else 'ingress'} rule of {group_id} ({why}): {describe_rule(rule)}; "
                  f"as an IpPermission: {json.dumps(ip_permission(rule), separators=(',', ':'))}",
                  ["ec2:DescribeSecurityGroupRules", f"ec2:{verb}"], run)


@fix("network.admin_ports")
def revoke_open_admin_rules(ctx: CheckContext, failed: list[Finding]) -> list[Action]:
    """One action per offending rule: revoke that rule id only (the group's other rules, and
    other sources of the same ports, stay)."""
    wanted = list(ctx.baseline.network.admin_ports)
    rules = {r["SecurityGroupRuleId"]: r for rs in rules_by_group(ctx).values() for r in rs}
    actions = []
    for finding in failed:
        rule = rules.get(finding.evidence.get("rule", {}).get("security_group_rule_id"))
        if rule is None or exposed_admin_ports(rule, wanted) is None:
            continue  # gone, or changed into something allowed, since verify read it
        actions.append(_revoke_action(ctx, rule, f"{ports(rule)} open to {source(rule)}"))
    return actions


def _tag_action(ctx: CheckContext, group: dict) -> Action | None:
    """Tag an emptied default group as the network module does (resources.default_security_group),
    so that Terraform adopting it later plans no tag change. None when it already carries them."""
    wanted = resources.default_security_group(ctx.baseline, group["VpcId"]).tags
    current = {t["Key"]: t["Value"] for t in group.get("Tags", [])}
    missing = {k: v for k, v in wanted.items() if current.get(k) != v}
    if not missing:
        return None
    group_id = group["GroupId"]

    def run() -> dict[str, Any]:
        ctx.client("ec2").create_tags(Resources=[group_id], Tags=[{"Key": k, "Value": v} for k, v in missing.items()])
        return {"message": f"tagged {group_id}: {', '.join(sorted(missing))}"}

    replaced = sorted(k for k in missing if k in current)
    return Action(ctx.control_id, ctx.region, group_id,
                  f"tag the default group of {group['VpcId']} as the network module does "
                  f"({', '.join(f'{k}={v}' for k, v in sorted(missing.items()))})"
                  + (f"; replaces the current value of {', '.join(replaced)}" if replaced else ""),
                  ["ec2:CreateTags"], run)


@fix("network.default_security_group")
def empty_default_groups(ctx: CheckContext, failed: list[Finding]) -> list[Action]:
    """One action per rule of each failing default group, then one that tags the group as the
    network module does. Interfaces still using the group lose that traffic: the dry run says
    which (the finding lists them)."""
    rules = rules_by_group(ctx)
    groups = {g["GroupId"]: g for g in security_groups(ctx)}
    actions = []
    for finding in failed:
        users = finding.evidence.get("network_interfaces") or []
        note = f"default group of {finding.evidence.get('vpc_id')}"
        if users:
            note += f", used by {len(users)} network interface(s)"
        for rule in sorted(rules.get(finding.resource, []), key=lambda r: r.get("SecurityGroupRuleId", "")):
            actions.append(_revoke_action(ctx, rule, note))
        group = groups.get(finding.resource)
        if group is not None and (tag := _tag_action(ctx, group)) is not None:
            actions.append(tag)
    return actions
