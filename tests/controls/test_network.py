"""network.* against the emulator: which rules count as "open to the world", what the finding
names, and the fixes revoking exactly the offending rule (dry run first, restore command after)."""

from __future__ import annotations

import json
import shlex

import pytest

from provisioner import resources
from provisioner.baseline import parse_baseline
from provisioner.controls import CheckContext
from provisioner.controls.network import admin_ports, default_security_group, exposed_admin_ports, restore_command
from provisioner.findings import Report
from provisioner.remediate import execute, plan_actions
from provisioner.sandbox import SANDBOX_AMI

REGION = "ap-northeast-2"  # not a region the sandbox or the other tests use


def _ctx(aws, control_id, baseline=None, region=REGION):
    return CheckContext(aws=aws, baseline=baseline or parse_baseline({}), region=region,
                        account_id=aws.account_id(), control_id=control_id)


def _vpc(ec2):
    return ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]


def _group(ec2, vpc, name, *permissions):
    group = ec2.create_security_group(GroupName=name, Description="test", VpcId=vpc)["GroupId"]
    if permissions:
        ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=list(permissions))
    return group


def _default_group_with_self_reference(ec2, vpc):
    """The VPC's default group with the ingress rule AWS gives it (the emulator adds only egress)."""
    default = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc]},
                                                    {"Name": "group-name", "Values": ["default"]}]
                                           )["SecurityGroups"][0]["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=default, IpPermissions=[
        {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": default}]}])
    return default


def _tcp(low, high, **source):
    return {"IpProtocol": "tcp", "FromPort": low, "ToPort": high, **source}


WORLD4 = {"IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
WORLD6 = {"Ipv6Ranges": [{"CidrIpv6": "::/0"}]}


def _failed_by_group(findings):
    out = {}
    for f in findings:
        if f.status == "fail":
            out.setdefault(f.evidence["group_id"], []).append(f)
    return out


def test_admin_ports_fail_and_pass_paths(aws):
    ec2 = aws.client("ec2", REGION)
    vpc = _vpc(ec2)
    pl = ec2.create_managed_prefix_list(PrefixListName="corp", MaxEntries=2, AddressFamily="IPv4",
                                        Entries=[{"Cidr": "192.0.2.0/24"}])["PrefixList"]["PrefixListId"]
    trusted = _group(ec2, vpc, "trusted")
    groups = {
        "ssh4": _group(ec2, vpc, 'ssh "v4" ${x}', _tcp(22, 22, **WORLD4)),
        "ssh6": _group(ec2, vpc, "ssh-v6", _tcp(22, 22, **WORLD6)),
        "range": _group(ec2, vpc, "range-incl-22", _tcp(0, 1024, **WORLD4)),
        "rdp_udp": _group(ec2, vpc, "rdp-udp", {"IpProtocol": "udp", "FromPort": 3389, "ToPort": 3389, **WORLD6}),
        "all": _group(ec2, vpc, "everything", {"IpProtocol": "-1", **WORLD4}),
        # Not "anywhere": a prefix list, another group, a private range; nor an admin port: 443, ICMP.
        "prefix": _group(ec2, vpc, "prefix-list", _tcp(22, 22, PrefixListIds=[{"PrefixListId": pl}])),
        "group_ref": _group(ec2, vpc, "group-ref", {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": trusted}]}),
        "private": _group(ec2, vpc, "private", _tcp(22, 22, IpRanges=[{"CidrIp": "10.0.0.0/8"}])),
        "https": _group(ec2, vpc, "https", _tcp(443, 443, **WORLD4), _tcp(443, 443, **WORLD6)),
        "icmp": _group(ec2, vpc, "icmp", {"IpProtocol": "icmp", "FromPort": -1, "ToPort": -1, **WORLD4}),
        "range_below": _group(ec2, vpc, "range-below-22", _tcp(0, 21, **WORLD4)),
    }

    findings = admin_ports(_ctx(aws, "network.admin_ports"))
    failed = _failed_by_group(findings)

    assert set(failed) == {groups[k] for k in ("ssh4", "ssh6", "range", "rdp_udp", "all")}
    assert failed[groups["range"]][0].evidence["exposed_ports"] == [22]
    assert failed[groups["all"]][0].evidence["exposed_ports"] == "all"
    assert failed[groups["rdp_udp"]][0].evidence["rule"]["cidr_ipv6"] == "::/0"
    for f in (f for fs in failed.values() for f in fs):
        assert f.region == REGION and f.resource.startswith(f.evidence["group_id"] + "/sgr-")
        assert f.evidence["rule"]["security_group_rule_id"] in f.message
    passed = {f.resource for f in findings if f.status == "pass"}
    assert {groups[k] for k in ("prefix", "group_ref", "private", "https", "icmp", "range_below")} <= passed


def test_custom_admin_ports_are_checked_instead(aws):
    ec2 = aws.client("ec2", REGION)
    vpc = _vpc(ec2)
    postgres = _group(ec2, vpc, "pg", _tcp(5432, 5432, **WORLD4))
    ssh = _group(ec2, vpc, "ssh", _tcp(22, 22, **WORLD4))
    baseline = parse_baseline({"network": {"admin_ports": [5432]}})

    failed = _failed_by_group(admin_ports(_ctx(aws, "network.admin_ports", baseline)))

    assert set(failed) == {postgres} and ssh not in failed


def test_finding_names_the_instances_and_elastic_ips_behind_the_rule(aws):
    ec2 = aws.client("ec2", REGION)
    vpc = _vpc(ec2)
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.1.0/24")["Subnet"]["SubnetId"]
    group = _group(ec2, vpc, "web", _tcp(22, 22, **WORLD4))
    image = SANDBOX_AMI  # one of the emulator's default images (listing them all is slow)
    instance = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, SubnetId=subnet,
                                 SecurityGroupIds=[group])["Instances"][0]["InstanceId"]
    eip = ec2.allocate_address(Domain="vpc")
    ec2.associate_address(AllocationId=eip["AllocationId"], InstanceId=instance)

    [finding] = _failed_by_group(admin_ports(_ctx(aws, "network.admin_ports")))[group]

    assert finding.evidence["instances"] == [instance]
    assert finding.evidence["public_ips"] == [eip["PublicIp"]]
    [eni] = finding.evidence["network_interfaces"]
    assert eni["elastic_ip_allocation_id"] == eip["AllocationId"]
    assert f"Elastic IP {eip['PublicIp']}" in finding.message and instance in finding.message


def test_default_security_group_fails_with_rules_and_passes_empty(aws):
    ec2 = aws.client("ec2", REGION)
    vpc = _vpc(ec2)
    default = _default_group_with_self_reference(ec2, vpc)

    by_group = {f.resource: f for f in default_security_group(_ctx(aws, "network.default_security_group"))}

    assert by_group[default].status == "fail"
    assert {r["direction"] for r in by_group[default].evidence["rules"]} == {"ingress", "egress"}

    rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [default]}])["SecurityGroupRules"]
    for rule in rules:
        revoke = ec2.revoke_security_group_egress if rule["IsEgress"] else ec2.revoke_security_group_ingress
        revoke(GroupId=default, SecurityGroupRuleIds=[rule["SecurityGroupRuleId"]])
    after = {f.resource: f for f in default_security_group(_ctx(aws, "network.default_security_group"))}
    assert after[default].status == "pass"


def _report(aws, findings, region=REGION):
    return Report(account=aws.account_id(), regions=[region], findings=findings)


def test_admin_ports_fix_dry_run_changes_nothing_and_apply_revokes_only_that_rule(aws):
    ec2 = aws.client("ec2", REGION)
    vpc = _vpc(ec2)
    group = _group(ec2, vpc, "mixed", _tcp(22, 22, IpRanges=[{"CidrIp": "0.0.0.0/0", "Description": "oops"},
                                                             {"CidrIp": "198.51.100.7/32"}]), _tcp(443, 443, **WORLD4))
    before = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group]}])["SecurityGroupRules"]
    baseline = parse_baseline({})
    findings = admin_ports(_ctx(aws, "network.admin_ports", baseline))
    actions, errors = plan_actions(aws, baseline, _report(aws, findings))
    assert not errors
    [action] = [a for a in actions if a.resource.startswith(group)]
    assert '"CidrIp":"0.0.0.0/0"' in action.description and "oops" in action.description  # the rule in full

    dry = execute([action], apply=False)
    assert dry[0].status == "planned"
    assert len(ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group]}])["SecurityGroupRules"]) == len(before)

    [result] = execute([action], apply=True)
    assert result.status == "applied", result.message
    left = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group]}])["SecurityGroupRules"]
    assert len(left) == len(before) - 1
    assert not any(r.get("CidrIpv4") == "0.0.0.0/0" and r.get("FromPort") == 22 for r in left)
    assert any(r.get("CidrIpv4") == "198.51.100.7/32" for r in left)  # same port, other source: kept
    assert any(r.get("FromPort") == 443 for r in left)
    assert not _failed_by_group(admin_ports(_ctx(aws, "network.admin_ports", baseline)))

    # The printed command restores the rule exactly (description included).
    undo = result.detail["restore_command"]
    argv = shlex.split(undo)
    permissions = json.loads(argv[argv.index("--ip-permissions") + 1])
    ec2.authorize_security_group_ingress(GroupId=argv[argv.index("--group-id") + 1], IpPermissions=permissions)
    restored = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group]}])["SecurityGroupRules"]
    assert any(r.get("CidrIpv4") == "0.0.0.0/0" and r.get("FromPort") == 22 and r.get("Description") == "oops"
               for r in restored)


