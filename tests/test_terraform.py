"""The Terraform runner against the real bundled Terraform, on a provider-free fixture."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from provisioner.terraform import (BinaryEngine, PlanSummary, ResourceChange, Terraform, TerraformError,
                                   diagnostics, engine_from, summarize_plan)

FIXTURE = Path(__file__).parent / "fixtures" / "terraform_data"


@pytest.fixture()
def workdir(tmp_path):
    shutil.copytree(FIXTURE, tmp_path / "root")
    return tmp_path / "root"


def test_init_plan_apply_outputs_and_drift(workdir):
    lines: list[str] = []
    tf = Terraform(workdir, on_line=lines.append)
    tf.init()
    plan = tf.plan()
    assert plan.has_changes and plan.plan_file.is_file()
    assert plan.summary.to_dict()["add"] == 1
    assert [c.address for c in plan.summary.changes] == ["terraform_data.item"]
    tf.apply(plan.plan_file)
    assert any("Apply complete" in line for line in lines)  # progress reached the sink

    outputs = tf.outputs()
    assert outputs == {"name": "one", "token": "(sensitive)"}  # typed values, secret masked

    assert tf.drift() is False  # re-plan: nothing to do (exit 0)
    (workdir / "terraform.tfvars").write_text('name = "two"\n')
    assert tf.drift() is True  # a changed input is drift (exit 2)
    changed = tf.plan()
    assert changed.summary.to_dict()["change"] == 1


def test_syntax_error_is_one_clear_line(workdir):
    (workdir / "broken.tf").write_text('resource "terraform_data" "x" {\n  nope = 1\n}\n')
    tf = Terraform(workdir)
    tf.init()
    with pytest.raises(TerraformError) as info:
        tf.plan()
    message = str(info.value)
    assert "\n" not in message
    assert 'broken.tf:2: Unsupported argument: An argument named "nope" is not expected here.' in message


def test_apply_without_saved_plan_is_refused(workdir):
    tf = Terraform(workdir)
    with pytest.raises(TerraformError, match="no saved plan"):
        tf.apply()


def test_missing_directory_and_empty_directory(tmp_path):
    with pytest.raises(TerraformError, match="no such directory"):
        Terraform(tmp_path / "nope")
    with pytest.raises(TerraformError, match="no Terraform files"):
        Terraform(tmp_path)


def test_external_binary_that_does_not_exist(monkeypatch):
    with pytest.raises(TerraformError, match="terraform binary not found: /opt/nowhere/terraform"):
        engine_from("/opt/nowhere/terraform")
    monkeypatch.setenv("HARDEN_TERRAFORM_BIN", "definitely-not-a-terraform-binary")
    with pytest.raises(TerraformError, match="not found"):
        engine_from()


def test_external_binary_engine_runs_a_real_executable(workdir, tmp_path):
    # A stand-in `terraform` that records its argv: proves the binary path is what gets run,
    # with the same arguments the bundled engine receives.
    fake = tmp_path / "tofu"
    fake.write_text('#!/bin/sh\necho "$@" > "$(dirname "$0")/argv"\necho "OpenTofu v1.9.0"\n')
    fake.chmod(0o755)
    engine = BinaryEngine(str(fake))
    done = engine.run(["version"], workdir)
    assert done.retcode == 0 and "OpenTofu" in done.stdout
    assert (tmp_path / "argv").read_text().strip() == "version"
    fake.chmod(0o644)
    with pytest.raises(TerraformError, match="not executable"):
        BinaryEngine(str(fake))


def test_diagnostics_parsing():
    stderr = ("\nError: Unsupported argument\n\n  on main.tf line 3, in resource \"x\" \"y\":\n"
              "   3:   foo = 1\n\nAn argument named \"foo\" is not expected here.\n\n"
              "Error: Missing required argument\n\n  on other.tf line 9:\n   9: resource \"a\" \"b\" {\n\n"
              "The argument \"bar\" is required.\n")
    assert diagnostics(stderr) == [
        'main.tf:3: Unsupported argument: An argument named "foo" is not expected here.',
        'other.tf:9: Missing required argument: The argument "bar" is required.',
    ]


def test_plan_summary_actions_and_destructive_guard():
    plan = {"resource_changes": [
        {"address": "module.cloudtrail.aws_cloudtrail.this", "type": "aws_cloudtrail", "module_address": "module.cloudtrail",
         "change": {"actions": ["delete", "create"]}},
        {"address": "aws_sns_topic.t", "type": "aws_sns_topic", "change": {"actions": ["update"]}},
        {"address": "aws_kms_key.k", "type": "aws_kms_key", "change": {"actions": ["delete"]}},
        {"address": "data.aws_vpcs.all", "type": "aws_vpcs", "change": {"actions": ["read"]}},
        {"address": "aws_flow_log.f", "type": "aws_flow_log", "change": {"actions": ["no-op"]}},
        {"address": "aws_flow_log.g", "type": "aws_flow_log", "change": {"actions": ["create"]}},
    ]}
    summary = summarize_plan(plan)
    assert summary.to_dict()["add"] == 1 and summary.to_dict()["replace"] == 1
    assert summary.to_dict()["destroy"] == 1 and summary.to_dict()["change"] == 1
    assert {c.address for c in summary.destructive()} == {"module.cloudtrail.aws_cloudtrail.this", "aws_kms_key.k"}
    assert PlanSummary([ResourceChange("aws_flow_log.g", "aws_flow_log", "", "delete")]).destructive() == []
