"""Remediation: turn failed findings into actions, print them (dry run) or take them (--apply).

Fixes live beside their checks, registered by control id:

    @fix("flow_logs.all_vpcs")
    def create_flow_logs(ctx: CheckContext, failed: list[Finding]) -> list[Action]:
        ...

A planner reads (it may call describe APIs) and returns Actions; only `Action.run` writes. Dry run
is the default everywhere: nothing calls `run` unless the user said --apply. A failed action is
reported and the others go on.
"""

from __future__ import annotations

import contextlib

import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable, Literal

from provisioner.aws import AwsSession, describe_error
from provisioner.baseline import Baseline
from provisioner.controls import CheckContext, load_controls
from provisioner.findings import Finding, Report

ActionStatus = Literal["planned", "applied", "failed", "skipped"]


@dataclass
class Action:
    control: str
    region: str
    resource: str
    description: str                    # what it will do, for a person
    calls: list[str]                    # the API calls it makes, e.g. ["ec2:CreateFlowLogs"]
    run: Callable[[], dict[str, Any]] = field(repr=False, compare=False)
    destructive: bool = False           # stops, swaps, releases, quarantines: opt-in commands only

    def to_dict(self) -> dict[str, Any]:
        return {"control": self.control, "region": self.region, "resource": self.resource,
                "description": self.description, "calls": list(self.calls), "destructive": self.destructive}


@dataclass
class ActionResult:
    action: Action
    status: ActionStatus
    message: str = ""
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {**self.action.to_dict(), "status": self.status, "message": self.message, "detail": self.detail}


Planner = Callable[[CheckContext, list[Finding]], list[Action]]
FIXES: dict[str, Planner] = {}


def fix(control_id: str):
    """Register the planner that fixes a control's failed findings (one call per region)."""
    def register(fn: Planner) -> Planner:
        FIXES[control_id] = fn
        return fn

    return register


def fixable_controls() -> list[str]:
    load_controls()  # importing the families registers their fixes
    return [cid for cid in load_controls() if cid in FIXES]


@dataclass
class RemediationRun:
    report: Report                       # what verify found before
    actions: list[Action]
    results: list[ActionResult]
    plan_errors: list[Finding]           # planners that could not plan (reported, not fatal)
    after: Report | None = None          # verify of the touched controls, after --apply

    @property
    def failed(self) -> list[ActionResult]:
        return [r for r in self.results if r.status == "failed"]

    @property
    def unaddressed(self) -> list[Finding]:
        """Failed findings of fixable controls that no action covers (e.g. a delivery error only
        Terraform can fix): they keep the run from reporting success."""
        covered = {(a.control, a.region) for a in self.actions}
        return [f for f in self.report.findings
                if f.status == "fail" and f.control in FIXES and (f.control, f.region) not in covered]

    @property
    def unchecked(self) -> list[Finding]:
        """`error` findings of the verify planned from and of the verify after --apply: controls
        that could not be checked there. The run cannot call those clean."""
        after = self.after.findings if self.after is not None else []
        return [f for f in [*self.report.findings, *after] if f.status == "error"]

    def unchecked_summary(self) -> str:
        """One line: which controls could not be checked in which regions, and the first reason."""
        where: dict[str, set[str]] = defaultdict(set)
        for f in self.unchecked:
            where[f.control].add(f.region)
        parts = [f"{control} in {', '.join(sorted(regions))}" for control, regions in sorted(where.items())]
        return (f"could not check {'; '.join(parts)} ({self.unchecked[0].message})" if parts else "")

    def exit_code(self) -> int:
        """3 an action or a plan failed, or a control could not be checked (before or after);
        1 drift remains (or, in a dry run, would be fixed); 0 clean."""
        if self.failed or self.plan_errors or self.unchecked:
            return 3
        if self.after is not None and self.after.exit_code():
            return self.after.exit_code()
        if self.unaddressed:
            return 1
        applied = any(r.status == "applied" for r in self.results)
        return 1 if self.actions and not applied else 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "account": self.report.account,
            "regions": self.report.regions,
            "actions": [r.to_dict() for r in self.results],
            "plan_errors": [f.to_dict() for f in self.plan_errors],
            "unchecked": [f.to_dict() for f in self.unchecked],
            "summary": {
                "planned": sum(r.status == "planned" for r in self.results),
                "applied": sum(r.status == "applied" for r in self.results),
                "failed": sum(r.status == "failed" for r in self.results),
                "unfixable_findings": sum(1 for f in self.report.findings
                                          if f.status == "fail" and f.control not in FIXES),
                "unaddressed_findings": len(self.unaddressed),
                "unchecked_findings": len(self.unchecked),
            },
            "after": self.after.to_dict() if self.after else None,
        }


