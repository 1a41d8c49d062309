"""scp.allocate_address and scp.baseline_protection.

The policy analysis is tested as pure functions on the odd shapes real SCPs take; the controls are
tested against the emulator's Organizations API (policies, attachments, parents and roots are
implemented there; SCPs are stored, not enforced, which is all a read-only check needs).
"""

from __future__ import annotations

import json

import pytest

from provisioner.baseline import parse_baseline
from provisioner.controls import CheckContext
from provisioner.controls.scp import (
    FUTURE_REGION,
    PROTECTED_ACTIONS,
    DenyRule,
    PolicyRef,
    allocate_address,
    baseline_protection,
    compile_pattern,
    compile_principal,
    covers_action,
    covers_resource,
    deny_rules,
    eip_resource,
    evaluate_action,
    parse_conditions,
    pattern_within,
    statement_label,
)
from provisioner.findings import GLOBAL
from provisioner.verify import run_verify
from tests.controls.helpers import create_organization, create_scp
from provisioner.policies import allocate_address_scp, baseline_protection_scp, eip_actions

# The Elastic IP calls the default baseline denies outside the allow-list.
EIP_ACTIONS = eip_actions(parse_baseline({}))

NET_ADMIN = "arn:aws:iam::123456789012:role/NetworkAdmin"
PIPELINE = "arn:aws:iam::123456789012:role/harden-pipeline"


# =============================================================================================
# Pure analysis
# =============================================================================================

@pytest.mark.parametrize("statement, covered", [
    ({"Action": "ec2:AllocateAddress"}, True),
    ({"Action": ["ec2:DescribeAddresses", "ec2:AllocateAddress"]}, True),
    ({"Action": "EC2:allocateaddress"}, True),            # actions are case-insensitive
    ({"Action": "ec2:Allocate*"}, True),
    ({"Action": "ec2:*"}, True),
    ({"Action": "*"}, True),
    ({"Action": "ec2:AllocateAddres?"}, True),
    ({"Action": "ec2:AllocateHosts"}, False),
    ({"Action": "ec2:Allocate"}, False),                  # no implicit prefix match
    ({"Action": "ec2:AllocateAddress*x"}, False),
    ({"NotAction": "ec2:Describe*"}, True),               # denies everything but Describe*
    ({"NotAction": ["iam:*", "ec2:allocate*"]}, False),   # carves AllocateAddress out
    ({}, False),
])
def test_covers_action(statement, covered):
    assert covers_action(statement, "ec2:AllocateAddress") is covered


def test_covers_resource_for_arns_and_action_only_apis():
    arn = "arn:aws:ec2:eu-west-1:111122223333:elastic-ip/eipalloc-1"
    assert covers_resource({"Resource": "*"}, arn)
    assert covers_resource({}, arn)
    assert covers_resource({"Resource": ["arn:aws:ec2:*:*:elastic-ip/*"]}, arn)
    assert not covers_resource({"Resource": "arn:aws:ec2:us-*:*:elastic-ip/*"}, arn)
    assert not covers_resource({"NotResource": "arn:aws:ec2:*:*:elastic-ip/*"}, arn)
    assert covers_resource({"NotResource": "arn:aws:s3:::*"}, arn)
    # An API without resource-level permissions is authorized against "*": only "*" covers it.
    assert covers_resource({"Resource": "*"}, "*")
    assert not covers_resource({"Resource": "arn:aws:ec2:*:*:*"}, "*")


