"""The guardrail case table (tests/guardrail_cases.py) against the SCPs harden computes, and
verify's semantic comparison (provisioner/policy_compare.py) against weakened copies of them."""

from __future__ import annotations

import copy

import pytest

from provisioner.baseline import parse_baseline
from provisioner.policies import (
    SCP_MAX_CHARS, allocate_address_scp, baseline_protection_scp, harden_scps, minified,
)
from provisioner.policy_compare import weaker_cases
from tests.guardrail_cases import CASES, GUARDED, GUARDED_CONFIG, NET_ADMIN, mismatches


def _documents(baseline=GUARDED) -> list[dict]:
    return [p.document for p in harden_scps(baseline)]


def test_case_table_covers_every_bullet_both_ways():
    assert {c[-1] for c in CASES} == {"allow", "deny"} and len(CASES) > 80


def test_computed_scps_decide_every_case():
    assert mismatches(_documents()) == []


def test_an_empty_policy_set_fails_the_table():
    # The table can fail: without harden's SCPs every attacker call is allowed.
    wrong = mismatches([])
    assert len(wrong) == sum(1 for c in CASES if c[-1] == "deny")


def test_association_switch_off_leaves_association_open_and_the_rest_closed():
    baseline = parse_baseline({**GUARDED_CONFIG, "allocate_address": {
        **GUARDED_CONFIG["allocate_address"], "deny_association": False}})
    wrong = mismatches(_documents(baseline))
    assert wrong and all(("AssociateAddress" in w or "DisassociateAddress" in w or "AssociateNatGatewayAddress" in w)
                         and "expected deny" in w for w in wrong)


def test_split_documents_decide_like_one():
    long = [f"arn:aws:iam::111122223333:role/platform/network/eip-operator-{i:02d}-automation-role" for i in range(20)]
    config = {**GUARDED_CONFIG, "allocate_address": {"allowed_principals": [NET_ADMIN, *long[:19]],
                                                     "allowed_regions": ["eu-west-1", "us-east-1"]},
              "scp": {"targets": ["r-ab12"], "admin_principals": ["arn:aws:iam::*:role/harden-pipeline",
                                                                  *(a.replace("111122223333", "210987654321")
                                                                    for a in long[:14])]}}
    policies = harden_scps(parse_baseline(config))
    assert len(policies) == 4 and all(len(minified(p.document)) <= SCP_MAX_CHARS for p in policies)
    assert [p.name for p in policies][-1] == "harden-protect-baseline-3"
    assert mismatches([p.document for p in policies]) == []


# -- verify's comparison: equivalent passes, every kind of weakening is named --------------------

def _deployed(baseline=GUARDED) -> list[dict]:
    return [s for d in _documents(baseline) for s in d["Statement"]]


def test_equivalent_policy_with_other_sids_and_order_is_not_weaker():
    deployed = _deployed()
    for index, statement in enumerate(deployed):
        statement["Sid"] = f"Other{index}"
        statement["Action"] = list(reversed(statement["Action"]))
    deployed.reverse()
    for computed in (allocate_address_scp(GUARDED), baseline_protection_scp(GUARDED)):
        assert weaker_cases(computed, deployed) == []


def _weaken(change):
    deployed = copy.deepcopy(_deployed())
    change(deployed)
    return deployed


def _sid(deployed, sid):
    return next(s for s in deployed if s["Sid"] == sid)


@pytest.mark.parametrize("change, computed, named", [
    (lambda d: _sid(d, "HardenDenyAllocateAddress")["Action"].remove("ec2:ReleaseAddress"),
     allocate_address_scp, "ec2:ReleaseAddress on * by arn:aws:iam::111122223333:role/harden-probe-outsider"),
    (lambda d: d.remove(_sid(d, "HardenDenyAllocateAddressOutsideRegions")),
     allocate_address_scp, f"by {NET_ADMIN} in xx-future-1"),
    (lambda d: _sid(d, "HardenDenyAllocateAddress")["Condition"]["ArnNotLike"]["aws:PrincipalArn"].append(
        "arn:aws:iam::*:role/*"), allocate_address_scp, "by arn:aws:iam::111122223333:role/harden-probe-outsider"),
    (lambda d: _sid(d, "HardenDenyAllocateAddressOutsideRegions")["Condition"]["StringNotEquals"][
        "aws:RequestedRegion"].append("ap-south-1"), allocate_address_scp, "in ap-south-1"),
    (lambda d: _sid(d, "HardenDenyDetectionChanges").__setitem__(
        "Resource", [r for r in _sid(d, "HardenDenyDetectionChanges")["Resource"] if ":sns:" not in r]),
     baseline_protection_scp, "sns:"),
    (lambda d: _sid(d, "HardenDenyKeyChanges")["Condition"]["ForAnyValue:StringLike"].__setitem__(
        "kms:ResourceAliases", ["alias/harden-cloudtrail"]), baseline_protection_scp, "kms:ResourceAliases"),
    (lambda d: _sid(d, "HardenDenyBaselineChanges")["Action"].remove("organizations:LeaveOrganization"),
     baseline_protection_scp, "organizations:LeaveOrganization"),
], ids=["missing-action", "missing-statement", "wider-exemption", "region-list-grew", "narrower-resource",
        "narrower-condition", "leave-organization"])
