"""The scp.* fixes against the emulator's Organizations API (policies, attachments, parents and
roots are implemented there; SCPs are stored, not enforced, which is all create/update/attach
and the verify after them need). No stubbing."""

from __future__ import annotations

import json

import pytest

from provisioner.baseline import parse_baseline
from provisioner.policies import allocate_address_scp, baseline_protection_scp, minified
from provisioner.remediate import run_remediation
from tests.controls.helpers import create_organization, create_scp

SCP = "SERVICE_CONTROL_POLICY"
NET_ADMIN = "arn:aws:iam::123456789012:role/NetworkAdmin"
PIPELINE = "arn:aws:iam::123456789012:role/harden-pipeline"
EIP_POLICY = "harden-deny-eip-allocation"
PROTECT_POLICY = "harden-protect-baseline"


@pytest.fixture()
def org(aws):
    """An organization with SCPs enabled: root -> OU -> member account; the caller is management.
    An unrelated SCP on the root stands for the customer's own guardrails (never to be touched)."""
    org = create_organization(aws)
    org["own_policy"] = create_scp(org["client"], "deny-leave-org", [
        {"Effect": "Deny", "Action": "organizations:LeaveOrganization", "Resource": "*"}], org["root"])
    return org


def _baseline(**scp):
    allocate = scp.pop("allocate_address", {})
    # Targets with baseline protection need someone exempt (a config without is refused).
    if scp.get("targets") and scp.get("protect_baseline", True):
        scp.setdefault("admin_principals", ["arn:aws:iam::*:role/harden-pipeline"])
    return parse_baseline({"regions": ["us-east-1"], "scp": scp, "allocate_address": allocate})


def _org_state(client) -> dict[str, tuple[str, list[str]]]:
    """Every SCP by name: its content and the targets it is attached to."""
    state = {}
    for policy in client.list_policies(Filter=SCP)["Policies"]:
        content = client.describe_policy(PolicyId=policy["Id"])["Policy"]["Content"]
        targets = client.list_targets_for_policy(PolicyId=policy["Id"])["Targets"]
        state[policy["Name"]] = (content, sorted(t["TargetId"] for t in targets))
    return state


def _policy(client, name) -> dict:
    (summary,) = [p for p in client.list_policies(Filter=SCP)["Policies"] if p["Name"] == name]
    return client.describe_policy(PolicyId=summary["Id"])["Policy"]


def test_missing_policy_is_created_and_attached_to_each_target(aws, org):
    client = org["client"]
    baseline = _baseline(targets=[org["root"], org["account"]],
                         allocate_address={"allowed_principals": [NET_ADMIN], "allowed_regions": ["eu-west-1"]})
    before = _org_state(client)

    dry = run_remediation(aws, baseline, controls=["scp.allocate_address"])
    assert [(a.resource, a.calls[-1]) for a in dry.actions] == [
        (EIP_POLICY, "organizations:CreatePolicy"),
        (org["root"], "organizations:AttachPolicy"), (org["account"], "organizations:AttachPolicy")]
    assert {r.status for r in dry.results} == {"planned"} and dry.exit_code() == 1
    assert NET_ADMIN in dry.actions[0].description and "eu-west-1" in dry.actions[0].description
    assert dry.actions[1].description == f"attach SCP {EIP_POLICY!r} to root {org['root']}"
    assert _org_state(client) == before  # the dry run changed nothing

    applied = run_remediation(aws, baseline, controls=["scp.allocate_address"], apply=True)
    assert [r.status for r in applied.results] == ["applied"] * 3, [r.message for r in applied.results]
    assert applied.after is not None and applied.after.exit_code() == 0
    assert {f.status for f in applied.after.findings} == {"pass"}
    policy = _policy(client, EIP_POLICY)
    # Exactly what Terraform's jsonencode() writes: a later `terraform plan` shows no drift.
    assert policy["Content"] == minified(allocate_address_scp(baseline))
    assert policy["PolicySummary"]["Description"].startswith("harden scp.allocate_address:")
    state = _org_state(client)
    assert state[EIP_POLICY][1] == sorted([org["root"], org["account"]])
    # The customer's own policies are untouched.
    assert state["deny-leave-org"] == before["deny-leave-org"]
    assert state["FullAWSAccess"] == before["FullAWSAccess"]

    again = run_remediation(aws, baseline, controls=["scp.allocate_address"], apply=True)
    assert again.actions == [] and again.exit_code() == 0


