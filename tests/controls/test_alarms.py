"""alarms.* against the emulator, plus the two pattern evaluators on their own.

The emulator confirms every SNS subscription at once, so the "pending confirmation" case puts
botocore's Stubber on the session's cached sns client (validated against the real SNS model);
the check makes no other sns call in that test.
"""

from __future__ import annotations

import json

import pytest
from botocore.stub import Stubber

from provisioner import address_events
from provisioner.baseline import parse_baseline
from provisioner.controls import CheckContext
from provisioner.controls.alarms import (
    allocate_address,
    cpu,
    event_pattern_matches,
    filter_pattern_matches,
    sample_address_move_records,
    sample_allocate_address_records,
)
from provisioner.verify import run_verify

HOME = "us-east-1"
OTHER = "eu-west-1"

# What the alarms module renders (provisioner/address_events.py, the one definition; the rendered
# module is held to it in tests/test_module_alarms.py): verify must accept it.
BASELINE_EVENT_PATTERN = address_events.event_pattern()
BASELINE_FILTER_PATTERN = address_events.filter_pattern()
# What harden rendered before the address moves were caught: allocation, release, AssociateAddress
# and transfers only.
ALLOCATION_ONLY_NAMES = ["AllocateAddress", "ReleaseAddress", "AssociateAddress", "EnableAddressTransfer",
                         "AcceptAddressTransfer", "DisableAddressTransfer"]
ALLOCATION_ONLY_EVENT_PATTERN = {
    "source": ["aws.ec2"], "detail-type": ["AWS API Call via CloudTrail"],
    "detail": {"eventSource": ["ec2.amazonaws.com"], "eventName": ALLOCATION_ONLY_NAMES}}
ALLOCATION_ONLY_FILTER_PATTERN = ('{ ($.eventSource = "ec2.amazonaws.com") && ('
                                  + " || ".join(f'($.eventName = "{n}")' for n in ALLOCATION_ONLY_NAMES) + ") }")


def _ctx(aws, region, control_id, baseline=None):
    return CheckContext(aws=aws, baseline=baseline or parse_baseline({}), region=region,
                        account_id=aws.account_id(), control_id=control_id)


def _topic(aws, region, name="harden-security-alarms", subscribe=True):
    sns = aws.client("sns", region)
    arn = sns.create_topic(Name=name)["TopicArn"]
    if subscribe:
        sns.subscribe(TopicArn=arn, Protocol="email", Endpoint="secops@example.com")
    return arn


# -- alarms.cpu ----------------------------------------------------------------------------------

def _cpu_alarm(cw, name, instance_id, actions, *, enabled=True, operator="GreaterThanOrEqualToThreshold",
               threshold=80.0, extra_dimensions=()):
    cw.put_metric_alarm(AlarmName=name, Namespace="AWS/EC2", MetricName="CPUUtilization",
                        Dimensions=[{"Name": "InstanceId", "Value": instance_id}, *extra_dimensions],
                        Statistic="Average", Period=300, EvaluationPeriods=3, Threshold=threshold,
                        ComparisonOperator=operator, ActionsEnabled=enabled, AlarmActions=actions)


def test_cpu_alarm_per_running_instance(aws):
    ec2, cw = aws.client("ec2", OTHER), aws.client("cloudwatch", OTHER)
    ids = [i["InstanceId"] for i in ec2.run_instances(ImageId="ami-12c6146b", MinCount=6, MaxCount=6,
                                                        InstanceType="t3.micro")["Instances"]]
    good, disabled, low, none, math, stopped = ids
    ec2.stop_instances(InstanceIds=[stopped])
    topic = _topic(aws, OTHER)
    _cpu_alarm(cw, "cpu-good", good, [topic])
    _cpu_alarm(cw, "cpu-disabled", disabled, [topic], enabled=False)
    _cpu_alarm(cw, "cpu-idle", low, [topic], operator="LessThanThreshold", threshold=5)
    # Another metric (an extra dimension) is not this instance's CPU.
    _cpu_alarm(cw, "cpu-other-metric", none, [topic], extra_dimensions=[{"Name": "AutoScalingGroupName",
                                                                          "Value": "asg"}])
    cw.put_metric_alarm(AlarmName="cpu-math", EvaluationPeriods=1, Threshold=90,
                        ComparisonOperator="GreaterThanThreshold", AlarmActions=[topic],
                        Metrics=[{"Id": "cpu", "ReturnData": True, "MetricStat": {"Period": 60, "Stat": "Maximum",
                                  "Metric": {"Namespace": "AWS/EC2", "MetricName": "CPUUtilization",
                                             "Dimensions": [{"Name": "InstanceId", "Value": math}]}}}])
    _cpu_alarm(cw, "cpu-stopped", stopped, [])

    by_id = {f.resource: f for f in cpu(_ctx(aws, OTHER, "alarms.cpu"))}

    assert set(by_id) == {good, disabled, low, none, math}  # the stopped instance is not checked
    assert by_id[good].status == "pass" and by_id[good].evidence["alarm_names"] == ["cpu-good"]
    assert by_id[good].evidence["alarms"][0]["alarm_actions"] == [topic]
    assert by_id[math].status == "pass" and by_id[math].evidence["alarm_names"] == ["cpu-math"]
    assert by_id[disabled].status == "fail" and "cpu-disabled: actions disabled" in by_id[disabled].message
    assert by_id[low].status == "fail" and "LessThanThreshold does not fire on high CPU" in by_id[low].message
    assert by_id[none].status == "fail" and by_id[none].evidence == {"alarm_names": [], "alarms": []}
    assert "harden-cpu-fleet" in by_id[none].message


