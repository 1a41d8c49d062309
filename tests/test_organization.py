"""verify --organization-role: every member account through an assumed role (the emulator keeps
each assumed account's resources apart, as AWS does)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import boto3

from provisioner.aws import AwsSession
from provisioner.baseline import parse_baseline
from provisioner.findings import Report
from provisioner.organization import verify_organization

REGION = "us-east-1"
HARDEN = [sys.executable, "-m", "provisioner.cli"]


def _member_session(account_id: str) -> boto3.Session:
    creds = boto3.client("sts", region_name=REGION).assume_role(
        RoleArn=f"arn:aws:iam::{account_id}:role/harden-audit", RoleSessionName="test-setup")["Credentials"]
    return boto3.Session(aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                         aws_session_token=creds["SessionToken"], region_name=REGION)


def _organization(aws) -> tuple[str, str, str]:
    org = aws.client("organizations")
    org.create_organization(FeatureSet="ALL")
    for name in ("compliant", "drifted"):
        org.create_account(Email=f"{name}@example.com", AccountName=name)
    ids = {a["Name"]: a["Id"] for a in org.list_accounts()["Accounts"]}
    # The compliant member: every VPC of the region gets a flow log capturing ALL traffic.
    member = _member_session(ids["compliant"])
    ec2, s3 = member.client("ec2"), member.client("s3")
    s3.create_bucket(Bucket=f"flow-{ids['compliant']}")
    vpcs = [v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"]]
    ec2.create_flow_logs(ResourceIds=vpcs, ResourceType="VPC", TrafficType="ALL", LogDestinationType="s3",
                         LogDestination=f"arn:aws:s3:::flow-{ids['compliant']}")
    return org.describe_organization()["Organization"]["Id"], ids["compliant"], ids["drifted"]


def test_every_member_is_verified_and_scps_once(aws):
    org_id, compliant, drifted = _organization(aws)
    baseline = parse_baseline({"regions": [REGION], "home_region": REGION})
    result = verify_organization(aws, baseline, "harden-audit", controls=["flow_logs", "scp"])
    by_account = {r.account: r for r in result.reports}
    assert set(by_account) == {aws.account_id(), compliant, drifted}
    assert result.organization_id == org_id
    assert {f.status for f in by_account[compliant].findings} == {"pass"}
    assert {f.status for f in by_account[drifted].findings} == {"fail"}
    # The SCP controls run once, from the caller (members cannot call Organizations).
    assert any(f.control.startswith("scp.") for f in by_account[aws.account_id()].findings)
    assert not any(f.control.startswith("scp.") for f in by_account[drifted].findings)
    assert result.exit_code() == 1
    assert result.summary()["accounts"] == 3 and result.summary()["accounts_failing"] >= 1


def test_an_account_that_cannot_be_assumed_is_an_error_and_the_rest_run(aws):
    _, compliant, drifted = _organization(aws)

    def factory(account_id: str) -> AwsSession:
        if account_id == drifted:
            raise RuntimeError("AccessDenied: not authorized to perform sts:AssumeRole")
        return AwsSession(role_arn=f"arn:aws:iam::{account_id}:role/harden-audit", region=REGION)

    baseline = parse_baseline({"regions": [REGION], "home_region": REGION})
    result = verify_organization(aws, baseline, "harden-audit", controls=["flow_logs"],
                                 accounts=[compliant, drifted, "999999999999"], session_factory=factory)
    by_account = {r.account: r for r in result.reports}
    assert [f.status for f in by_account[drifted].findings] == ["error"]
    assert "sts:AssumeRole" in by_account[drifted].findings[0].message
    assert "not an active account" in by_account["999999999999"].findings[0].message
    assert {f.status for f in by_account[compliant].findings} == {"pass"}
    assert result.exit_code() == 3


def test_cli_organization_json(aws, emulator, tmp_path):
    _, compliant, drifted = _organization(aws)
    cfg = tmp_path / "harden.toml"
    cfg.write_text(f'home_region = "{REGION}"\nregions = ["{REGION}"]\n')
    env = {**os.environ, "AWS_ENDPOINT_URL": emulator}
    proc = subprocess.run(HARDEN + ["verify", "-c", str(cfg), "--controls", "flow_logs", "--organization-role",
                                    "harden-audit", "--format", "json"], capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    assert {a["account"] for a in doc["accounts"]} >= {compliant, drifted}
    for account in doc["accounts"]:
        assert set(account) == set(json.loads(Report(None, [], []).to_json()))  # each is the verify contract
    assert doc["schema_version"] and doc["tool"]["name"] == "harden" and doc["generated_at"]
    bad = subprocess.run(HARDEN + ["verify", "-c", str(cfg), "--accounts", "123"], capture_output=True, text=True,
                         env=env, timeout=120)
    assert bad.returncode == 2 and "--accounts needs --organization-role" in bad.stderr