def test_drifted_policy_is_updated_where_it_is_attached(aws, org):
    client = org["client"]
    # harden's policy, attached to the root, but someone widened its exemption to every role.
    loose = [{"Sid": "HardenDenyAllocateAddress", "Effect": "Deny", "Action": ["ec2:AllocateAddress"],
              "Resource": "*", "Condition": {"ArnNotLike": {"aws:PrincipalArn": "arn:aws:iam::123456789012:role/*"}}}]
    policy_id = create_scp(client, EIP_POLICY, loose, org["root"])
    baseline = _baseline(targets=[org["root"], org["ou"]], allocate_address={"allowed_principals": [NET_ADMIN]})
    before = _org_state(client)

    dry = run_remediation(aws, baseline, controls=["scp.allocate_address"])
    # The OU inherits from the root: updating the content fixes both, no new attachment.
    (action,) = dry.actions
    assert action.resource == policy_id and action.calls == ["organizations:UpdatePolicy"]
    assert "drifted" in action.description and org["root"] in action.description
    assert _org_state(client) == before

    applied = run_remediation(aws, baseline, controls=["scp.allocate_address"], apply=True)
    assert [r.status for r in applied.results] == ["applied"]
    assert applied.after.exit_code() == 0
    state = _org_state(client)
    assert state[EIP_POLICY] == (minified(allocate_address_scp(baseline)), [org["root"]])
    assert run_remediation(aws, baseline, controls=["scp.allocate_address"]).actions == []


def test_equivalent_content_is_not_drift_and_only_the_attachment_is_added(aws, org):
    client = org["client"]
    baseline = _baseline(targets=[org["ou"]])
    # Same document, other whitespace: not drift (Terraform compares parsed JSON too).
    client.create_policy(Name=EIP_POLICY, Description="x", Type=SCP,
                         Content=json.dumps(allocate_address_scp(baseline), indent=2))
    run = run_remediation(aws, baseline, controls=["scp.allocate_address"], apply=True)
    assert [(a.resource, r.status) for a, r in zip(run.actions, run.results)] == [(org["ou"], "applied")]
    assert run.after.exit_code() == 0
    assert _org_state(client)[EIP_POLICY][1] == [org["ou"]]


def test_both_policies_in_one_run(aws, org):
    client = org["client"]
    baseline = _baseline(targets=[org["ou"]], admin_principals=[PIPELINE])
    applied = run_remediation(aws, baseline, controls=["scp"], apply=True)
    assert sorted((a.control, a.resource) for a in applied.actions) == [
        ("scp.allocate_address", EIP_POLICY), ("scp.allocate_address", org["ou"]),
        ("scp.baseline_protection", PROTECT_POLICY), ("scp.baseline_protection", org["ou"])]
    assert {r.status for r in applied.results} == {"applied"}
    assert applied.after.exit_code() == 0
    assert _policy(client, PROTECT_POLICY)["Content"] == minified(baseline_protection_scp(baseline))
    assert run_remediation(aws, baseline, controls=["scp"]).actions == []


