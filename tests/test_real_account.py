"""Issue 11: what the emulator cannot show. Each fix is asserted on the rendered HCL, parsed with
python-hcl2 (tests/hcl.py), for renderings of several baselines, so it stays fixed."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from provisioner.baseline import parse_baseline
from provisioner.cli import app
from provisioner.render import render
from tests.hcl import load_hcl

FAMILIES_WITH_KEYS = ("cloudtrail", "flow_logs", "ebs_encryption", "alarms")
# What `terraform destroy` must not remove by accident: the evidence and the keys that read it.
GUARDED = {
    "cloudtrail": {("aws_s3_bucket", "this"), ("aws_kms_key", "this"), ("aws_cloudwatch_log_group", "this")},
    "flow_logs": {("aws_kms_key", "this"), ("aws_cloudwatch_log_group", "this")},
    "ebs_encryption": {("aws_kms_key", "this")},
    "alarms": {("aws_kms_key", "topic")},
}


def _rendered(tmp_path: Path, config: dict, **options) -> Path:
    render(parse_baseline(config), tmp_path, fmt=False, **options)
    return tmp_path


def _prevent_destroy(body: dict):
    values = [block.get("prevent_destroy") for block in body.get("lifecycle", [])]
    return values[0] if values else None


# -- 11.5 AWS Config's role may check the log bucket -----------------------------------------------

def test_config_role_may_check_the_log_bucket_as_awss_guide_lists(tmp_path):
    account = load_hcl(_rendered(tmp_path, {}) / "account")
    statements = account["data"]["aws_iam_policy_document"]["config_delivery"]["statement"]
    on_bucket = [s for s in statements if s["resources"] == ["${module.cloudtrail.bucket_arn}"]]
    assert len(on_bucket) == 1
    assert sorted(on_bucket[0]["actions"]) == ["s3:GetBucketAcl", "s3:GetBucketLocation", "s3:ListBucket"]
    assert on_bucket[0].get("effect", "Allow") == "Allow"
    # Writes stay under Config's own prefix; nothing else on the bucket.
    writes = [s for s in statements if "s3:PutObject" in s["actions"]]
    assert [w["resources"] for w in writes] == [
        ["${module.cloudtrail.bucket_arn}/${local.config_key_prefix}/AWSLogs/${local.account_id}/Config/*"]]


# -- 11.9 [kms] deletion_window_days reaches every key ---------------------------------------------

@pytest.mark.parametrize("window", [7, 19])
def test_deletion_window_reaches_every_key_harden_creates(tmp_path, window):
    out = _rendered(tmp_path, {"kms": {"deletion_window_days": window}})
    account = load_hcl(out / "account")
    for family in FAMILIES_WITH_KEYS:
        module = load_hcl(out / "modules" / family)
        for name, key in module["resource"]["aws_kms_key"].items():
            assert key["deletion_window_in_days"] == "${var.kms_deletion_window_days}", (family, name)
        (block,) = [b for b in account["module"].values() if b["source"] == f"../modules/{family}"]
        assert block["kms_deletion_window_days"] == window, family


# -- 11.8 prevent_destroy on the evidence, lifted only by --allow-destroy ---------------------------

def _guarded(out: Path) -> dict[str, dict[tuple[str, str], object]]:
    found = {}
    for family in GUARDED:
        module = load_hcl(out / "modules" / family)
        found[family] = {(rtype, name): _prevent_destroy(body)
                         for rtype, named in module["resource"].items() for name, body in named.items()
                         if _prevent_destroy(body) is not None}
    return found


def test_bucket_keys_and_log_groups_are_guarded_from_destroy(tmp_path):
    found = _guarded(_rendered(tmp_path, {"flow_logs": {"destination": "cloud-watch-logs"}}))
    assert found == {family: {r: True for r in resources} for family, resources in GUARDED.items()}


def test_allow_destroy_renders_the_guard_off_and_a_plain_render_restores_it(tmp_path):
    runner = CliRunner()
    config = tmp_path / "harden.toml"
    config.write_text('home_region = "eu-west-1"\nregions = ["eu-west-1"]\n', encoding="utf-8")
    out = tmp_path / "tf"
    lifted = runner.invoke(app, ["render", "--config", str(config), "--out", str(out), "--allow-destroy"])
    assert lifted.exit_code == 0, lifted.output
    assert "not protected from destruction" in " ".join(lifted.output.split())
    assert _guarded(out) == {family: {r: False for r in resources} for family, resources in GUARDED.items()}
    again = runner.invoke(app, ["render", "--config", str(config), "--out", str(out)])
    assert again.exit_code == 0, again.output
    assert _guarded(out) == {family: {r: True for r in resources} for family, resources in GUARDED.items()}
