"""Module `ebs_encryption`: EBS encryption by default in a region, with a customer-managed key.

The AWS provider is not available here, so the rendered HCL is read with python-hcl2 and the
hardened settings are asserted on it; the variable validations are run by the real bundled
Terraform on variables.tf alone (no provider needed).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.module_checks import (
    one,
    assert_every_regional_block_sets_region, assert_every_taggable_resource_is_tagged, assert_no_checkov_skips,
    assert_outputs_described, assert_pins_aws_provider_v6, assert_standard_files, assert_terraform_loads,
    assert_variables_documented,
)
from tests.terraform_helpers import assert_accepted, plan_error, variables_root

FAMILY = "ebs_encryption"

UNTAGGABLE = {"aws_kms_alias", "aws_ebs_encryption_by_default", "aws_ebs_default_kms_key"}
GLOBAL_DATA_SOURCES = {"aws_caller_identity", "aws_partition"}

EBS_USE_ACTIONS = ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey*", "kms:ReEncrypt*"]
AUTOSCALING_ROLE = (
    "arn:${local.partition}:iam::${local.account_id}:role/aws-service-role/"
    "autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
)


def _statements(mod: dict) -> dict[str, dict]:
    policy = mod["locals"]["kms_key_policy"]
    assert policy["Version"] == "2012-10-17"
    statements = {st["Sid"]: st for st in policy["Statement"]}
    assert len(statements) == len(policy["Statement"]), "duplicate Sid"
    return statements


def _actions(statement: dict, mod: dict) -> list[str]:
    action = statement["Action"]
    if action == "${local.ebs_use_actions}":
        action = mod["locals"]["ebs_use_actions"]
    return sorted([action] if isinstance(action, str) else action)


# ---------------------------------------------------------------------------
# Layout, provider, region, tags
# ---------------------------------------------------------------------------

def test_module_has_the_standard_files(module_dir: Path):
    assert_standard_files(module_dir)


def test_pins_aws_provider_v6(mod: dict):
    assert_pins_aws_provider_v6(mod)


def test_every_resource_and_regional_data_source_sets_region(mod: dict):
    assert set(mod["resource"]) == {
        "aws_kms_key", "aws_kms_alias", "aws_ebs_encryption_by_default", "aws_ebs_default_kms_key",
    }
    assert_every_regional_block_sets_region(mod, global_data_sources=GLOBAL_DATA_SOURCES)


def test_every_taggable_resource_is_tagged_with_the_module_tags(mod: dict):
    assert_every_taggable_resource_is_tagged(
        mod, UNTAGGABLE, {"aws_kms_key"}, tags='${merge(var.tags, {Name = "${var.name_prefix}-ebs-${var.region}"})}'
    )


# ---------------------------------------------------------------------------
# Default encryption and default key
# ---------------------------------------------------------------------------

def test_encryption_by_default_is_enabled(mod: dict):
    assert one(mod, "aws_ebs_encryption_by_default") == {"region": "${var.region}", "enabled": True}


def test_default_key_is_the_baseline_key(mod: dict):
    default_key = one(mod, "aws_ebs_default_kms_key")
    assert default_key["key_arn"] == "${local.kms_key_arn}"
    assert mod["locals"]["kms_key_arn"] == "${local.create_kms_key ? aws_kms_key.this[0].arn : var.kms_key_arn}"
    (lifecycle,) = default_key["lifecycle"]
    (rule,) = lifecycle["precondition"]
    assert rule["condition"] == '${var.kms_key_arn == null ? true : split(":", var.kms_key_arn)[3] == var.region}'


def test_key_is_created_only_when_none_is_given(mod: dict):
    assert mod["locals"]["create_kms_key"] == "${can(coalesce(var.kms_key_arn)) ? false : true}"
    assert one(mod, "aws_kms_key")["count"] == "${local.create_kms_key ? 1 : 0}"
    assert one(mod, "aws_kms_alias")["count"] == "${local.create_kms_key ? 1 : 0}"


def test_kms_key_rotates_and_is_regional_symmetric(mod: dict):
    key = one(mod, "aws_kms_key")
    assert key["enable_key_rotation"] is True
    assert key["multi_region"] is False
    # EBS only accepts symmetric encryption keys.
    assert key["key_usage"] == "ENCRYPT_DECRYPT"
    assert key["customer_master_key_spec"] == "SYMMETRIC_DEFAULT"
    assert key["deletion_window_in_days"] == "${var.kms_deletion_window_days}"
    assert key["policy"] == "${jsonencode(local.kms_key_policy)}"
    alias = one(mod, "aws_kms_alias")
    assert alias["name"] == "alias/${var.name_prefix}-ebs"
    assert alias["target_key_id"] == "${aws_kms_key.this[0].key_id}"


# ---------------------------------------------------------------------------
# Key policy
# ---------------------------------------------------------------------------

def test_key_policy_statements(mod: dict):
    assert set(_statements(mod)) == {
        "AccountRootAdministers",
        "AccountPrincipalsUseThroughEc2Only",
        "AccountPrincipalsGrantToAwsResourcesThroughEc2Only",
        "AutoScalingServiceLinkedRoleUse",
        "AutoScalingServiceLinkedRoleGrantToAwsResources",
    }
    for sid, st in _statements(mod).items():
        assert st["Effect"] == "Allow", sid
        assert st["Resource"] == "*", sid


def test_account_root_administers_the_key(mod: dict):
    st = _statements(mod)["AccountRootAdministers"]
    assert st["Principal"] == {"AWS": "arn:${local.partition}:iam::${local.account_id}:root"}
    assert st["Action"] == "kms:*"
    assert "Condition" not in st


def test_account_principals_use_the_key_only_through_ec2_in_this_region(mod: dict):
    assert mod["locals"]["ec2_service"] == "ec2.${var.region}.${local.dns_suffix}"
    st = _statements(mod)["AccountPrincipalsUseThroughEc2Only"]
    assert _actions(st, mod) == EBS_USE_ACTIONS
    assert st["Condition"] == {
        "StringEquals": {"kms:ViaService": "${local.ec2_service}", "kms:CallerAccount": "${local.account_id}"},
    }


def test_account_principals_create_grants_only_for_aws_resources_through_ec2(mod: dict):
    st = _statements(mod)["AccountPrincipalsGrantToAwsResourcesThroughEc2Only"]
    assert st["Action"] == "kms:CreateGrant"
    assert st["Condition"] == {
        "StringEquals": {"kms:ViaService": "${local.ec2_service}", "kms:CallerAccount": "${local.account_id}"},
        "Bool": {"kms:GrantIsForAWSResource": "true"},
    }


def test_autoscaling_service_linked_role_may_use_the_key(mod: dict):
    assert mod["locals"]["autoscaling_role_arn"] == AUTOSCALING_ROLE
    use = _statements(mod)["AutoScalingServiceLinkedRoleUse"]
    assert _actions(use, mod) == EBS_USE_ACTIONS
    assert use["Condition"] == {
        "StringEquals": {"kms:CallerAccount": "${local.account_id}"},
        "ArnEquals": {"aws:PrincipalArn": "${local.autoscaling_role_arn}"},
    }
    grant = _statements(mod)["AutoScalingServiceLinkedRoleGrantToAwsResources"]
    assert grant["Action"] == "kms:CreateGrant"
    assert grant["Condition"] == {
        "StringEquals": {"kms:CallerAccount": "${local.account_id}"},
        "ArnEquals": {"aws:PrincipalArn": "${local.autoscaling_role_arn}"},
        "Bool": {"kms:GrantIsForAWSResource": "true"},
    }


def test_every_wildcard_principal_is_bound_to_this_account(mod: dict):
    for sid, st in _statements(mod).items():
        if "*" in json.dumps(st["Principal"]):
            assert st["Principal"] == {"AWS": "*"}, sid
            assert st["Condition"]["StringEquals"]["kms:CallerAccount"] == "${local.account_id}", sid


def test_no_statement_lets_a_principal_manage_the_key_except_root(mod: dict):
    for sid, st in _statements(mod).items():
        if sid == "AccountRootAdministers":
            continue
        for action in _actions(st, mod):
            assert action in EBS_USE_ACTIONS + ["kms:CreateGrant"], (sid, action)


# ---------------------------------------------------------------------------
# Variables and outputs
# ---------------------------------------------------------------------------

VALIDATED = {"region", "name_prefix", "tags", "kms_key_arn", "kms_deletion_window_days"}


def test_variables_have_type_description_and_validations(mod: dict):
    assert_variables_documented(mod, VALIDATED)


def test_variable_defaults(mod: dict):
    variables = mod["variable"]
    for required in ("region", "name_prefix"):
        assert "default" not in variables[required], required
    assert variables["tags"]["default"] == {}
    assert variables["kms_key_arn"]["default"] is None
    assert variables["kms_deletion_window_days"]["default"] == 30


def test_outputs(mod: dict):
    outputs = mod["output"]
    assert set(outputs) == {"kms_key_arn", "kms_key_id", "kms_alias_name", "encryption_by_default_enabled"}
    assert_outputs_described(mod)
    assert outputs["kms_key_arn"]["value"] == "${aws_ebs_default_kms_key.this.key_arn}"
    assert outputs["kms_key_id"]["value"] == "${local.kms_key_id}"
    assert mod["locals"]["kms_key_id"] == (
        '${local.create_kms_key ? aws_kms_key.this[0].key_id : element(split("/", var.kms_key_arn), 1)}'
    )
    assert outputs["kms_alias_name"]["value"] == "${try(aws_kms_alias.this[0].name, null)}"
    assert outputs["encryption_by_default_enabled"]["value"] == "${aws_ebs_encryption_by_default.this.enabled}"


def test_no_checkov_skips(module_dir: Path):
    assert_no_checkov_skips(module_dir)


# ---------------------------------------------------------------------------
# Terraform's own view: the loader reads the module, the validations hold
# ---------------------------------------------------------------------------

def test_terraform_loads_the_module(module_dir: Path, tmp_path: Path):
    assert_terraform_loads(module_dir, tmp_path)


GOOD = {
    "region": "eu-central-1",
    "name_prefix": "Harden-2",
    "tags": {"Owner": "platform-security", "CostCenter": "sec-001"},
    "kms_key_arn": "arn:aws:kms:eu-central-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    "kms_deletion_window_days": 7,
}

BAD = [
    ("region", "eu_central_1", "The region must be an AWS Region code"),
    ("name_prefix", "harden prefix", "The name_prefix must match"),
    ("name_prefix", "", "The name_prefix must match"),
    ("tags", {"AWS:Owner": "x"}, 'must not start with "aws:"'),
    ("tags", {"k" * 129: "v"}, "Tag keys must be 1-128 characters"),
    ("kms_key_arn", "alias/aws/ebs", "The kms_key_arn must be a KMS key ARN"),
    ("kms_key_arn", "arn:aws:kms:eu-central-1:123456789012:alias/harden-ebs", "The kms_key_arn must be a KMS key ARN"),
    ("kms_key_arn", "arn:aws:kms:eu-central-1:12345:key/1234abcd", "The kms_key_arn must be a KMS key ARN"),
    ("kms_deletion_window_days", 6, "The kms_deletion_window_days must be a whole number from 7 to 30"),
    ("kms_deletion_window_days", 31, "The kms_deletion_window_days must be a whole number from 7 to 30"),
    ("kms_deletion_window_days", 7.5, "The kms_deletion_window_days must be a whole number from 7 to 30"),
]


@pytest.fixture(scope="module")
def validation_root(module_dir: Path, tmp_path_factory) -> Path:
    return variables_root(module_dir, tmp_path_factory, "ebs_encryption")


def test_validations_accept_good_values(validation_root: Path):
    assert_accepted(validation_root, GOOD)


def test_validations_accept_the_minimal_call(validation_root: Path):
    assert_accepted(validation_root, {"region": "ap-southeast-3", "name_prefix": "harden"})


@pytest.mark.parametrize("name,value,message", BAD, ids=[f"{n}={str(v)[:20]}" for n, v, _ in BAD])
def test_validations_reject_bad_values(validation_root: Path, name: str, value, message: str):
    assert message in plan_error(validation_root, {**GOOD, name: value})
