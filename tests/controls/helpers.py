"""Helpers shared by the control tests (checks and fixes, against the emulator)."""

from __future__ import annotations

import json
from collections.abc import Callable

from provisioner.remediate import run_remediation


def assert_converges(aws, baseline, controls: list[str], expected_actions: int, state: Callable[[], object]):
    """Dry run plans `expected_actions` and changes nothing `state()` shows; apply passes the real
    checks of `controls`; a second run plans nothing. Returns the dry and the applied runs."""
    before = state()
    dry = run_remediation(aws, baseline, controls=controls)
    assert len(dry.actions) == expected_actions, [a.description for a in dry.actions]
    assert {r.status for r in dry.results} == {"planned"}
    assert state() == before

    applied = run_remediation(aws, baseline, controls=controls, apply=True)
    assert {r.status for r in applied.results} == {"applied"}, [r.message for r in applied.results]
    assert applied.after is not None
    assert {f.control for f in applied.after.findings} == set(controls)
    assert all(f.status == "pass" for f in applied.after.findings), [f.message for f in applied.after.findings]

    again = run_remediation(aws, baseline, controls=controls, apply=True)
    assert again.actions == [] and again.exit_code() == 0
    return dry, applied


def create_scp(client, name: str, statements: list[dict], *targets: str) -> str:
    """An SCP with these statements, attached to each target; returns its id."""
    policy_id = client.create_policy(Name=name, Description=name, Type="SERVICE_CONTROL_POLICY",
                                     Content=json.dumps({"Version": "2012-10-17", "Statement": statements})
                                     )["Policy"]["PolicySummary"]["Id"]
    for target in targets:
        client.attach_policy(PolicyId=policy_id, TargetId=target)
    return policy_id


def create_organization(aws) -> dict:
    """An organization with SCPs enabled: root -> OU "workloads" -> member account "app"; the
    caller is the management account. Returns client, root, ou, account, id and management."""
    client = aws.client("organizations", "us-east-1")
    client.create_organization(FeatureSet="ALL")
    root = client.list_roots()["Roots"][0]["Id"]
    client.enable_policy_type(RootId=root, PolicyType="SERVICE_CONTROL_POLICY")
    ou = client.create_organizational_unit(ParentId=root, Name="workloads")["OrganizationalUnit"]["Id"]
    account = client.create_account(AccountName="app", Email="app@example.com")["CreateAccountStatus"]["AccountId"]
    client.move_account(AccountId=account, SourceParentId=root, DestinationParentId=ou)
    org_id = client.describe_organization()["Organization"]["Id"]
    return {"client": client, "root": root, "ou": ou, "account": account, "id": org_id,
            "management": aws.account_id()}
