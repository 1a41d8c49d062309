"""The verify engine and command: faults, exit codes, output formats (against the emulator)."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from provisioner.baseline import parse_baseline
from provisioner.controls import CONTROL_IDS, REGISTRY, disabled_reason, load_controls
from provisioner.findings import GLOBAL, Finding, Report
from provisioner.verify import parse_since, run_verify

REGIONS = ["us-east-1", "eu-west-1"]
HARDEN = [sys.executable, "-m", "provisioner.cli"]


def _baseline():
    return parse_baseline({"regions": REGIONS, "home_region": "us-east-1"})


def test_access_denied_region_is_error_and_others_still_run(aws, fault_proxy):
    # EC2 denied in one region by the fault proxy (tests/faultproxy.py): botocore parses AWS's answer.
    fault_proxy.add("deny", service="ec2", region="eu-west-1")
    report = run_verify(aws, _baseline(), controls=["flow_logs"])
    by_region = {r: [f for f in report.findings if f.region == r] for r in REGIONS}
    assert by_region["eu-west-1"] and all(f.status == "error" for f in by_region["eu-west-1"])
    assert "access denied" in by_region["eu-west-1"][0].message
    assert "UnauthorizedOperation" in by_region["eu-west-1"][0].message
    assert by_region["us-east-1"] and all(f.status != "error" for f in by_region["us-east-1"])
    assert report.exit_code() == 3


def test_throttling_is_retried(aws, fault_proxy):
    fault_proxy.add("throttle", action="DescribeVpcs", region="us-east-1", times=2)  # then let it through
    report = run_verify(aws, _baseline(), regions=["us-east-1"], controls=["flow_logs"])
    assert fault_proxy.count()[("ec2", "DescribeVpcs", "throttle")] == 2
    assert fault_proxy.count()[("ec2", "DescribeVpcs", "ok")] == 1
    assert report.findings and all(f.status in ("pass", "fail") for f in report.findings)
    assert report.api_calls["ec2:DescribeVpcs"] == 1  # retries are not separate calls


def test_unreachable_region_is_error_quickly(aws, monkeypatch):
    import botocore.exceptions

    attempts = []

    def unreachable(request, **_kwargs):
        attempts.append(request.url)
        raise botocore.exceptions.EndpointConnectionError(endpoint_url=request.url)

    # What botocore raises when nothing listens or DNS fails (registered after harden's own guard).
    aws.client("ec2", "eu-west-1").meta.events.register("before-send", unreachable)
    report = run_verify(aws, _baseline(), controls=["flow_logs"])
    errors = [f for f in report.findings if f.region == "eu-west-1"]
    assert errors and all(f.status == "error" and "unreachable" in f.message for f in errors)
    assert len(attempts) == 1  # marked unreachable at once: no retry waits for it again


# -- families switched off in the baseline: one rule, in the engine --------------------------------

ALL_OFF = {family: {"enabled": False} for family in ("flow_logs", "config", "scp", "ebs", "alarms", "network")}


def test_disabled_reason_follows_each_familys_switch():
    on = parse_baseline({})
    off = parse_baseline(ALL_OFF)
    assert all(disabled_reason(on, cid) is None for cid in CONTROL_IDS)
    disabled = {cid for cid in CONTROL_IDS if disabled_reason(off, cid)}
    no_switch = {cid for cid in CONTROL_IDS if cid.startswith(("cloudtrail.", "eip.", "ec2."))}
    # ebs.unencrypted_volumes is checked whatever ebs.enabled says (no Terraform behind it).
    assert disabled == set(CONTROL_IDS) - no_switch - {"ebs.unencrypted_volumes"}
    assert disabled_reason(off, "config.recorder") == (
        "config.enabled = false in the baseline: AWS Config is not part of the desired state")
    alarms_off = parse_baseline({"alarms": {"enabled": False}})
    assert [cid for cid in CONTROL_IDS if disabled_reason(alarms_off, cid)] == ["alarms.cpu", "alarms.allocate_address"]


def test_a_disabled_control_is_one_skipped_finding_per_region_and_its_check_never_runs(aws, monkeypatch):
    load_controls()

    def must_not_run(ctx):
        raise AssertionError(f"{ctx.control_id} ran in {ctx.region}")

    disabled = [cid for cid in CONTROL_IDS if disabled_reason(parse_baseline(ALL_OFF), cid)]
    for cid in disabled:
        monkeypatch.setitem(REGISTRY, cid, dataclasses.replace(REGISTRY[cid], check=must_not_run))
    baseline = parse_baseline({"regions": REGIONS, "home_region": "us-east-1", **ALL_OFF})
    report = run_verify(aws, baseline, controls=disabled)

    expected = {(cid, region) for cid in disabled for region in REGIONS if REGISTRY[cid].scope == "regional"} \
        | {(cid, GLOBAL) for cid in disabled if REGISTRY[cid].scope == "organization"}
    assert sorted((f.control, f.region) for f in report.findings) == sorted(expected)  # one each, no more
    for f in report.findings:
        family = f.control.split(".")[0]
        assert f.status == "skipped", f
        assert f.message == disabled_reason(baseline, f.control)
        assert f.resource == ("organization" if f.region == GLOBAL else f.region)
        assert f.evidence == {f"{family}_enabled": False}
    assert report.exit_code() == 0


@pytest.mark.parametrize("text", ["7", "7x", "-1d", "0d", "91d", "", "d7"])
def test_malformed_since(text):
    with pytest.raises(ValueError, match="--since"):
        parse_since(text)


def test_since_forms():
    assert parse_since("30m").total_seconds() == 1800
    assert parse_since("2w").days == 14


def _report() -> Report:
    return Report(account="123456789012", regions=REGIONS, findings=[
        Finding("flow_logs.all_vpcs", "us-east-1", "vpc-1", "fail", "no flow log", {"flow_logs": []}),
        Finding("flow_logs.all_vpcs", "eu-west-1", "vpc-2", "pass", "ok <&> \"quoted\"", {"a": 1}),
        Finding("scp.allocate_address", "global", "r-abcd", "error", "access denied", {}),
        Finding("scp.baseline_protection", "global", "r-abcd", "skipped", "protect_baseline is false", {}),
    ])


def test_json_contract():
    doc = json.loads(_report().to_json())
    assert set(doc) == {"schema_version", "tool", "generated_at", "account", "regions", "controls",
                        "findings", "summary"}
    assert doc["account"] == "123456789012" and doc["regions"] == REGIONS
    assert doc["controls"]["flow_logs.all_vpcs"]["severity"] == "medium"
    for f in doc["findings"]:
        assert set(f) == {"control", "region", "resource", "status", "message", "evidence", "severity",
                          "suppression"}
        assert f["status"] in ("pass", "fail", "error", "skipped", "suppressed")
        assert f["severity"] in ("critical", "high", "medium", "low")
    assert doc["summary"]["fail"] == 1 and doc["summary"]["error"] == 1 and doc["summary"]["total"] == 4


def test_junit_has_one_testcase_per_finding():
    root = ET.fromstring(_report().to_junit())
    cases = root.findall(".//testcase")
    assert len(cases) == 4
    assert len(root.findall(".//failure")) == 1 and len(root.findall(".//error")) == 1
    assert len(root.findall(".//skipped")) == 1


def test_sarif_has_one_result_per_failure_by_default_and_per_finding_on_request():
    doc = json.loads(_report().to_sarif())
    assert [r["ruleId"] for r in doc["runs"][0]["results"]] == ["flow_logs.all_vpcs"]
    doc = json.loads(_report().to_sarif(statuses=("fail", "error", "skipped", "pass")))
    assert doc["version"] == "2.1.0"
    run = doc["runs"][0]
    assert len(run["results"]) == 4
    rule_ids = [r["id"] for r in run["tool"]["driver"]["rules"]]
    for result in run["results"]:
        assert rule_ids[result["ruleIndex"]] == result["ruleId"]
    # SARIF 2.1.0 3.27.10: only kind "fail" may carry a level other than "none".
    assert {(r["kind"], r["level"]) for r in run["results"]} == {
        ("fail", "error"), ("review", "none"), ("notApplicable", "none"), ("pass", "none")}


def test_exit_codes():
    r = _report()
    assert r.exit_code() == 3
    r.findings = [f for f in r.findings if f.status != "error"]
    assert r.exit_code() == 1
    r.findings = [f for f in r.findings if f.status != "fail"]
    assert r.exit_code() == 0


def _cli(args, emulator):
    env = {**os.environ, "AWS_ENDPOINT_URL": emulator, "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing"}
    return subprocess.run(HARDEN + args, capture_output=True, text=True, timeout=300, env=env)


def test_cli_verify_json_and_exit_code(aws, emulator, tmp_path):
    out = tmp_path / "report.json"
    proc = _cli(["verify", "--controls", "flow_logs", "--regions", "us-east-1,eu-west-1",
                 "--format", "json", "--output", str(out)], emulator)
    assert proc.returncode == 1, proc.stderr  # default VPCs have no flow logs: drift
    doc = json.loads(out.read_text())
    assert sorted(doc["regions"]) == sorted(REGIONS)
    assert {f["region"] for f in doc["findings"]} == set(REGIONS)
    assert all(f["control"] == "flow_logs.all_vpcs" for f in doc["findings"])


@pytest.mark.parametrize(("args", "expected"), [
    (["verify", "--controls", "nope.none"], "unknown control 'nope.none'"),
    (["verify", "--since", "seven days"], "--since 'seven days'"),
])
def test_cli_usage_errors_exit_2(args, expected, emulator):
    proc = _cli(args, emulator)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert expected in proc.stderr


def test_all_enabled_regions_stay_in_the_callers_partition(aws):
    regions = aws.enabled_regions()
    assert "us-east-1" in regions and len(regions) > 10
    assert not [r for r in regions if r.startswith(("cn-", "us-gov-"))]
