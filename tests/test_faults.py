"""Faults injected by the loopback proxy (tests/faultproxy.py) in front of the emulator: a hung
call costs seconds, a run is bounded, and nothing reports "clean" about what it could not see.
Each test here checks a promise of the README's "Failure behaviour" section."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from provisioner import cli
from provisioner.aws import AwsSession, Timeouts
from provisioner.baseline import parse_baseline
from provisioner.eip import run_release
from provisioner.migrate import MigrateOptions, run_migration
from provisioner.remediate import run_remediation
from provisioner.respond import respond
from provisioner.verify import run_verify

HARDEN = [sys.executable, "-m", "provisioner.cli"]
REGIONS = ["us-east-1", "eu-west-1"]
# Controls the plain emulator fully supports, across three services of the region.
CONTROLS = ["flow_logs", "ebs.unencrypted_volumes", "eip.unassociated", "config.recorder"]


def _baseline(regions=REGIONS):
    return parse_baseline({"regions": regions, "home_region": regions[0]})


def _session(**timeouts) -> AwsSession:
    return AwsSession(region="us-east-1", max_attempts=3, timeouts=Timeouts(**timeouts))


def _config(tmp_path):
    cfg = tmp_path / "harden.toml"
    cfg.write_text('home_region = "us-east-1"\nregions = ["us-east-1", "eu-west-1"]\n')
    return cfg


def _in_process(args: list[str], tmp_path, **env):
    """The CLI in-process (typer's runner): for what does not need a process of its own."""
    return CliRunner().invoke(cli.app, [*args, "-c", str(_config(tmp_path))], env=env)


def _harden(args: list[str], tmp_path, **env) -> subprocess.CompletedProcess:
    """The CLI in a process of its own: for what must show how the process itself ends."""
    return subprocess.run(HARDEN + [*args, "-c", str(_config(tmp_path))], capture_output=True, text=True,
                          timeout=120, env={**os.environ, **env})


# -- a hung call -----------------------------------------------------------------------------------

def _warm(aws) -> None:
    # The emulator builds a region's EC2 backend on first use (a second or two): not a hang.
    for region in REGIONS:
        aws.client("ec2", region).describe_vpcs()


def test_a_hung_call_makes_its_region_error_at_once_and_verify_exits_3_in_seconds(aws, fault_proxy, tmp_path):
    # The case: one DescribeFlowLogs never answers. With the default read timeout (20 s)
    # verify ends in about 20 s; here HARDEN_READ_TIMEOUT=3 keeps the test short.
    _warm(aws)
    fault_proxy.add("hang", action="DescribeFlowLogs", region="eu-west-1")
    out = tmp_path / "report.json"
    started = time.monotonic()
    result = _in_process(["verify", "--controls", ",".join(CONTROLS), "--format", "json", "--output", str(out)],
                         tmp_path, HARDEN_READ_TIMEOUT="3")
    elapsed = time.monotonic() - started
    assert result.exit_code == 3, result.stderr
    assert elapsed < 30, elapsed
    findings = json.loads(out.read_text())["findings"]
    west = [f for f in findings if f["region"] == "eu-west-1"]
    # Every check of the region is an error at once, the ones after the hung call included...
    assert sorted(f["control"] for f in west) == sorted(
        ["flow_logs.all_vpcs", "ebs.unencrypted_volumes", "eip.unassociated", "config.recorder"])
    assert all(f["status"] == "error" and "region unreachable: eu-west-1" in f["message"] for f in west), west
    assert {f["status"] for f in findings if f["region"] == "us-east-1"} <= {"pass", "fail"}
    # ...and the hung call was sent once: no retry waited out the timeout again.
    assert fault_proxy.count()[("ec2", "DescribeFlowLogs", "hang")] == 1


def test_the_run_timeout_bounds_verify_even_when_a_call_outlives_the_read_timeout(aws, fault_proxy, tmp_path):
    # A read timeout of 60 s would let the hung call block; the run's own bound (6 s) ends the run,
    # names every control of the unfinished region, and the process exits without waiting for it.
    _warm(aws)
    fault_proxy.add("hang", action="DescribeFlowLogs", region="eu-west-1")
    started = time.monotonic()
    proc = _harden(["verify", "--controls", ",".join(CONTROLS), "--format", "json"], tmp_path,
                   HARDEN_READ_TIMEOUT="60", HARDEN_RUN_TIMEOUT="6")
    elapsed = time.monotonic() - started
    assert proc.returncode == 3, proc.stderr
    assert elapsed < 30, elapsed
    findings = json.loads(proc.stdout)["findings"]
    west = [f for f in findings if f["region"] == "eu-west-1"]
    assert sorted(f["control"] for f in west) == sorted(
        ["flow_logs.all_vpcs", "ebs.unencrypted_volumes", "eip.unassociated", "config.recorder"])
    assert all(f["status"] == "error" and "time limit of 6s" in f["message"] for f in west)
    assert {f["status"] for f in findings if f["region"] == "us-east-1"} <= {"pass", "fail"}


@pytest.mark.parametrize("fault", ["deny", "reset"])  # throttling: tests/test_verify.py
def test_other_faults_in_one_call_leave_the_other_checks_and_regions_alone(aws, fault_proxy, fault):
    # Persistent faults on one call of one region: only the check that makes it is an error.
    fault_proxy.add(fault, action="DescribeFlowLogs", region="eu-west-1")
    report = run_verify(_session(), _baseline(), controls=CONTROLS)
    errors = {(f.control, f.region) for f in report.findings if f.status == "error"}
    assert errors == {("flow_logs.all_vpcs", "eu-west-1")}, report.findings
    assert report.exit_code() == 3
    assert not aws.unreachable()


@pytest.mark.parametrize("value", ["0", "-1", "abc", "nan", "inf", "1e9"])
def test_a_bad_timeout_setting_is_refused(value):
    with pytest.raises(ValueError, match="HARDEN_READ_TIMEOUT"):
        Timeouts.from_env({"HARDEN_READ_TIMEOUT": value})


def test_a_bad_timeout_setting_is_a_usage_error(tmp_path):
    result = _in_process(["verify"], tmp_path, HARDEN_RUN_TIMEOUT="soon")
    assert result.exit_code == 2 and result.exception is not None and isinstance(result.exception, SystemExit)
    assert result.stderr.count("\n") == 1 and "HARDEN_RUN_TIMEOUT='soon'" in result.stderr


def test_timeout_defaults_and_overrides():
    assert Timeouts.from_env({}) == Timeouts(connect=5, read=20, run=300)
    assert Timeouts.from_env({"HARDEN_CONNECT_TIMEOUT": "1.5", "HARDEN_RUN_TIMEOUT": " 90 "}) == \
        Timeouts(connect=1.5, read=20, run=90)


# -- remediate never says clean about what it could not see ---------------------------------------

def test_remediate_with_a_region_it_cannot_read_exits_3_and_names_it(aws, fault_proxy, tmp_path):
    # us-east-1 is clean (fixed first); eu-west-1's EC2 is denied. Before: "nothing to fix: every
    # fixable control passes", exit 0.
    assert run_remediation(aws, _baseline(["us-east-1"]), controls=["flow_logs"], apply=True).exit_code() == 0
    fault_proxy.add("deny", service="ec2", region="eu-west-1")

    run = run_remediation(aws, _baseline(), controls=["flow_logs"])
    assert run.actions == [] and run.exit_code() == 3
    assert run.unchecked_summary().startswith("could not check flow_logs.all_vpcs in eu-west-1 (access denied")

    assert [(f["control"], f["region"]) for f in run.to_dict()["unchecked"]] == [("flow_logs.all_vpcs", "eu-west-1")]

    result = _in_process(["remediate", "--controls", "flow_logs"], tmp_path)
    assert result.exit_code == 3, result.stdout + result.stderr
    assert "every fixable control passes" not in result.stdout
    assert "could not check flow_logs.all_vpcs in eu-west-1" in " ".join(result.stdout.split())


def test_remediate_apply_whose_after_verify_cannot_read_exits_3(aws, fault_proxy):
    baseline = _baseline(["eu-west-1"])

    def deny_from_now_on(_action) -> None:  # the check after --apply reads the VPCs again
        if not fault_proxy.rules:
            fault_proxy.add("deny", action="DescribeVpcs", region="eu-west-1")

    run = run_remediation(aws, baseline, controls=["flow_logs"], apply=True, progress=deny_from_now_on)
    assert run.results and {r.status for r in run.results} == {"applied"}
    assert run.after is not None and run.after.exit_code() == 3
    assert run.exit_code() == 3
    assert "could not check flow_logs.all_vpcs in eu-west-1" in run.unchecked_summary()


# -- one region's failure does not abort the others --------------------------------------------------

def test_eip_release_names_the_region_it_cannot_read_and_releases_in_the_others(aws, fault_proxy):
    east = aws.client("ec2", "us-east-1").allocate_address(Domain="vpc")
    west = aws.client("ec2", "eu-west-1").allocate_address(Domain="vpc")
    fault_proxy.add("deny", action="DescribeAddresses", region="eu-west-1")

    run = run_release(aws, _baseline(), apply=True)
    assert list(run.errors) == ["eu-west-1"]
    assert run.errors["eu-west-1"].startswith("access denied calling DescribeAddresses")
    assert [c.allocation_id for c in run.released] == [east["AllocationId"]]
    assert run.exit_code() == 3
    fault_proxy.rules.clear()
    assert [a["AllocationId"] for a in aws.client("ec2", "eu-west-1").describe_addresses()["Addresses"]] == \
        [west["AllocationId"]]


def test_ebs_migrate_names_the_region_it_cannot_read_and_plans_the_others(aws, fault_proxy):
    ec2 = aws.client("ec2", "us-east-1")
    instance = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, InstanceType="t3.micro",
                                 Placement={"AvailabilityZone": "us-east-1a"})["Instances"][0]["InstanceId"]
    key = aws.client("kms", "us-east-1").create_key(Description="ebs")["KeyMetadata"]["Arn"]
    baseline = parse_baseline({"regions": REGIONS, "home_region": "us-east-1",
                               "ebs": {"kms_key_arns": {"us-east-1": key}}})
    fault_proxy.add("deny", action="DescribeVolumes", region="eu-west-1")

    report = run_migration(aws, baseline, options=MigrateOptions(apply=False, delay=0.01, timeout=5))
    failed = [r for r in report.results if r.status == "failed"]
    assert [r.region for r in failed] == ["eu-west-1"]
    assert failed[0].message.startswith("eu-west-1: could not read: access denied calling DescribeVolumes")
    assert {(r.region, r.instance_id) for r in report.results if r.status == "planned"} == {("us-east-1", instance)}
    assert report.exit_code() == 3


