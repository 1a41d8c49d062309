"""The alarms.cpu fix against the emulator (EC2 instances, CloudWatch alarms, SNS, KMS and EventBridge
are all implemented there; alarms start in OK, which the check does not look at). No stubbing.
The fix creates the region's fleet alarm, as the alarms module does."""

from __future__ import annotations

import json

from provisioner.baseline import parse_baseline
from provisioner.controls.alarms import CPU_FLEET_QUERY, METRICS_INSIGHTS_MAX_SERIES
from provisioner.converge import KEY_CALLS
from provisioner.remediate import run_remediation
from tests.hcl import load_hcl

REGION = "eu-west-1"
ACCOUNT = "123456789012"
TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT}:harden-security-alarms"
CONTROL = ["alarms.cpu"]
FLEET = "harden-cpu-fleet"


def _baseline(**alarms):
    return parse_baseline({"regions": [REGION], "home_region": REGION, "alarms": alarms})


def _instances(aws, count: int) -> list[str]:
    ec2 = aws.client("ec2", REGION)
    return sorted(i["InstanceId"] for i in ec2.run_instances(ImageId="ami-12c6146b", MinCount=count, MaxCount=count,
                                                              InstanceType="t3.micro")["Instances"])


def _alarms(aws) -> dict[str, dict]:
    return {a["AlarmName"]: a for a in aws.client("cloudwatch", REGION).describe_alarms()["MetricAlarms"]}


def _state(aws) -> tuple:
    kms, sns = aws.client("kms", REGION), aws.client("sns", REGION)
    alarms = {name: (a.get("ActionsEnabled"), a.get("AlarmActions"), a.get("Threshold"))
              for name, a in _alarms(aws).items()}
    return (alarms, sorted(t["TopicArn"] for t in sns.list_topics()["Topics"]),
            sorted(a["AliasName"] for a in kms.list_aliases()["Aliases"]), len(kms.list_keys()["Keys"]))


def test_the_fix_and_the_module_create_the_same_fleet_alarm(rendered):
    """One query, one name, one limit: what the fix puts is what Terraform declares."""
    module = load_hcl(rendered / "modules" / "alarms")
    assert module["locals"]["cpu_fleet_query"].replace('\\"', '"') == CPU_FLEET_QUERY
    assert module["locals"]["metrics_insights_max_series"] == METRICS_INSIGHTS_MAX_SERIES
    assert module["resource"]["aws_cloudwatch_metric_alarm"]["cpu_fleet"]["alarm_name"] == "${var.name_prefix}-cpu-fleet"