def test_cpu_alarm_without_action_or_with_impossible_threshold_fails(aws):
    ec2, cw = aws.client("ec2", OTHER), aws.client("cloudwatch", OTHER)
    a, b = [i["InstanceId"] for i in ec2.run_instances(ImageId="ami-12c6146b", MinCount=2, MaxCount=2,
                                                         InstanceType="t3.micro")["Instances"]]
    _cpu_alarm(cw, "cpu-a", a, [])
    _cpu_alarm(cw, "cpu-b", b, [_topic(aws, OTHER)], operator="GreaterThanThreshold", threshold=100)
    before = aws.calls.by_operation()
    by_id = {f.resource: f for f in cpu(_ctx(aws, OTHER, "alarms.cpu"))}
    after = aws.calls.by_operation()
    assert "no alarm action" in by_id[a].message and by_id[a].status == "fail"
    assert "can never be crossed" in by_id[b].message and by_id[b].status == "fail"
    # One list call each per region, whatever the number of instances and alarms.
    assert after["ec2:DescribeInstances"] - before.get("ec2:DescribeInstances", 0) == 1
    assert after["cloudwatch:DescribeAlarms"] - before.get("cloudwatch:DescribeAlarms", 0) == 1


def test_cpu_alarm_whose_topic_was_deleted_fails(aws):
    """An alarm that points only at a deleted topic looks configured and tells nobody."""
    ec2, cw = aws.client("ec2", OTHER), aws.client("cloudwatch", OTHER)
    dead, alive, elsewhere = [i["InstanceId"] for i in ec2.run_instances(
        ImageId="ami-12c6146b", MinCount=3, MaxCount=3, InstanceType="t3.micro")["Instances"]]
    gone = _topic(aws, OTHER, name="deleted-topic")
    aws.client("sns", OTHER).delete_topic(TopicArn=gone)
    _cpu_alarm(cw, "cpu-dead", dead, [gone])
    _cpu_alarm(cw, "cpu-alive", alive, [gone, _topic(aws, OTHER)])  # one live action is enough
    # A topic in another account cannot be listed from here: trusted, not failed.
    _cpu_alarm(cw, "cpu-elsewhere", elsewhere, [f"arn:aws:sns:{OTHER}:210987654321:central-alarms"])
    before = aws.calls.by_operation().get("sns:ListTopics", 0)
    by_id = {f.resource: f for f in cpu(_ctx(aws, OTHER, "alarms.cpu"))}
    assert by_id[dead].status == "fail" and "topic that no longer exists" in by_id[dead].message
    assert by_id[alive].status == "pass" and by_id[elsewhere].status == "pass"
    assert aws.calls.by_operation()["sns:ListTopics"] - before == 1  # one list per region


def test_cpu_no_running_instance_passes_and_disabled_baseline_skips(aws):
    findings = cpu(_ctx(aws, OTHER, "alarms.cpu"))
    assert [(f.status, f.resource) for f in findings] == [("pass", OTHER)]
    off = run_verify(aws, parse_baseline({"home_region": OTHER, "regions": [OTHER], "alarms": {"enabled": False}}),
                     controls=["alarms"])
    assert [(f.control, f.status) for f in off.findings] == [("alarms.cpu", "skipped"),
                                                            ("alarms.allocate_address", "skipped")]
    assert all("alarms.enabled = false" in f.message for f in off.findings)


# -- alarms.cpu: the fleet alarm (Metrics Insights) and the EventBridge route (issue 11.3/11.4) ------

FLEET_QUERY = 'SELECT AVG(CPUUtilization) FROM SCHEMA("AWS/EC2", InstanceId) GROUP BY InstanceId ORDER BY AVG() DESC'
ALARM_STATE_PATTERN = {"source": ["aws.cloudwatch"],
                       "detail-type": ["CloudWatch Alarm State Change", "CloudWatch Alarm Contributor State Change"],
                       "detail": {"alarmName": [{"prefix": "harden-"}]}}


def _fleet_alarm(cw, name="harden-cpu-fleet", query=FLEET_QUERY, actions=(), threshold=80.0):
    cw.put_metric_alarm(AlarmName=name, EvaluationPeriods=3, Threshold=threshold, TreatMissingData="missing",
                        ComparisonOperator="GreaterThanOrEqualToThreshold", ActionsEnabled=True,
                        AlarmActions=list(actions), OKActions=list(actions),
                        Metrics=[{"Id": "cpu", "Expression": query, "Period": 300, "ReturnData": True}])


def _instances(aws, region, count):
    return sorted(i["InstanceId"] for i in aws.client("ec2", region).run_instances(
        ImageId="ami-12c6146b", MinCount=count, MaxCount=count, InstanceType="t3.micro")["Instances"])


def _route_to_home(aws, region=OTHER, home=HOME, *, home_rule=True, subscribe=True, delete_topic=False):
    """What the alarms module renders: a rule in `region` to the home bus, a rule there to the topic."""
    events = aws.client("events", region)
    events.put_rule(Name="harden-alarm-state-changes", EventPattern=json.dumps(ALARM_STATE_PATTERN))
    events.put_targets(Rule="harden-alarm-state-changes", Targets=[{
        "Id": "home", "Arn": f"arn:aws:events:{home}:123456789012:event-bus/default",
        "RoleArn": "arn:aws:iam::123456789012:role/harden-events-to-home-region"}])
    topic = _topic(aws, home, subscribe=subscribe)
    if home_rule:
        home_events = aws.client("events", home)
        home_events.put_rule(Name="harden-alarm-state-changes", EventPattern=json.dumps(
            {**ALARM_STATE_PATTERN, "region": [{"anything-but": home}]}))
        home_events.put_targets(Rule="harden-alarm-state-changes", Targets=[{"Id": "topic", "Arn": topic}])
    if delete_topic:
        aws.client("sns", home).delete_topic(TopicArn=topic)
    return topic