def test_respond_keeps_the_steps_it_took_when_the_regions_cannot_be_listed(aws, fault_proxy):
    iam = aws.client("iam")
    iam.create_user(UserName="mallory")
    key = iam.create_access_key(UserName="mallory")["AccessKey"]["AccessKeyId"]
    fault_proxy.add("deny", action="DescribeRegions")  # every region of the account is looked up

    resp = respond(aws, parse_baseline({}), "arn:aws:iam::123456789012:user/mallory", apply=True)
    assert resp.results and {r.status for r in resp.results} == {"applied"}
    assert iam.list_access_keys(UserName="mallory")["AccessKeyMetadata"][0]["Status"] == "Inactive", key
    assert list(resp.lookup_errors) == ["every region"]
    assert "access denied calling DescribeRegions" in resp.lookup_errors["every region"]
    assert resp.exit_code() == 0  # the containment is done; what is unknown is reported beside it


def test_respond_tries_every_containment_step_after_one_times_out(aws, fault_proxy):
    # The quarantine policy's PutUserPolicy never answers (read timeout 1 s), which marks IAM's
    # global endpoint unreachable. Before, the next step failed at once untried and the access
    # key stayed active; now each step is tried once (aws.must_try), and the exit says 3.
    iam = aws.client("iam")
    iam.create_user(UserName="mallory")
    iam.create_access_key(UserName="mallory")
    fault_proxy.add("hang", action="PutUserPolicy", times=1)

    resp = respond(_session(read=1), _baseline(["us-east-1"]), "arn:aws:iam::123456789012:user/mallory", apply=True)
    status = {r.action.calls[0]: r.status for r in resp.results}
    assert status == {"iam:PutUserPolicy": "failed", "iam:UpdateAccessKey": "applied"}, resp.results
    assert iam.list_access_keys(UserName="mallory")["AccessKeyMetadata"][0]["Status"] == "Inactive"
    assert resp.exit_code() == 3