def test_creates_the_topic_then_the_fleet_alarm(aws):
    first, second, stopped = _instances(aws, 3)
    aws.client("ec2", REGION).stop_instances(InstanceIds=[stopped])
    baseline = _baseline(cpu_threshold=90, cpu_evaluation_periods=2, cpu_period_seconds=60,
                         subscriptions=[{"protocol": "https", "endpoint": "https://hooks.example.com/secret-token"}])
    before = _state(aws)

    dry = run_remediation(aws, baseline, controls=CONTROL)
    assert [a.resource for a in dry.actions] == [TOPIC, FLEET]  # one alarm, however many instances
    assert dry.actions[0].calls == [*KEY_CALLS, "sns:CreateTopic", "sns:Subscribe"]
    assert "not aws/sns" in dry.actions[0].description
    assert "secret-token" not in json.dumps([a.to_dict() for a in dry.actions])  # endpoints stay out of output
    assert dry.actions[1].description.startswith(f"create fleet alarm {FLEET}: Average CPUUtilization of any "
                                                 f"instance in {REGION} >= 90% for 2 x 60s")
    assert f"alarm and OK actions to {TOPIC}" in dry.actions[1].description
    assert {r.status for r in dry.results} == {"planned"} and dry.exit_code() == 1
    assert _state(aws) == before  # the dry run changed nothing

    applied = run_remediation(aws, baseline, controls=CONTROL, apply=True)
    assert [r.status for r in applied.results] == ["applied"] * 2, [r.message for r in applied.results]
    assert applied.after is not None and applied.after.exit_code() == 0

    kms, sns = aws.client("kms", REGION), aws.client("sns", REGION)
    key = kms.describe_key(KeyId="alias/harden-security-alarms")["KeyMetadata"]
    assert kms.get_key_rotation_status(KeyId=key["KeyId"])["KeyRotationEnabled"] is True
    # The module's key policy: EventBridge sends no aws:SourceAccount on its KMS calls, so its
    # grant is bound to the topic by the SNS encryption context instead.
    grants = {s["Sid"]: s for s in json.loads(kms.get_key_policy(KeyId=key["KeyId"], PolicyName="default")["Policy"])
              ["Statement"]}
    assert grants["AllowEventBridgeForThisTopicOnly"]["Principal"] == {"Service": "events.amazonaws.com"}
    assert grants["AllowEventBridgeForThisTopicOnly"]["Condition"] == {
        "StringEquals": {"kms:EncryptionContext:aws:sns:topicArn": TOPIC}}
    assert grants["AllowCloudWatchAlarmsForThisTopicOnly"]["Condition"] == {
        "StringEquals": {"kms:EncryptionContext:aws:sns:topicArn": TOPIC}}
    attributes = sns.get_topic_attributes(TopicArn=TOPIC)["Attributes"]
    assert attributes["KmsMasterKeyId"] == key["Arn"]
    publishers = {s["Sid"]: s for s in json.loads(attributes["Policy"])["Statement"]}
    assert publishers["AllowCloudWatchAlarmsOfThisModule"]["Condition"]["ArnLike"] == {
        "aws:SourceArn": f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:harden-*"}
    assert publishers["DenyPublishWithoutTls"]["Effect"] == "Deny"
    assert [s["Protocol"] for s in sns.list_subscriptions_by_topic(TopicArn=TOPIC)["Subscriptions"]] == ["https"]

    alarms = _alarms(aws)
    assert sorted(alarms) == [FLEET]
    alarm = alarms[FLEET]
    assert alarm["Metrics"] == [{"Id": "cpu", "Label": "CPUUtilization by InstanceId", "Expression": CPU_FLEET_QUERY,
                                 "Period": 60, "ReturnData": True}]
    assert (alarm["Threshold"], alarm["EvaluationPeriods"]) == (90.0, 2)
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["TreatMissingData"] == "missing" and alarm["ActionsEnabled"] is True
    assert alarm["AlarmActions"] == [TOPIC] and alarm["OKActions"] == [TOPIC]
    tags = aws.client("cloudwatch", REGION).list_tags_for_resource(ResourceARN=alarm["AlarmArn"])["Tags"]
    assert tags == [{"Key": "ManagedBy", "Value": "harden"}]

    again = run_remediation(aws, baseline, controls=CONTROL, apply=True)
    assert again.actions == [] and again.exit_code() == 0
    # An instance launched now is covered without anything new.
    _instances(aws, 1)
    assert run_remediation(aws, baseline, controls=CONTROL).actions == []


def test_existing_topic_is_used_and_a_non_compliant_alarm_of_that_name_is_replaced(aws):
    (instance,) = _instances(aws, 1)
    topic = aws.client("sns", REGION).create_topic(Name="ops-alerts")["TopicArn"]
    cw = aws.client("cloudwatch", REGION)
    cw.put_metric_alarm(AlarmName=FLEET, EvaluationPeriods=3, Threshold=80, ActionsEnabled=False,
                        ComparisonOperator="GreaterThanOrEqualToThreshold", AlarmActions=[topic],
                        Metrics=[{"Id": "cpu", "Expression": CPU_FLEET_QUERY, "Period": 300, "ReturnData": True}])
    cw.put_metric_alarm(AlarmName="legacy-cpu", Namespace="AWS/EC2", MetricName="CPUUtilization",
                        Dimensions=[{"Name": "InstanceId", "Value": instance}], Statistic="Average",
                        Period=300, EvaluationPeriods=3, Threshold=80, ActionsEnabled=False,
                        ComparisonOperator="GreaterThanOrEqualToThreshold", AlarmActions=[topic])
    legacy = _alarms(aws)["legacy-cpu"]
    baseline = _baseline(topic_name="ops-alerts")

    run = run_remediation(aws, baseline, controls=CONTROL, apply=True)
    (action,) = run.actions  # no topic action: it exists
    assert action.description.startswith(f"replace the non-compliant fleet alarm {FLEET}:")
    assert run.after.exit_code() == 0
    alarms = _alarms(aws)
    assert alarms[FLEET]["ActionsEnabled"] is True
    assert alarms[FLEET]["AlarmActions"] == [topic]
    assert alarms["legacy-cpu"] == legacy  # someone else's alarm is left as it was
    assert "alias/ops-alerts" not in {a["AliasName"] for a in aws.client("kms", REGION).list_aliases()["Aliases"]}


def test_a_failed_topic_creation_stops_the_alarms(aws):
    # An alarm whose action is a topic that does not exist would pass verify and tell nobody.
    (instance,) = _instances(aws, 1)
    kms = aws.client("kms", REGION)
    disabled = kms.create_key(Description="topic key")["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName="alias/harden-security-alarms", TargetKeyId=disabled)
    kms.disable_key(KeyId=disabled)

    run = run_remediation(aws, _baseline(), controls=CONTROL, apply=True)
    assert [(a.resource, r.status) for a, r in zip(run.actions, run.results)] == [(TOPIC, "failed"),
                                                                                 (FLEET, "failed")]
    assert "is Disabled" in run.results[0].message and "does not exist" in run.results[1].message
    assert run.exit_code() == 3 and _alarms(aws) == {}


def test_outside_the_home_region_the_fix_routes_the_fleet_alarm_to_the_home_topic(aws):
    """A CloudWatch alarm can only notify a topic of its own region: outside the home region the
    fix creates no regional topic (that would need its own confirmation again); it creates what the
    module declares: the one topic in the home region, the EventBridge route to it, the alarm."""
    away = "ap-south-1"
    baseline = parse_baseline({"regions": [REGION, away], "home_region": REGION})
    aws.client("ec2", away).run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, InstanceType="t3.micro")

    dry = run_remediation(aws, baseline, controls=CONTROL, regions=[away])
    assert [(a.region, a.resource) for a in dry.actions] == [(REGION, TOPIC), (away, "harden-alarm-state-changes"),
                                                            (away, FLEET)]
    assert "events:PutEvents on that bus only" in dry.actions[1].description
    assert f"its state changes reach {TOPIC} through the EventBridge rule harden-alarm-state-changes" in \
        dry.actions[2].description

    applied = run_remediation(aws, baseline, controls=CONTROL, regions=[away], apply=True)
    assert [r.status for r in applied.results] == ["applied"] * 3, [r.message for r in applied.results]
    alarm = {a["AlarmName"]: a for a in aws.client("cloudwatch", away).describe_alarms()["MetricAlarms"]}[FLEET]
    assert alarm["AlarmActions"] == [] and alarm["ActionsEnabled"] is True
    assert aws.client("sns", away).list_topics()["Topics"] == []  # no second topic to confirm
    role = aws.client("iam").get_role(RoleName="harden-events-to-home-region")["Role"]
    policy = aws.client("iam").get_role_policy(RoleName=role["RoleName"], PolicyName="put-events-on-home-bus")
    assert policy["PolicyDocument"]["Statement"][0]["Resource"] == \
        f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/default"
    (target,) = aws.client("events", away).list_targets_by_rule(Rule="harden-alarm-state-changes")["Targets"]
    assert target["Arn"] == f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/default" and target["RoleArn"] == role["Arn"]
    assert applied.after.exit_code() == 0  # verify follows the route
    assert run_remediation(aws, baseline, controls=CONTROL, regions=[away]).actions == []


def test_above_the_query_limit_each_instance_also_gets_its_own_alarm(aws, monkeypatch):
    # 501 emulated instances would take long: the limit is lowered instead (the same constant the
    # check and the fix read; the module holds the same number, see the contract test above).
    monkeypatch.setattr("provisioner.controls.alarms.METRICS_INSIGHTS_MAX_SERIES", 2)
    ids = _instances(aws, 3)
    run = run_remediation(aws, _baseline(), controls=CONTROL, apply=True)
    assert [a.resource for a in run.actions] == [TOPIC, FLEET, *ids]
    assert "more running instances than the fleet alarm's query evaluates" in run.actions[2].description
    assert sorted(_alarms(aws)) == sorted([FLEET, *(f"harden-cpu-{i}" for i in ids)])
    assert run.after.exit_code() == 0


def test_the_home_topic_is_planned_once_for_every_region_that_needs_it(aws):
    regions = [REGION, "ap-south-1", "sa-east-1"]
    baseline = parse_baseline({"regions": regions, "home_region": REGION})
    for region in regions[1:]:
        aws.client("ec2", region).run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1,
                                                InstanceType="t3.micro")
    run = run_remediation(aws, baseline, controls=CONTROL, apply=True)
    assert [a.resource for a in run.actions].count(TOPIC) == 1
    assert [r.status for r in run.results] == ["applied"] * len(run.actions), [r.message for r in run.results]
    assert run.after.exit_code() == 0