def test_fix_refuses_a_rule_that_changed_since_it_was_read(aws):
    ec2 = aws.client("ec2", REGION)
    group = _group(ec2, _vpc(ec2), "racy", _tcp(22, 22, **WORLD6))
    baseline = parse_baseline({})
    actions, _ = plan_actions(aws, baseline, _report(aws, admin_ports(_ctx(aws, "network.admin_ports", baseline))))
    [action] = [a for a in actions if a.resource.startswith(group)]
    rule_id = action.resource.split("/")[1]
    ec2.modify_security_group_rules(GroupId=group, SecurityGroupRules=[{"SecurityGroupRuleId": rule_id, "SecurityGroupRule": {
        "IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "CidrIpv6": "::/0"}}])

    [result] = execute([action], apply=True)

    assert result.status == "failed" and "changed since it was read" in result.message
    assert ec2.describe_security_group_rules(SecurityGroupRuleIds=[rule_id])["SecurityGroupRules"]


def test_default_group_fix_revokes_every_rule_with_restore_commands(aws):
    ec2 = aws.client("ec2", REGION)
    vpc = _vpc(ec2)
    default = _default_group_with_self_reference(ec2, vpc)
    ec2.create_tags(Resources=[default], Tags=[{"Key": "Name", "Value": "mine"}])
    baseline = parse_baseline({})
    findings = default_security_group(_ctx(aws, "network.default_security_group", baseline))
    actions, _ = plan_actions(aws, baseline, _report(aws, findings))
    mine = [a for a in actions if a.resource.startswith(default)]
    # the self-reference ingress, the allow-all egress, then the module's tags (a user's Name is replaced, and said)
    assert [a.calls[-1] for a in mine] == ["ec2:RevokeSecurityGroupEgress", "ec2:RevokeSecurityGroupIngress",
                                           "ec2:CreateTags"] or \
        [a.calls[-1] for a in mine] == ["ec2:RevokeSecurityGroupIngress", "ec2:RevokeSecurityGroupEgress",
                                        "ec2:CreateTags"], [a.calls for a in mine]
    assert "Name=harden-default-closed" in mine[-1].description and "replaces the current value of Name" in \
        mine[-1].description

    assert all(r.status == "planned" for r in execute(mine, apply=False))
    assert len(ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [default]}])["SecurityGroupRules"]) == 2
    assert _tags_of(ec2, default).get("Name") == "mine"

    results = execute(mine, apply=True)
    assert all(r.status == "applied" for r in results), [r.message for r in results]
    assert any("authorize-security-group-egress" in r.detail.get("restore_command", "") for r in results)
    assert ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [default]}])["SecurityGroupRules"] == []
    # As the network module's aws_default_security_group tags it: Terraform adopting it plans no tag change.
    assert _tags_of(ec2, default) == resources.default_security_group(baseline, vpc).tags == \
        {"ManagedBy": "harden", "Name": "harden-default-closed"}
    assert {f.status for f in default_security_group(_ctx(aws, "network.default_security_group", baseline))
            if f.resource == default} == {"pass"}