@pytest.mark.parametrize("inner, outer, within", [
    (NET_ADMIN, NET_ADMIN, True),
    (NET_ADMIN, "arn:aws:iam::123456789012:role/*", True),
    ("arn:aws:iam::123456789012:role/Net*", "arn:aws:iam::123456789012:role/*", True),
    ("arn:aws:iam::123456789012:role/*", NET_ADMIN, False),          # broader than the allow-list
    ("arn:aws:iam::123456789012:role/*", "arn:aws:iam::123456789012:role/Net*", False),
    ("arn:aws:iam::*:role/NetworkAdmin", NET_ADMIN, False),          # any account
    ("arn:aws:iam::123456789012:role/NetworkAdmi?", NET_ADMIN, False),
    ("arn:aws:iam::123456789012:role/NetworkAdmi?", "arn:aws:iam::123456789012:role/NetworkAdmi?", True),
    ("arn:aws:iam::123456789012:role/a/b/NetworkAdmin", "arn:aws:iam::123456789012:role/*/NetworkAdmin", True),
    ("arn:aws:iam::123456789012:role/*/NetworkAdmin", "arn:aws:iam::123456789012:role/*", True),
    ("arn:aws:iam::123456789012:role/**", "arn:aws:iam::123456789012:role/*", True),
    ("*", NET_ADMIN, False),
])
def test_pattern_within(inner, outer, within):
    assert pattern_within(compile_pattern(inner), compile_pattern(outer)) is within


def test_pattern_within_literal_and_ignore_case_exemptions():
    allow = compile_pattern("arn:aws:iam::123456789012:role/NetworkAdmin")
    # StringNotEqualsIgnoreCase exempts every casing of the name: a case-sensitive allow-list
    # entry covers one of them, a wildcard covers them all.
    assert not pattern_within(compile_principal(NET_ADMIN, ignore_case=True), allow)
    assert pattern_within(compile_principal(NET_ADMIN.upper().replace("ARN:AWS:IAM", "arn:aws:iam")
                                            .replace(":ROLE/", ":role/"), ignore_case=True),
                          compile_pattern("arn:aws:iam::123456789012:role/*"))
    # StringNotEquals has no wildcards: "role/*" there exempts only a role literally named "*".
    literal = compile_principal("arn:aws:iam::123456789012:role/*", wildcards=False)
    assert not pattern_within(literal, allow)
    assert pattern_within(literal, compile_pattern("arn:aws:iam::123456789012:role/*"))


def test_parse_conditions_principal_exemptions():
    c = parse_conditions({"ArnNotLike": {"aws:PrincipalARN": NET_ADMIN}})  # keys are case-insensitive
    assert c.unsupported is None and c.exempt == (NET_ADMIN,)
    c = parse_conditions({"StringNotEqualsIfExists": {"aws:PrincipalArn": [NET_ADMIN, PIPELINE]}})
    assert c.unsupported is None and c.exempt == (NET_ADMIN, PIPELINE)
    c = parse_conditions({"StringNotEquals": {"aws:PrincipalAccount": "999988887777"}})
    assert c.exempt == ("arn:aws:iam::999988887777:* (aws:PrincipalAccount 999988887777)",)
    # Only service principals are exempt: SCPs never restrict them, so this exempts nobody.
    c = parse_conditions({"BoolIfExists": {"aws:PrincipalIsAWSService": "false"}})
    assert c.unsupported is None and c.exempt == ()


@pytest.mark.parametrize("condition, reason", [
    ({"ArnLike": {"aws:PrincipalArn": NET_ADMIN}}, "confines the deny to some principals"),
    ({"StringNotEquals": {"aws:PrincipalTag/team": "network"}}, "cannot describe"),
    ({"StringNotEquals": {"aws:PrincipalOrgID": "o-abcdefghij"}}, "cannot describe"),
    ({"Bool": {"aws:ViaAWSService": "false"}}, "cannot describe"),
    ({"ForAnyValue:StringNotLike": {"aws:PrincipalArn": NET_ADMIN}}, "set operator"),
    ("not-an-object", "not an object"),
])
def test_parse_conditions_unsupported(condition, reason):
    assert reason in parse_conditions(condition).unsupported


def test_region_conditions():
    c = parse_conditions({"StringNotEquals": {"aws:RequestedRegion": ["eu-west-1", "eu-central-1"]}})
    assert not c.applies_in("eu-west-1") and c.applies_in("us-east-1")
    c = parse_conditions({"StringLike": {"aws:RequestedRegion": "us-*"}})
    assert c.applies_in("us-west-2") and not c.applies_in("eu-west-1")
    c = parse_conditions({"StringNotEqualsIgnoreCase": {"aws:RequestedRegion": "EU-WEST-1"}})
    assert not c.applies_in("eu-west-1")


