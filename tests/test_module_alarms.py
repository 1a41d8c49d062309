"""Module `alarms`: a fleet CPU alarm per region (own alarms for listed instances), Elastic IP
API-call detection (CloudTrail metric filter + alarm, EventBridge rule), all to one KMS-encrypted
SNS topic in the home region, which the other regions reach through its event bus.

The HCL is read with python-hcl2; the pieces that are pure expressions (the EventBridge pattern,
the variable validations) are evaluated by the real bundled Terraform, which needs no provider
for them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from provisioner import address_events
from tests.module_checks import (
    assert_every_regional_block_sets_region, assert_every_taggable_resource_is_tagged, assert_outputs_described,
    assert_pins_aws_provider_v6, assert_standard_files, assert_variables_documented,
)
from tests.terraform_helpers import apply_and_read_outputs, assert_accepted, plan_error, variables_root

TOPIC_ARN = "${aws_sns_topic.alarms[0].arn}"
# The one definition (provisioner/address_events.py) the module is rendered from.
FILTER_PATTERN = address_events.filter_pattern()
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
    # One topic, one key: in the home region only (issue 11.4).
    assert mod["locals"]["is_home"] == "${var.region == var.home_region}"
    assert topic["count"] == "${local.is_home ? 1 : 0}"
    assert mod["locals"]["create_key"] == "${local.is_home && var.kms_key_arn == null}"
    assert mod["locals"]["kms_key_arn"] == \
        "${local.is_home ? (local.create_key ? aws_kms_key.topic[0].arn : var.kms_key_arn) : null}"

    key = mod["resource"]["aws_kms_key"]["topic"]
    assert key["count"] == "${local.create_key ? 1 : 0}"
    assert key["enable_key_rotation"] is True
    assert key["rotation_period_in_days"] == 365
    # [kms] deletion_window_days reaches this key like every other (issue 11.9).
    assert key["deletion_window_in_days"] == "${var.kms_deletion_window_days}"
    assert key["policy"] == "${data.aws_iam_policy_document.topic_key[0].json}"


def test_key_policy_lets_only_this_accounts_cloudwatch_and_eventbridge_use_the_key(mod: dict):
    sts = _statements(mod, "topic_key")
    assert set(sts) == {"EnableAccountAdministration", "AllowCloudWatchAlarmsForThisTopicOnly",
                        "AllowEventBridgeForThisTopicOnly"}

    admin = sts["EnableAccountAdministration"]
    assert admin["principals"] == [{"type": "AWS", "identifiers": ["arn:${local.partition}:iam::${local.account_id}:root"]}]

    alarms = sts["AllowCloudWatchAlarmsForThisTopicOnly"]
    assert alarms["effect"] == "Allow"
    assert alarms["principals"] == [{"type": "Service", "identifiers": ["cloudwatch.amazonaws.com"]}]
    assert sorted(alarms["actions"]) == ["kms:Decrypt", "kms:GenerateDataKey*"]
    # No aws:SourceAccount (not known to be sent: a condition on it could silence every alarm);
    # bound to this topic by the SNS encryption context, like EventBridge.
    assert _conditions(alarms) == {("StringEquals", "kms:EncryptionContext:aws:sns:topicArn"):
                                   ["${local.topic_arn_for_policy}"]}

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


def test_topic_policy_is_harden_computed_document(mod: dict):
    assert mod["resource"]["aws_sns_topic_policy"]["alarms"]["arn"] == TOPIC_ARN
    assert mod["resource"]["aws_sns_topic_policy"]["alarms"]["count"] == "${local.is_home ? 1 : 0}"
    assert mod["resource"]["aws_sns_topic_policy"]["alarms"]["policy"] == "${var.topic_policy_json}"
    # Built by provisioner/policies.py alarm_topic_policy (what remediate attaches) and passed in by
    # the root; what it decides is tested on Terraform's evaluation of it: tests/test_topic_policy.py.
    assert "jsondecode(var.topic_policy_json)" in mod["variable"]["topic_policy_json"]["validation"][0]["condition"]


def test_subscriptions(mod: dict):
    sub = mod["resource"]["aws_sns_topic_subscription"]["alarms"]
    # Subscribed once, in the home region: one confirmation per subscriber (issue 11.4).
    assert sub["for_each"] == ('${local.is_home ? {for i, s in var.subscriptions : "${s.protocol}:${s.endpoint}" '
                               '=> s} : {}}')
    assert sub["topic_arn"] == TOPIC_ARN
    assert sub["protocol"] == "${each.value.protocol}"
    assert sub["endpoint"] == "${each.value.endpoint}"
    assert sub["subscription_role_arn"] == "${each.value.subscription_role_arn}"


# ---------------------------------------------------------------------------
# CPU alarms
# ---------------------------------------------------------------------------

FLEET_QUERY = 'SELECT AVG(CPUUtilization) FROM SCHEMA("AWS/EC2", InstanceId) GROUP BY InstanceId ORDER BY AVG() DESC'


def test_one_fleet_cpu_alarm_per_region_on_a_metrics_insights_query(mod: dict):
    # Issue 11.3: instances launched after the last apply join as contributors; nothing in the
    # alarm depends on the instance list, so an Auto Scaling fleet leaves the plan empty.
    fleet = mod["resource"]["aws_cloudwatch_metric_alarm"]["cpu_fleet"]
    assert fleet["count"] == "${var.cpu_alarms_enabled ? 1 : 0}"
    assert fleet["alarm_name"] == "${var.name_prefix}-cpu-fleet"
    (query,) = fleet["metric_query"]
    assert query["id"] == "cpu" and query["return_data"] is True
    assert query["expression"] == "${local.cpu_fleet_query}"
    assert _unescape(mod["locals"]["cpu_fleet_query"]) == FLEET_QUERY
    # Metrics Insights has no sub-minute data.
    assert query["period"] == "${local.cpu_fleet_period}"
    assert mod["locals"]["cpu_fleet_period"] == "${max(60, var.cpu_period_seconds)}"
    assert "metric_name" not in fleet and "dimensions" not in fleet and "statistic" not in fleet
    assert "aws_instances" not in json.dumps(fleet)
    assert fleet["comparison_operator"] == "GreaterThanOrEqualToThreshold"
    assert fleet["threshold"] == "${var.cpu_threshold}"
    assert fleet["evaluation_periods"] == "${var.cpu_evaluation_periods}"
    assert fleet["actions_enabled"] is True
    assert fleet["alarm_actions"] == fleet["ok_actions"] == "${local.alarm_actions}"
    assert mod["locals"]["alarm_actions"] == "${local.is_home ? [aws_sns_topic.alarms[0].arn] : []}"
    # Alarms on Metrics Insights evaluate the latest 3 hours only.
    (lifecycle,) = fleet["lifecycle"]
    (pre,) = lifecycle["precondition"]
    assert pre["condition"] == "${var.cpu_evaluation_periods * local.cpu_fleet_period <= 10800}"


def test_above_the_query_limit_instances_get_own_alarms_and_the_plan_says_so(mod: dict):
    assert mod["locals"]["metrics_insights_max_series"] == 500
    assert mod["locals"]["fleet_fits"] == "${length(local.running_instance_ids) <= local.metrics_insights_max_series}"
    running = mod["data"]["aws_instances"]["running"]
    assert running["count"] == "${var.cpu_alarms_enabled ? 1 : 0}"
    assert running["filter"] == [{"name": "instance-state-name", "values": ["running"]}]
    ids = mod["locals"]["cpu_instance_ids"]
    assert "var.instance_ids" in ids and "local.fleet_fits ? [] : local.running_instance_ids" in ids
    # A check block: a warning in the plan, not an error.
    check = mod["check"]["cpu_fleet_alarm_limits"]
    (assertion,) = check["assert"]
    assert assertion["condition"] == "${local.fleet_fits}"
    assert "more than the ${local.metrics_insights_max_series} time series" in assertion["error_message"]


def test_listed_instances_keep_their_own_alarm(mod: dict):
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
    assert cpu["alarm_actions"] == cpu["ok_actions"] == "${local.alarm_actions}"


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
    in_filter = re.findall(r'\$\.eventName = "([A-Za-z]+)"', _unescape(mod["locals"]["address_event_filter_pattern"]))
    assert in_filter == [*address_events.ADDRESS_EVENT_NAMES, address_events.REASSIGNING_EVENT]
    # Balanced parentheses/braces: CloudWatch Logs rejects an unbalanced pattern.
    pattern = FILTER_PATTERN
    assert pattern.count("(") == pattern.count(")") and pattern.startswith("{ ") and pattern.endswith(" }")
    assert len(pattern) <= address_events.FILTER_PATTERN_MAX_CHARS


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
    assert alarm["alarm_actions"] == "${local.alarm_actions}"  # created in the home region only


def test_event_rule_and_target(mod: dict):
    rule = mod["resource"]["aws_cloudwatch_event_rule"]["address_api_calls"]
    assert rule["state"] == '${var.event_rule_enabled ? "ENABLED" : "DISABLED"}'
    assert rule["name"] == "${local.event_rule_name}"
    assert "is_enabled" not in rule  # deprecated in provider v6

    target = mod["resource"]["aws_cloudwatch_event_target"]["address_api_calls"]
    assert target["count"] == "${local.is_home ? 1 : 0}"
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
def evaluated_event_pattern(mod: dict, module_dir, tmp_path_factory) -> dict:
    """The rule's event_pattern expression, evaluated by Terraform with the module's own local
    (copied from the rendered text: python-hcl2 does not give back HCL)."""
    expr = mod["resource"]["aws_cloudwatch_event_rule"]["address_api_calls"]["event_pattern"]
    assert expr == "${jsonencode(local.address_event_pattern)}"
    (local,) = re.findall(r"^\s*address_event_pattern\s*=.*$", (module_dir / "main.tf").read_text(), re.MULTILINE)
    root = tmp_path_factory.mktemp("alarms_event_pattern")
    (root / "main.tf").write_text(f"locals {{\n{local}\n}}\n\n"
                                  f'output "event_pattern" {{\n  value = {expr[2:-1]}\n}}\n', encoding="utf-8")
    return json.loads(apply_and_read_outputs(root)["event_pattern"])


def test_event_pattern_matches_cloudtrail_api_calls(evaluated_event_pattern: dict):
    assert evaluated_event_pattern == address_events.event_pattern()
    assert evaluated_event_pattern["detail"]["$or"][1] == {
        "eventName": ["AssignPrivateIpAddresses"], "requestParameters": {"allowReassignment": [True]}}


# ---------------------------------------------------------------------------
# One topic: the other regions reach it through the home region's default event bus (issue 11.4)
# ---------------------------------------------------------------------------

HOME_BUS = "arn:${local.partition}:events:${var.home_region}:${local.account_id}:event-bus/default"


def test_other_regions_forward_elastic_ip_events_and_alarm_states_to_the_home_bus(mod: dict):
    assert mod["locals"]["home_bus_arn"] == HOME_BUS
    targets = mod["resource"]["aws_cloudwatch_event_target"]
    away = targets["to_home_bus"]
    for rule in ("address_api_calls", "alarm_state_changes"):
        home = targets[rule]
        assert home["count"] == "${local.is_home ? 1 : 0}" and home["arn"] == TOPIC_ARN, rule
        assert f"{rule} = aws_cloudwatch_event_rule.{rule}.name" in " ".join(away["for_each"].split())
    assert away["for_each"].startswith("${local.is_home ? {} : {")
    assert away["rule"] == "${each.value}"
    assert away["arn"] == "${local.home_bus_arn}" and away["role_arn"] == "${var.event_bus_role_arn}"
    assert "input_transformer" not in away  # forwarded as is: the home rules match the original event
    (state_target_paths,) = targets["alarm_state_changes"]["input_transformer"]
    assert state_target_paths["input_paths"]["alarm"] == "$.detail.alarmName"


@pytest.fixture(scope="module")
def alarm_state_patterns(mod: dict, tmp_path_factory) -> dict:
    """The alarm state rule's pattern, evaluated by Terraform for the home region and another one."""
    expr = mod["resource"]["aws_cloudwatch_event_rule"]["alarm_state_changes"]["event_pattern"]
    root = tmp_path_factory.mktemp("alarm_state_pattern")
    outputs = []
    for label, region in (("home", "eu-west-1"), ("away", "ap-south-1")):
        body = expr[2:-1].replace("local.is_home", f'("{region}" == "eu-west-1")') \
            .replace("var.home_region", '"eu-west-1"').replace("var.name_prefix", '"acme"')
        outputs.append(f'output "{label}" {{\n  value = {body}\n}}\n')
    (root / "main.tf").write_text("\n".join(outputs), encoding="utf-8")
    return {k: json.loads(v) for k, v in apply_and_read_outputs(root).items()}


