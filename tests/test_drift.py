"""harden drift tells one story: per resource, whether Terraform and the account disagree, whether
harden fixes it with boto3, and the command that converges it."""

from __future__ import annotations

import shutil
from pathlib import Path

from provisioner.adopt import Adoption, write_imports
from provisioner.bootstrap import drift_report
from provisioner.drift import converge_advice, terraform_findings, with_advice
from provisioner.findings import GLOBAL, Finding, Report
from provisioner.remediate import fixable_controls
from provisioner.terraform import PlanSummary, ResourceChange, Terraform

FIXTURE = Path(__file__).parent / "fixtures" / "terraform_data"


def test_each_planned_change_is_a_finding_in_its_region():
    summary = PlanSummary([
        ResourceChange('module.flow_logs["eu-west-1"].aws_flow_log.this["vpc-1"]', "aws_flow_log",
                       'module.flow_logs["eu-west-1"]', "import", True),
        ResourceChange("module.cloudtrail.aws_s3_bucket_policy.this", "aws_s3_bucket_policy", "module.cloudtrail",
                       "update", False),
        ResourceChange('module.alarms["us-east-1"].aws_sns_topic.alarms', "aws_sns_topic",
                       'module.alarms["us-east-1"]', "update", True)])
    imported, policy, topic = terraform_findings(summary, "account")
    assert (imported.region, imported.status) == ("eu-west-1", "fail")
    assert "not in Terraform's state: apply imports it unchanged" in imported.message
    assert policy.region == GLOBAL and "the plan would update it" in policy.message
    assert "imports it, then makes it an update" in topic.message
    assert all(f.evidence["converge"] == {"terraform": True, "boto3_fix": False,
                                          "command": "harden apply --root account"} for f in (imported, policy))
    [clean] = terraform_findings(PlanSummary([]), "account")
    assert clean.status == "pass"


def test_failing_controls_say_how_they_converge():
    fixable = set(fixable_controls())
    flow = converge_advice(Finding("flow_logs.all_vpcs", "eu-west-1", "vpc-1", "fail", "no flow log"), fixable)
    assert flow["boto3_fix"] and "harden remediate --controls flow_logs.all_vpcs --regions eu-west-1" in flow["command"]
    scp = converge_advice(Finding("scp.allocate_address", GLOBAL, "ou-1", "fail", "x"), fixable)
    assert "--regions" not in scp["command"]
    kms = converge_advice(Finding("cloudtrail.kms", "eu-west-1", "t", "fail", "x"), fixable)
    assert kms == {"boto3_fix": False, "terraform": True, "command": "harden apply"}
    eip = converge_advice(Finding("eip.unassociated", "us-east-1", "eipalloc-1", "fail", "x"), fixable)
    assert eip["command"].startswith("harden eip release --regions us-east-1")
    passed = Finding("cloudtrail.kms", "eu-west-1", "t", "pass", "ok")
    assert with_advice([passed], fixable) == [passed]  # only failures get advice


def test_drift_report_on_a_root_with_an_import_block(tmp_path):
    root = tmp_path / "account"
    shutil.copytree(FIXTURE, root)
    tf = Terraform(root)
    tf.init()
    write_imports(root, [Adoption("account", "terraform_data.item", "made-by-remediate", "")], set())
    failing = Report(account="123456789012", regions=["eu-west-1"], findings=[
        Finding("flow_logs.all_vpcs", "eu-west-1", "vpc-1", "fail", "no flow log")])
    report = drift_report(tf, lambda: failing, "account")
    by_control = {f.control: f for f in report.findings}
    assert by_control["terraform.plan"].resource == "terraform_data.item"
    # terraform_data imports with no input, and the configuration sets one: imported, then updated.
    assert by_control["terraform.plan"].evidence["importing"] is True
    assert "apply imports it, then makes it an update" in by_control["terraform.plan"].message
    assert by_control["flow_logs.all_vpcs"].evidence["converge"]["boto3_fix"] is True
    assert report.exit_code() == 1
