"""Drift is one story: for each resource where Terraform and the account disagree (a planned
change) and each control the live account fails, say whether harden would fix it with boto3 and
which command converges it, so the nightly job's output says what to run."""

from __future__ import annotations

import re
import shlex
from dataclasses import replace
from typing import Any

from provisioner.controls import PSEUDO_CONTROLS
from provisioner.findings import GLOBAL, Finding
from provisioner.terraform import PlanSummary

# Controls whose remedy is a command of its own (DESIGN: destructive, opt-in, never remediate's).
OWN_COMMANDS = {
    "ebs.unencrypted_volumes": "harden ebs migrate --regions {region} (dry run), then --apply",
    "eip.unassociated": "harden eip release --regions {region} (dry run), then --apply",
    "eip.allocations": "harden respond --principal <the principal in the finding> (dry run), then --apply",
}

_MODULE_KEY = re.compile(r'^module\.[A-Za-z0-9_-]+\["([a-z0-9-]+)"\]')


def _region_of(address: str) -> str:
    """The module key of a regional module instance (the account root keys them by region)."""
    m = _MODULE_KEY.match(address)
    return m.group(1) if m else GLOBAL


def terraform_findings(summary: PlanSummary, root: str) -> list[Finding]:
    """One finding per planned change (fail), or one pass when Terraform has nothing to do."""
    severity = PSEUDO_CONTROLS["terraform.plan"].severity
    if summary.empty:
        return [Finding("terraform.plan", GLOBAL, root, "pass", "Terraform state matches the configuration",
                        summary.to_dict(), severity=severity)]
    findings = []
    for change in summary.changes:
        if change.action == "import":
            what = "exists in the account but not in Terraform's state: apply imports it unchanged"
        elif change.importing:
            what = f"exists but not in Terraform's state: apply imports it, then makes it an {change.action}"
        else:
            what = f"Terraform and the account disagree: the plan would {change.action} it"
        converge = {"terraform": True, "boto3_fix": False, "command": f"harden apply --root {root}"}
        findings.append(Finding("terraform.plan", _region_of(change.address), change.address, "fail",
                                f"{what} [converge: {converge['command']}]",
                                {"action": change.action, "importing": change.importing, "type": change.type,
                                 "converge": converge}, severity=severity))
    return findings


def converge_advice(finding: Finding, fixable: set[str]) -> dict[str, Any]:
    """How a failing verify finding converges: remediate's boto3 fix, a command of its own, or
    the Terraform modules (which declare every other control)."""
    control, region = finding.control, finding.region
    where = "" if region == GLOBAL else f" --regions {shlex.quote(region)}"
    if control in fixable:
        return {"boto3_fix": True, "terraform": True,
                "command": f"harden remediate --controls {control}{where} (dry run), then --apply; "
                           "or harden apply"}
    if control in OWN_COMMANDS:
        return {"boto3_fix": True, "terraform": False, "command": OWN_COMMANDS[control].format(region=region)}
    return {"boto3_fix": False, "terraform": True, "command": "harden apply"}


def with_advice(findings: list[Finding], fixable: set[str]) -> list[Finding]:
    """Failing findings get their converge advice (evidence, and the command in the message)."""
    out = []
    for f in findings:
        if f.status == "fail" and "converge" not in f.evidence:
            advice = converge_advice(f, fixable)
            f = replace(f, message=f"{f.message} [converge: {advice['command']}]",
                        evidence={**f.evidence, "converge": advice})
        out.append(f)
    return out
