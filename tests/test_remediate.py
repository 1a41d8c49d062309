"""The remediation engine and command, on flow_logs.all_vpcs (the other fixes have their own
tests beside their checks): dry run changes nothing, --apply converges, a second run is a no-op."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from botocore.stub import ANY

from provisioner.baseline import parse_baseline
from provisioner.remediate import Action, execute, run_remediation
from tests.stubbing import OperationStubber

REGION = "eu-west-1"
HARDEN = [sys.executable, "-m", "provisioner.cli"]


def _baseline(**flow_logs):
    return parse_baseline({"regions": [REGION], "home_region": REGION, "flow_logs": flow_logs})


def _flow_state(aws) -> list:
    return sorted((fl["ResourceId"], fl["TrafficType"]) for fl in aws.client("ec2", REGION).describe_flow_logs()["FlowLogs"])


def test_dry_run_changes_nothing_then_apply_converges_then_nothing_to_do(aws):
    ec2 = aws.client("ec2", REGION)
    ec2.create_vpc(CidrBlock="10.9.0.0/16")
    before = _flow_state(aws)
    baseline = _baseline()

    dry = run_remediation(aws, baseline, controls=["flow_logs"])
    assert dry.actions and all(r.status == "planned" for r in dry.results)
    assert _flow_state(aws) == before  # nothing changed
    assert dry.exit_code() == 1

    applied = run_remediation(aws, baseline, controls=["flow_logs"], apply=True)
    assert {r.status for r in applied.results} == {"applied"}
    assert applied.after is not None and applied.after.exit_code() == 0
    logs = aws.client("ec2", REGION).describe_flow_logs()["FlowLogs"]
    assert len(logs) == len(dry.actions) and all(fl["TrafficType"] == "ALL" for fl in logs)
    assert {fl["LogGroupName"] for fl in logs} == {"/aws/vpc-flow-logs/harden"}
    role = aws.client("iam").get_role(RoleName=f"harden-flow-logs-{REGION}")["Role"]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "vpc-flow-logs.amazonaws.com"}

    again = run_remediation(aws, baseline, controls=["flow_logs"], apply=True)
    assert again.actions == [] and again.exit_code() == 0


def test_s3_destination_with_prefix(aws):
    # The emulator rejects an S3 destination with a key prefix (AWS accepts it), so CreateFlowLogs
    # alone is answered by botocore's Stubber, which checks the request against the real model.
    ec2 = aws.client("ec2", REGION)
    vpc_ids = sorted(v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"])
    with OperationStubber(ec2, "CreateFlowLogs") as stub:
        for i, vpc_id in enumerate(vpc_ids):
            stub.add_response("create_flow_logs", {"FlowLogIds": [f"fl-{i:08x}"]}, expected_params={
                "ResourceIds": [vpc_id], "ResourceType": "VPC", "TrafficType": "ALL", "LogDestinationType": "s3",
                "LogDestination": f"arn:aws:s3:::harden-logs-123456789012-{REGION}/flow-logs/",
                "MaxAggregationInterval": 600,
                "ClientToken": ANY,  # a fresh one per action (tests/test_lost_answers.py)
                # The module's destination_options, not the API's daily partitions.
                "DestinationOptions": {"FileFormat": "plain-text", "HiveCompatiblePartitions": False,
                                       "PerHourPartition": True},
                "TagSpecifications": [{"ResourceType": "vpc-flow-log", "Tags": [
                    {"Key": "ManagedBy", "Value": "harden"}, {"Key": "Name", "Value": f"harden-flow-logs-{vpc_id}"}]}],
            })
        run = run_remediation(aws, _baseline(destination="s3"), controls=["flow_logs"], apply=True)
        stub.assert_no_pending_responses()
    assert [r.status for r in run.results] == ["applied"] * len(vpc_ids)
    assert "arn:aws:s3:::harden-logs-123456789012-eu-west-1/flow-logs/" in run.results[0].action.description
    # The log bucket did not exist: the first action created it, as the cloudtrail module would.
    assert "created first with its key alias/harden-cloudtrail" in run.results[0].action.description
    s3 = aws.client("s3", REGION)
    assert s3.get_bucket_versioning(Bucket=f"harden-logs-123456789012-{REGION}")["Status"] == "Enabled"


def test_a_family_switched_off_in_the_baseline_gets_no_fix(aws):
    # Drift on every fixable regional family: a default VPC without flow logs, no AWS Config, a
    # running instance without a CPU alarm.
    aws.client("ec2", REGION).run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, InstanceType="t3.micro")
    controls = ["flow_logs", "config", "alarms.cpu"]
    switched_on = run_remediation(aws, _baseline(), controls=controls)
    assert {a.control.split(".")[0] for a in switched_on.actions} == {"flow_logs", "config", "alarms"}

    off = {family: {"enabled": False} for family in ("flow_logs", "config", "alarms")}
    baseline = parse_baseline({"regions": [REGION], "home_region": REGION, **off})
    run = run_remediation(aws, baseline, controls=controls, apply=True)
    assert {f.status for f in run.report.findings} == {"skipped"}
    assert run.actions == [] and run.plan_errors == [] and run.exit_code() == 0


def test_a_failed_action_is_reported_and_the_others_go_on():
    def boom() -> dict:
        raise RuntimeError("the API said no")

    actions = [Action("c", "r", "a", "first", [], boom), Action("c", "r", "b", "second", [], lambda: {"message": "ok"})]
    results = execute(actions, apply=True)
    assert [r.status for r in results] == ["failed", "applied"]
    assert "the API said no" in results[0].message and results[1].message == "ok"
    assert [r.status for r in execute(actions, apply=False)] == ["planned", "planned"]


def test_cli_dry_run_json_and_unknown_control(aws, emulator, tmp_path):
    aws.client("ec2", REGION).create_vpc(CidrBlock="10.8.0.0/16")
    cfg = tmp_path / "harden.toml"
    cfg.write_text(f'home_region = "{REGION}"\nregions = ["{REGION}"]\n')
    env = {**os.environ, "AWS_ENDPOINT_URL": emulator}
    proc = subprocess.run(HARDEN + ["remediate", "-c", str(cfg), "--controls", "flow_logs", "--format", "json"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["summary"]["planned"] >= 1 and doc["summary"]["applied"] == 0
    assert all(a["status"] == "planned" and a["control"] == "flow_logs.all_vpcs" for a in doc["actions"])
    assert not aws.client("ec2", REGION).describe_flow_logs()["FlowLogs"]
    bad = subprocess.run(HARDEN + ["remediate", "-c", str(cfg), "--controls", "eip.unassociated"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert bad.returncode == 2 and "none of the selected controls has a fix" in bad.stderr