def _alarm_event(region: str, name: str, detail_type="CloudWatch Alarm State Change") -> dict:
    return {"version": "0", "id": "1", "detail-type": detail_type, "source": "aws.cloudwatch",
            "account": "123456789012", "time": "2026-01-01T00:00:00Z", "region": region,
            "resources": [f"arn:aws:cloudwatch:{region}:123456789012:alarm:{name}"],
            "detail": {"alarmName": name, "state": {"value": "ALARM", "reason": "x"},
                       "previousState": {"value": "OK"}}}


def test_alarm_state_rule_catches_the_baselines_alarms_once(alarm_state_patterns: dict):
    from provisioner.controls.alarms import event_pattern_matches

    home, away = alarm_state_patterns["home"], alarm_state_patterns["away"]
    for detail_type in ("CloudWatch Alarm State Change", "CloudWatch Alarm Contributor State Change"):
        # A region's own alarms leave through its forwarding rule...
        assert event_pattern_matches(away, _alarm_event("ap-south-1", "acme-cpu-fleet", detail_type))
        # ...and the home rule takes them when they arrive on the home bus.
        assert event_pattern_matches(home, _alarm_event("ap-south-1", "acme-cpu-fleet", detail_type))
    # The home region's own alarms notify the topic directly: the rule must not repeat them.
    assert not event_pattern_matches(home, _alarm_event("eu-west-1", "acme-cpu-fleet"))
    # Only this baseline's alarms.
    assert not event_pattern_matches(away, _alarm_event("ap-south-1", "someone-elses-alarm"))
    # The fix (provisioner/controls/alarms.py) puts the same patterns when it builds the route.
    from provisioner.controls.alarms import alarm_state_pattern

    assert home == alarm_state_pattern("acme", "eu-west-1", home=True)
    assert away == alarm_state_pattern("acme", "eu-west-1", home=False)