def _tags_of(ec2, group_id: str) -> dict[str, str]:
    [group] = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"]
    return {t["Key"]: t["Value"] for t in group.get("Tags", [])}


@pytest.mark.parametrize("rule, expected", [
    ({"GroupId": "sg-1", "IsEgress": False, "IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "CidrIpv6": "::/0"},
     {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "Ipv6Ranges": [{"CidrIpv6": "::/0"}]}),
    ({"GroupId": "sg-1", "IsEgress": True, "IpProtocol": "-1", "FromPort": -1, "ToPort": -1,
      "PrefixListId": "pl-1", "Description": "it's \"quoted\""},
     {"IpProtocol": "-1", "PrefixListIds": [{"PrefixListId": "pl-1", "Description": "it's \"quoted\""}]}),
])
def test_restore_command_survives_the_shell(rule, expected):
    argv = shlex.split(restore_command("eu-south-2", rule))
    assert argv[:3] == ["aws", "ec2", "authorize-security-group-egress" if rule["IsEgress"] else "authorize-security-group-ingress"]
    assert argv[argv.index("--region") + 1] == "eu-south-2"
    assert json.loads(argv[argv.index("--ip-permissions") + 1]) == [expected]


def _rule(proto, low=None, high=None, **source):
    return {"IsEgress": False, "IpProtocol": proto, "FromPort": low, "ToPort": high, **source}


@pytest.mark.parametrize("rule, ports, expected", [
    (_rule("6", 22, 22, CidrIpv4="0.0.0.0/0"), [22], [22]),            # protocol numbers, as EC2 may echo them
    (_rule("17", 3000, 4000, CidrIpv6="::/0"), [22, 3389], [3389]),
    (_rule("tcp", 0, 65535, CidrIpv4="0.0.0.0/0"), [22, 3389], [22, 3389]),
    (_rule("-1", -1, -1, CidrIpv6="::/0"), [22], []),                  # everything: [] means "all"
    (_rule("tcp", 22, 22, CidrIpv4="0.0.0.0/1"), [22], None),          # wide, but not anywhere
    (_rule("tcp", 22, 22, CidrIpv4="0.0.0.0/0") | {"IsEgress": True}, [22], None),
    (_rule("58", -1, -1, CidrIpv6="::/0"), [22], None),                # ICMPv6
    (_rule("50", None, None, CidrIpv4="0.0.0.0/0"), [22], None),       # ESP has no ports
])
def test_exposed_admin_ports(rule, ports, expected):
    assert exposed_admin_ports(rule, ports) == expected


def test_cli_remediate_network_dry_run_then_apply_prints_the_undo_command(aws, emulator, tmp_path):
    import os
    import subprocess
    import sys

    ec2 = aws.client("ec2", REGION)
    group = _group(ec2, _vpc(ec2), "rdp-{x}", {"IpProtocol": "tcp", "FromPort": 3389, "ToPort": 3389, **WORLD4})
    cfg = tmp_path / "harden.toml"
    cfg.write_text(f'home_region = "{REGION}"\nregions = ["{REGION}"]\n')
    env = {**os.environ, "AWS_ENDPOINT_URL": emulator, "COLUMNS": "120"}
    base = [sys.executable, "-m", "provisioner.cli", "remediate", "-c", str(cfg), "--controls", "network.admin_ports"]

    dry = subprocess.run(base, capture_output=True, text=True, env=env, timeout=300)
    assert dry.returncode == 1, dry.stderr
    assert "dry run" in dry.stdout and "0.0.0.0/0" in dry.stdout
    assert len(ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group]}])["SecurityGroupRules"]) == 2

    applied = subprocess.run(base + ["--apply"], capture_output=True, text=True, env=env, timeout=300)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group]}])["SecurityGroupRules"]
    assert [r["IsEgress"] for r in rules] == [True]  # the ingress rule went, the egress rule stayed
    undo = [line.strip() for line in applied.stdout.splitlines() if line.strip().startswith("aws ec2 authorize")]
    assert len(undo) == 1 and f"--region {REGION} --group-id {group}" in undo[0] and '"FromPort":3389' in undo[0]


def test_groups_another_account_owns_are_left_to_their_owner(aws):
    """A participant in a shared VPC sees the owner's shared security groups in DescribeSecurityGroups
    (their OwnerId is the owner's) but may not change their rules: neither check fails it for
    them, so no fix is offered that EC2 could only refuse. Here the emulator's groups belong to
    its account, and the context is another account's (the participant's)."""
    ec2 = aws.client("ec2", REGION)
    vpc = _vpc(ec2)
    group = _group(ec2, vpc, "owner-ssh", _tcp(22, 22, **WORLD4))
    default = _default_group_with_self_reference(ec2, vpc)
    assert group in _failed_by_group(admin_ports(_ctx(aws, "network.admin_ports")))  # the owner's view

    participant = CheckContext(aws=aws, baseline=parse_baseline({}), region=REGION, account_id="210987654321",
                               control_id="network.admin_ports")
    judged = {f.evidence.get("group_id") for f in admin_ports(participant)}
    assert group not in judged and default not in judged
    participant_defaults = CheckContext(aws=aws, baseline=parse_baseline({}), region=REGION,
                                        account_id="210987654321", control_id="network.default_security_group")
    assert {f.evidence.get("group_id") for f in default_security_group(participant_defaults)} == {None}