REGIONS = ["eu-west-1", "us-east-1", "ap-southeast-2", FUTURE_REGION]
ALLOW_ALL = [("r-root", [{"Effect": "Allow", "Action": "*", "Resource": "*"}])]


def _evaluate(statements, *, allow=(), allowed_regions=(), levels=None, action="ec2:AllocateAddress"):
    tagged = [(PolicyRef("p-test", "test", "r-root"), statement_label(s, i), s) for i, s in enumerate(statements)]
    rules = deny_rules(tagged, action, "aws")
    return evaluate_action(action, levels or ALLOW_ALL, rules, allow=list(allow),
                           allowed_regions=list(allowed_regions), regions=REGIONS,
                           accounts=["111122223333", "444455556666"],
                           resource_for=lambda r, a: eip_resource(action, "aws", r, a))


def _harden_policy(allowed, regions=()):
    """The statements harden computes for this allow-list (provisioner/policies.py)."""
    baseline = parse_baseline({"allocate_address": {"allowed_principals": list(allowed),
                                                    "allowed_regions": list(regions)}})
    return allocate_address_scp(baseline)["Statement"]


def test_harden_shape_covers_with_principals_and_regions():
    result = _evaluate(_harden_policy([NET_ADMIN], ["eu-west-1"]), allow=[NET_ADMIN], allowed_regions=["eu-west-1"])
    assert result.covered, result.near_misses
    assert [r.label for r in result.used] == ["statement 'HardenDenyAllocateAddress'",
                                              "statement 'HardenDenyAllocateAddressOutsideRegions'"]


def test_principal_statement_alone_leaves_other_regions_open_when_regions_are_restricted():
    result = _evaluate(_harden_policy([NET_ADMIN]), allow=[NET_ADMIN], allowed_regions=["eu-west-1"])
    assert not result.covered
    assert result.gap_regions == ["us-east-1", "ap-southeast-2", FUTURE_REGION]
    assert "in Regions outside allowed_regions" in result.near_misses[0]


def test_one_statement_with_principal_and_region_exemptions_is_a_hole():
    # Conditions AND together, so exemptions OR: anybody may allocate in eu-west-1.
    statement = {"Effect": "Deny", "Action": "ec2:AllocateAddress", "Resource": "*",
                 "Condition": {"ArnNotLike": {"aws:PrincipalArn": NET_ADMIN},
                               "StringNotEquals": {"aws:RequestedRegion": "eu-west-1"}}}
    result = _evaluate([statement], allow=[NET_ADMIN], allowed_regions=["eu-west-1"])
    assert not result.covered and result.gap_regions == ["eu-west-1", "us-east-1", "ap-southeast-2", FUTURE_REGION]


def test_deny_to_everyone_covers_and_wildcard_exemption_does_not():
    assert _evaluate([{"Effect": "Deny", "Action": "ec2:*", "Resource": "*"}], allow=[NET_ADMIN]).covered
    broad = {"Effect": "Deny", "Action": "ec2:AllocateAddress", "Resource": "*",
             "Condition": {"ArnNotLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/*"}}}
    result = _evaluate([broad], allow=[NET_ADMIN])
    assert not result.covered
    assert "exempts arn:aws:iam::*:role/*, which the allow-list does not cover" in result.near_misses[0]
    # An empty allow-list means nobody: any exemption is too much.
    assert not _evaluate(_harden_policy([NET_ADMIN])).covered


def test_region_limited_denies_leave_gaps():
    only_us = {"Effect": "Deny", "Action": "ec2:AllocateAddress", "Resource": "*",
               "Condition": {"StringEquals": {"aws:RequestedRegion": "us-east-1"}}}
    assert _evaluate([only_us]).gap_regions == ["eu-west-1", "ap-southeast-2", FUTURE_REGION]
    todays = {"Effect": "Deny", "Action": "ec2:AllocateAddress", "Resource": "*",
              "Condition": {"StringEquals": {"aws:RequestedRegion": REGIONS[:-1]}}}
    result = _evaluate([todays])
    assert result.gap_regions == [FUTURE_REGION]
    assert result.gaps_text() == "in Regions AWS has not launched yet"