def test_fleet_alarm_covers_every_running_instance_new_ones_included(aws):
    cw = aws.client("cloudwatch", HOME)
    first = _instances(aws, HOME, 2)
    _fleet_alarm(cw, actions=[_topic(aws, HOME)])
    later = _instances(aws, HOME, 3)  # launched after the alarm: no re-apply needed
    by_id = {f.resource: f for f in cpu(_ctx(aws, HOME, "alarms.cpu"))}
    assert set(by_id) == set(first + later)
    assert all(f.status == "pass" and f.evidence["alarm_names"] == ["harden-cpu-fleet"] for f in by_id.values())
    assert by_id[later[0]].evidence["alarms"][0]["kind"] == "fleet"
    assert by_id[later[0]].evidence["alarms"][0]["query"] == FLEET_QUERY


@pytest.mark.parametrize("query, why", [
    ('SELECT MAX(CPUUtilization) FROM "AWS/EC2" GROUP BY InstanceId ORDER BY MAX() DESC LIMIT 2',
     "evaluates at most 2 time series and 3 running instances"),
    ('SELECT AVG(CPUUtilization) FROM SCHEMA("AWS/EC2", InstanceId) WHERE InstanceId != \'{gone}\' '
     'GROUP BY InstanceId', "its WHERE clause leaves out 1 running instance"),
    ('SELECT AVG(CPUUtilization) FROM SCHEMA("AWS/EC2", InstanceId) WHERE tag.team = \'web\' GROUP BY InstanceId',
     "is not understood"),
    ('SELECT SUM(CPUUtilization) FROM SCHEMA("AWS/EC2", InstanceId) GROUP BY InstanceId', "not a query"),
    ('SELECT AVG(CPUUtilization) FROM SCHEMA("AWS/EC2", InstanceId)', "not a query"),  # one series, no instances
])
def test_fleet_alarm_that_does_not_surely_evaluate_an_instance_fails_for_it(aws, query, why):
    ids = _instances(aws, HOME, 3)
    _fleet_alarm(aws.client("cloudwatch", HOME), query=query.replace("{gone}", ids[0]), actions=[_topic(aws, HOME)])
    by_id = {f.resource: f for f in cpu(_ctx(aws, HOME, "alarms.cpu"))}
    failed = [i for i in ids if by_id[i].status == "fail"]
    assert failed == (ids[:1] if "WHERE clause leaves" in why else ids)
    assert all(why in by_id[i].message and "harden-cpu-fleet" in by_id[i].message for i in failed)


def test_fleet_alarm_outside_the_home_region_notifies_through_the_home_bus(aws):
    ids = _instances(aws, OTHER, 2)
    _fleet_alarm(aws.client("cloudwatch", OTHER))  # no SNS action: none can be in another region
    topic = _route_to_home(aws)
    by_id = {f.resource: f for f in cpu(_ctx(aws, OTHER, "alarms.cpu"))}
    assert [by_id[i].status for i in ids] == ["pass", "pass"], by_id[ids[0]].message
    assert by_id[ids[0]].evidence["alarms"][0]["routed_to"] == [topic]


@pytest.mark.parametrize("broken, message", [
    ({"home_rule": False}, "no EventBridge rule carries its state changes"),
    ({"delete_topic": True}, "no EventBridge rule carries its state changes"),
])
def test_fleet_alarm_without_a_working_route_fails(aws, broken, message):
    (instance,) = _instances(aws, OTHER, 1)
    _fleet_alarm(aws.client("cloudwatch", OTHER))
    _route_to_home(aws, **broken)
    (finding,) = cpu(_ctx(aws, OTHER, "alarms.cpu"))
    assert finding.status == "fail" and message in finding.message and "no alarm action" in finding.message


def test_alarm_state_rule_of_another_prefix_does_not_carry_the_alarm(aws):
    (instance,) = _instances(aws, OTHER, 1)
    _fleet_alarm(aws.client("cloudwatch", OTHER), name="team-cpu-fleet")  # not a harden- alarm
    _route_to_home(aws)
    (finding,) = cpu(_ctx(aws, OTHER, "alarms.cpu"))
    assert finding.status == "fail" and "team-cpu-fleet: no alarm action" in finding.message


# -- alarms.allocate_address: the EventBridge part -----------------------------------------------

def _rule(aws, region, topic_arn=None, pattern=None, name="harden-elastic-ip-api-calls", state="ENABLED"):
    events = aws.client("events", region)
    events.put_rule(Name=name, EventPattern=json.dumps(pattern or BASELINE_EVENT_PATTERN), State=state)
    if topic_arn:
        events.put_targets(Rule=name, Targets=[{"Id": "topic", "Arn": topic_arn}])


def _event_rule_finding(aws, region=OTHER, baseline=None):
    findings = allocate_address(_ctx(aws, region, "alarms.allocate_address", baseline))
    assert len(findings) == 1  # not the home region: the EventBridge part only
    return findings[0]


def test_event_rule_to_confirmed_topic_passes(aws):
    topic = _topic(aws, OTHER)
    _rule(aws, OTHER, topic)
    f = _event_rule_finding(aws)
    assert f.status == "pass", f.message
    assert f.resource == f"arn:aws:events:{OTHER}:123456789012:event-bus/default"
    assert f"rule harden-elastic-ip-api-calls sends AllocateAddress and address-moving calls to {topic}" in f.message
    assert f.evidence["rules"][0]["topics"][0]["confirmed"] == ["email:secops@example.com"]


def test_any_compliant_rule_passes_whatever_its_name(aws):
    # Every EC2 call: wider than the baseline's, and complete.
    _rule(aws, OTHER, _topic(aws, OTHER, name="secops"), name="team-eip-watch",
          pattern={"detail": {"eventSource": [{"prefix": "ec2."}]}})
    f = _event_rule_finding(aws)
    assert f.status == "pass" and "team-eip-watch" in f.message