def test_weakened_policy_names_the_case_no_longer_denied(change, computed, named):
    found = weaker_cases(computed(GUARDED), _weaken(change))
    assert found and any(named in case for case in found), found


# An exemption need not name aws:PrincipalArn: any clause on a key the caller sets (a principal
# tag, aws:userid, a Null or ...IfExists test) lets that caller out. Each is a wider exemption
# verify must name, with the key and value that escape.
@pytest.mark.parametrize("operator, key, value, named", [
    ("StringNotEquals", "aws:PrincipalTag/team", "netops", "aws:PrincipalTag/team=netops"),
    ("StringNotLike", "aws:userid", "AROA*:deploy", "aws:userid="),
    ("StringEqualsIfExists", "aws:PrincipalTag/tier", "untrusted", "aws:PrincipalTag/tier=harden-probe-other"),
    ("Null", "aws:PrincipalTag/break-glass", "true", "aws:PrincipalTag/break-glass="),
    ("BoolIfExists", "aws:ViaAWSService", "false", "aws:ViaAWSService="),
    ("ArnNotLikeIfExists", "aws:SourceArn", "arn:aws:cloudformation:*:*:stack/deploy/*", "aws:SourceArn=arn:aws:"),
], ids=["principal-tag", "userid", "if-exists", "null", "bool-if-exists", "source-arn"])
def test_exemption_by_another_condition_key_is_named(operator, key, value, named):
    def change(deployed):
        _sid(deployed, "HardenDenyAllocateAddress")["Condition"][operator] = {key: value}
        _sid(deployed, "HardenDenyKeyChanges")["Condition"][operator] = {key: value}
    deployed = _weaken(change)
    for computed, action in ((allocate_address_scp, "ec2:AllocateAddress"), (baseline_protection_scp, "kms:PutKeyPolicy")):
        found = weaker_cases(computed(GUARDED), deployed, limit=50)
        assert any(case.startswith(action) and named in case for case in found), found


def test_a_clause_on_a_key_the_caller_cannot_escape_is_not_a_gap():
    """A clause that holds for every value the caller could bring (absent, any value, the empty
    string) exempts nobody: the comparison must not call it a gap."""
    def change(deployed):
        _sid(deployed, "HardenDenyAllocateAddress")["Condition"]["StringLikeIfExists"] = {"aws:CalledVia": ["*", ""]}
    # StringLikeIfExists with "*": absent, any value and the empty string all hold.
    assert weaker_cases(allocate_address_scp(GUARDED), _weaken(change)) == []


def test_without_baseline_protection_nobody_takes_over_or_passes_an_allow_listed_role():
    """README: with scp.protect_baseline = false the take-over statement exempts nobody, the
    pipeline included; other roles stay free to be passed and edited."""
    from tests.guardrail_cases import ACCT, PIPELINE
    from tests.policy_eval import Request, scp_verdict
    unprotected = parse_baseline({**GUARDED_CONFIG, "scp": {**GUARDED_CONFIG["scp"], "protect_baseline": False}})
    documents = _documents(unprotected)
    assert [p.control for p in harden_scps(unprotected)] == ["scp.allocate_address"]
    for who in (PIPELINE, NET_ADMIN, f"arn:aws:iam::{ACCT}:role/Developer"):
        for action in ("iam:PassRole", "iam:CreateRole", "iam:UpdateAssumeRolePolicy", "iam:CreateAccessKey"):
            assert scp_verdict(documents, Request(who, action, NET_ADMIN)) == "deny", (who, action)
        assert scp_verdict(documents, Request(who, "iam:PassRole", f"arn:aws:iam::{ACCT}:role/app-role")) == "allow"