def test_resource_and_allow_deny_details():
    assert not _evaluate([{"Effect": "Deny", "Action": "ec2:AllocateAddress",
                           "Resource": "arn:aws:ec2:*:*:ipv4pool-ec2/*"}]).covered
    assert not _evaluate([{"Effect": "Allow", "Action": "ec2:AllocateAddress", "Resource": "*"}]).covered
    assert not _evaluate([{"Effect": "Deny", "NotAction": "ec2:AllocateAddress", "Resource": "*"}]).covered
    principal = {"Effect": "Deny", "Action": "ec2:AllocateAddress", "Resource": "*", "Principal": "*"}
    assert "Principal" in _evaluate([principal]).near_misses[0]


def test_level_without_an_allow_denies_implicitly():
    # Allow-list strategy: the OU's only SCP allows S3 and IAM, so EC2 is denied to everyone there.
    levels = [("ou-abcd-11111111", [{"Effect": "Allow", "Action": ["s3:*", "iam:*"], "Resource": "*"}]),
              ALLOW_ALL[0]]
    result = _evaluate([], levels=levels)
    assert result.covered and result.implicit_deny_at == "ou-abcd-11111111"
    # A level with no SCP read is not taken as a deny.
    assert not _evaluate([], levels=[("ou-abcd-11111111", []), ALLOW_ALL[0]]).covered


def test_deny_rules_only_takes_denies_covering_the_action():
    ref = PolicyRef("p-1", "x", "r-root")
    tagged = [(ref, "a", {"Effect": "Deny", "Action": "s3:*"}),
              (ref, "b", {"Effect": "Allow", "Action": "ec2:*"}),
              (ref, "c", {"Effect": "deny", "Action": "ec2:Allocate*"})]
    assert [r.label for r in deny_rules(tagged, "ec2:AllocateAddress", "aws")] == ["c"]
    assert isinstance(deny_rules(tagged, "ec2:AllocateAddress", "aws")[0], DenyRule)


# =============================================================================================
# Against the emulator
# =============================================================================================

@pytest.fixture()
def org(aws):
    """An organization with SCPs enabled: root -> OU -> member account; the caller is management."""
    return create_organization(aws)


DEFAULT_ADMIN = "arn:aws:iam::*:role/harden-pipeline"


def _baseline(**scp):
    allocate = scp.pop("allocate_address", {})
    extra = scp.pop("top", {})
    # Targets with baseline protection need someone exempt (a config without is refused).
    if scp.get("targets") and scp.get("protect_baseline", True):
        scp.setdefault("admin_principals", [DEFAULT_ADMIN])
    return parse_baseline({"scp": scp, "allocate_address": allocate, **extra})


def _ctx(aws, baseline, control_id="scp.allocate_address"):
    return CheckContext(aws=aws, baseline=baseline, region=GLOBAL, account_id=aws.account_id(),
                        control_id=control_id, regions=("us-east-1", "eu-west-1"))


def _by_resource(findings):
    return {f.resource: f for f in findings}


def test_allocate_address_passes_through_inheritance(aws, org):
    policy = create_scp(org["client"], "team-eip-guard", _harden_policy([NET_ADMIN]), org["ou"])
    baseline = _baseline(targets=[org["ou"], org["account"]], allocate_address={"allowed_principals": [NET_ADMIN]})
    found = _by_resource(allocate_address(_ctx(aws, baseline)))

    assert set(found) == {org["ou"], org["account"]}
    for target in (org["ou"], org["account"]):
        f = found[target]
        assert f.status == "pass", f.message
        assert f.region == GLOBAL
        assert "team-eip-guard" in f.message and f"attached to {org['ou']}" in f.message
        (matched,) = f.evidence["matched_statements"]
        assert matched["policy_id"] == policy and matched["attached_to"] == org["ou"]
        assert matched["actions"] == list(EIP_ACTIONS)
        assert matched["exempt_principals"] == [NET_ADMIN]
    assert found[org["account"]].evidence["path"] == [org["account"], org["ou"], org["root"]]
    assert "denied too" not in found[org["ou"]].message
    json.dumps([f.to_dict() for f in found.values()])  # evidence is JSON-able as it is


