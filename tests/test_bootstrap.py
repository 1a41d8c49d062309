"""Bootstrap orchestration with the real bundled Terraform on a provider-free root module:
order of steps, stop on scan failures, confirmation, --allow-destroy, the verify retry loop."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from provisioner.bootstrap import (BootstrapStopped, bootstrap, check_destructive, drift_report,
                                   verify_until_pass)
from provisioner.findings import Finding, Report
from provisioner.terraform import PlanSummary, ResourceChange, Terraform

FIXTURE = Path(__file__).parent / "fixtures" / "terraform_data"


def _report(*statuses: str) -> Report:
    return Report(account="123456789012", regions=["us-east-1"], findings=[
        Finding(f"c{i}", "us-east-1", f"r{i}", s, s) for i, s in enumerate(statuses)])


class Clock:
    """Deterministic time for the retry loop: sleep advances it."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def __call__(self) -> float:
        return self.now


def _run(tmp_path, *, scan_failures=0, confirm=True, verify_reports=None, allow_destroy=False, log=None):
    out = tmp_path / "out"
    calls: list[str] = []

    def render() -> Path:
        calls.append("render")
        if not (out / "account").exists():
            shutil.copytree(FIXTURE, out / "account")
        return out

    def scan(directory: Path) -> int:
        calls.append(f"scan:{directory.name}")
        return scan_failures

    reports = list(verify_reports or [_report("pass")])

    def verify() -> Report:
        calls.append("verify")
        return reports.pop(0) if len(reports) > 1 else reports[0]

    clock = Clock()
    result = bootstrap(render=render, scan=scan, terraform=lambda root: Terraform(root),
                       verify=verify, confirm=lambda summary: confirm, log=log or (lambda m: None),
                       allow_destroy=allow_destroy, verify_timeout=60, verify_interval=10,
                       sleep=clock.sleep, clock=clock)
    return result, calls, clock


def test_order_of_steps_and_second_run_is_a_no_op(tmp_path):
    result, calls, _ = _run(tmp_path)
    assert result.steps == ["render", "scan", "init", "plan", "confirm", "apply", "verify"]
    assert calls == ["render", "scan:out", "verify"]
    assert result.applied and result.plan.to_dict()["add"] == 1
    messages: list[str] = []
    again, _, _ = _run(tmp_path, log=messages.append)
    assert not again.applied and again.plan.empty
    assert again.steps == ["render", "scan", "init", "plan", "verify"]
    assert any("nothing to change" in m for m in messages)


def test_stops_on_scan_failures_before_terraform(tmp_path):
    with pytest.raises(BootstrapStopped, match="checkov reports 3 failed check"):
        _run(tmp_path, scan_failures=3)
    assert not (tmp_path / "out" / "account" / ".terraform").exists()  # init never ran


def test_unconfirmed_plan_is_not_applied(tmp_path):
    with pytest.raises(BootstrapStopped, match="not confirmed"):
        _run(tmp_path, confirm=False)
    assert not (tmp_path / "out" / "account" / "terraform.tfstate").exists()


def test_destructive_plan_needs_allow_destroy():
    summary = PlanSummary([ResourceChange("module.cloudtrail.aws_cloudtrail.this", "aws_cloudtrail", "m", "replace"),
                           ResourceChange("aws_sns_topic.t", "aws_sns_topic", "", "delete")])
    with pytest.raises(BootstrapStopped, match="replace module.cloudtrail.aws_cloudtrail.this.*--allow-destroy"):
        check_destructive(summary, allow_destroy=False)
    check_destructive(summary, allow_destroy=True)  # no exception
    check_destructive(PlanSummary([ResourceChange("aws_sns_topic.t", "aws_sns_topic", "", "delete")]), False)


def test_verify_retries_until_pass(tmp_path):
    result, calls, clock = _run(tmp_path, verify_reports=[_report("fail", "pass"), _report("fail"), _report("pass")])
    assert result.verify_attempts == 3
    assert calls.count("verify") == 3 and clock.sleeps == [10, 10]
    assert result.report.exit_code() == 0


def test_verify_gives_up_at_the_timeout():
    clock = Clock()
    logs: list[str] = []
    report, attempts = verify_until_pass(lambda: _report("fail"), timeout=35, interval=10, log=logs.append,
                                         sleep=clock.sleep, clock=clock)
    assert attempts == 4 and clock.now == 30  # 0, 10, 20, 30; the next would pass the deadline
    assert report.exit_code() == 1
    assert "still failing c0" in logs[0]


def test_errors_are_not_retried():
    clock = Clock()
    report, attempts = verify_until_pass(lambda: _report("error"), timeout=100, interval=10,
                                         log=lambda m: None, sleep=clock.sleep, clock=clock)
    assert attempts == 1 and report.exit_code() == 3


def test_drift_report_combines_terraform_and_verify(tmp_path):
    shutil.copytree(FIXTURE, tmp_path / "root")
    tf = Terraform(tmp_path / "root")
    tf.init()
    report = drift_report(tf, lambda: _report("pass"), "account")
    terraform = [f for f in report.findings if f.control == "terraform.plan"]
    assert terraform[0].status == "fail" and terraform[0].resource == "terraform_data.item"
    assert "[converge: harden apply --root account]" in terraform[0].message
    assert report.exit_code() == 1
    tf.apply(tf.plan().plan_file)
    clean = drift_report(tf, lambda: _report("pass"), "account")
    assert [f.status for f in clean.findings if f.control == "terraform.plan"] == ["pass"]
    assert clean.exit_code() == 0