def test_targets_an_attachment_cannot_fix_get_no_action(aws, org):
    client = org["client"]
    before = _org_state(client)
    # The management account (no SCP restricts it), an account outside the organization, and an
    # empty scp.targets: failures for a person to fix in harden.toml, not for remediate.
    for baseline in (_baseline(targets=[org["management"], "000011112222"]), _baseline()):
        run = run_remediation(aws, baseline, controls=["scp.allocate_address"], apply=True)
        assert run.report.exit_code() == 1 and run.actions == [] and not run.plan_errors
    assert _org_state(client) == before
    # SCPs disabled in the root: enabling the policy type is an organization-wide decision.
    client.disable_policy_type(RootId=org["root"], PolicyType=SCP)
    disabled = _org_state(client)
    run = run_remediation(aws, _baseline(targets=[org["ou"]]), controls=["scp.allocate_address"], apply=True)
    assert "not enabled in root" in run.report.findings[0].message and run.actions == []
    assert _org_state(client) == disabled


def _attached_documents(client, target: str) -> list[dict]:
    policies = client.list_policies_for_target(TargetId=target, Filter=SCP)["Policies"]
    return [json.loads(client.describe_policy(PolicyId=p["Id"])["Policy"]["Content"]) for p in policies]


def test_what_remediate_attaches_decides_the_threat_model_case_table(aws, org):
    """harden remediate --apply on an organization without harden's SCPs: what it attaches
    (read back from Organizations) decides every case of tests/guardrail_cases.py, split
    policies included, and verify then passes both controls."""
    from tests.guardrail_cases import GUARDED_CONFIG, mismatches

    client = org["client"]
    long = [f"arn:aws:iam::111122223333:role/platform/network/eip-operator-{i:02d}-automation-role" for i in range(20)]
    config = {**GUARDED_CONFIG, "regions": ["us-east-1"],
              "allocate_address": {**GUARDED_CONFIG["allocate_address"],
                                   "allowed_principals": [*GUARDED_CONFIG["allocate_address"]["allowed_principals"],
                                                          *long[:19]]},
              "scp": {"targets": [org["ou"]], "admin_principals": [*GUARDED_CONFIG["scp"]["admin_principals"],
                                                                  *long[:14]]}}
    baseline = parse_baseline(config)
    assert mismatches(_attached_documents(client, org["ou"])) != []  # the table fails without them
    applied = run_remediation(aws, baseline, controls=["scp"], apply=True)
    assert {r.status for r in applied.results} == {"applied"}
    assert applied.after.exit_code() == 0
    attached = _attached_documents(client, org["ou"])
    from provisioner.policies import harden_scps

    # FullAWSAccess (attached to every entity) and harden's, one of them split in two or more.
    assert len(harden_scps(baseline)) >= 3 and len(attached) == 1 + len(harden_scps(baseline)) <= 5
    assert mismatches(attached) == []


def test_weakened_harden_policy_fails_verify_and_remediate_restores_it(aws, org):
    client = org["client"]
    baseline = _baseline(targets=[org["ou"]], admin_principals=[PIPELINE])
    run_remediation(aws, baseline, controls=["scp"], apply=True)
    policy = _policy(client, PROTECT_POLICY)
    document = json.loads(policy["Content"])
    # Someone takes kms:PutKeyPolicy out of the key statement: every action verify lists is
    # still denied, only the semantic comparison sees it.
    for statement in document["Statement"]:
        if statement["Sid"] == "HardenDenyKeyChanges":
            statement["Action"].remove("kms:PutKeyPolicy")
    client.update_policy(PolicyId=policy["PolicySummary"]["Id"], Content=json.dumps(document))
    dry = run_remediation(aws, baseline, controls=["scp.baseline_protection"])
    (finding,) = [f for f in dry.report.findings if f.control == "scp.baseline_protection"]
    assert finding.status == "fail"
    assert "weaker than harden's 'harden-protect-baseline'" in finding.message
    assert "kms:PutKeyPolicy" in finding.message and "is no longer denied" in finding.message
    (action,) = dry.actions
    assert action.calls == ["organizations:UpdatePolicy"]
    applied = run_remediation(aws, baseline, controls=["scp.baseline_protection"], apply=True)
    assert applied.after.exit_code() == 0
    assert _policy(client, PROTECT_POLICY)["Content"] == minified(baseline_protection_scp(baseline))