def test_allocate_address_blanket_deny_passes_and_says_so(aws, org):
    blanket = ["ec2:*Address*", "ec2:*Byoip*", "ec2:*PublicIpv4Pool*", "globalaccelerator:Create*", "lightsail:*StaticIp"]
    create_scp(org["client"], "no-eips", [{"Effect": "Deny", "Action": blanket, "Resource": "*"}], org["root"])
    baseline = _baseline(targets=[org["root"]], allocate_address={"allowed_principals": [NET_ADMIN]})
    (f,) = allocate_address(_ctx(aws, baseline))
    assert f.status == "pass" and f.message.endswith("(allow-listed principals are denied too)")


def test_allocate_address_fails_when_only_below_or_unrelated(aws, org):
    # Attached to the OU only: it does not reach the root (nor accounts directly under it).
    create_scp(org["client"], "eip-guard", _harden_policy([]), org["ou"])
    create_scp(org["client"], "deny-leave-org", [{"Effect": "Deny", "Action": "organizations:LeaveOrganization",
                                            "Resource": "*"}], org["root"])
    found = _by_resource(allocate_address(_ctx(aws, _baseline(targets=[org["root"], org["ou"]]))))

    assert found[org["ou"]].status == "pass"
    f = found[org["root"]]
    assert f.status == "fail"
    assert f.message.startswith(f"no SCP reaching {org['root']} denies {', '.join(EIP_ACTIONS)} in every Region to "
                                "principals")
    assert f.evidence["uncovered"]["ec2:AllocateAddress"] == {"regions": "all", "near_misses": []}
    assert "'harden-deny-eip-allocation'" in f.message
    assert set(f.evidence["uncovered"]) == set(EIP_ACTIONS)
    assert {p["name"] for p in f.evidence["policies"]} == {"FullAWSAccess", "deny-leave-org"}
    assert f.evidence["matched_statements"] == []


def test_allocate_address_fails_on_an_exemption_broader_than_the_allow_list(aws, org):
    broad = [{"Sid": "Guard", "Effect": "Deny", "Action": "ec2:*Address*", "Resource": "*",
              "Condition": {"ArnNotLike": {"aws:PrincipalArn": "arn:aws:iam::123456789012:role/*"}}}]
    create_scp(org["client"], "loose-guard", broad, org["root"])
    baseline = _baseline(targets=[org["root"]], allocate_address={"allowed_principals": [NET_ADMIN]})
    (f,) = allocate_address(_ctx(aws, baseline))
    assert f.status == "fail"
    assert "exempts arn:aws:iam::123456789012:role/*, which allocate_address.allowed_principals does not cover" \
        in f.message
    assert f.evidence["uncovered"]["ec2:AllocateAddress"]["near_misses"]


def test_allocate_address_checks_allowed_regions(aws, org):
    baseline = _baseline(targets=[org["root"]], allocate_address={"allowed_principals": [NET_ADMIN],
                                                                  "allowed_regions": ["eu-west-1"]})
    principal_only = create_scp(org["client"], "principal-only", _harden_policy([NET_ADMIN]), org["root"])
    (f,) = allocate_address(_ctx(aws, baseline))
    assert f.status == "fail" and "in Regions outside allowed_regions" in f.message
    assert "eu-west-1" not in f.evidence["uncovered"]["ec2:AllocateAddress"]["regions"]

    org["client"].detach_policy(PolicyId=principal_only, TargetId=org["root"])
    create_scp(org["client"], "full", _harden_policy([NET_ADMIN], ["eu-west-1"]), org["root"])
    (f,) = allocate_address(_ctx(aws, baseline))
    assert f.status == "pass", f.message
    assert len(f.evidence["matched_statements"]) == 2


@pytest.mark.parametrize("case", ["scp_disabled", "management", "unknown_root", "unknown_ou", "unknown_account"])
def test_allocate_address_targets_that_cannot_be_guarded(aws, org, case):
    create_scp(org["client"], "eip-guard", _harden_policy([]), org["root"])
    if case == "scp_disabled":
        org["client"].disable_policy_type(RootId=org["root"], PolicyType="SERVICE_CONTROL_POLICY")
    target = {"scp_disabled": org["root"], "management": org["management"], "unknown_root": "r-zzzz",
              "unknown_ou": org["root"].replace("r-", "ou-") + "-abcdefgh", "unknown_account": "000011112222"}[case]
    (f,) = allocate_address(_ctx(aws, _baseline(targets=[target])))
    assert f.status == "fail" and f.resource == target
    expected = {"scp_disabled": "service control policies are not enabled in root",
                "management": "SCPs never restrict it", "unknown_ou": "is not a root, OU or account",
                "unknown_root": "is not a root, OU or account",
                "unknown_account": "is not a root, OU or account"}[case]
    assert expected in f.message