def test_no_rule_fails(aws):
    f = _event_rule_finding(aws)
    assert f.status == "fail" and "no EventBridge rule" in f.message
    assert "harden-elastic-ip-api-calls" in f.message and f.evidence["rules"] == []


def test_rule_that_names_allocate_address_but_excludes_it_fails(aws):
    # Stricter than a text search: the pattern mentions AllocateAddress and still never matches.
    _rule(aws, OTHER, _topic(aws, OTHER),
          pattern={"source": ["aws.ec2"], "detail": {"eventName": [{"anything-but": "AllocateAddress"}]}})
    f = _event_rule_finding(aws)
    # It catches every move, and no allocation: catching the moves does not make up for that.
    assert f.status == "fail"
    assert f.evidence["rules"][0]["misses"] == list(sample_allocate_address_records("123456789012", OTHER))


def test_rule_that_misses_denied_attempts_fails(aws):
    pattern = {**BASELINE_EVENT_PATTERN, "detail": {**BASELINE_EVENT_PATTERN["detail"],
                                                    "errorCode": [{"exists": False}]}}
    _rule(aws, OTHER, _topic(aws, OTHER), pattern=pattern)
    f = _event_rule_finding(aws)
    assert f.status == "fail"
    assert "misses: attempt denied by a policy" in f.message
    assert f.evidence["rules"][0]["misses"] == ["attempt denied by a policy"]


def test_rule_narrowed_to_users_fails(aws):
    pattern = {"source": ["aws.ec2"], "detail": {"eventName": ["AllocateAddress"],
                                                 "userIdentity": {"type": ["IAMUser"]}}}
    _rule(aws, OTHER, _topic(aws, OTHER), pattern=pattern)
    f = _event_rule_finding(aws)
    assert f.status == "fail" and "allocation by an assumed role" in f.message


def test_disabled_rule_fails(aws):
    _rule(aws, OTHER, _topic(aws, OTHER), state="DISABLED")
    f = _event_rule_finding(aws)
    assert f.status == "fail" and "rule harden-elastic-ip-api-calls is DISABLED" in f.message


def test_rule_without_topic_or_with_unsubscribed_or_deleted_topic_fails(aws):
    _rule(aws, OTHER)  # no target
    assert "has no SNS topic target" in _event_rule_finding(aws).message

    lonely = _topic(aws, OTHER, name="nobody-listens", subscribe=False)
    _rule(aws, OTHER, lonely)
    assert f"topic {lonely} has no confirmed subscription" in _event_rule_finding(aws).message

    aws.client("sns", OTHER).delete_topic(TopicArn=lonely)
    f = _event_rule_finding(aws)
    assert f.status == "fail" and f"topic {lonely} does not exist" in f.message


def test_pending_subscription_does_not_count(aws):
    topic = _topic(aws, OTHER, subscribe=False)
    _rule(aws, OTHER, topic)
    # The emulator confirms every subscription: the SNS answer is stubbed (real SNS model).
    with Stubber(aws.client("sns", OTHER)) as stub:
        stub.add_response("list_subscriptions_by_topic", {"Subscriptions": [{
            "SubscriptionArn": "PendingConfirmation", "Owner": "123456789012", "Protocol": "email",
            "Endpoint": "secops@example.com", "TopicArn": topic}]}, {"TopicArn": topic})
        f = _event_rule_finding(aws)
        stub.assert_no_pending_responses()
    assert f.status == "fail" and "no confirmed subscription (1 pending confirmation)" in f.message


# -- subscriptions confirmed without authentication ------------------------------------------------
# The emulator confirms every subscription at once, authenticated (ConfirmationWasAuthenticated is
# always "true"): an email subscription confirmed by clicking its link is stubbed (real SNS model).

def _subscription(topic, protocol, endpoint, n):
    return {"SubscriptionArn": f"{topic}:0000000{n}-aaaa-bbbb-cccc-dddddddddddd", "Owner": "123456789012",
            "Protocol": protocol, "Endpoint": endpoint, "TopicArn": topic}


def _stub_subscriptions(stub, topic, subscriptions, unauthenticated):
    stub.add_response("list_subscriptions_by_topic", {"Subscriptions": subscriptions}, {"TopicArn": topic})
    for s in subscriptions:
        if s["Protocol"] in ("email", "email-json"):  # only these are asked
            stub.add_response("get_subscription_attributes", {"Attributes": {
                "SubscriptionArn": s["SubscriptionArn"], "TopicArn": topic, "Protocol": s["Protocol"],
                "Endpoint": s["Endpoint"], "Owner": "123456789012", "PendingConfirmation": "false",
                "ConfirmationWasAuthenticated": "false" if s["Endpoint"] in unauthenticated else "true"}},
                {"SubscriptionArn": s["SubscriptionArn"]})


def test_authenticated_confirmation_is_read_and_passes_without_a_note(aws):
    topic = _topic(aws, OTHER)
    _rule(aws, OTHER, topic)
    before = aws.calls.by_operation().get("sns:GetSubscriptionAttributes", 0)
    f = _event_rule_finding(aws)
    assert f.status == "pass", f.message
    assert "without authentication" not in f.message
    assert f.evidence["rules"][0]["topics"][0]["unauthenticated"] == []
    assert aws.calls.by_operation()["sns:GetSubscriptionAttributes"] - before == 1


def _rule_finding_with_subscriptions(aws, endpoints, unauthenticated, *, delivers):
    """The rule's finding, its topic's subscriptions (protocol, endpoint) stubbed; `delivers`: the
    topic notifies, so verify goes on to read its attributes (its key)."""
    topic = _topic(aws, OTHER, subscribe=False)
    _rule(aws, OTHER, topic)
    subscriptions = [_subscription(topic, protocol, endpoint, n) for n, (protocol, endpoint) in enumerate(endpoints)]
    with Stubber(aws.client("sns", OTHER)) as stub:
        _stub_subscriptions(stub, topic, subscriptions, unauthenticated)
        if delivers:
            stub.add_response("get_topic_attributes", {"Attributes": {"TopicArn": topic}}, {"TopicArn": topic})
        f = _event_rule_finding(aws)
        stub.assert_no_pending_responses()
    return topic, f


