"""Verify a whole AWS Organization: every member account, through a role assumed in each.

Run from the management account (or the Organizations delegated administrator). Each member is
verified with the same baseline by assuming `arn:<partition>:iam::<account>:role/<role name>`
(a read-only audit role deployed by StackSets, or OrganizationAccountAccessRole). The
organization-scope controls (the SCPs) run once, from the caller's account: members cannot call
the Organizations API. An account whose role cannot be assumed is reported as `error` and the
others still run.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from provisioner.aws import AwsSession, describe_error, paginate, partition_for
from provisioner.baseline import Baseline
from provisioner.controls import select
from provisioner.findings import GLOBAL, STATUSES, Finding, Report, all_rules, report_header
from provisioner.verify import run_verify

ROLE_NAME_RE = r"^[\w+=,.@-]{1,64}$"


@dataclass
class OrganizationReport:
    organization_id: str | None
    reports: list[Report] = field(default_factory=list)

    def exit_code(self, fail_on: str | None = None) -> int:
        codes = {r.exit_code(fail_on) for r in self.reports}
        return 3 if 3 in codes else 1 if 1 in codes else 0

    def summary(self) -> dict[str, Any]:
        totals = {s: sum(r.summary()[s] for r in self.reports) for s in STATUSES}
        return {**totals, "accounts": len(self.reports),
                "accounts_failing": sum(1 for r in self.reports if r.exit_code() == 1),
                "accounts_unable": sum(1 for r in self.reports if r.exit_code() == 3)}

    def to_dict(self) -> dict[str, Any]:
        rules = all_rules()
        generated = min((r.generated_at for r in self.reports), default=None) or datetime.now(timezone.utc)
        return {**report_header(generated), "organization": self.organization_id,
                "accounts": [r.to_dict(rules) for r in self.reports], "summary": self.summary()}

    def merged(self) -> Report:
        """One report for JUnit/SARIF: each resource is prefixed with its account."""
        findings = [replace(f, resource=f"{r.account}:{f.resource}", evidence={**f.evidence, "account": r.account})
                    for r in self.reports for f in r.findings]
        regions = sorted({region for r in self.reports for region in r.regions})
        return Report(account=self.organization_id, regions=regions, findings=findings)


def active_accounts(aws: AwsSession) -> list[dict]:
    """The organization's ACTIVE accounts (suspended or closing ones cannot be assumed into)."""
    org = aws.client("organizations")
    return sorted((a for a in paginate(org, "list_accounts", "Accounts") if a.get("Status") == "ACTIVE"),
                  key=lambda a: a["Id"])


def verify_organization(
    aws: AwsSession,
    baseline: Baseline,
    role_name: str,
    *,
    accounts: list[str] | None = None,
    regions: list[str] | None = None,
    controls: list[str] | None = None,
    since: timedelta = timedelta(days=7),
    session_factory: Callable[[str], AwsSession] | None = None,
    on_account: Callable[[str, Report], None] | None = None,
) -> OrganizationReport:
    org_id = aws.client("organizations").describe_organization()["Organization"]["Id"]
    caller = aws.account_id()
    known = {a["Id"]: a for a in active_accounts(aws)}
    wanted = accounts or sorted(known)
    selected = select(controls)
    per_account = [c.id for c in selected if c.scope != "organization"]
    org_wide = [c.id for c in selected if c.scope == "organization"]
    partition = partition_for(aws.default_region)

    def assume(account_id: str) -> AwsSession:
        return AwsSession(role_arn=f"arn:{partition}:iam::{account_id}:role/{role_name}",
                          region=baseline.home_region, max_workers=aws.max_workers)

    factory = session_factory or assume
    result = OrganizationReport(org_id)
    for account_id in wanted:
        if account_id not in known:
            report = Report(account=account_id, regions=[], findings=[Finding(
                "verify", GLOBAL, account_id, "error",
                f"{account_id} is not an active account of organization {org_id}")])
        else:
            report = _verify_account(aws if account_id == caller else None, factory, account_id, baseline,
                                     regions, per_account + (org_wide if account_id == caller else []), since)
        result.reports.append(report)
        if on_account:
            on_account(account_id, report)
    return result


def _verify_account(session: AwsSession | None, factory: Callable[[str], AwsSession], account_id: str,
                    baseline: Baseline, regions: list[str] | None, controls: list[str],
                    since: timedelta) -> Report:
    if not controls:
        return Report(account=account_id, regions=[], findings=[])  # only organization-scope controls asked
    try:
        aws = session or factory(account_id)
        return run_verify(aws, baseline, regions=regions, controls=controls or None, since=since)
    except Exception as exc:  # one account's failure (role missing, access denied) must not stop the rest
        return Report(account=account_id, regions=[], findings=[Finding(
            "verify", GLOBAL, account_id, "error", f"could not verify {account_id}: {describe_error(exc)}")])