def test_every_failure_promise_of_the_readme_names_a_test_that_exists():
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Failure behaviour", 1)[1].split("\n## ", 1)[0]
    cited = re.findall(r"`(test_\w+\.py)::(test_\w+)`", section)
    assert len(cited) >= 15, cited
    for filename, test in cited:
        source = (Path(__file__).resolve().parent / filename).read_text(encoding="utf-8")
        assert f"def {test}(" in source, f"README cites {filename}::{test}, which does not exist"


def test_a_report_that_cannot_be_written_leaves_the_previous_one_and_exits_3(aws, tmp_path):
    # A directory where harden stages the report: the write fails like a full disk would.
    report = tmp_path / "report.json"
    report.write_text("previous report\n")
    (tmp_path / ".report.json.harden-partial").mkdir()
    result = _in_process(["verify", "--controls", "flow_logs", "--regions", "us-east-1", "--format", "json",
                          "--output", str(report)], tmp_path)
    assert result.exit_code == 3, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [f"error: --output {report}: cannot write the report: Is a directory"], lines
    assert report.read_text() == "previous report\n"


def test_a_report_to_a_symlink_or_a_pipe_goes_where_it_points_and_replaces_neither(aws, tmp_path):
    # The report is renamed into place; before, the rename replaced what --output named: a
    # symlink became a file of its own (the file it pointed at kept the old report), and a pipe
    # or a device became a regular file (as root: `-o /dev/stdout` or `/dev/null` replaced in /dev).
    import threading

    args = ["verify", "--controls", "flow_logs", "--regions", "us-east-1", "--format", "json", "--output"]
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "report.json").write_text("previous report\n")
    link = tmp_path / "report.json"
    link.symlink_to(shared / "report.json")
    assert _in_process([*args, str(link)], tmp_path).exit_code == 1
    assert link.is_symlink() and json.loads((shared / "report.json").read_text())["findings"]

    fifo = tmp_path / "report.pipe"
    os.mkfifo(fifo)
    received: list[str] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_text()), daemon=True)
    reader.start()
    try:
        result = _in_process([*args, str(fifo)], tmp_path)
        reader.join(timeout=30)
    finally:
        if reader.is_alive():  # the pipe was replaced: let the reader's open return
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    assert result.exit_code == 1, result.stderr
    assert fifo.is_fifo()
    assert received and json.loads(received[0])["findings"]
