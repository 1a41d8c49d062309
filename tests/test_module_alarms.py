"""Module `alarms`: CPU alarm per instance, Elastic IP API-call detection (CloudTrail metric filter
+ alarm, EventBridge rule), all to one KMS-encrypted SNS topic.

The HCL is read with python-hcl2; the pieces that are pure expressions (the EventBridge pattern,
the variable validations) are evaluated by the real bundled Terraform, which needs no provider
for them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.module_checks import (
    assert_every_regional_block_sets_region, assert_every_taggable_resource_is_tagged, assert_outputs_described,
    assert_pins_aws_provider_v6, assert_standard_files, assert_variables_documented,
)
from tests.terraform_helpers import apply_and_read_outputs, assert_accepted, plan_error, variables_root

TOPIC_ARN = "${aws_sns_topic.alarms.arn}"
ADDRESS_EVENTS = [
    "AllocateAddress",
    "ReleaseAddress",
    "AssociateAddress",
    "EnableAddressTransfer",
    "AcceptAddressTransfer",
    "DisableAddressTransfer",
]
FILTER_PATTERN = (
    '{ ($.eventSource = "ec2.amazonaws.com") && (($.eventName = "AllocateAddress") || '
    '($.eventName = "ReleaseAddress") || ($.eventName = "AssociateAddress") || '
    '($.eventName = "EnableAddressTransfer") || ($.eventName = "AcceptAddressTransfer") || '
    '($.eventName = "DisableAddressTransfer")) }'
)
# Global in provider v6 (no `region` argument); every other resource/data source is regional.
GLOBAL_DATA_SOURCES = {"aws_caller_identity", "aws_partition", "aws_iam_policy_document"}
# Resources the AWS API cannot tag.
NOT_TAGGABLE = {"aws_kms_alias", "aws_sns_topic_policy", "aws_sns_topic_subscription",
                "aws_cloudwatch_log_metric_filter", "aws_cloudwatch_event_target"}

FAMILY = "alarms"


def _unescape(text: str) -> str:
    # python-hcl2 may or may not undo the HCL \" escapes; compare the same way either way.
    return text.replace('\\"', '"')


def _statements(mod: dict, doc: str) -> dict:
    return {st["sid"]: st for st in mod["data"]["aws_iam_policy_document"][doc]["statement"]}


def _conditions(statement: dict) -> dict:
    return {(c["test"], c["variable"]): c["values"] for c in statement.get("condition", [])}


# ---------------------------------------------------------------------------
# Layout, providers, region, tags
# ---------------------------------------------------------------------------

def test_module_has_the_standard_files(module_dir: Path):
    assert_standard_files(module_dir)


def test_pins_aws_provider_v6(mod: dict):
    assert_pins_aws_provider_v6(mod)
    assert mod["provider"] == {}  # no provider blocks or aliases inside a module


def test_every_regional_resource_and_data_source_sets_region(mod: dict):
    assert_every_regional_block_sets_region(mod, global_data_sources=GLOBAL_DATA_SOURCES)


def test_every_taggable_resource_is_tagged(mod: dict):
    assert_every_taggable_resource_is_tagged(
        mod, NOT_TAGGABLE, {"aws_kms_key", "aws_sns_topic", "aws_cloudwatch_metric_alarm", "aws_cloudwatch_event_rule"}
    )


# ---------------------------------------------------------------------------
# Topic, key, policies
# ---------------------------------------------------------------------------

def test_topic_is_kms_encrypted_with_a_rotating_key(mod: dict):
    topic = mod["resource"]["aws_sns_topic"]["alarms"]
    assert topic["kms_master_key_id"] == "${local.kms_key_arn}"
    assert topic["name"] == "${local.topic_name}"
    assert mod["locals"]["topic_name"] == '${coalesce(var.topic_name, "${var.name_prefix}-security-alarms")}'
    assert mod["locals"]["create_key"] == "${var.kms_key_arn == null}"
    assert mod["locals"]["kms_key_arn"] == "${local.create_key ? aws_kms_key.topic[0].arn : var.kms_key_arn}"

    key = mod["resource"]["aws_kms_key"]["topic"]
    assert key["count"] == "${local.create_key ? 1 : 0}"
    assert key["enable_key_rotation"] is True
    assert key["rotation_period_in_days"] == 365
    assert key["deletion_window_in_days"] == 30
    assert key["policy"] == "${data.aws_iam_policy_document.topic_key[0].json}"


def test_key_policy_lets_only_this_accounts_cloudwatch_and_eventbridge_use_the_key(mod: dict):
    sts = _statements(mod, "topic_key")
    assert set(sts) == {"EnableAccountAdministration", "AllowCloudWatchAlarmsOfThisAccount",
                        "AllowEventBridgeForThisTopicOnly"}

    admin = sts["EnableAccountAdministration"]
    assert admin["principals"] == [{"type": "AWS", "identifiers": ["arn:${local.partition}:iam::${local.account_id}:root"]}]

    alarms = sts["AllowCloudWatchAlarmsOfThisAccount"]
    assert alarms["effect"] == "Allow"
    assert alarms["principals"] == [{"type": "Service", "identifiers": ["cloudwatch.amazonaws.com"]}]
    assert sorted(alarms["actions"]) == ["kms:Decrypt", "kms:GenerateDataKey*"]
    assert _conditions(alarms) == {("StringEquals", "aws:SourceAccount"): ["${local.account_id}"]}

    events = sts["AllowEventBridgeForThisTopicOnly"]
    assert events["principals"] == [{"type": "Service", "identifiers": ["events.amazonaws.com"]}]
    assert sorted(events["actions"]) == ["kms:Decrypt", "kms:GenerateDataKey*"]
    # Bound to this topic by the SNS encryption context, the topic named from its parts.
    assert _conditions(events) == {("StringEquals", "kms:EncryptionContext:aws:sns:topicArn"):
                                   ["${local.topic_arn_for_policy}"]}
    assert mod["locals"]["topic_arn_for_policy"] == \
        "arn:${local.partition}:sns:${var.region}:${local.account_id}:${local.topic_name}"


def test_eventbridge_key_grant_carries_no_condition_eventbridge_does_not_send(mod: dict):
    """EventBridge's KMS calls for an encrypted SNS target carry no aws:SourceAccount,
    aws:SourceArn or aws:SourceOrgID: a grant conditioned on them silently drops every Elastic IP
    notification (the rule shows FailedInvocations, nobody is told)."""
    for sid, st in _statements(mod, "topic_key").items():
        services = {i for p in st.get("principals", []) if p["type"] == "Service" for i in p["identifiers"]}
        if "events.amazonaws.com" in services:
            keys = {variable.lower() for _, variable in _conditions(st)}
            assert not keys & {"aws:sourceaccount", "aws:sourcearn", "aws:sourceorgid", "aws:sourceorgpaths"}, sid


def test_topic_policy_only_the_two_services_may_publish(mod: dict):
    assert mod["resource"]["aws_sns_topic_policy"]["alarms"]["arn"] == TOPIC_ARN
    assert mod["resource"]["aws_sns_topic_policy"]["alarms"]["policy"] == "${data.aws_iam_policy_document.topic.json}"
    sts = _statements(mod, "topic")

    publishers = {}
    for sid, st in sts.items():
        assert st["resources"] == [TOPIC_ARN], sid
        if st["effect"] == "Allow" and "sns:Publish" in st["actions"]:
            (principal,) = st["principals"]
            assert principal["type"] == "Service", sid
            (service,) = principal["identifiers"]
            publishers[service] = st
            assert _conditions(st)[("StringEquals", "aws:SourceAccount")] == ["${local.account_id}"], sid
    assert set(publishers) == {"cloudwatch.amazonaws.com", "events.amazonaws.com"}

    assert _conditions(publishers["events.amazonaws.com"])[("ArnEquals", "aws:SourceArn")] == \
        ["${aws_cloudwatch_event_rule.address_api_calls.arn}"]
    assert _conditions(publishers["cloudwatch.amazonaws.com"])[("ArnLike", "aws:SourceArn")] == \
        ["arn:${local.partition}:cloudwatch:${var.region}:${local.account_id}:alarm:${var.name_prefix}-*"]

    owner = sts["AllowOwnerManagement"]
    assert owner["principals"] == [{"type": "AWS", "identifiers": ["arn:${local.partition}:iam::${local.account_id}:root"]}]
    assert "sns:Publish" not in owner["actions"] and "sns:*" not in owner["actions"]
    assert {"sns:GetTopicAttributes", "sns:SetTopicAttributes", "sns:Subscribe"} <= set(owner["actions"])

    tls = sts["DenyPublishWithoutTls"]
    assert tls["effect"] == "Deny"
    assert tls["actions"] == ["sns:Publish"]
    assert _conditions(tls) == {("Bool", "aws:SecureTransport"): ["false"]}


def test_subscriptions(mod: dict):
    sub = mod["resource"]["aws_sns_topic_subscription"]["alarms"]
    assert sub["topic_arn"] == TOPIC_ARN
    assert sub["protocol"] == "${each.value.protocol}"
    assert sub["endpoint"] == "${each.value.endpoint}"
    assert sub["subscription_role_arn"] == "${each.value.subscription_role_arn}"


# ---------------------------------------------------------------------------
# CPU alarms
# ---------------------------------------------------------------------------

def test_cpu_alarm_per_running_instance(mod: dict):
    running = mod["data"]["aws_instances"]["running"]
    assert running["filter"] == [{"name": "instance-state-name", "values": ["running"]}]
    assert running["count"] == "${local.discover_instances ? 1 : 0}"
    assert mod["locals"]["discover_instances"] == "${var.cpu_alarms_enabled && length(var.instance_ids) == 0}"
    ids = mod["locals"]["cpu_instance_ids"]
    assert "data.aws_instances.running[0].ids" in ids and "var.instance_ids" in ids
    assert ids.startswith("${var.cpu_alarms_enabled ?")

    cpu = mod["resource"]["aws_cloudwatch_metric_alarm"]["cpu"]
    assert cpu["for_each"] == "${local.cpu_instance_ids}"
    assert cpu["namespace"] == "AWS/EC2"
    assert cpu["metric_name"] == "CPUUtilization"
    assert cpu["statistic"] == "Average"
    assert cpu["dimensions"] == {"InstanceId": "${each.value}"}
    assert "${each.value}" in cpu["alarm_name"] and cpu["alarm_name"].startswith("${var.name_prefix}-")
    assert cpu["comparison_operator"] == "GreaterThanOrEqualToThreshold"
    assert cpu["threshold"] == "${var.cpu_threshold}"
    assert cpu["evaluation_periods"] == "${var.cpu_evaluation_periods}"
    assert cpu["period"] == "${var.cpu_period_seconds}"
    assert cpu["treat_missing_data"] == "missing"
    assert cpu["actions_enabled"] is True
    assert cpu["alarm_actions"] == [TOPIC_ARN]
    assert cpu["ok_actions"] == [TOPIC_ARN]


# ---------------------------------------------------------------------------
# Elastic IP API calls: metric filter + alarm, EventBridge rule
# ---------------------------------------------------------------------------

def test_metric_filter_on_the_cloudtrail_log_group(mod: dict):
    assert mod["locals"]["create_metric_filter"] == "${var.cloudtrail_log_group_name != null}"
    mf = mod["resource"]["aws_cloudwatch_log_metric_filter"]["address_api_calls"]
    assert mf["count"] == "${local.create_metric_filter ? 1 : 0}"
    assert mf["log_group_name"] == "${var.cloudtrail_log_group_name}"
    assert mf["pattern"] == "${local.address_event_filter_pattern}"
    assert _unescape(mod["locals"]["address_event_filter_pattern"]) == FILTER_PATTERN
    (mt,) = mf["metric_transformation"]
    assert mt["namespace"] == "${var.metric_namespace}"
    assert mt["name"] == "${local.metric_name}"
    assert mt["value"] == "1"
    assert mod["locals"]["metric_name"].startswith("${var.name_prefix}-")


def test_filter_pattern_and_event_rule_watch_the_same_calls(mod: dict):
    assert mod["locals"]["address_event_names"] == ADDRESS_EVENTS
    in_filter = re.findall(r'\$\.eventName = "([A-Za-z]+)"', _unescape(mod["locals"]["address_event_filter_pattern"]))
    assert in_filter == ADDRESS_EVENTS
    # Balanced parentheses/braces: CloudWatch Logs rejects an unbalanced pattern.
    pattern = FILTER_PATTERN
    assert pattern.count("(") == pattern.count(")") and pattern.startswith("{ ") and pattern.endswith(" }")


def test_allocate_address_alarm(mod: dict):
    alarm = mod["resource"]["aws_cloudwatch_metric_alarm"]["allocate_address"]
    assert alarm["count"] == "${local.create_metric_filter ? 1 : 0}"
    assert alarm["namespace"] == "${var.metric_namespace}"
    assert alarm["metric_name"] == "${aws_cloudwatch_log_metric_filter.address_api_calls[0].metric_transformation[0].name}"
    assert alarm["statistic"] == "Sum"
    assert alarm["period"] == 300
    assert alarm["evaluation_periods"] == 1
    assert alarm["comparison_operator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["threshold"] == "${var.allocate_address_alarm_threshold}"
    assert alarm["treat_missing_data"] == "notBreaching"
    assert alarm["actions_enabled"] is True
    assert alarm["alarm_actions"] == [TOPIC_ARN]


def test_event_rule_and_target(mod: dict):
    rule = mod["resource"]["aws_cloudwatch_event_rule"]["address_api_calls"]
    assert rule["state"] == '${var.event_rule_enabled ? "ENABLED" : "DISABLED"}'
    assert rule["name"] == "${local.event_rule_name}"
    assert "is_enabled" not in rule  # deprecated in provider v6

    target = mod["resource"]["aws_cloudwatch_event_target"]["address_api_calls"]
    assert target["rule"] == "${aws_cloudwatch_event_rule.address_api_calls.name}"
    assert target["arn"] == TOPIC_ARN
    (tr,) = target["input_transformer"]
    paths = tr["input_paths"]
    assert paths["principal"] == "$.detail.userIdentity.arn"
    assert paths["eventName"] == "$.detail.eventName"
    assert paths["region"] == "$.region"
    assert paths["account"] == "$.account"
    assert paths["publicIp"] == "$.detail.responseElements.publicIp"
    assert not any(k.startswith("AWS") for k in paths)  # EventBridge reserves the AWS prefix
    template = json.loads(_unescape(tr["input_template"]))  # a JSON string: SNS gets plain text
    for placeholder in re.findall(r"<([A-Za-z]+)>", template):
        assert placeholder in paths, placeholder
    for needed in ("<principal>", "<eventName>", "<region>", "<account>", "<publicIp>"):
        assert needed in template


@pytest.fixture(scope="module")
def evaluated_event_pattern(mod: dict, tmp_path_factory) -> dict:
    """The rule's event_pattern expression, evaluated by Terraform with the module's own list."""
    expr = mod["resource"]["aws_cloudwatch_event_rule"]["address_api_calls"]["event_pattern"]
    assert expr.startswith("${") and expr.endswith("}")
    root = tmp_path_factory.mktemp("alarms_event_pattern")
    (root / "main.tf").write_text(
        "locals {\n"
        f"  address_event_names = {json.dumps(mod['locals']['address_event_names'])}\n"
        "}\n\n"
        f'output "event_pattern" {{\n  value = {expr[2:-1]}\n}}\n',
        encoding="utf-8",
    )
    return json.loads(apply_and_read_outputs(root)["event_pattern"])


def test_event_pattern_matches_cloudtrail_api_calls(evaluated_event_pattern: dict):
    assert evaluated_event_pattern == {
        "source": ["aws.ec2"],
        "detail-type": ["AWS API Call via CloudTrail"],
        "detail": {"eventSource": ["ec2.amazonaws.com"], "eventName": ADDRESS_EVENTS},
    }


# ---------------------------------------------------------------------------
# Variables and outputs
# ---------------------------------------------------------------------------

VALIDATED = {
    "region", "name_prefix", "topic_name", "subscriptions", "kms_key_arn", "instance_ids", "cpu_threshold",
    "cpu_evaluation_periods", "cpu_period_seconds", "cloudtrail_log_group_name",
    "allocate_address_alarm_threshold", "metric_namespace", "eip_pool_alarm_share",
}


def test_variables_have_type_description_and_validations(mod: dict):
    assert_variables_documented(mod, VALIDATED, {"tags", "cpu_alarms_enabled", "event_rule_enabled"})
    assert len(mod["variable"]["subscriptions"]["validation"]) >= 2  # protocol enum + https endpoint


def test_variable_defaults(mod: dict):
    v = mod["variable"]
    assert "default" not in v["region"] and "default" not in v["name_prefix"]
    expected = {
        "tags": {}, "topic_name": None, "subscriptions": [], "kms_key_arn": None, "cpu_alarms_enabled": True,
        "instance_ids": [], "cpu_threshold": 80, "cpu_evaluation_periods": 3, "cpu_period_seconds": 300,
        "cloudtrail_log_group_name": None, "allocate_address_alarm_threshold": 1,
        "metric_namespace": "Harden/Security", "event_rule_enabled": True,
    }
    assert {k: v[k]["default"] for k in expected} == expected


def test_outputs(mod: dict):
    outputs = mod["output"]
    assert {"topic_arn", "kms_key_arn", "cpu_alarm_names", "allocate_address_alarm_name", "metric_filter_name",
            "event_rule_arn", "event_rule_name"} <= set(outputs)
    assert_outputs_described(mod)
    assert outputs["topic_arn"]["value"] == TOPIC_ARN
    assert outputs["kms_key_arn"]["value"] == "${local.kms_key_arn}"
    assert outputs["cpu_alarm_names"]["value"] == \
        "${{for id, alarm in aws_cloudwatch_metric_alarm.cpu : id => alarm.alarm_name}}"
    assert outputs["allocate_address_alarm_name"]["value"] == \
        "${one(aws_cloudwatch_metric_alarm.allocate_address[*].alarm_name)}"


# Variable validations evaluated by the real Terraform: variables.tf alone needs no provider.

GOOD = {
    "region": "eu-west-1",
    "name_prefix": "harden",
    "topic_name": "harden-security-alarms",
    "subscriptions": [
        {"protocol": "email", "endpoint": "secops@example.com"},
        {"protocol": "https", "endpoint": "https://hooks.example.com/alarm"},
        {"protocol": "sqs", "endpoint": "arn:aws:sqs:eu-west-1:123456789012:alarms"},
        {"protocol": "firehose", "endpoint": "arn:aws:firehose:eu-west-1:123456789012:deliverystream/s",
         "subscription_role_arn": "arn:aws:iam::123456789012:role/sns-to-firehose"},
    ],
    "kms_key_arn": "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    "instance_ids": ["i-0123456789abcdef0", "i-12345678"],
    "cpu_threshold": 100,
    "cpu_evaluation_periods": 1,
    "cpu_period_seconds": 120,
    "cloudtrail_log_group_name": "/aws/cloudtrail/harden-trail",
    "allocate_address_alarm_threshold": 1,
    "metric_namespace": "Harden/Security",
}

BAD = [
    ("region", "eu_west_1", "region must be"),
    ("name_prefix", "harden prefix", "name_prefix must be"),
    ("topic_name", "alarms.fifo", "topic_name must be"),
    ("subscriptions", [{"protocol": "http", "endpoint": "http://example.com"}], "protocol must be one of"),
    ("subscriptions", [{"protocol": "https", "endpoint": "http://example.com"}], "must start with https://"),
    ("subscriptions", [{"protocol": "email", "endpoint": "not-an-address"}], "must be an e-mail address"),
    ("subscriptions", [{"protocol": "sqs", "endpoint": "alarms-queue"}], "must be the target's ARN"),
    ("subscriptions", [{"protocol": "firehose", "endpoint": "arn:aws:firehose:eu-west-1:123456789012:deliverystream/s"}],
     "needs subscription_role_arn"),
    ("kms_key_arn", "alias/aws/sns", "kms_key_arn must be"),
    ("instance_ids", ["i-xyz"], "Each instance id"),
    ("cpu_threshold", 0, "cpu_threshold must be between 1 and 100"),
    ("cpu_threshold", 101, "cpu_threshold must be between 1 and 100"),
    ("cpu_evaluation_periods", 0, "cpu_evaluation_periods must be"),
    ("cpu_evaluation_periods", 1.5, "cpu_evaluation_periods must be"),
    ("cpu_period_seconds", 90, "cpu_period_seconds must be 10, 30 or a multiple of 60"),
    ("cpu_period_seconds", 20, "cpu_period_seconds must be 10, 30 or a multiple of 60"),
    ("cloudtrail_log_group_name", "bad name", "cloudtrail_log_group_name must be"),
    ("allocate_address_alarm_threshold", 0, "allocate_address_alarm_threshold must be"),
    ("metric_namespace", "AWS/EC2", "metric_namespace must be"),
]


@pytest.fixture(scope="module")
def validation_root(module_dir: Path, tmp_path_factory) -> Path:
    return variables_root(module_dir, tmp_path_factory, "alarms")


def test_validations_accept_good_values(validation_root: Path):
    assert_accepted(validation_root, GOOD)


def test_validations_accept_the_minimal_call(validation_root: Path):
    assert_accepted(validation_root, {"region": "us-gov-west-1", "name_prefix": "h"})


@pytest.mark.parametrize("name,value,message", BAD, ids=[f"{n}={v}" for n, v, _ in BAD])
def test_validations_reject_bad_values(validation_root: Path, name: str, value, message: str):
    assert message in plan_error(validation_root, {**GOOD, name: value})