def test_allocate_address_empty_targets_and_disabled(aws, org):
    (f,) = allocate_address(_ctx(aws, _baseline()))
    assert f.status == "fail" and f.resource == org["id"] and f.message.startswith("scp.targets is empty")
    (f,) = run_verify(aws, _baseline(enabled=False, top={"regions": ["us-east-1"]}),
                      controls=["scp.allocate_address"]).findings
    assert (f.status, f.region, f.resource) == ("skipped", GLOBAL, "organization")  # no organization_id set
    assert f.message.startswith("scp.enabled = false in the baseline")


def test_allocate_address_without_an_organization(aws):
    (f,) = allocate_address(_ctx(aws, _baseline()))
    assert f.status == "skipped" and "not in an AWS Organization" in f.message
    (f,) = allocate_address(_ctx(aws, _baseline(top={"organization_id": "o-abcdefghij"})))
    assert f.status == "error" and "organization_id o-abcdefghij" in f.message


def test_allocate_address_wrong_organization_is_an_error(aws, org):
    (f,) = allocate_address(_ctx(aws, _baseline(targets=[org["root"]], top={"organization_id": "o-zzzzzzzzzz"})))
    assert f.status == "error" and org["id"] in f.message and "o-zzzzzzzzzz" in f.message


def _protection(admins=(), actions=PROTECTED_ACTIONS, resource="*"):
    statement = {"Sid": "DenyBaselineSettingsChanges", "Effect": "Deny", "Action": list(actions), "Resource": resource}
    if admins:
        statement["Condition"] = {"ArnNotLike": {"aws:PrincipalArn": list(admins)}}
    return [statement]


def test_baseline_protection_pass_fail_and_skip(aws, org):
    baseline = _baseline(targets=[org["account"]], admin_principals=[PIPELINE])
    create_scp(org["client"], "protect", baseline_protection_scp(baseline)["Statement"], org["root"])
    (f,) = baseline_protection(_ctx(aws, baseline, "scp.baseline_protection"))
    assert f.status == "pass", f.message
    assert set(f.evidence["matched_statements"][0]["actions"]) <= set(PROTECTED_ACTIONS)

    # Without the pipeline role in admin_principals, its exemption is a hole.
    other_admin = "arn:aws:iam::*:role/break-glass"
    (f,) = baseline_protection(_ctx(aws, _baseline(targets=[org["account"]], admin_principals=[other_admin]),
                                    "scp.baseline_protection"))
    assert f.status == "fail" and f.evidence["uncovered_actions"] == list(PROTECTED_ACTIONS)

    (f,) = baseline_protection(_ctx(aws, _baseline(targets=[org["account"]], protect_baseline=False),
                                    "scp.baseline_protection"))
    assert f.status == "skipped" and "protect_baseline is false" in f.message


def test_baseline_protection_lists_the_uncovered_actions(aws, org):
    partial = [a for a in PROTECTED_ACTIONS if a not in ("ec2:DeleteFlowLogs", "cloudtrail:UpdateTrail")]
    create_scp(org["client"], "partial", _protection(actions=partial), org["root"])
    # A trail protection limited to other trails does not protect the baseline's trail.
    create_scp(org["client"], "other-trails", _protection(actions=["cloudtrail:UpdateTrail"],
                                                    resource="arn:aws:cloudtrail:*:*:trail/legacy-*"), org["root"])
    (f,) = baseline_protection(_ctx(aws, _baseline(targets=[org["root"]]), "scp.baseline_protection"))
    assert f.status == "fail"
    assert f.evidence["uncovered_actions"] == ["cloudtrail:UpdateTrail", "ec2:DeleteFlowLogs"]
    assert "denies cloudtrail:UpdateTrail, ec2:DeleteFlowLogs to everyone but scp.admin_principals" in f.message
    assert any("does not cover arn:aws:cloudtrail:<region>" in m
               for m in f.evidence["uncovered"]["cloudtrail:UpdateTrail"]["near_misses"])