def test_a_topic_whose_only_subscriptions_were_confirmed_by_link_fails(aws):
    topic, f = _rule_finding_with_subscriptions(
        aws, [("email", "secops@example.com"), ("email-json", "soc@example.com")],
        {"secops@example.com", "soc@example.com"}, delivers=False)
    assert f.status == "fail"
    assert (f"topic {topic}: its only confirmed subscription(s) (email:secops@example.com, "
            "email-json:soc@example.com) were confirmed without authentication") in f.message
    assert f.evidence["rules"][0]["topics"][0]["unauthenticated"] == ["email:secops@example.com",
                                                                      "email-json:soc@example.com"]


def test_a_link_confirmed_email_beside_another_subscription_passes_with_a_note(aws):
    _, f = _rule_finding_with_subscriptions(
        aws, [("email", "secops@example.com"), ("sqs", "arn:aws:sqs:eu-west-1:123456789012:alerts")],
        {"secops@example.com"}, delivers=True)
    assert f.status == "pass", f.message
    assert "; email:secops@example.com was confirmed without authentication" in f.message
    assert f.evidence["rules"][0]["topics"][0]["unauthenticated"] == ["email:secops@example.com"]


def test_the_alarm_path_judges_link_confirmed_subscriptions_too(aws):
    topic = _topic(aws, HOME, subscribe=False)
    _rule(aws, HOME, topic)
    _metric_filter(aws, _trail(aws))
    _address_alarm(aws, topic)
    with Stubber(aws.client("sns", HOME)) as stub:
        _stub_subscriptions(stub, topic, [_subscription(topic, "email", "secops@example.com", 1)],
                            {"secops@example.com"})
        rule, metric = _home_findings(aws)  # one listing and one attribute call serve both paths
        stub.assert_no_pending_responses()
    assert rule.status == metric.status == "fail"
    assert "alarm harden-elastic-ip-api-calls: topic" in metric.message
    assert "were confirmed without authentication" in metric.message


def test_event_rule_to_the_home_bus_follows_the_route_to_the_home_topic(aws):
    # What the module renders outside the home region: the rule sends to the home bus, whose own
    # rule (it matches the calls of every region) publishes to the one topic.
    events = aws.client("events", OTHER)
    events.put_rule(Name="harden-elastic-ip-api-calls", EventPattern=json.dumps(BASELINE_EVENT_PATTERN))
    events.put_targets(Rule="harden-elastic-ip-api-calls", Targets=[{
        "Id": "home", "Arn": f"arn:aws:events:{HOME}:123456789012:event-bus/default",
        "RoleArn": "arn:aws:iam::123456789012:role/harden-events-to-home-region"}])
    f = _event_rule_finding(aws)
    assert f.status == "fail"
    assert f"sends to arn:aws:events:{HOME}:123456789012:event-bus/default, where no enabled rule" in f.message

    _rule(aws, HOME, name="home-without-topic")
    assert "where rule home-without-topic has no SNS topic target" in _event_rule_finding(aws).message
    aws.client("events", HOME).delete_rule(Name="home-without-topic")

    topic = _topic(aws, HOME)
    _rule(aws, HOME, topic)
    f = _event_rule_finding(aws)
    assert f.status == "pass", f.message
    assert f"sends AllocateAddress and address-moving calls to {topic} through the event bus of {HOME}" in f.message
    assert f.evidence["rules"][0]["forwarded"][0]["rule"] == "harden-elastic-ip-api-calls"


def test_home_rule_that_misses_another_regions_calls_does_not_count(aws):
    events = aws.client("events", OTHER)
    events.put_rule(Name="harden-elastic-ip-api-calls", EventPattern=json.dumps(BASELINE_EVENT_PATTERN))
    events.put_targets(Rule="harden-elastic-ip-api-calls", Targets=[{
        "Id": "home", "Arn": f"arn:aws:events:{HOME}:123456789012:event-bus/default"}])
    # A home rule narrowed to its own region never sees the forwarded calls.
    _rule(aws, HOME, _topic(aws, HOME), pattern={**BASELINE_EVENT_PATTERN, "region": [HOME]})
    f = _event_rule_finding(aws)
    assert f.status == "fail" and "where no enabled rule takes every AllocateAddress and address-moving call" in f.message


# -- alarms.allocate_address: the metric filter part (home region) ------------------------------