# ---------------------------------------------------------------------------
# Variables and outputs
# ---------------------------------------------------------------------------

VALIDATED = {
    "region", "name_prefix", "topic_name", "subscriptions", "kms_key_arn", "instance_ids", "cpu_threshold",
    "cpu_evaluation_periods", "cpu_period_seconds", "cloudtrail_log_group_name",
    "allocate_address_alarm_threshold", "metric_namespace", "kms_deletion_window_days", "home_region",
    "event_bus_role_arn", "topic_policy_json",
    "eip_pool_alarm_share",
}


def test_variables_have_type_description_and_validations(mod: dict):
    assert_variables_documented(mod, VALIDATED, {"tags", "cpu_alarms_enabled", "event_rule_enabled"})
    assert len(mod["variable"]["subscriptions"]["validation"]) >= 2  # protocol enum + https endpoint


def test_variable_defaults(mod: dict):
    v = mod["variable"]
    assert "default" not in v["region"] and "default" not in v["name_prefix"] and "default" not in v["home_region"]
    assert "default" not in v["topic_policy_json"]  # no topic without harden's policy
    expected = {
        "tags": {}, "topic_name": None, "subscriptions": [], "kms_key_arn": None, "cpu_alarms_enabled": True,
        "instance_ids": [], "cpu_threshold": 80, "cpu_evaluation_periods": 3, "cpu_period_seconds": 300,
        "cloudtrail_log_group_name": None, "allocate_address_alarm_threshold": 1,
        "metric_namespace": "Harden/Security", "event_rule_enabled": True, "kms_deletion_window_days": 30,
        "event_bus_role_arn": None,
    }
    assert {k: v[k]["default"] for k in expected} == expected


