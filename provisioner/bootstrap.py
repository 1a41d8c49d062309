"""Bootstrap and drift: the orchestration of render, scan, Terraform and verify.

The steps are injected so the order, the stop rules and the retry loop are tested with the real
Terraform on provider-free fixtures and the real verify engine on the emulator.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from provisioner.findings import Report
from provisioner.terraform import PlanResult, PlanSummary, Terraform

Log = Callable[[str], None]


class BootstrapStopped(Exception):
    """A step refused to go on (scan failures, a destructive plan, no confirmation)."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class BootstrapResult:
    steps: list[str] = field(default_factory=list)
    plan: PlanSummary | None = None
    adopted: list = field(default_factory=list)  # import blocks written before the plan
    applied: bool = False
    report: Report | None = None
    verify_attempts: int = 0


def check_destructive(summary: PlanSummary, allow_destroy: bool) -> None:
    risky = summary.destructive()
    if risky and not allow_destroy:
        listed = ", ".join(f"{c.action} {c.address}" for c in risky[:5])
        more = f" and {len(risky) - 5} more" if len(risky) > 5 else ""
        raise BootstrapStopped(
            f"the plan would {listed}{more}: that loses audit history, keys or guardrails. "
            "Re-run with --allow-destroy if that is intended.", exit_code=1)


def verify_until_pass(verify: Callable[[], Report], timeout: float, interval: float,
                      log: Log, sleep: Callable[[float], None] = time.sleep,
                      clock: Callable[[], float] = time.monotonic) -> tuple[Report, int]:
    """Trails and recorders take a moment to report their new state: retry until nothing fails
    or the timeout passes; return the last report and how many attempts it took."""
    deadline = clock() + timeout
    attempt = 0
    while True:
        attempt += 1
        report = verify()
        failing = sorted({f.control for f in report.findings if f.status == "fail"})
        if not failing or clock() + interval > deadline:
            return report, attempt
        log(f"verify attempt {attempt}: still failing {', '.join(failing)}; retrying in {interval:.0f}s")
        sleep(interval)


def bootstrap(
    *,
    render: Callable[[], Path],
    scan: Callable[[Path], int],
    terraform: Callable[[Path], Terraform],
    verify: Callable[[], Report] | None,
    confirm: Callable[[PlanSummary], bool],
    log: Log,
    root_name: str = "account",
    allow_destroy: bool = False,
    verify_timeout: float = 300.0,
    verify_interval: float = 15.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    adopt: Callable[[Terraform, Path], list] | None = None,
) -> BootstrapResult:
    """render -> scan (stop on failed checks) -> init -> [adopt: import blocks for what exists]
    -> plan -> confirm -> apply -> verify."""
    result = BootstrapResult()

    out_dir = render()
    result.steps.append("render")
    failed_checks = scan(out_dir)
    result.steps.append("scan")
    if failed_checks:
        raise BootstrapStopped(f"checkov reports {failed_checks} failed check(s): fix them before applying")

    tf = terraform(out_dir / root_name)
    tf.init()
    result.steps.append("init")
    if adopt is not None:
        result.adopted = adopt(tf, out_dir / root_name)
        result.steps.append("adopt")
    plan: PlanResult = tf.plan()
    result.steps.append("plan")
    result.plan = plan.summary
    if plan.has_changes:
        check_destructive(plan.summary, allow_destroy)
        if not confirm(plan.summary):
            raise BootstrapStopped("not applied: the plan was not confirmed", exit_code=1)
        result.steps.append("confirm")
        tf.apply(plan.plan_file)
        result.steps.append("apply")
        result.applied = True
    else:
        log("Terraform has nothing to change: the baseline is already applied")

    if verify is not None:
        report, attempts = verify_until_pass(verify, verify_timeout, verify_interval, log, sleep, clock)
        result.steps.append("verify")
        result.report, result.verify_attempts = report, attempts
    return result


def drift_report(tf: Terraform, verify: Callable[[], Report] | None, root_name: str) -> Report:
    """Terraform drift (one finding per resource the plan would change or import) and live-account
    drift (verify), in one report; every failing finding says which command converges it and
    whether harden fixes it with boto3 (provisioner/drift.py)."""
    from provisioner.drift import terraform_findings, with_advice
    from provisioner.remediate import fixable_controls

    plan = tf.plan(plan_file="harden-drift.tfplan")
    report = verify() if verify else Report(account=None, regions=[], findings=[])
    report.findings = with_advice(report.findings, set(fixable_controls())) + \
        terraform_findings(plan.summary, root_name)
    return report