def _trail(aws, *, multi_region=True, logging=True, log_group="/aws/cloudtrail/harden"):
    logs = aws.client("logs", HOME)
    logs.create_log_group(logGroupName=log_group)
    group_arn = f"arn:aws:logs:{HOME}:123456789012:log-group:{log_group}:*"
    role = aws.client("iam", HOME).create_role(RoleName="trail-to-logs", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    aws.client("s3", HOME).create_bucket(Bucket="harden-trail-logs")
    cloudtrail = aws.client("cloudtrail", HOME)
    cloudtrail.create_trail(Name="harden-trail", S3BucketName="harden-trail-logs", IsMultiRegionTrail=multi_region,
                            CloudWatchLogsLogGroupArn=group_arn, CloudWatchLogsRoleArn=role)
    if logging:
        cloudtrail.start_logging(Name="harden-trail")
    return log_group


def _metric_filter(aws, log_group, pattern=BASELINE_FILTER_PATTERN, name="harden-elastic-ip-api-calls"):
    aws.client("logs", HOME).put_metric_filter(
        logGroupName=log_group, filterName=name, filterPattern=pattern,
        metricTransformations=[{"metricName": "harden-ElasticIpAddressApiCalls", "metricNamespace": "Harden/Security",
                                "metricValue": "1"}])


def _address_alarm(aws, topic, *, threshold=1, evaluation_periods=1, datapoints=None, enabled=True):
    extra = {"DatapointsToAlarm": datapoints} if datapoints else {}
    aws.client("cloudwatch", HOME).put_metric_alarm(
        AlarmName="harden-elastic-ip-api-calls", Namespace="Harden/Security",
        MetricName="harden-ElasticIpAddressApiCalls", Statistic="Sum", Period=300,
        EvaluationPeriods=evaluation_periods, Threshold=threshold,
        ComparisonOperator="GreaterThanOrEqualToThreshold", ActionsEnabled=enabled, AlarmActions=[topic], **extra)


def _home_findings(aws, baseline=None):
    findings = allocate_address(_ctx(aws, HOME, "alarms.allocate_address", baseline))
    assert len(findings) == 2
    return findings[0], findings[1]


def test_home_region_full_setup_passes(aws):
    topic = _topic(aws, HOME)
    _rule(aws, HOME, topic)
    group = _trail(aws)
    _metric_filter(aws, group)
    _address_alarm(aws, topic)
    rule, metric = _home_findings(aws)
    assert rule.status == "pass", rule.message
    assert metric.status == "pass", metric.message
    assert metric.resource == f"arn:aws:logs:{HOME}:123456789012:metric-filter/AllocateAddress"
    assert "feeds alarm harden-elastic-ip-api-calls" in metric.message
    assert metric.evidence["log_groups"][0]["trails"] == ["harden-trail"]


def test_no_trail_log_group_fails(aws):
    _, metric = _home_findings(aws)
    assert metric.status == "fail" and "no trail delivers to CloudWatch Logs" in metric.message


def test_single_region_or_stopped_trail_fails(aws):
    topic = _topic(aws, HOME)
    group = _trail(aws, multi_region=False, logging=False)
    _metric_filter(aws, group)
    _address_alarm(aws, topic)
    _, metric = _home_findings(aws)
    assert metric.status == "fail" and "trail harden-trail is single-region" in metric.message
    aws.client("cloudtrail", HOME).update_trail(Name="harden-trail", IsMultiRegionTrail=True)
    _, metric = _home_findings(aws)
    assert metric.status == "fail" and "trail harden-trail is not logging" in metric.message


def test_log_group_of_another_account_is_skipped(aws):
    # An organization trail seen from a member account: its log group (and the metric filter)
    # live in the management account. The emulator cannot hold such a trail: stubbed (real model).
    trail = {"Name": "org-trail", "TrailARN": "arn:aws:cloudtrail:us-east-1:999999999999:trail/org-trail",
             "HomeRegion": HOME, "IsMultiRegionTrail": True, "IsOrganizationTrail": True,
             "CloudWatchLogsLogGroupArn": "arn:aws:logs:us-east-1:999999999999:log-group:org:*"}
    with Stubber(aws.client("cloudtrail", HOME)) as stub:
        stub.add_response("describe_trails", {"trailList": [trail]}, {"includeShadowTrails": True})
        _, metric = _home_findings(aws)
    assert metric.status == "skipped" and "another account" in metric.message


def test_filter_that_misses_denied_attempts_fails(aws):
    topic = _topic(aws, HOME)
    group = _trail(aws)
    _metric_filter(aws, group, pattern='{ $.eventName = "AllocateAddress" && $.errorCode NOT EXISTS }')
    _address_alarm(aws, topic)
    _, metric = _home_findings(aws)
    assert metric.status == "fail"
    assert "misses: attempt denied by a policy" in metric.message


def test_filter_without_alarm_fails(aws):
    group = _trail(aws)
    _metric_filter(aws, group)
    _, metric = _home_findings(aws)
    assert metric.status == "fail"
    assert "no alarm on its metric Harden/Security/harden-ElasticIpAddressApiCalls" in metric.message


def test_alarm_that_would_not_fire_at_the_baseline_threshold_fails(aws):
    topic = _topic(aws, HOME)
    group = _trail(aws)
    _metric_filter(aws, group)
    _address_alarm(aws, topic, threshold=5)
    _, metric = _home_findings(aws)
    assert metric.status == "fail" and "does not fire on 1 call(s)" in metric.message
    # The same alarm is fine for a baseline that only cares from 5 calls on.
    _, relaxed = _home_findings(aws, parse_baseline({"alarms": {"allocate_address_threshold": 5}}))
    assert relaxed.status == "pass", relaxed.message


def test_alarm_needing_several_breaching_periods_fails(aws):
    topic = _topic(aws, HOME)
    group = _trail(aws)
    _metric_filter(aws, group)
    _address_alarm(aws, topic, evaluation_periods=3, datapoints=2)
    _, metric = _home_findings(aws)
    assert metric.status == "fail" and "needs 2 breaching periods" in metric.message


def test_alarm_to_unsubscribed_topic_fails(aws):
    topic = _topic(aws, HOME, subscribe=False)
    group = _trail(aws)
    _metric_filter(aws, group)
    _address_alarm(aws, topic)
    _, metric = _home_findings(aws)
    assert metric.status == "fail" and "has no confirmed subscription" in metric.message


# -- the pattern evaluators ----------------------------------------------------------------------

RECORDS = sample_allocate_address_records("123456789012", HOME)
ROLE_RECORD = RECORDS["allocation by an assumed role"]
DENIED_RECORD = RECORDS["attempt denied by a policy"]


def _event(record):
    return {"source": "aws.ec2", "detail-type": "AWS API Call via CloudTrail", "account": "123456789012",
            "region": HOME, "detail": record}


@pytest.mark.parametrize("pattern, expected", [
    (BASELINE_EVENT_PATTERN, True),
    ({"source": ["aws.ec2"]}, True),
    ({"source": ["aws.s3"]}, False),
    ({"detail": {"eventName": [{"prefix": "Alloc"}]}}, True),
    ({"detail": {"eventName": [{"suffix": "Address"}]}}, True),
    ({"detail": {"eventName": [{"wildcard": "*Address"}]}}, True),
    ({"detail": {"eventName": [{"equals-ignore-case": "allocateaddress"}]}}, True),
    ({"detail": {"eventName": [{"anything-but": ["ReleaseAddress"]}]}}, True),
    ({"detail": {"eventName": [{"anything-but": {"prefix": "Allocate"}}]}}, False),
    ({"detail": {"errorCode": [{"exists": True}]}}, False),
    ({"detail": {"errorCode": [{"exists": False}]}}, True),
    ({"detail": {"sourceIPAddress": [{"cidr": "203.0.113.0/24"}]}}, True),
    ({"detail": {"readOnly": [False]}}, True),
    ({"detail": {"readOnly": ["false"]}}, False),
    ({"$or": [{"source": ["aws.s3"]}, {"detail": {"eventName": ["AllocateAddress"]}}]}, True),
    ({"detail": {"eventName": "AllocateAddress"}}, False),  # not a valid pattern: values go in lists
    ("not json", False),
])
def test_event_pattern_matches(pattern, expected):
    assert event_pattern_matches(json.dumps(pattern) if isinstance(pattern, dict) else pattern,
                                 _event(ROLE_RECORD)) is expected


@pytest.mark.parametrize("pattern, on_role, on_denied", [
    (BASELINE_FILTER_PATTERN, True, True),
    ("{ $.eventName = AllocateAddress }", True, True),
    ('{ $.eventName = "Allocate*" }', True, True),
    ('{ $.eventName != "AllocateAddress" }', False, False),
    ('{ $.eventName = "AllocateAddress" && $.errorCode NOT EXISTS }', True, False),
    ('{ $.errorCode = "*UnauthorizedOperation" }', False, True),
    ('{ $.userIdentity.type = "Root" }', False, False),
    ('{ $.userIdentity.sessionContext.sessionIssuer.userName = "Operator" }', True, True),
    ('{ $.responseElements IS NULL }', False, True),
    ('{ $.readOnly IS FALSE }', True, True),
    ('{ $.eventName = %^Allocate% }', True, True),
    ("AllocateAddress", True, True),
    ('"AllocateAddress" -UnauthorizedOperation', True, False),
    ("?AllocateAddress ?ReleaseAddress", True, True),
    ("", True, True),
])
def test_filter_pattern_matches(pattern, on_role, on_denied):
    assert filter_pattern_matches(pattern, ROLE_RECORD) is on_role
    assert filter_pattern_matches(pattern, DENIED_RECORD) is on_denied


# -- the address moves (provisioner/address_events.py) -------------------------------------------

MOVES = sample_address_move_records("123456789012", OTHER)
REASSIGNING = "AssignPrivateIpAddresses taking a secondary IP (and its Elastic IP) from another interface"


def _not_reassigning(allow):
    """AssignPrivateIpAddresses that only takes free addresses: AllowReassignment false or absent."""
    record = json.loads(json.dumps(MOVES[REASSIGNING]))
    if allow is None:
        del record["requestParameters"]["allowReassignment"]
    else:
        record["requestParameters"]["allowReassignment"] = allow
    return record


def test_every_move_is_a_real_shaped_record_of_its_call():
    assert sorted({r["eventName"] for r in MOVES.values()}) == sorted(
        ["AssociateAddress", "DisassociateAddress", "AssignPrivateIpAddresses", "AttachNetworkInterface",
         "CreateNatGateway", "AssociateNatGatewayAddress", "DisassociateNatGatewayAddress"])
    assert MOVES[REASSIGNING]["requestParameters"]["allowReassignment"] is True  # a JSON boolean
    nat = MOVES["CreateNatGateway with an allocation id"]["requestParameters"]["CreateNatGatewayRequest"]
    assert nat["AllocationId"].startswith("eipalloc-")


@pytest.mark.parametrize("label", list(MOVES))
def test_the_baseline_patterns_catch_each_address_move(label):
    record = MOVES[label]
    assert event_pattern_matches(BASELINE_EVENT_PATTERN, _event(record))
    assert filter_pattern_matches(BASELINE_FILTER_PATTERN, record)
    # ... and so would the same call when an SCP denies it.
    denied = {**record, "responseElements": None, "errorCode": "Client.UnauthorizedOperation"}
    assert event_pattern_matches(BASELINE_EVENT_PATTERN, _event(denied))
    assert filter_pattern_matches(BASELINE_FILTER_PATTERN, denied)


@pytest.mark.parametrize("allow", [False, None])
def test_assigning_free_private_ips_is_not_caught(allow):
    """Without AllowReassignment nothing moves (the EKS VPC CNI's everyday call): not an alert."""
    record = _not_reassigning(allow)
    assert not event_pattern_matches(BASELINE_EVENT_PATTERN, _event(record))
    assert not filter_pattern_matches(BASELINE_FILTER_PATTERN, record)


def test_other_ec2_calls_are_not_caught():
    record = {**ROLE_RECORD, "eventName": "CreateNetworkInterface", "requestParameters": {"subnetId": "subnet-1"}}
    assert not event_pattern_matches(BASELINE_EVENT_PATTERN, _event(record))
    assert not filter_pattern_matches(BASELINE_FILTER_PATTERN, record)
    assert len(BASELINE_FILTER_PATTERN) <= address_events.FILTER_PATTERN_MAX_CHARS


def test_a_rule_that_catches_allocation_but_not_the_moves_fails(aws):
    """What harden rendered before: AllocateAddress caught, the moves not. The moves no SCP denies
    (AssignPrivateIpAddresses, AttachNetworkInterface) are seen by this detection only."""
    _rule(aws, OTHER, _topic(aws, OTHER), pattern=ALLOCATION_ONLY_EVENT_PATTERN)
    f = _event_rule_finding(aws)
    assert f.status == "fail"
    assert f.evidence["rules"][0]["misses"] == [label for label in MOVES if MOVES[label]["eventName"]
                                                not in ALLOCATION_ONLY_NAMES]
    assert f"misses: DisassociateAddress, {REASSIGNING}, AttachNetworkInterface" in f.message


def test_a_filter_that_catches_allocation_but_not_the_moves_fails(aws):
    topic = _topic(aws, HOME)
    _rule(aws, HOME, topic)
    _metric_filter(aws, _trail(aws), pattern=ALLOCATION_ONLY_FILTER_PATTERN)
    _address_alarm(aws, topic)
    rule, metric = _home_findings(aws)
    assert rule.status == "pass", rule.message
    assert metric.status == "fail"
    assert f"filter harden-elastic-ip-api-calls misses: DisassociateAddress, {REASSIGNING}" in metric.message


@pytest.mark.parametrize("pattern", ["{ $.eventName = }", "{ $.eventName = AllocateAddress", "[ip, user]",
                                     "{ eventName = AllocateAddress }"])
def test_filter_patterns_not_understood_raise(pattern):
    from provisioner.controls.alarms import PatternError

    with pytest.raises(PatternError):
        filter_pattern_matches(pattern, ROLE_RECORD)


def _encrypted_home_setup(aws, policy_of):
    """The full home-region setup, its topic encrypted with a key whose policy is policy_of(topic)."""
    topic = f"arn:aws:sns:{HOME}:{aws.account_id()}:harden-security-alarms"
    key = aws.client("kms", HOME).create_key(Policy=json.dumps(policy_of(topic)))["KeyMetadata"]["Arn"]
    topic = _topic(aws, HOME)
    aws.client("sns", HOME).set_topic_attributes(TopicArn=topic, AttributeName="KmsMasterKeyId", AttributeValue=key)
    _rule(aws, HOME, topic)
    _metric_filter(aws, _trail(aws))
    _address_alarm(aws, topic)
    return key


def _harden_topic_key_policy(aws):
    from provisioner.controls.alarms import topic_key_policy
    return topic_key_policy(_ctx(aws, HOME, "alarms.allocate_address"))


def test_topic_key_harden_policy_passes(aws):
    _encrypted_home_setup(aws, lambda topic: _harden_topic_key_policy(aws))
    rule, metric = _home_findings(aws)
    assert metric.status == "pass", metric.message
    assert rule.status == "pass", rule.message


def _without_publisher(aws, service):
    def stripped(topic):
        policy = _harden_topic_key_policy(aws)
        return {**policy, "Statement": [s for s in policy["Statement"] if s["Principal"].get("Service") != service]}
    return stripped


@pytest.mark.parametrize("service", ["cloudwatch.amazonaws.com", "events.amazonaws.com"])
def test_topic_key_stripped_of_a_publisher_fails_that_publishers_path(aws, service):
    # CloudWatch publishes for the metric-filter alarm, EventBridge for the rule: the key policy
    # is judged for the publisher of each path, so exactly that path's finding fails.
    key = _encrypted_home_setup(aws, _without_publisher(aws, service))
    rule, metric = _home_findings(aws)
    broken, working = (metric, rule) if service.startswith("cloudwatch") else (rule, metric)
    assert broken.status == "fail", broken.message
    assert f"key {key} no longer lets {service} publish" in broken.message
    assert "kms:Decrypt, kms:GenerateDataKey" in broken.message
    assert working.status == "pass", working.message


def test_topic_key_gaps_are_judged_on_every_path_not_the_first(aws):
    # The baseline alarm's topic key no longer lets CloudWatch in; a second alarm on the same
    # metric notifies another encrypted topic whose key does: someone is still notified.
    _encrypted_home_setup(aws, _without_publisher(aws, "cloudwatch.amazonaws.com"))
    backup = _topic(aws, HOME, name="secops-backup")
    # harden's policy, bound (by SNS's encryption context) to this topic instead of harden's
    harden_topic = f"arn:aws:sns:{HOME}:{aws.account_id()}:harden-security-alarms"
    policy = json.dumps(_harden_topic_key_policy(aws)).replace(f'"{harden_topic}"', f'"{backup}"')
    key = aws.client("kms", HOME).create_key(Policy=policy)["KeyMetadata"]["Arn"]
    aws.client("sns", HOME).set_topic_attributes(TopicArn=backup, AttributeName="KmsMasterKeyId", AttributeValue=key)
    aws.client("cloudwatch", HOME).put_metric_alarm(
        AlarmName="zz-secops-backup", Namespace="Harden/Security", MetricName="harden-ElasticIpAddressApiCalls",
        Statistic="Sum", Period=300, EvaluationPeriods=1, Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold", AlarmActions=[backup])
    _, metric = _home_findings(aws)
    assert metric.status == "pass", metric.message
    assert "zz-secops-backup" in metric.message and backup in metric.message


def test_topic_key_with_an_outside_principal_fails(aws):
    def widened(topic):
        policy = _harden_topic_key_policy(aws)
        return {**policy, "Statement": policy["Statement"] + [
            {"Sid": "Outsider", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::999999999999:root"},
             "Action": "kms:Decrypt", "Resource": "*"}]}
    key = _encrypted_home_setup(aws, widened)
    for finding in _home_findings(aws):  # both paths end at that key
        assert finding.status == "fail"
        assert key in finding.message and "arn:aws:iam::999999999999:root" in finding.message
