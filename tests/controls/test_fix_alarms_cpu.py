"""The alarms.cpu fix against the emulator (EC2 instances, CloudWatch alarms, SNS and KMS are all
implemented there; alarms start in OK, which the check does not look at). No stubbing."""

from __future__ import annotations

import json

from provisioner.baseline import parse_baseline
from provisioner.harden_keys import KEY_CALLS
from provisioner.remediate import run_remediation

REGION = "eu-west-1"
ACCOUNT = "123456789012"
TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT}:harden-security-alarms"
CONTROL = ["alarms.cpu"]


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


def test_creates_the_topic_then_one_alarm_per_running_instance(aws):
    first, second, stopped = _instances(aws, 3)
    aws.client("ec2", REGION).stop_instances(InstanceIds=[stopped])
    baseline = _baseline(cpu_threshold=90, cpu_evaluation_periods=2, cpu_period_seconds=60,
                         subscriptions=[{"protocol": "https", "endpoint": "https://hooks.example.com/secret-token"}])
    before = _state(aws)

    dry = run_remediation(aws, baseline, controls=CONTROL)
    assert [a.resource for a in dry.actions] == [TOPIC, first, second]
    assert dry.actions[0].calls == [*KEY_CALLS, "sns:CreateTopic", "sns:Subscribe"]
    assert "not aws/sns" in dry.actions[0].description
    assert "secret-token" not in json.dumps([a.to_dict() for a in dry.actions])  # endpoints stay out of output
    assert dry.actions[1].description.startswith(f"create alarm harden-cpu-{first}: Average CPUUtilization of "
                                                 f"{first} >= 90% for 2 x 60s")
    assert {r.status for r in dry.results} == {"planned"} and dry.exit_code() == 1
    assert _state(aws) == before  # the dry run changed nothing

    applied = run_remediation(aws, baseline, controls=CONTROL, apply=True)
    assert [r.status for r in applied.results] == ["applied"] * 3, [r.message for r in applied.results]
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
    assert grants["AllowCloudWatchAlarmsOfThisAccount"]["Condition"] == {
        "StringEquals": {"aws:SourceAccount": ACCOUNT}}
    attributes = sns.get_topic_attributes(TopicArn=TOPIC)["Attributes"]
    assert attributes["KmsMasterKeyId"] == key["Arn"]
    publishers = {s["Sid"]: s for s in json.loads(attributes["Policy"])["Statement"]}
    assert publishers["AllowCloudWatchAlarmsOfThisModule"]["Condition"]["ArnLike"] == {
        "aws:SourceArn": f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:harden-*"}
    assert publishers["DenyPublishWithoutTls"]["Effect"] == "Deny"
    assert [s["Protocol"] for s in sns.list_subscriptions_by_topic(TopicArn=TOPIC)["Subscriptions"]] == ["https"]

    alarms = _alarms(aws)
    assert sorted(alarms) == [f"harden-cpu-{first}", f"harden-cpu-{second}"]  # none for the stopped one
    alarm = alarms[f"harden-cpu-{first}"]
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"]) == ("AWS/EC2", "CPUUtilization", "Average")
    assert alarm["Dimensions"] == [{"Name": "InstanceId", "Value": first}]
    assert (alarm["Threshold"], alarm["EvaluationPeriods"], alarm["Period"]) == (90.0, 2, 60)
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["TreatMissingData"] == "missing" and alarm["ActionsEnabled"] is True
    assert alarm["AlarmActions"] == [TOPIC] and alarm["OKActions"] == [TOPIC]
    tags = aws.client("cloudwatch", REGION).list_tags_for_resource(ResourceARN=alarm["AlarmArn"])["Tags"]
    assert tags == [{"Key": "ManagedBy", "Value": "harden"}]

    again = run_remediation(aws, baseline, controls=CONTROL, apply=True)
    assert again.actions == [] and again.exit_code() == 0


def test_existing_topic_is_used_and_a_non_compliant_alarm_of_that_name_is_replaced(aws):
    (instance,) = _instances(aws, 1)
    topic = aws.client("sns", REGION).create_topic(Name="ops-alerts")["TopicArn"]
    cw = aws.client("cloudwatch", REGION)
    for name in (f"harden-cpu-{instance}", "legacy-cpu"):  # both with actions disabled
        cw.put_metric_alarm(AlarmName=name, Namespace="AWS/EC2", MetricName="CPUUtilization",
                            Dimensions=[{"Name": "InstanceId", "Value": instance}], Statistic="Average",
                            Period=300, EvaluationPeriods=3, Threshold=80, ActionsEnabled=False,
                            ComparisonOperator="GreaterThanOrEqualToThreshold", AlarmActions=[topic])
    legacy = _alarms(aws)["legacy-cpu"]
    baseline = _baseline(topic_name="ops-alerts")

    run = run_remediation(aws, baseline, controls=CONTROL, apply=True)
    (action,) = run.actions  # no topic action: it exists
    assert action.description.startswith(f"replace the non-compliant alarm harden-cpu-{instance}:")
    assert run.after.exit_code() == 0
    alarms = _alarms(aws)
    assert alarms[f"harden-cpu-{instance}"]["ActionsEnabled"] is True
    assert alarms[f"harden-cpu-{instance}"]["AlarmActions"] == [topic]
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
                                                                                 (instance, "failed")]
    assert "is Disabled" in run.results[0].message and "does not exist" in run.results[1].message
    assert run.exit_code() == 3 and _alarms(aws) == {}