def plan_actions(aws: AwsSession, baseline: Baseline, report: Report) -> tuple[list[Action], list[Finding]]:
    """One planner call per (control, region) with that region's failed findings."""
    load_controls()
    grouped: dict[tuple[str, str], list[Finding]] = defaultdict(list)
    for f in report.findings:
        if f.status == "fail" and f.control in FIXES:
            grouped[(f.control, f.region)].append(f)
    actions: list[Action] = []
    errors: list[Finding] = []
    caches: dict[str, dict] = defaultdict(dict)
    for (control, region), failed in sorted(grouped.items()):
        ctx = CheckContext(aws=aws, baseline=baseline, region=region, account_id=report.account or aws.account_id(),
                           control_id=control, regions=tuple(report.regions), cache=caches[region])
        try:
            planned = FIXES[control](ctx, failed)
        except Exception as exc:  # one planner's failure must not hide the others' actions
            errors.append(ctx.errored(region, f"could not plan the fix: {describe_error(exc)}"))
            continue
        # An account-wide prerequisite (the home region's alarm topic) can be planned by the
        # planner of every region that needs it: it is taken once.
        seen = {(a.control, a.region, a.resource, a.description) for a in actions}
        actions.extend(a for a in planned if (a.control, a.region, a.resource, a.description) not in seen)
    return actions, errors


def execute(actions: list[Action], apply: bool, progress: Callable[[Action], None] | None = None,
            pause: float = 0.0, each: Callable[[], Any] | None = None) -> list[ActionResult]:
    """Dry run or apply each action; a failure is reported and the next still runs. `each`: a
    context manager factory every action runs in (respond: AwsSession.must_try)."""
    results: list[ActionResult] = []
    for action in actions:
        if progress:
            progress(action)
        if not apply:
            results.append(ActionResult(action, "planned", "dry run: nothing changed"))
            continue
        try:
            with each() if each else contextlib.nullcontext():
                detail = action.run() or {}
            results.append(ActionResult(action, "applied", detail.pop("message", "done"), detail))
        except Exception as exc:  # reported, and the next action still runs
            results.append(ActionResult(action, "failed", describe_error(exc)))
        if pause:
            time.sleep(pause)
    return results


def run_remediation(aws: AwsSession, baseline: Baseline, *, controls: list[str] | None = None,
                    regions: list[str] | None = None, apply: bool = False,
                    progress: Callable[[Action], None] | None = None) -> RemediationRun:
    """verify (the fixable controls) -> plan -> dry run or apply -> verify what was touched."""
    from provisioner.controls import select
    from provisioner.verify import run_verify

    fixable = set(fixable_controls())
    wanted = [c.id for c in select(controls) if c.id in fixable]
    if not wanted:
        raise ValueError("none of the selected controls has a fix: "
                         f"fixable controls are {', '.join(sorted(fixable))}")
    report = run_verify(aws, baseline, regions=regions, controls=wanted)
    actions, plan_errors = plan_actions(aws, baseline, report)
    results = execute(actions, apply, progress)
    run = RemediationRun(report, actions, results, plan_errors)
    touched = sorted({r.action.control for r in results if r.status == "applied"})
    if apply and touched:
        run.after = run_verify(aws, baseline, regions=report.regions, controls=touched)
    return run
