"""Module `flow_logs`: a flow log on every VPC of a region, to CloudWatch Logs (own log group,
KMS key and delivery role) or to the S3 log bucket.

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
    policy_doc,
    assert_every_regional_block_sets_region, assert_every_taggable_resource_is_tagged, assert_no_checkov_skips,
    assert_outputs_described, assert_pins_aws_provider_v6, assert_standard_files, assert_terraform_loads,
    assert_variables_documented,
)
from tests.terraform_helpers import assert_accepted, plan_error, variables_root

FAMILY = "flow_logs"

UNTAGGABLE = {"aws_kms_alias", "aws_iam_role_policy"}
GLOBAL_RESOURCES = {"aws_iam_role", "aws_iam_role_policy"}
GLOBAL_DATA_SOURCES = {"aws_caller_identity", "aws_partition", "aws_iam_policy_document"}


def _conditions(statement: dict) -> dict[tuple[str, str], list]:
    return {(c["test"], c["variable"]): c["values"] for c in statement.get("condition", [])}


def _key_statements(mod: dict) -> dict[str, dict]:
    policy = mod["locals"]["kms_key_policy"]
    assert policy["Version"] == "2012-10-17"
    return {st["Sid"]: st for st in policy["Statement"]}


# ---------------------------------------------------------------------------
# Layout, provider, region, tags
# ---------------------------------------------------------------------------

def test_module_has_the_standard_files(module_dir: Path):
    assert_standard_files(module_dir)


def test_pins_aws_provider_v6(mod: dict):
    assert_pins_aws_provider_v6(mod)


def test_every_regional_resource_and_data_source_sets_region(mod: dict):
    assert_every_regional_block_sets_region(mod, GLOBAL_RESOURCES, GLOBAL_DATA_SOURCES)


def test_every_taggable_resource_is_tagged_with_the_module_tags(mod: dict):
    assert_every_taggable_resource_is_tagged(
        mod, UNTAGGABLE, {"aws_flow_log", "aws_cloudwatch_log_group", "aws_kms_key", "aws_iam_role"},
        tags=lambda value: str(value).startswith("${merge(var.tags, {Name = "),
    )


def test_no_heredoc_policies(module_dir: Path):
    text = (module_dir / "main.tf").read_text(encoding="utf-8")
    assert "<<" not in text


# ---------------------------------------------------------------------------
# Which VPCs: every VPC of the region unless narrowed
# ---------------------------------------------------------------------------

def test_vpcs_are_discovered_at_every_plan_unless_narrowed(mod: dict):
    vpcs = mod["data"]["aws_vpcs"]["all"]
    assert vpcs["count"] == "${length(var.vpc_ids) == 0 ? 1 : 0}"
    # No tag filter: the default VPC and every VPC created since the last apply are included; the
    # one filter keeps out VPCs shared by another account (a participant cannot log them).
    assert set(vpcs) == {"count", "region", "filter"}
    assert vpcs["filter"] == [{"name": "owner-id", "values": ["${data.aws_caller_identity.current.account_id}"]}]
    assert mod["locals"]["vpc_ids"] == "${length(var.vpc_ids) > 0 ? var.vpc_ids : data.aws_vpcs.all[0].ids}"


# ---------------------------------------------------------------------------
# Flow logs
# ---------------------------------------------------------------------------

def test_one_flow_log_per_vpc_capturing_the_configured_traffic(mod: dict):
    flow_log = one(mod, "aws_flow_log")
    assert flow_log["for_each"] == "${toset(local.vpc_ids)}"
    assert flow_log["vpc_id"] == "${each.value}"
    assert flow_log["traffic_type"] == "${var.traffic_type}"
    assert flow_log["log_destination_type"] == "${var.destination_type}"
    assert flow_log["max_aggregation_interval"] == "${var.max_aggregation_interval}"
    assert flow_log["log_format"] == "${var.log_format}"
    assert "Name = \"${var.name_prefix}-flow-logs-${each.value}\"" in flow_log["tags"]
    for other_target in ("eni_id", "subnet_id", "transit_gateway_id", "transit_gateway_attachment_id"):
        assert other_target not in flow_log


def test_flow_log_destination_and_role_follow_the_destination_type(mod: dict):
    flow_log = one(mod, "aws_flow_log")
    assert flow_log["log_destination"] == (
        "${local.to_cloudwatch ? aws_cloudwatch_log_group.this[0].arn : local.s3_destination}"
    )
    # S3 delivery is done by delivery.logs.amazonaws.com under the bucket policy: no role.
    assert flow_log["iam_role_arn"] == "${local.to_cloudwatch ? aws_iam_role.this[0].arn : null}"
    assert mod["locals"]["to_cloudwatch"] == '${var.destination_type == "cloud-watch-logs"}'
    # The delivery policy must be in place before the first flow log tries to write.
    assert flow_log["depends_on"] == ["${aws_iam_role_policy.delivery}"]


def test_s3_destination_is_a_folder_of_the_bucket(mod: dict):
    destination = mod["locals"]["s3_destination"]
    # AWS expects bucket_ARN/folder/ (trailing slash); it appends AWSLogs/<account>/vpcflowlogs/.
    assert destination.endswith('"${var.s3_bucket_arn}/${var.s3_key_prefix}/"}')
    assert destination.startswith("${var.s3_bucket_arn == null ? null : ")


def test_s3_destination_options_keep_the_path_the_bucket_policy_grants(mod: dict):
    (dynamic,) = one(mod, "aws_flow_log")["dynamic"]
    options = dynamic["destination_options"]
    assert options["for_each"] == "${local.to_cloudwatch ? [] : [1]}"
    (content,) = options["content"]
    assert content["hive_compatible_partitions"] is False
    assert content["file_format"] == "${var.s3_file_format}"
    assert content["per_hour_partition"] == "${var.s3_per_hour_partition}"


def test_s3_destination_requires_a_bucket(mod: dict):
    (lifecycle,) = mod["data"]["aws_caller_identity"]["current"]["lifecycle"]
    (rule,) = lifecycle["precondition"]
    assert rule["condition"] == '${var.destination_type != "s3" || var.s3_bucket_arn != null}'
    assert "s3_bucket_arn is required" in rule["error_message"]


# ---------------------------------------------------------------------------
# CloudWatch Logs destination
# ---------------------------------------------------------------------------

def test_cloudwatch_pieces_exist_only_for_the_cloudwatch_destination(mod: dict):
    for rtype in ("aws_cloudwatch_log_group", "aws_iam_role"):
        assert one(mod, rtype)["count"] == "${local.to_cloudwatch ? 1 : 0}", rtype
    assert one(mod, "aws_iam_role_policy", "delivery")["count"] == "${local.to_cloudwatch ? 1 : 0}"
    for doc in ("assume_role", "delivery"):
        assert policy_doc(mod, doc)["count"] == "${local.to_cloudwatch ? 1 : 0}", doc


def test_log_group_is_encrypted_and_retained(mod: dict):
    group = one(mod, "aws_cloudwatch_log_group")
    assert mod["locals"]["log_group_name"] == "/aws/vpc-flow-logs/${var.name_prefix}"
    assert group["name"] == "${local.log_group_name}"
    assert group["retention_in_days"] == "${var.log_retention_days}"
    assert group["kms_key_id"] == "${local.kms_key_arn}"
    assert mod["locals"]["kms_key_arn"] == "${local.create_kms_key ? aws_kms_key.this[0].arn : var.kms_key_arn}"
    (lifecycle,) = group["lifecycle"]
    (rule,) = lifecycle["precondition"]
    assert rule["condition"] == '${var.kms_key_arn == null ? true : split(":", var.kms_key_arn)[3] == var.region}'


def test_delivery_role_is_per_region_and_trusts_only_this_accounts_flow_logs(mod: dict):
    role = one(mod, "aws_iam_role")
    assert role["name"] == "${var.name_prefix}-flow-logs-${var.region}"
    assert role["assume_role_policy"] == "${data.aws_iam_policy_document.assume_role[0].json}"
    (st,) = policy_doc(mod, "assume_role")["statement"]
    assert st["effect"] == "Allow"
    assert st["actions"] == ["sts:AssumeRole"]
    assert st["principals"] == [{"type": "Service", "identifiers": ["vpc-flow-logs.amazonaws.com"]}]
    assert _conditions(st) == {
        ("StringEquals", "aws:SourceAccount"): ["${local.account_id}"],
        ("ArnLike", "aws:SourceArn"): ["arn:${local.partition}:ec2:${var.region}:${local.account_id}:vpc-flow-log/*"],
    }


def test_delivery_role_may_only_write_to_this_log_group(mod: dict):
    policy = one(mod, "aws_iam_role_policy", "delivery")
    assert policy["role"] == "${aws_iam_role.this[0].id}"
    assert policy["policy"] == "${data.aws_iam_policy_document.delivery[0].json}"
    st, listing = policy_doc(mod, "delivery")["statement"]
    assert st["effect"] == "Allow"
    assert sorted(st["actions"]) == ["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"]
    assert st["resources"] == [
        "${aws_cloudwatch_log_group.this[0].arn}",
        "${aws_cloudwatch_log_group.this[0].arn}:*",
    ]
    # AWS's list for the delivery role includes DescribeLogGroups (issue 11.5): read-only, this
    # account's groups of this region; CreateLogGroup stays out (the group is created here).
    assert listing["effect"] == "Allow"
    assert listing["actions"] == ["logs:DescribeLogGroups"]
    assert listing["resources"] == ["arn:${local.partition}:logs:${var.region}:${local.account_id}:log-group:*"]
    every_action = {a for s in policy_doc(mod, "delivery")["statement"] for a in s["actions"]}
    assert "logs:CreateLogGroup" not in every_action and not any(a.endswith("*") for a in every_action)
    assert "aws_iam_role_policy_attachment" not in mod["resource"]
    assert list(mod["resource"]["aws_iam_role_policy"]) == ["delivery"]


# ---------------------------------------------------------------------------
# KMS key of the log group
# ---------------------------------------------------------------------------

def test_kms_key_is_created_only_for_cloudwatch_without_a_key_given(mod: dict):
    assert mod["locals"]["create_kms_key"] == "${can(coalesce(var.kms_key_arn)) ? false : local.to_cloudwatch}"
    assert one(mod, "aws_kms_key")["count"] == "${local.create_kms_key ? 1 : 0}"
    assert one(mod, "aws_kms_alias")["count"] == "${local.create_kms_key ? 1 : 0}"


def test_kms_key_rotates_and_is_regional_symmetric(mod: dict):
    key = one(mod, "aws_kms_key")
    assert key["enable_key_rotation"] is True
    assert key["multi_region"] is False
    assert key["key_usage"] == "ENCRYPT_DECRYPT"
    assert key["customer_master_key_spec"] == "SYMMETRIC_DEFAULT"
    assert key["deletion_window_in_days"] == "${var.kms_deletion_window_days}"
    assert key["policy"] == "${jsonencode(local.kms_key_policy)}"
    alias = one(mod, "aws_kms_alias")
    assert alias["name"] == "alias/${var.name_prefix}-flow-logs"
    assert alias["target_key_id"] == "${aws_kms_key.this[0].key_id}"


def test_key_policy_has_exactly_the_two_statements(mod: dict):
    assert set(_key_statements(mod)) == {"AccountRootAdministers", "CloudWatchLogsUseForThisLogGroupOnly"}


def test_account_root_administers_the_key(mod: dict):
    st = _key_statements(mod)["AccountRootAdministers"]
    assert st["Effect"] == "Allow"
    assert st["Principal"] == {"AWS": "arn:${local.partition}:iam::${local.account_id}:root"}
    assert st["Action"] == "kms:*"


def test_cloudwatch_logs_may_use_the_key_only_for_this_log_group(mod: dict):
    st = _key_statements(mod)["CloudWatchLogsUseForThisLogGroupOnly"]
    assert st["Effect"] == "Allow"
    assert st["Principal"] == {"Service": "logs.${var.region}.${local.dns_suffix}"}
    assert sorted(st["Action"]) == [
        "kms:Decrypt*", "kms:Describe*", "kms:Encrypt*", "kms:GenerateDataKey*", "kms:ReEncrypt*",
    ]
    assert st["Condition"] == {"ArnEquals": {"kms:EncryptionContext:aws:logs:arn": "${local.log_group_arn}"}}
    # Built from parts, so the policy can name the group before it exists (no dependency cycle).
    assert mod["locals"]["log_group_arn"] == (
        "arn:${local.partition}:logs:${var.region}:${local.account_id}:log-group:${local.log_group_name}"
    )


def test_no_key_policy_statement_allows_a_wildcard_principal(mod: dict):
    for sid, st in _key_statements(mod).items():
        assert "*" not in json.dumps(st["Principal"]), sid


# ---------------------------------------------------------------------------
# Variables and outputs
# ---------------------------------------------------------------------------

VALIDATED = {
    "region", "name_prefix", "tags", "vpc_ids", "traffic_type", "destination_type", "s3_bucket_arn",
    "s3_key_prefix", "s3_file_format", "log_retention_days", "kms_key_arn", "kms_deletion_window_days",
    "max_aggregation_interval", "log_format",
}


def test_variables_have_type_description_and_validations(mod: dict):
    assert_variables_documented(mod, VALIDATED, {"s3_per_hour_partition"})


def test_variable_defaults_are_the_hardened_ones(mod: dict):
    variables = mod["variable"]
    for required in ("region", "name_prefix"):
        assert "default" not in variables[required], required
    expected = {
        "tags": {},
        "vpc_ids": [],
        "traffic_type": "ALL",
        "destination_type": "cloud-watch-logs",
        "s3_bucket_arn": None,
        "s3_key_prefix": "flow-logs",
        "s3_file_format": "plain-text",
        "s3_per_hour_partition": True,
        "log_retention_days": 365,
        "kms_key_arn": None,
        "kms_deletion_window_days": 30,
        "max_aggregation_interval": 600,
        "log_format": None,
    }
    for name, default in expected.items():
        assert variables[name]["default"] == default, name


def test_outputs(mod: dict):
    outputs = mod["output"]
    assert set(outputs) == {
        "flow_log_ids", "vpc_ids", "log_group_name", "log_group_arn", "iam_role_arn", "kms_key_arn",
        "log_destination",
    }
    assert_outputs_described(mod)
    assert outputs["flow_log_ids"]["value"] == "${{for vpc_id, flow_log in aws_flow_log.this : vpc_id => flow_log.id}}"
    assert outputs["vpc_ids"]["value"] == "${sort(local.vpc_ids)}"
    assert outputs["log_group_name"]["value"] == "${try(aws_cloudwatch_log_group.this[0].name, null)}"
    assert outputs["log_group_arn"]["value"] == "${try(aws_cloudwatch_log_group.this[0].arn, null)}"
    assert outputs["iam_role_arn"]["value"] == "${try(aws_iam_role.this[0].arn, null)}"
    assert outputs["kms_key_arn"]["value"] == "${try(aws_kms_key.this[0].arn, null)}"


def test_no_checkov_skips(module_dir: Path):
    assert_no_checkov_skips(module_dir)


# ---------------------------------------------------------------------------
# Terraform's own view: the loader reads the module, the validations hold
# ---------------------------------------------------------------------------

def test_terraform_loads_the_module(module_dir: Path, tmp_path: Path):
    assert_terraform_loads(module_dir, tmp_path)


GOOD = {
    "region": "eu-west-1",
    "name_prefix": "harden",
    "tags": {"Owner": "platform-security"},
    "vpc_ids": ["vpc-0a1b2c3d4e5f60718", "vpc-12345678"],
    "traffic_type": "REJECT",
    "destination_type": "s3",
    "s3_bucket_arn": "arn:aws:s3:::harden-logs-123456789012-eu-west-1",
    "s3_key_prefix": "org/flow-logs",
    "s3_file_format": "parquet",
    "s3_per_hour_partition": False,
    "log_retention_days": 3653,
    "kms_key_arn": "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    "kms_deletion_window_days": 7,
    "max_aggregation_interval": 60,
    "log_format": "${version} ${vpc-id} ${srcaddr} ${dstaddr} ${action}",
}

BAD = [
    ("region", "EU-WEST-1", "The region must be an AWS Region code"),
    ("region", "eu-west", "The region must be an AWS Region code"),
    ("name_prefix", "harden_prefix", "The name_prefix must match"),
    ("name_prefix", "a" * 33, "The name_prefix must match"),
    ("tags", {"aws:owner": "x"}, 'must not start with "aws:"'),
    ("tags", {"k": "v" * 257}, "tag values at most 256 characters"),
    ("vpc_ids", ["vpc-123"], "Each VPC id must match"),
    ("vpc_ids", ["subnet-0a1b2c3d4e5f60718"], "Each VPC id must match"),
    ("vpc_ids", ["vpc-12345678", "vpc-12345678"], "must not contain duplicates"),
    ("traffic_type", "all", "The traffic_type must be one of ALL, ACCEPT, REJECT"),
    ("destination_type", "kinesis-data-firehose", 'The destination_type must be "cloud-watch-logs" or "s3"'),
    ("s3_bucket_arn", "harden-logs", "The s3_bucket_arn must be a bucket ARN"),
    ("s3_bucket_arn", "arn:aws:s3:::harden-logs/flow-logs", "The s3_bucket_arn must be a bucket ARN"),
    ("s3_key_prefix", "", "The s3_key_prefix must be path segments"),
    ("s3_key_prefix", "flow-logs/", "The s3_key_prefix must be path segments"),
    ("s3_key_prefix", "/flow-logs", "The s3_key_prefix must be path segments"),
    ("s3_key_prefix", "flow-*", "The s3_key_prefix must be path segments"),  # a wildcard in policy ARNs
    ("s3_key_prefix", "AWSLogs", 'The s3_key_prefix must not contain "AWSLogs"'),
    ("s3_key_prefix", "logs/AWSLogs/x", 'The s3_key_prefix must not contain "AWSLogs"'),
    ("s3_file_format", "json", 'The s3_file_format must be "plain-text" or "parquet"'),
    ("log_retention_days", 366, "The log_retention_days must be one of"),
    ("log_retention_days", -1, "The log_retention_days must be one of"),
    ("kms_key_arn", "arn:aws:kms:eu-west-1:123456789012:alias/harden", "The kms_key_arn must be a KMS key ARN"),
    ("kms_key_arn", "1234abcd-12ab-34cd-56ef-1234567890ab", "The kms_key_arn must be a KMS key ARN"),
    ("kms_deletion_window_days", 6, "The kms_deletion_window_days must be a whole number from 7 to 30"),
    ("kms_deletion_window_days", 31, "The kms_deletion_window_days must be a whole number from 7 to 30"),
    ("kms_deletion_window_days", 10.5, "The kms_deletion_window_days must be a whole number from 7 to 30"),
    ("max_aggregation_interval", 300, "The max_aggregation_interval must be 60 or 600"),
    ("log_format", "srcaddr dstaddr", "The log_format must be space-separated"),
    ("log_format", "${srcaddr},${dstaddr}", "The log_format must be space-separated"),
]


@pytest.fixture(scope="module")
def validation_root(module_dir: Path, tmp_path_factory) -> Path:
    return variables_root(module_dir, tmp_path_factory, "flow_logs")


def test_validations_accept_good_values(validation_root: Path):
    assert_accepted(validation_root, GOOD)


def test_validations_accept_the_minimal_call(validation_root: Path):
    assert_accepted(validation_root, {"region": "us-gov-west-1", "name_prefix": "harden"})


@pytest.mark.parametrize("name,value,message", BAD, ids=[f"{n}={str(v)[:20]}" for n, v, _ in BAD])
def test_validations_reject_bad_values(validation_root: Path, name: str, value, message: str):
    assert message in plan_error(validation_root, {**GOOD, name: value})