def test_outputs(mod: dict):
    outputs = mod["output"]
    assert {"topic_arn", "kms_key_arn", "cpu_alarm_names", "allocate_address_alarm_name", "metric_filter_name",
            "event_rule_arn", "event_rule_name"} <= set(outputs)
    assert_outputs_described(mod)
    assert outputs["topic_arn"]["value"] == "${local.topic_arn}"
    assert mod["locals"]["topic_arn"] == "${local.is_home ? aws_sns_topic.alarms[0].arn : null}"
    assert outputs["cpu_fleet_alarm_name"]["value"] == "${one(aws_cloudwatch_metric_alarm.cpu_fleet[*].alarm_name)}"
    assert outputs["kms_key_arn"]["value"] == "${local.kms_key_arn}"
    assert outputs["cpu_alarm_names"]["value"] == \
        "${{for id, alarm in aws_cloudwatch_metric_alarm.cpu : id => alarm.alarm_name}}"
    assert outputs["allocate_address_alarm_name"]["value"] == \
        "${one(aws_cloudwatch_metric_alarm.allocate_address[*].alarm_name)}"


# Variable validations evaluated by the real Terraform: variables.tf alone needs no provider.

GOOD = {
    "region": "eu-west-1",
    "home_region": "us-east-1",
    "event_bus_role_arn": "arn:aws:iam::123456789012:role/harden-events-to-home-region",
    "name_prefix": "harden",
    "topic_policy_json": '{"Version":"2012-10-17","Statement":[]}',
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
    ("home_region", "Europe", "home_region must be"),
    ("event_bus_role_arn", "harden-events", "event_bus_role_arn must be an IAM role ARN"),
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
    assert_accepted(validation_root, {"region": "us-gov-west-1", "home_region": "us-gov-west-1", "name_prefix": "h",
                                      "topic_policy_json": '{"Statement":[]}'})


@pytest.mark.parametrize("name,value,message", BAD, ids=[f"{n}={v}" for n, v, _ in BAD])
def test_validations_reject_bad_values(validation_root: Path, name: str, value, message: str):
    assert message in plan_error(validation_root, {**GOOD, name: value})