def test_an_scp_that_leaves_event_selectors_or_the_default_key_reset_open_does_not_protect(aws, org):
    """The eight calls the first version required are not enough: PutEventSelectors drops
    management events from a trail that keeps logging, ResetEbsDefaultKmsKeyId puts aws/ebs back
    as the default key."""
    older = ["cloudtrail:StopLogging", "cloudtrail:DeleteTrail", "cloudtrail:UpdateTrail",
             "config:StopConfigurationRecorder", "config:DeleteDeliveryChannel", "ec2:DeleteFlowLogs",
             "ec2:DisableEbsEncryptionByDefault", "ec2:ModifyEbsDefaultKmsKeyId"]
    assert set(older) < set(PROTECTED_ACTIONS)
    create_scp(org["client"], "older", _protection(actions=older), org["root"])
    (f,) = baseline_protection(_ctx(aws, _baseline(targets=[org["root"]]), "scp.baseline_protection"))
    assert f.status == "fail"
    assert f.evidence["uncovered_actions"] == ["cloudtrail:PutEventSelectors", "ec2:ResetEbsDefaultKmsKeyId"]


def test_both_controls_share_lookups(aws, org):
    baseline = _baseline(targets=[org["root"], org["ou"], org["account"]])
    create_scp(org["client"], "eip-guard", _harden_policy([]), org["root"])
    create_scp(org["client"], "protect", baseline_protection_scp(baseline)["Statement"], org["root"])
    ctx = _ctx(aws, baseline)
    before = aws.calls.by_operation()
    assert [f.status for f in allocate_address(ctx)] == ["pass"] * 3
    ctx.control_id = "scp.baseline_protection"
    assert [f.status for f in baseline_protection(ctx)] == ["pass"] * 3
    after = aws.calls.by_operation()
    calls = {op: n - before.get(op, 0) for op, n in after.items() if n - before.get(op, 0)}
    # One read per policy and per level, whatever the number of targets and controls.
    assert calls == {"organizations:DescribeOrganization": 1, "organizations:ListRoots": 1,
                     "organizations:ListParents": 2, "organizations:ListPoliciesForTarget": 3,
                     "organizations:DescribePolicy": 3}


# =============================================================================================
# What harden renders and remediate creates is what verify accepts
# =============================================================================================

def test_harden_policies_pass_verify_with_the_same_baseline(aws, org):
    """The documents of provisioner.policies (rendered into Terraform, created by remediate)."""
    from provisioner.policies import allocate_address_scp, baseline_protection_scp

    allowed = [NET_ADMIN, "arn:aws:iam::123456789012:role/ops/*"]
    same = _baseline(targets=[org["root"]], admin_principals=[PIPELINE],
                     allocate_address={"allowed_principals": allowed, "allowed_regions": ["eu-west-1", "us-east-1"]})
    create_scp(org["client"], "harden-deny-eip-allocation", allocate_address_scp(same)["Statement"], org["root"])
    create_scp(org["client"], "harden-protect-baseline", baseline_protection_scp(same)["Statement"], org["root"])
    (eip,) = allocate_address(_ctx(aws, same))
    (protection,) = baseline_protection(_ctx(aws, same, "scp.baseline_protection"))
    assert eip.status == "pass", eip.message
    assert protection.status == "pass", protection.message
    assert "harden-deny-eip-allocation" in eip.message and "harden-protect-baseline" in protection.message

    # A baseline that allows fewer principals than the deployed policy exempts: drift, caught.
    narrower = _baseline(targets=[org["root"]], admin_principals=[PIPELINE],
                         allocate_address={"allowed_principals": [NET_ADMIN],
                                           "allowed_regions": ["eu-west-1", "us-east-1"]})
    (eip,) = allocate_address(_ctx(aws, narrower))
    assert eip.status == "fail" and "role/ops/*" in eip.message
