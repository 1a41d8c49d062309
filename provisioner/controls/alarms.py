"""alarms.*: someone is told when an instance runs hot, and when an Elastic IP is allocated or moved.

alarms.cpu: every running instance is covered by a CloudWatch alarm on its CPUUtilization that
fires on high CPU and notifies someone: a fleet alarm on a Metrics Insights query grouped by
InstanceId (every instance a contributor), or an alarm of its own. alarms.allocate_address: in
every region an EventBridge rule that catches AllocateAddress and the calls that move an address
(provisioner/address_events.py; CloudTrail delivers API-call events to EventBridge in the region of
the call) gets them to an SNS topic somebody confirmed; in the home
region also a CloudWatch Logs metric filter on the trail's log group with an alarm on its metric,
to such a topic.

"Gets it to a topic" follows the route the baseline renders: one topic, in the home region; the
other regions' rules send to the home region's default event bus, whose rules publish to the
topic (see "Routes" below). An alarm outside the home region has no same-region topic to notify
(a CloudWatch alarm can only notify a topic of its own region), so its state changes travel the
same route as EventBridge events.

Whether a rule or a filter catches them is decided by evaluating its pattern against sample
CloudTrail records (see "Pattern evaluation" below), not by looking for the word:
a pattern can mention AllocateAddress and still miss it (`!=`, `anything-but`, or a condition
that narrows it to one kind of caller). Evaluating locally keeps verify at one list call per
region (events TestEventPattern / logs TestMetricFilter would be one call per rule or filter).
"""

from __future__ import annotations

import ipaddress
import json
import re
from typing import Any

import botocore.exceptions

from provisioner import converge, resources
from provisioner.aws import error_code, paginate, parse_arn
from provisioner.controls import CheckContext, Mappings, control
from provisioner.controls.ebs import partition
from provisioner.policies import Place, alarm_state_rule_name, alarm_topic_policy
from provisioner.findings import Finding
from provisioner.key_policy import Caller, allows, outside_principals
from provisioner.remediate import Action, fix

ADDRESS_EVENT = "AllocateAddress"
# Rule states that receive AllocateAddress (a write management event).
ENABLED_RULE_STATES = frozenset({"ENABLED", "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS"})
# Comparisons that make a CPU alarm fire when the CPU is high (anomaly bands included).
HIGH_CPU_OPERATORS = frozenset({"GreaterThanThreshold", "GreaterThanOrEqualToThreshold",
                                "GreaterThanUpperThreshold", "LessThanLowerOrGreaterThanUpperThreshold"})


# ---------------------------------------------------------------------------------------------
# Shared lookups (one list call per region, cached in the context)

def running_instances(ctx: CheckContext) -> list[dict]:
    def fetch() -> list[dict]:
        reservations = paginate(ctx.client("ec2"), "describe_instances", "Reservations",
                                Filters=[{"Name": "instance-state-name", "Values": ["running"]}])
        return [i for r in reservations for i in r.get("Instances", [])]

    return ctx.cached("ec2:instances:running", fetch)


def metric_alarms(ctx: CheckContext, region: str | None = None) -> list[dict]:
    """Every metric alarm of a region. describe_alarms has no metric filter and
    describe_alarms_for_metric is one call per metric: list once, match locally."""
    region = region or ctx.region
    return ctx.cached(f"cloudwatch:metric_alarms:{region}", lambda: paginate(
        ctx.client("cloudwatch", region), "describe_alarms", "MetricAlarms", AlarmTypes=["MetricAlarm"]))


def topic_subscriptions(ctx: CheckContext, topic_arn: str) -> list[dict] | None:
    """A topic's subscriptions, or None when the topic does not exist (a meaning for the
    control: the alarm or rule notifies nothing). Asked in the topic's own region."""
    def fetch() -> list[dict] | None:
        sns = ctx.client("sns", parse_arn(topic_arn)["region"])
        try:
            return paginate(sns, "list_subscriptions_by_topic", "Subscriptions", TopicArn=topic_arn)
        except botocore.exceptions.ClientError as exc:
            if error_code(exc) == "NotFound":
                return None
            raise

    return ctx.cached(f"sns:subscriptions:{topic_arn}", fetch)


def _is_confirmed(subscription: dict) -> bool:
    # Unconfirmed subscriptions show "PendingConfirmation" (or "Deleted") instead of an ARN.
    return subscription.get("SubscriptionArn", "").startswith("arn:")


# Every message to an email endpoint ends with an unsubscribe link that works without AWS
# credentials unless the subscription was confirmed with AuthenticateOnUnsubscribe
# (https://docs.aws.amazon.com/sns/latest/api/API_ConfirmSubscription.html); whether it was is the
# subscription attribute ConfirmationWasAuthenticated
# (https://docs.aws.amazon.com/sns/latest/api/API_GetSubscriptionAttributes.html). An alarm email is
# forwarded, lands in shared mailboxes and ticket systems: whoever it reaches can silence the alarms
# with one click. (HTTP/S payloads carry the link too, but reach a machine, not people.)
LINK_UNSUBSCRIBABLE_PROTOCOLS = frozenset({"email", "email-json"})


def _confirmed_without_authentication(ctx: CheckContext, subscription: dict) -> bool:
    """True when an email subscription's confirmation was not authenticated. One
    GetSubscriptionAttributes per email subscription, cached; other protocols are not asked."""
    arn = subscription["SubscriptionArn"]
    if subscription.get("Protocol") not in LINK_UNSUBSCRIBABLE_PROTOCOLS:
        return False

    def fetch() -> bool:
        sns = ctx.client("sns", parse_arn(arn)["region"])
        try:
            attributes = sns.get_subscription_attributes(SubscriptionArn=arn)["Attributes"]
        except botocore.exceptions.ClientError as exc:
            if error_code(exc) == "NotFound":
                return False  # gone since the listing: nothing to weaken
            raise
        # "true"/"false"; absent means AWS did not say, and verify does not guess.
        return attributes.get("ConfirmationWasAuthenticated", "").lower() == "false"

    return ctx.cached(f"sns:unauthenticated:{arn}", fetch)


def topic_summary(ctx: CheckContext, topic_arn: str) -> dict[str, Any]:
    subscriptions = topic_subscriptions(ctx, topic_arn)
    if subscriptions is None:
        return {"topic_arn": topic_arn, "exists": False, "confirmed": [], "pending": 0, "unauthenticated": []}
    confirmed = [s for s in subscriptions if _is_confirmed(s)]
    return {"topic_arn": topic_arn, "exists": True,
            "confirmed": [f"{s.get('Protocol')}:{s.get('Endpoint')}" for s in confirmed],
            "pending": len(subscriptions) - len(confirmed),
            # Confirmed email subscriptions anyone holding an alarm email can end.
            "unauthenticated": [f"{s.get('Protocol')}:{s.get('Endpoint')}" for s in confirmed
                                if _confirmed_without_authentication(ctx, s)]}


_LINK_RISK = ("confirmed without authentication: anyone holding the unsubscribe link of any alarm email can "
              "end it without AWS credentials (re-confirm with AuthenticateOnUnsubscribe, see the README)")


def _topic_problem(summary: dict[str, Any]) -> str | None:
    if not summary["exists"]:
        return f"topic {summary['topic_arn']} does not exist"
    if not summary["confirmed"]:
        pending = f" ({summary['pending']} pending confirmation)" if summary["pending"] else ""
        return f"topic {summary['topic_arn']} has no confirmed subscription{pending}"
    if set(summary["confirmed"]) <= set(summary.get("unauthenticated", [])):
        # Someone is notified today, until the first person who gets an alarm email clicks its link.
        return (f"topic {summary['topic_arn']}: its only confirmed subscription(s) "
                f"({', '.join(summary['confirmed'])}) were {_LINK_RISK}")
    return None


def _link_risk_note(summary: dict[str, Any]) -> str:
    """For a topic that notifies: the email subscriptions among its confirmed ones that anyone
    holding an alarm email can end (a weakness, not a failure: another subscription remains)."""
    weak = summary.get("unauthenticated", [])
    return f"; {', '.join(weak)} {'was' if len(weak) == 1 else 'were'} {_LINK_RISK}" if weak else ""


def _sns_topics(arns: list[str]) -> list[str]:
    return [a for a in arns if a.startswith("arn:") and parse_arn(a)["service"] == "sns"]


# ---------------------------------------------------------------------------------------------
# Routes: where an event on a region's default bus ends up. Same-region SNS targets are the end;
# an event-bus target in another region of this account is followed once (an event that reached
# a bus from another bus is not sent on again by EventBridge, so one hop is all a route can have:
# https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-cross-region.html). One ListRules
# per region and one ListTargetsByRule per matching enabled rule, cached.

def _bus_rules(ctx: CheckContext, region: str) -> list[dict]:
    return ctx.cached(f"events:rules:{region}", lambda: paginate(ctx.client("events", region), "list_rules", "Rules"))


def _rule_targets(ctx: CheckContext, region: str, rule: str) -> list[str]:
    return ctx.cached(f"events:targets:{region}:{rule}", lambda: [
        t["Arn"] for t in paginate(ctx.client("events", region), "list_targets_by_rule", "Targets", Rule=rule)])


def _home_bus(ctx: CheckContext, arn: str) -> str | None:
    """The region of a default event bus of this account in another region, or None."""
    parts = arn.split(":")
    if len(parts) == 6 and parts[2] == "events" and parts[4] == ctx.account_id \
            and parts[5] == "event-bus/default" and parts[3] != ctx.region:
        return parts[3]
    return None


def _forwarded(ctx: CheckContext, bus_region: str, matches) -> list[dict]:
    """On another region's default bus: the enabled rules that match (`matches(pattern)`), each
    with the topic summaries of its SNS targets."""
    found = []
    for rule in _bus_rules(ctx, bus_region):
        pattern = rule.get("EventPattern")
        if not pattern or rule.get("State") not in ENABLED_RULE_STATES or not matches(pattern):
            continue
        targets = _rule_targets(ctx, bus_region, rule["Name"])
        found.append({"rule": rule["Name"], "region": bus_region,
                      "topics": [topic_summary(ctx, arn) for arn in _sns_topics(targets)]})
    return found


def _reached(entry: dict) -> list[dict]:
    """Topic summaries an entry reaches, directly or through another region's bus."""
    return list(entry.get("topics", [])) + [t for hop in entry.get("forwarded", []) for t in hop["topics"]]


def _delivering(entry: dict) -> list[dict]:
    """Topics with a confirmed subscription that an entry reaches, directly or through a bus."""
    return [t for t in _reached(entry) if _topic_problem(t) is None]


def _follow(ctx: CheckContext, entry: dict, targets: list[str], matches) -> None:
    """Fill an enabled, complete rule's entry: its SNS topics, and what its bus targets in other
    regions deliver to."""
    entry["topics"] = [topic_summary(ctx, arn) for arn in _sns_topics(targets)]
    entry["other_targets"], entry["forwarded"] = [], []
    for arn in targets:
        if arn in _sns_topics(targets):
            continue
        bus_region = _home_bus(ctx, arn)
        if bus_region:
            entry["forwarded"] += _forwarded(ctx, bus_region, matches)
            entry.setdefault("buses", []).append(arn)
        else:
            entry["other_targets"].append(arn)


def alarm_state_event(ctx: CheckContext, alarm_name: str, region: str | None = None) -> dict:
    """The event CloudWatch sends to EventBridge when the alarm goes to ALARM
    (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch-and-eventbridge.html)."""
    region = region or ctx.region
    arn = f"arn:{partition(region)}:cloudwatch:{region}:{ctx.account_id}:alarm:{alarm_name}"
    return {"version": "0", "id": "12345678-1234-1234-1234-123456789012", "detail-type": "CloudWatch Alarm State Change",
            "source": "aws.cloudwatch", "account": ctx.account_id, "time": "2024-01-01T00:00:00Z", "region": region,
            "resources": [arn], "detail": {"alarmName": alarm_name,
                                           "state": {"value": "ALARM", "reason": "Threshold Crossed",
                                                     "timestamp": "2024-01-01T00:00:00.000+0000"},
                                           "previousState": {"value": "OK"}, "configuration": {}}}


def alarm_state_route(ctx: CheckContext, alarm_name: str) -> list[dict]:
    """The enabled rules of this region's default bus that catch the alarm's ALARM state change,
    each followed to the topics it reaches (directly, or through another region's bus)."""
    event = alarm_state_event(ctx, alarm_name)

    def matches(pattern) -> bool:
        return event_pattern_matches(pattern, event)

    entries = []
    for rule in _bus_rules(ctx, ctx.region):
        pattern = rule.get("EventPattern")
        if not pattern or rule.get("State") not in ENABLED_RULE_STATES or not matches(pattern):
            continue
        entry = {"rule": rule["Name"]}
        _follow(ctx, entry, _rule_targets(ctx, ctx.region, rule["Name"]), matches)
        entries.append(entry)
    return entries


# ---------------------------------------------------------------------------------------------
# alarms.cpu

def cpu_alarm_instance(alarm: dict) -> str | None:
    """The instance whose AWS/EC2 CPUUtilization the alarm watches, or None. A metric-math alarm
    counts when the expression it returns is that metric itself."""
    metric = {"Namespace": alarm.get("Namespace"), "MetricName": alarm.get("MetricName"),
              "Dimensions": alarm.get("Dimensions") or []}
    if not alarm.get("MetricName"):
        returned = [q for q in alarm.get("Metrics") or [] if q.get("ReturnData", True) and q.get("MetricStat")]
        if len(returned) != 1:
            return None
        metric = returned[0]["MetricStat"]["Metric"]
    dimensions = metric.get("Dimensions") or []
    # EC2 publishes per-instance CPU with exactly one dimension: any other set is another metric.
    if (metric.get("Namespace"), metric.get("MetricName")) != ("AWS/EC2", "CPUUtilization") \
            or len(dimensions) != 1 or dimensions[0].get("Name") != "InstanceId":
        return None
    return dimensions[0].get("Value")


def local_topics(ctx: CheckContext) -> set[str]:
    """The SNS topics of this account in this region: one paginated ListTopics per region."""
    return ctx.cached("sns:topics", lambda: {t["TopicArn"] for t in paginate(ctx.client("sns"), "list_topics", "Topics")})


def _dead_actions(ctx: CheckContext, alarm: dict) -> list[str]:
    """Alarm actions that point at a topic of this account and region that no longer exists
    (such an alarm looks configured and notifies nobody). Other targets cannot be listed here
    and are trusted."""
    prefix = f"arn:{partition(ctx.region)}:sns:{ctx.region}:{ctx.account_id}:"
    actions = [a for a in alarm.get("AlarmActions") or [] if a.startswith(prefix)]
    if not actions:
        return []
    topics = local_topics(ctx)
    return [a for a in actions if a not in topics]


# -- fleet alarms: a Metrics Insights query grouped by InstanceId --------------------------------
# What CloudWatch evaluates per instance: SELECT AVG|MAX|MIN(CPUUtilization) FROM
# SCHEMA("AWS/EC2", InstanceId) (or the namespace "AWS/EC2") [WHERE InstanceId =|!= '...' AND ...]
# GROUP BY InstanceId [ORDER BY ...] [LIMIT n]. Anything else is "not understood" and covers
# nobody: verify then names the alarm rather than trusting it.
_FLEET_QUERY = re.compile(r"""^\s*SELECT\s+(?P<fn>AVG|MAX|MIN)\s*\(\s*"?CPUUtilization"?\s*\)
    \s+FROM\s+(?:SCHEMA\s*\(\s*"AWS/EC2"\s*,\s*"?InstanceId"?\s*\)|"AWS/EC2")
    (?:\s+WHERE\s+(?P<where>.+?))?
    \s+GROUP\s+BY\s+"?InstanceId"?
    (?:\s+ORDER\s+BY\s+(?:AVG|MAX|MIN|SUM|COUNT)\s*\(\s*\)(?:\s+(?:ASC|DESC))?)?
    (?:\s+LIMIT\s+(?P<limit>\d+))?\s*;?\s*$""", re.IGNORECASE | re.VERBOSE | re.DOTALL)
_WHERE_TERM = re.compile(r"""^\s*"?InstanceId"?\s*(?P<op>=|!=)\s*'(?P<id>[^']*)'\s*$""", re.IGNORECASE)
# A Metrics Insights query returns at most 500 time series
# (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/alarm-limits.html).
METRICS_INSIGHTS_MAX_SERIES = 500


def fleet_query(alarm: dict) -> str | None:
    """The Metrics Insights query an alarm evaluates, or None when it is not such an alarm."""
    returned = [q for q in alarm.get("Metrics") or [] if q.get("ReturnData", True)]
    if alarm.get("MetricName") or len(returned) != 1:
        return None
    expression = returned[0].get("Expression") or ""
    return expression if expression.lstrip().upper().startswith("SELECT") else None


def fleet_coverage(query: str, running: list[str]) -> tuple[set[str], str | None]:
    """Which of the running instances a CPU fleet query evaluates, and why not all when it is not
    all of them (None when nothing is left out)."""
    match = _FLEET_QUERY.match(query)
    if not match:
        return set(), "not a query of CPUUtilization per InstanceId that verify understands"
    included = set(running)
    if match["where"]:
        for term in re.split(r"\s+AND\s+", match["where"], flags=re.IGNORECASE):
            parsed = _WHERE_TERM.match(term)
            if not parsed:
                return set(), f"its WHERE clause ({match['where'].strip()}) is not understood"
            keep = (lambda i, p=parsed: i == p["id"]) if parsed["op"] == "=" else (lambda i, p=parsed: i != p["id"])
            included = {i for i in included if keep(i)}
    cap = min(int(match["limit"]), METRICS_INSIGHTS_MAX_SERIES) if match["limit"] else METRICS_INSIGHTS_MAX_SERIES
    if len(included) > cap:
        # Which `cap` series the query returns is not under control: no instance is surely evaluated.
        return set(), (f"the query evaluates at most {cap} time series and {len(included)} running instances "
                       "match it, so none is surely evaluated")
    left_out = len(running) - len(included)
    return included, (f"its WHERE clause leaves out {left_out} running instance(s)" if left_out else None)


def _cpu_alarm_gaps(ctx: CheckContext, alarm: dict) -> list[str]:
    """Why an alarm on an instance's CPU would not tell anyone about high CPU (empty: it would)."""
    gaps = []
    operator, threshold = alarm.get("ComparisonOperator"), alarm.get("Threshold")
    if operator not in HIGH_CPU_OPERATORS:
        gaps.append(f"{operator} does not fire on high CPU")
    # CPUUtilization is a percentage: a threshold at or past 100 never fires.
    elif threshold is not None and (threshold > 100 or (threshold == 100 and operator == "GreaterThanThreshold")):
        gaps.append(f"threshold {threshold:g}% can never be crossed")
    direct = _direct_action_gaps(ctx, alarm)
    if direct and not _routed(ctx, alarm):
        gaps += direct
        if not alarm.get("AlarmActions"):
            gaps.append("no EventBridge rule carries its state changes to an existing topic")
    return gaps


def _direct_action_gaps(ctx: CheckContext, alarm: dict) -> list[str]:
    gaps = []
    if not alarm.get("ActionsEnabled"):
        gaps.append("actions disabled")
    actions = alarm.get("AlarmActions") or []
    if not actions:
        gaps.append("no alarm action")
    elif len(_dead_actions(ctx, alarm)) == len(actions):
        gaps.append(f"its alarm action {', '.join(actions)} is a topic that no longer exists")
    return gaps


def _routed(ctx: CheckContext, alarm: dict) -> list[dict]:
    """The existing topics the alarm's state changes reach through EventBridge (the baseline's
    route outside the home region). Existence, as for a direct alarm action: whether anyone
    confirmed the topic is alarms.allocate_address's question."""
    route = ctx.cached(f"alarms:route:{alarm['AlarmName']}", lambda: alarm_state_route(ctx, alarm["AlarmName"]))
    return [t for entry in route for t in _reached(entry) if t["exists"]]


def _cpu_alarm_summary(ctx: CheckContext, alarm: dict) -> dict[str, Any]:
    routed = _routed(ctx, alarm) if _direct_action_gaps(ctx, alarm) else []
    return {"alarm_name": alarm["AlarmName"], "kind": "fleet" if fleet_query(alarm) else "instance",
            "query": fleet_query(alarm), "actions_enabled": alarm.get("ActionsEnabled"),
            "alarm_actions": alarm.get("AlarmActions") or [],
            "routed_to": [t["topic_arn"] for t in routed],
            "comparison": alarm.get("ComparisonOperator"), "threshold": alarm.get("Threshold"),
            "period": alarm.get("Period") or next((q.get("Period") for q in alarm.get("Metrics") or []), None),
            "evaluation_periods": alarm.get("EvaluationPeriods"), "state": alarm.get("StateValue")}


def _cpu_finding(ctx: CheckContext, instance: dict, alarms: list[dict], left_out: list[str]) -> Finding:
    instance_id = instance["InstanceId"]
    summaries = [_cpu_alarm_summary(ctx, a) for a in alarms]
    good = [a["AlarmName"] for a in alarms if not _cpu_alarm_gaps(ctx, a)]
    if good:
        return ctx.passed(instance_id, f"CPUUtilization alarm {', '.join(good)} notifies on high CPU",
                          alarm_names=good, alarms=summaries)
    reasons = [f"{a['AlarmName']}: {', '.join(_cpu_alarm_gaps(ctx, a))}" for a in alarms] + left_out
    if reasons:
        return ctx.failed(instance_id, "no CPUUtilization alarm that fires on high CPU and notifies someone "
                          f"({'; '.join(reasons)})", alarm_names=[], alarms=summaries)
    return ctx.failed(instance_id, "no CPUUtilization alarm; create the fleet alarm (the baseline's: "
                      f"{cpu_fleet_alarm_name(ctx)}, one Metrics Insights query for every instance of the "
                      "region) or an alarm of its own", alarm_names=[], alarms=[])


@control("alarms.cpu", title="Every running instance has a CPU alarm with an action", scope="regional",
         severity="low",
         rationale="sustained high CPU is a late, indirect sign of a hijacked instance (cryptomining); "
         "useful, but the other controls catch the abuse earlier",
         mappings=Mappings(none="from the seed document; no public baseline requires CPU alarms"),
         fix="a CPUUtilization alarm with an action for every running instance (`harden remediate "
         "--controls alarms.cpu`, or the alarms module)",
         terraform="alarms/aws_cloudwatch_metric_alarm.cpu")
def cpu(ctx: CheckContext) -> list[Finding]:
    """Each running instance (stopped and terminated ones are ignored) is covered by a metric alarm
    on its AWS/EC2 CPUUtilization that fires on high CPU and notifies someone: a fleet alarm whose
    Metrics Insights query evaluates it (grouped by InstanceId), or an alarm of its own. It
    notifies someone through an enabled alarm action to a live topic, or through EventBridge: a
    rule that carries its state changes to a topic with a confirmed subscription (the baseline's
    route outside the home region)."""
    instances = sorted(running_instances(ctx), key=lambda i: i["InstanceId"])
    running = [i["InstanceId"] for i in instances]
    by_instance: dict[str, list[dict]] = {}
    left_out: dict[str, list[str]] = {}
    for alarm in metric_alarms(ctx):
        query = fleet_query(alarm)
        if query is None:
            instance_id = cpu_alarm_instance(alarm)
            if instance_id:
                by_instance.setdefault(instance_id, []).append(alarm)
            continue
        covered, why = fleet_coverage(query, running)
        for instance_id in covered:
            by_instance.setdefault(instance_id, []).append(alarm)
        if why and (_FLEET_QUERY.match(query) or "CPUUtilization" in query):
            for instance_id in set(running) - covered:
                left_out.setdefault(instance_id, []).append(f"fleet alarm {alarm['AlarmName']}: {why}")
    findings = [_cpu_finding(ctx, i, by_instance.get(i["InstanceId"], []), left_out.get(i["InstanceId"], []))
                for i in instances]
    if not findings:
        findings.append(ctx.passed(ctx.region, "no running instance in this region", running_instances=0))
    return findings


# -- fix: alarms.cpu -------------------------------------------------------------------------------
# Names and settings are the alarms module's (templates/modules/alarms/main.tf.j2): the fleet alarm
# <prefix>-cpu-fleet on CPU_FLEET_QUERY (own alarms <prefix>-cpu-<instance id> above the query's
# limit), the one topic <topic_name> in the home region, its key alias/<topic_name>, the topic and
# key policies; so the state converges to what Terraform declares. Outside the home region the
# alarms have no SNS action: their state changes reach the topic through the EventBridge route
# the module declares (<prefix>-alarm-state-changes), which this fix does not create.

# The module's local.cpu_fleet_query (tests/controls/test_fix_alarms_cpu.py holds them together).
CPU_FLEET_QUERY = 'SELECT AVG(CPUUtilization) FROM SCHEMA("AWS/EC2", InstanceId) GROUP BY InstanceId ORDER BY AVG() DESC'


def cpu_fleet_alarm_name(ctx: CheckContext) -> str:
    return f"{ctx.baseline.name_prefix}-cpu-fleet"


def cpu_alarm_name(ctx: CheckContext, instance_id: str) -> str:
    return f"{ctx.baseline.name_prefix}-cpu-{instance_id}"


def alarm_topic_arn(ctx: CheckContext) -> str:
    """The one alarm topic, in the home region."""
    home = ctx.baseline.home_region
    return f"arn:{partition(home)}:sns:{home}:{ctx.account_id}:{ctx.baseline.topic_name}"


def alarm_rule_name(ctx: CheckContext) -> str:
    return alarm_state_rule_name(ctx.baseline)


def alarm_state_pattern(prefix: str, home_region: str, *, home: bool) -> dict[str, Any]:
    """The module's alarm_state_changes event pattern (tests/test_module_alarms.py compares them):
    this baseline's alarms; in the home region only those forwarded from the others (its own
    alarms notify the topic directly)."""
    pattern: dict[str, Any] = {
        "detail": {"alarmName": [{"prefix": f"{prefix}-"}]},
        "detail-type": ["CloudWatch Alarm State Change", "CloudWatch Alarm Contributor State Change"],
        "source": ["aws.cloudwatch"]}
    if home:
        pattern["region"] = [{"anything-but": home_region}]
    return pattern


def event_forwarding_role_name(ctx: CheckContext) -> str:
    return resources.event_forwarding_role(ctx.baseline, ctx.account_id).name


def event_forwarding_policies(ctx: CheckContext) -> tuple[dict[str, Any], dict[str, Any]]:
    """The account root's event forwarding role (templates/account/iam.tf.j2): trust, permissions."""
    role = resources.event_forwarding_role(ctx.baseline, ctx.account_id)
    return role.trust, role.inline[resources.EVENT_FORWARDING_POLICY]


def topic_key_alias(ctx: CheckContext) -> str:
    return resources.topic_key_alias(ctx.baseline)


def topic_key_policy(ctx: CheckContext) -> dict[str, Any]:
    """The module's topic key policy. A customer key, not aws/sns: CloudWatch alarms cannot publish
    to a topic encrypted with the AWS-managed key (its policy cannot grant them the key), so an
    alarm on such a topic would pass verify and notify nobody."""
    root = f"arn:{partition(ctx.region)}:iam::{ctx.account_id}:root"
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "EnableAccountAdministration", "Effect": "Allow", "Principal": {"AWS": root},
         "Action": "kms:*", "Resource": "*"},
        # Neither publisher is known to send aws:SourceAccount/SourceArn on these KMS calls (see the
        # module): both are bound to the topic by SNS's encryption context instead.
        {"Sid": "AllowCloudWatchAlarmsForThisTopicOnly", "Effect": "Allow",
         "Principal": {"Service": "cloudwatch.amazonaws.com"},
         "Action": ["kms:GenerateDataKey*", "kms:Decrypt"], "Resource": "*",
         "Condition": {"StringEquals": {"kms:EncryptionContext:aws:sns:topicArn": alarm_topic_arn(ctx)}}},
        {"Sid": "AllowEventBridgeForThisTopicOnly", "Effect": "Allow",
         "Principal": {"Service": "events.amazonaws.com"},
         "Action": ["kms:GenerateDataKey*", "kms:Decrypt"], "Resource": "*",
         "Condition": {"StringEquals": {"kms:EncryptionContext:aws:sns:topicArn": alarm_topic_arn(ctx)}}},
    ]}


def topic_policy(ctx: CheckContext, topic_arn: str) -> dict[str, Any]:
    """The module's topic policy (provisioner/policies.py, rendered into the alarms module): the
    owner manages it; only the harden alarms of this account and the Elastic IP event rule publish
    to it; anyone else is denied explicitly; never without TLS."""
    return alarm_topic_policy(ctx.baseline, Place(partition(ctx.region), ctx.account_id, ctx.region))


def _topic_key_exists(ctx: CheckContext) -> bool:
    try:
        ctx.client("kms").describe_key(KeyId=topic_key_alias(ctx))
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) != "NotFoundException":
            raise
        return False
    return True


def topic_key(ctx: CheckContext) -> resources.Key:
    """The alarms module's topic key of this region, as a description converge can create."""
    return resources.Key(topic_key_alias(ctx), f"Encrypts the {ctx.baseline.topic_name} SNS topic (harden security "
                         f"alarms) in {ctx.region}", topic_key_policy(ctx), resources.tags(ctx.baseline))


def _ensure_topic_key(ctx: CheckContext) -> tuple[str, str | None]:
    """The topic key's ARN (the existing alias/<topic_name>, enabled, or a key adopted or created
    behind it) and what was done to get it, if anything."""
    notes: list[str] = []
    # Idempotent under concurrent runs and crashes: see converge.ensure_key.
    arn = converge.ensure_key(ctx.client("kms"), topic_key(ctx), notes)
    return arn, "; ".join(notes) or None


def _topic_action(ctx: CheckContext, topic_arn: str) -> Action:
    subscriptions = ctx.baseline.alarms.subscriptions
    key_exists = _topic_key_exists(ctx)

    def run() -> dict:
        key_arn, key_note = _ensure_topic_key(ctx)
        sns = ctx.client("sns")
        created = sns.create_topic(
            Name=ctx.baseline.topic_name,
            Attributes={"DisplayName": "harden security alarms", "KmsMasterKeyId": key_arn,
                        "Policy": json.dumps(topic_policy(ctx, topic_arn))},
            Tags=[{"Key": k, "Value": v} for k, v in ctx.baseline.tags.items()])["TopicArn"]
        for s in subscriptions:
            sns.subscribe(TopicArn=created, Protocol=s.protocol, Endpoint=s.endpoint)
        return {"message": f"created {created} encrypted with {key_arn}"
                           + (f", {len(subscriptions)} subscription(s) requested" if subscriptions else "")
                           + (f" (key: {key_note})" if key_note else ""),
                "topic_arn": created}

    key_calls = [] if key_exists else converge.KEY_CALLS
    # Endpoints are not printed: an https endpoint can carry an integration key in its URL.
    subscribed = (f"; subscribe alarms.subscriptions ({', '.join(s.protocol for s in subscriptions)}; email "
                  "endpoints must confirm, with AuthenticateOnUnsubscribe: see the README)" if subscriptions
                  else "; alarms.subscriptions is empty: nobody is subscribed yet")
    key_text = (f"the existing customer key {topic_key_alias(ctx)}" if key_exists else
                f"a new customer key {topic_key_alias(ctx)} (rotation on, usable by CloudWatch of this "
                "account and by EventBridge for this topic only)")
    return Action(ctx.control_id, ctx.region, topic_arn,
                  f"create the alarm topic {ctx.baseline.topic_name} in {ctx.region}, encrypted with {key_text}, "
                  "not aws/sns, which CloudWatch alarms cannot publish to; publish limited to the "
                  f"{ctx.baseline.name_prefix}-* alarms and the Elastic IP event rule, TLS only{subscribed}",
                  key_calls + ["sns:CreateTopic"] + (["sns:Subscribe"] if subscriptions else []), run)


def _topic_exists_now(ctx: CheckContext, topic_arn: str) -> bool:
    """Asked at run time, not from the cache: the action before may just have created it."""
    try:
        ctx.client("sns", topic_arn.split(":")[3]).get_topic_attributes(TopicArn=topic_arn)
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) != "NotFound":
            raise
        return False
    return True


def _alarm_actions(topic_arn: str | None) -> list[str]:
    return [topic_arn] if topic_arn else []


def _check_topic_created(ctx: CheckContext, topic_arn: str | None, topic_planned: bool) -> None:
    if topic_planned and topic_arn and not _topic_exists_now(ctx, topic_arn):
        # An alarm whose action is a missing topic would pass verify and tell nobody.
        raise RuntimeError(f"topic {topic_arn} does not exist (its creation failed): alarm not created")


def _notify_text(ctx: CheckContext, topic_arn: str | None) -> str:
    if topic_arn:
        return f"alarm and OK actions to {topic_arn}"
    return (f"no SNS action (a CloudWatch alarm notifies only a topic of its own region): its state changes "
            f"reach {alarm_topic_arn(ctx)} through the EventBridge rule {alarm_rule_name(ctx)}")


def _fleet_alarm_action(ctx: CheckContext, topic_arn: str | None, topic_planned: bool, replaces: bool) -> Action:
    settings, name = ctx.baseline.alarms, cpu_fleet_alarm_name(ctx)
    period = settings.cpu_fleet_period_seconds
    rule = (f"Average CPUUtilization of any instance in {ctx.region} >= {settings.cpu_threshold:g}% for "
            f"{settings.cpu_evaluation_periods} x {period}s")

    def run() -> dict:
        _check_topic_created(ctx, topic_arn, topic_planned)
        ctx.client("cloudwatch").put_metric_alarm(
            AlarmName=name,
            AlarmDescription=f"{rule}; each instance is a contributor, new instances join without a re-apply "
                             "(harden alarms.cpu). At most 100 instances are reported in ALARM at once.",
            Metrics=[{"Id": "cpu", "Label": "CPUUtilization by InstanceId", "Expression": CPU_FLEET_QUERY,
                      "Period": period, "ReturnData": True}],
            EvaluationPeriods=settings.cpu_evaluation_periods,
            ComparisonOperator="GreaterThanOrEqualToThreshold", Threshold=float(settings.cpu_threshold),
            TreatMissingData="missing", ActionsEnabled=True,
            AlarmActions=_alarm_actions(topic_arn), OKActions=_alarm_actions(topic_arn),
            Tags=[{"Key": k, "Value": v} for k, v in ctx.baseline.tags.items()])
        return {"message": f"created {name}", "alarm_name": name}

    return Action(ctx.control_id, ctx.region, name,
                  f"{'replace the non-compliant' if replaces else 'create'} fleet alarm {name}: {rule} "
                  f"(Metrics Insights: {CPU_FLEET_QUERY}), missing data treated as missing, "
                  f"{_notify_text(ctx, topic_arn)}", ["cloudwatch:PutMetricAlarm"], run)


def _cpu_alarm_action(ctx: CheckContext, finding: Finding, topic_arn: str | None, topic_planned: bool) -> Action:
    settings, instance_id = ctx.baseline.alarms, finding.resource
    name = cpu_alarm_name(ctx, instance_id)
    rule = (f"Average CPUUtilization of {instance_id} >= {settings.cpu_threshold:g}% for "
            f"{settings.cpu_evaluation_periods} x {settings.cpu_period_seconds}s")

    def run() -> dict:
        _check_topic_created(ctx, topic_arn, topic_planned)
        ctx.client("cloudwatch").put_metric_alarm(
            AlarmName=name, AlarmDescription=f"{rule} (harden alarms.cpu).",
            Namespace="AWS/EC2", MetricName="CPUUtilization",
            Dimensions=[{"Name": "InstanceId", "Value": instance_id}],
            Statistic="Average", Period=settings.cpu_period_seconds,
            EvaluationPeriods=settings.cpu_evaluation_periods,
            ComparisonOperator="GreaterThanOrEqualToThreshold", Threshold=float(settings.cpu_threshold),
            # "missing": a stopped instance goes to INSUFFICIENT_DATA, visible but paging nobody.
            TreatMissingData="missing", ActionsEnabled=True,
            AlarmActions=_alarm_actions(topic_arn), OKActions=_alarm_actions(topic_arn),
            Tags=[{"Key": k, "Value": v} for k, v in ctx.baseline.tags.items()])
        return {"message": f"created {name}", "alarm_name": name}

    replaces = any(a.get("alarm_name") == name for a in finding.evidence.get("alarms", []))
    return Action(ctx.control_id, ctx.region, instance_id,
                  f"{'replace the non-compliant' if replaces else 'create'} alarm {name}: {rule} (more running "
                  f"instances than the fleet alarm's query evaluates), missing data treated as missing, "
                  f"{_notify_text(ctx, topic_arn)}", ["cloudwatch:PutMetricAlarm"], run)


def _ensure_forwarding_role(ctx: CheckContext, notes: list[str]) -> str:
    return converge.ensure_role(ctx.client("iam"), resources.event_forwarding_role(ctx.baseline, ctx.account_id),
                                notes)


def _route_action(ctx: CheckContext) -> Action:
    """What the module declares for alarm state changes: this region's rule to the home bus (with
    the forwarding role), the home region's rule to the topic."""
    home, rule, prefix = ctx.baseline.home_region, alarm_rule_name(ctx), ctx.baseline.name_prefix
    topic = alarm_topic_arn(ctx)
    home_bus = f"arn:{partition(home)}:events:{home}:{ctx.account_id}:event-bus/default"

    def run() -> dict:
        if not _topic_exists_now(ctx, topic):
            raise RuntimeError(f"the home topic {topic} does not exist: route not created")
        notes: list[str] = []  # what the existing forwarding role needed to match the module
        role_arn = _ensure_forwarding_role(ctx, notes)
        home_events = ctx.client("events", home)
        # Tags as the module's rules carry them (var.tags); PutRule applies them when it creates the rule.
        tags = [{"Key": k, "Value": v} for k, v in resources.tags(ctx.baseline).items()]
        home_events.put_rule(Name=rule, State="ENABLED", EventPattern=json.dumps(alarm_state_pattern(prefix, home, home=True)),
                             Description=f"State changes of the {prefix}-* alarms of the other regions, to the topic "
                                         "(harden alarms.*).", Tags=tags)
        home_events.put_targets(Rule=rule, Targets=[{
            "Id": resources.ALARM_ROUTE_TOPIC_TARGET, "Arn": topic,
            "InputTransformer": {"InputPathsMap": {"alarm": "$.detail.alarmName", "region": "$.region",
                                                   "state": "$.detail.state.value", "reason": "$.detail.state.reason",
                                                   "time": "$.time"},
                                 "InputTemplate": '"harden: alarm <alarm> in <region> is <state> at <time>: <reason>"'}}])
        events = ctx.client("events")
        events.put_rule(Name=rule, State="ENABLED", EventPattern=json.dumps(alarm_state_pattern(prefix, home, home=False)),
                        Description=f"State changes of the {prefix}-* alarms in {ctx.region}, to the home region's "
                                    "event bus (harden alarms.*).", Tags=tags)
        events.put_targets(Rule=rule, Targets=[{"Id": resources.ALARM_ROUTE_BUS_TARGET, "Arn": home_bus,
                                                       "RoleArn": role_arn}])
        return {"message": f"{rule} in {ctx.region} -> {home_bus} -> {rule} -> {topic}"
                           + converge.said(notes)}

    return Action(ctx.control_id, ctx.region, rule,
                  f"route the state changes of the {prefix}-* alarms of {ctx.region} to {topic}: rule {rule} here "
                  f"to the default event bus of {home} (role {event_forwarding_role_name(ctx)}: events:PutEvents on "
                  f"that bus only), rule {rule} there to the topic, as the alarms module declares",
                  [*converge.ROLE_CALLS, "events:PutRule", "events:PutTargets"], run)


def _home_context(ctx: CheckContext) -> CheckContext:
    return CheckContext(aws=ctx.aws, baseline=ctx.baseline, region=ctx.baseline.home_region,
                        account_id=ctx.account_id, control_id=ctx.control_id, regions=ctx.regions)


@fix("alarms.cpu")
def create_cpu_alarms(ctx: CheckContext, failed: list[Finding]) -> list[Action]:
    """The region's fleet alarm (the topic first, in the home region, when it is missing); own
    alarms for the uncovered instances only when the region runs more instances than one query
    evaluates, as the module does. Other alarms are left as they are."""
    running = {i["InstanceId"] for i in running_instances(ctx)}
    targets = [f for f in failed if f.resource in running]
    if not targets:
        return []
    home = ctx.region == ctx.baseline.home_region
    topic = alarm_topic_arn(ctx)
    topic_planned = topic_subscriptions(ctx, topic) is None
    # The one topic, in the home region, first; the route to it from here next (outside the home
    # region, where no alarm action can reach it), unless it already carries the alarm.
    actions = [_topic_action(ctx if home else _home_context(ctx), topic)] if topic_planned else []
    fleet = cpu_fleet_alarm_name(ctx)
    if not home and (topic_planned or not any(t["exists"] for e in alarm_state_route(ctx, fleet) for t in _reached(e))):
        actions.append(_route_action(ctx))
    topic_arn = topic if home else None
    replaces = any(a.get("alarm_name") == fleet for f in targets for a in f.evidence.get("alarms", []))
    actions.append(_fleet_alarm_action(ctx, topic_arn, topic_planned and home, replaces))
    if len(running) > METRICS_INSIGHTS_MAX_SERIES:
        actions += [_cpu_alarm_action(ctx, f, topic_arn, topic_planned and home) for f in targets]
    return actions


# ---------------------------------------------------------------------------------------------
# alarms.allocate_address

def _sample_role_identity(account: str, p: str) -> dict:
    """The userIdentity CloudTrail writes for a call made with an assumed role's session."""
    return {"type": "AssumedRole", "principalId": "AROAEXAMPLEROLEID:session",
            "arn": f"arn:{p}:sts::{account}:assumed-role/Operator/session", "accountId": account,
            "accessKeyId": "ASIAEXAMPLEKEYID",
            "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": "AROAEXAMPLEROLEID",
                                                 "arn": f"arn:{p}:iam::{account}:role/Operator",
                                                 "accountId": account, "userName": "Operator"},
                               "attributes": {"creationDate": "2024-01-01T00:00:00Z", "mfaAuthenticated": "false"}}}


def sample_allocate_address_records(account: str, region: str) -> dict[str, dict]:
    """CloudTrail records of AllocateAddress as AWS writes them, one per kind of caller and per
    outcome. A detection must catch every one: a denied attempt (an SCP at work) is as telling
    as a success, and whoever allocates may be a role, a user or the root user."""
    p = partition(region)
    role = _sample_role_identity(account, p)
    user = {"type": "IAMUser", "principalId": "AIDAEXAMPLEUSERID", "arn": f"arn:{p}:iam::{account}:user/operator",
            "accountId": account, "accessKeyId": "AKIAEXAMPLEKEYID", "userName": "operator"}
    root = {"type": "Root", "principalId": account, "arn": f"arn:{p}:iam::{account}:root", "accountId": account,
            "accessKeyId": "ASIAEXAMPLEKEYID"}
    base = {
        "eventVersion": "1.09", "eventTime": "2024-01-01T00:00:00Z", "eventSource": "ec2.amazonaws.com",
        "eventName": ADDRESS_EVENT, "awsRegion": region, "sourceIPAddress": "203.0.113.10",
        "userAgent": "aws-cli/2.15.0", "requestParameters": {"domain": "vpc"},
        "responseElements": {"requestId": "11111111-2222-3333-4444-555555555555", "publicIp": "198.51.100.7",
                             "domain": "vpc", "allocationId": "eipalloc-0123456789abcdef0",
                             "networkBorderGroup": region, "publicIpv4Pool": "amazon"},
        "requestID": "11111111-2222-3333-4444-555555555555", "eventID": "66666666-7777-8888-9999-000000000000",
        "readOnly": False, "eventType": "AwsApiCall", "managementEvent": True,
        "recipientAccountId": account, "eventCategory": "Management",
    }
    denied = {**base, "userIdentity": role, "responseElements": None, "errorCode": "Client.UnauthorizedOperation",
              "errorMessage": "You are not authorized to perform this operation. User: "
                              f"{role['arn']} is not authorized to perform: ec2:AllocateAddress "
                              "with an explicit deny in a service control policy"}
    return {"allocation by an assumed role": {**base, "userIdentity": role},
            "allocation by an IAM user": {**base, "userIdentity": user},
            "allocation by the root user": {**base, "userIdentity": root},
            "attempt denied by a policy": denied}


def sample_address_move_records(account: str, region: str) -> dict[str, dict]:
    """CloudTrail records of the calls that move an Elastic IP without AllocateAddress (see
    provisioner/address_events.py for why each one moves it), as AWS writes them: EC2's query-API
    calls with lowerCamelCase request parameters, the newer ones (NAT gateways) wrapped in
    `<Operation>Request` with the API's own names. The baseline's rule and filter catch every one,
    and verify requires that: AssignPrivateIpAddresses and AttachNetworkInterface are not denied by
    any SCP, so the detection is all that sees them."""
    p = partition(region)
    role = _sample_role_identity(account, p)
    request_id = "11111111-2222-3333-4444-555555555555"

    def record(name: str, request: dict, response: dict | None) -> dict:
        return {"eventVersion": "1.09", "userIdentity": role, "eventTime": "2024-01-01T00:00:00Z",
                "eventSource": "ec2.amazonaws.com", "eventName": name, "awsRegion": region,
                "sourceIPAddress": "203.0.113.10", "userAgent": "aws-cli/2.15.0", "requestParameters": request,
                "responseElements": response, "requestID": request_id,
                "eventID": "66666666-7777-8888-9999-000000000000", "readOnly": False, "eventType": "AwsApiCall",
                "managementEvent": True, "recipientAccountId": account, "eventCategory": "Management"}

    nat = {"natGatewayId": "nat-0123456789abcdef0", "subnetId": "subnet-0123456789abcdef0",
           "vpcId": "vpc-0123456789abcdef0", "state": "pending", "connectivityType": "public",
           "natGatewayAddressSet": {"item": {"allocationId": "eipalloc-0123456789abcdef0"}}}
    return {
        "AssociateAddress moving an address to another instance": record(
            "AssociateAddress", {"allocationId": "eipalloc-0123456789abcdef0", "instanceId": "i-0123456789abcdef0",
                                 "allowReassociation": True},
            {"requestId": request_id, "_return": True, "associationId": "eipassoc-0123456789abcdef0"}),
        "DisassociateAddress": record("DisassociateAddress", {"associationId": "eipassoc-0123456789abcdef0"},
                                      {"requestId": request_id, "_return": True}),
        "AssignPrivateIpAddresses taking a secondary IP (and its Elastic IP) from another interface": record(
            "AssignPrivateIpAddresses",
            {"networkInterfaceId": "eni-0123456789abcdef0", "allowReassignment": True,
             "privateIpAddressesSet": {"items": [{"privateIpAddress": "10.0.1.25"}]}},
            {"requestId": request_id, "_return": True}),
        "AttachNetworkInterface": record(
            "AttachNetworkInterface", {"networkInterfaceId": "eni-0123456789abcdef0",
                                       "instanceId": "i-0123456789abcdef0", "deviceIndex": 1},
            {"requestId": request_id, "attachmentId": "eni-attach-0123456789abcdef0", "networkCardIndex": 0}),
        "CreateNatGateway with an allocation id": record(
            "CreateNatGateway", {"CreateNatGatewayRequest": {"SubnetId": "subnet-0123456789abcdef0",
                                                             "AllocationId": "eipalloc-0123456789abcdef0",
                                                             "ClientToken": "harden-sample"}},
            {"CreateNatGatewayResponse": {"xmlns": "http://ec2.amazonaws.com/doc/2016-11-15/", "natGateway": nat,
                                          "requestId": request_id}}),
        "AssociateNatGatewayAddress": record(
            "AssociateNatGatewayAddress", {"AssociateNatGatewayAddressRequest": {
                "NatGatewayId": "nat-0123456789abcdef0", "AllocationId": {"tag": 1, "content": "eipalloc-0123456789abcdef0"}}},
            None),
        "DisassociateNatGatewayAddress": record(
            "DisassociateNatGatewayAddress", {"DisassociateNatGatewayAddressRequest": {
                "NatGatewayId": "nat-0123456789abcdef0", "AssociationId": {"tag": 1, "content": "eipassoc-0123456789abcdef0"}}},
            None),
    }


def detection_samples(account: str, region: str) -> dict[str, dict]:
    """Every record a detection must catch: each kind of AllocateAddress, and each address move."""
    return {**sample_allocate_address_records(account, region), **sample_address_move_records(account, region)}


def _as_eventbridge_event(record: dict, account: str, region: str) -> dict:
    return {"version": "0", "id": "12345678-1234-1234-1234-123456789012",
            "detail-type": "AWS API Call via CloudTrail", "source": "aws.ec2", "account": account,
            "time": record["eventTime"], "region": region, "resources": [], "detail": record}


def _misses(matches, samples: dict[str, dict]) -> list[str]:
    return [label for label, sample in samples.items() if not matches(sample)]


# -- the EventBridge part (every region) ------------------------------------------------------

def _event_rules(ctx: CheckContext) -> list[dict[str, Any]]:
    """The default bus's rules that catch at least one sample record (CloudTrail API
    events arrive on the default bus only), with what they miss and, for the complete and
    enabled ones, their SNS targets and what their event-bus targets in another region (the
    baseline's route to the home region) deliver to."""
    samples = {label: _as_eventbridge_event(r, ctx.account_id, ctx.region)
               for label, r in detection_samples(ctx.account_id, ctx.region).items()}

    def catches_all(pattern) -> bool:
        return not _misses(lambda e: event_pattern_matches(pattern, e), samples)

    found = []
    for rule in _bus_rules(ctx, ctx.region):
        pattern = rule.get("EventPattern")
        if not pattern:
            continue  # a scheduled rule
        misses = _misses(lambda e: event_pattern_matches(pattern, e), samples)
        if len(misses) == len(samples):
            continue
        entry = {"rule": rule["Name"], "arn": rule.get("Arn"), "state": rule.get("State"), "misses": misses,
                 "topics": [], "other_targets": [], "forwarded": []}
        if not misses and rule.get("State") in ENABLED_RULE_STATES:
            _follow(ctx, entry, _rule_targets(ctx, ctx.region, rule["Name"]), catches_all)
        found.append(entry)
    return found


def _rule_gap(entry: dict[str, Any]) -> str:
    if entry["state"] not in ENABLED_RULE_STATES:
        return f"rule {entry['rule']} is {entry['state']}"
    if entry["misses"]:
        return f"rule {entry['rule']} misses: {', '.join(entry['misses'])}"
    if entry.get("buses") and not entry["topics"]:
        reached = [t for hop in entry["forwarded"] for t in hop["topics"]]
        if not entry["forwarded"]:
            return (f"rule {entry['rule']} sends to {', '.join(entry['buses'])}, where no enabled rule takes every "
                    "AllocateAddress and address-moving call")
        if not reached:
            return (f"rule {entry['rule']} sends to {', '.join(entry['buses'])}, where rule "
                    f"{', '.join(h['rule'] for h in entry['forwarded'])} has no SNS topic target")
        return f"rule {entry['rule']} via {', '.join(entry['buses'])}: " + \
            "; ".join(p for p in map(_topic_problem, reached) if p)
    if not entry["topics"]:
        return f"rule {entry['rule']} has no SNS topic target"
    return f"rule {entry['rule']}: " + "; ".join(p for p in map(_topic_problem, entry["topics"]) if p)


def _event_rule_finding(ctx: CheckContext) -> Finding:
    resource = f"arn:{partition(ctx.region)}:events:{ctx.region}:{ctx.account_id}:event-bus/default"
    rules = _event_rules(ctx)
    evidence = {"rules": rules, "baseline_rule": f"{ctx.baseline.name_prefix}-elastic-ip-api-calls",
                "baseline_topic": ctx.baseline.topic_name}
    key_broken = []  # paths complete but for the topic's key: reported only when no path works
    for entry in rules:
        for topic in _delivering(entry):
            direct = topic in entry["topics"]
            via = "" if direct else next(
                f" through the event bus of {h['region']} (rule {h['rule']})" for h in entry["forwarded"]
                if topic in h["topics"])
            key_gaps = _topic_key_gaps(ctx, topic["topic_arn"], ("events",))
            if key_gaps:
                key_broken.append(f"rule {entry['rule']} sends to {topic['topic_arn']}{via}, but "
                                  + "; ".join(key_gaps))
                continue
            return ctx.passed(resource, f"EventBridge rule {entry['rule']} sends AllocateAddress and address-moving calls to "
                              f"{topic['topic_arn']}{via} (confirmed: {', '.join(topic['confirmed'])})"
                              f"{_link_risk_note(topic)}", **evidence)
    if key_broken:
        return ctx.failed(resource, "; ".join(key_broken), **evidence)
    if not rules:
        return ctx.failed(resource, "missing: no EventBridge rule on the default bus matches AllocateAddress or address-moving "
                          "CloudTrail events; create one (the baseline's "
                          f"{evidence['baseline_rule']}) that targets an SNS topic with a confirmed subscription",
                          **evidence)
    return ctx.failed(resource, "missing: no enabled EventBridge rule catches every AllocateAddress and address-moving call and "
                      "notifies a topic with a confirmed subscription (" + "; ".join(map(_rule_gap, rules)) + ")",
                      **evidence)


# -- the metric filter part (home region) -------------------------------------------------------

def _trails(ctx: CheckContext) -> list[dict]:
    # Same call and cache key as the cloudtrail family, so a shared context fetches it once.
    return ctx.cached("cloudtrail:trails", lambda: sorted(
        ctx.client("cloudtrail").describe_trails(includeShadowTrails=True)["trailList"],
        key=lambda t: t["TrailARN"]))


def _trail_status(ctx: CheckContext, trail: dict) -> dict:
    arn = trail["TrailARN"]

    def fetch() -> dict:
        # By ARN in the trail's home region: a shadow trail's status is only available there.
        resp = ctx.client("cloudtrail", parse_arn(arn)["region"]).get_trail_status(Name=arn)
        return {k: v for k, v in resp.items() if k != "ResponseMetadata"}

    return ctx.cached(f"cloudtrail:status:{arn}", fetch)


def _log_group(arn: str) -> tuple[str, str, str]:
    """(account, region, name) of a log group ARN `arn:aws:logs:REGION:ACCOUNT:log-group:NAME:*`."""
    parts = parse_arn(arn)
    return parts["account"], parts["region"], parts["resource"].split(":")[1]  # log-group:NAME[:*]


def _feeding_trails(ctx: CheckContext) -> dict[str, list[dict]]:
    """Trails that copy to CloudWatch Logs, grouped by log group ARN (without the ':*')."""
    groups: dict[str, list[dict]] = {}
    for trail in _trails(ctx):
        group = trail.get("CloudWatchLogsLogGroupArn")
        if group:
            groups.setdefault(group.removesuffix(":*"), []).append(trail)
    return groups


def _trail_gap(ctx: CheckContext, trail: dict) -> str | None:
    # Like CIS 4.x: the filter counts only on the group of an active multi-region trail; a
    # single-region trail's group never sees an allocation made in another region.
    if not trail.get("IsMultiRegionTrail"):
        return f"trail {trail['Name']} is single-region"
    if not _trail_status(ctx, trail).get("IsLogging"):
        return f"trail {trail['Name']} is not logging"
    return None


def _transformation_value(transformation: dict) -> float:
    try:
        return float(transformation.get("metricValue", "1"))
    except ValueError:
        return 1.0  # a value taken from the event ("$.x"): count each call as one


def _alarm_fire_gap(alarm: dict, calls: int, value: float) -> str | None:
    """Why the alarm would not fire on `calls` matching calls within one period, or None."""
    needed = alarm.get("DatapointsToAlarm") or alarm.get("EvaluationPeriods") or 1
    if needed > 1:
        return f"needs {needed} breaching periods, one burst of calls is one"
    statistic = alarm.get("Statistic")
    observed = {"Sum": calls * value, "SampleCount": float(calls)}.get(statistic, value)
    operator, threshold = alarm.get("ComparisonOperator"), alarm.get("Threshold", 0.0)
    fires = {"GreaterThanOrEqualToThreshold": observed >= threshold,
             "GreaterThanThreshold": observed > threshold}.get(operator, False)
    if fires:
        return None
    return f"{statistic or alarm.get('ExtendedStatistic')} {operator} {threshold:g} does not fire on {calls} call(s)"


def _metric_alarm_entries(ctx: CheckContext, region: str, transformation: dict) -> list[dict[str, Any]]:
    calls = ctx.baseline.alarms.allocate_address_threshold
    value = _transformation_value(transformation)
    dimension_names = sorted((transformation.get("dimensions") or {}).keys())
    entries = []
    for alarm in metric_alarms(ctx, region):
        # An alarm sees the filter's data only with the same namespace, name and dimension names.
        if (alarm.get("Namespace"), alarm.get("MetricName")) != (transformation.get("metricNamespace"),
                                                                 transformation.get("metricName")) \
                or sorted(d["Name"] for d in alarm.get("Dimensions") or []) != dimension_names:
            continue
        topics = [topic_summary(ctx, arn) for arn in _sns_topics(alarm.get("AlarmActions") or [])]
        gaps = [] if alarm.get("ActionsEnabled") else ["actions disabled"]
        if not topics:
            gaps.append("no SNS topic among its alarm actions")
        elif all(_topic_problem(t) for t in topics):
            gaps += [_topic_problem(t) for t in topics]
        if fire_gap := _alarm_fire_gap(alarm, calls, value):
            gaps.append(fire_gap)
        entries.append({"alarm": alarm["AlarmName"], "gaps": gaps, "topics": topics})
    return entries


def _filter_entries(ctx: CheckContext, group_arn: str) -> list[dict[str, Any]]:
    """The group's metric filters that catch at least one sample record, each with what
    it misses and the alarms on its metric."""
    account, region, name = _log_group(group_arn)
    samples = detection_samples(ctx.account_id, region)
    entries = []
    for mf in paginate(ctx.client("logs", region), "describe_metric_filters", "metricFilters", logGroupName=name):
        pattern = mf.get("filterPattern", "")
        try:
            misses = _misses(lambda r: filter_pattern_matches(pattern, r), samples)
        except PatternError as exc:
            if ADDRESS_EVENT in pattern:  # worth naming: it looks meant for this
                entries.append({"filter": mf["filterName"], "pattern": pattern, "misses": [f"not understood: {exc}"],
                                "alarms": []})
            continue
        if len(misses) == len(samples):
            continue
        alarms = []
        if not misses:
            for transformation in mf.get("metricTransformations", []):
                alarms += _metric_alarm_entries(ctx, region, transformation)
        entries.append({"filter": mf["filterName"], "pattern": pattern, "misses": misses,
                        "metrics": [f"{t.get('metricNamespace')}/{t.get('metricName')}"
                                    for t in mf.get("metricTransformations", [])],
                        "alarms": alarms})
    return entries


def _filter_gap(entry: dict[str, Any]) -> str:
    if entry["misses"]:
        return f"filter {entry['filter']} misses: {', '.join(entry['misses'])}"
    if not entry["alarms"]:
        return f"filter {entry['filter']}: no alarm on its metric {', '.join(entry['metrics'])}"
    return "; ".join(f"filter {entry['filter']}: alarm {a['alarm']}: {', '.join(a['gaps'])}" for a in entry["alarms"])


def _topic_key_gaps(ctx: CheckContext, topic_arn: str, publishers: tuple[str, ...]) -> list[str]:
    """When the topic is encrypted with a KMS key: does the key policy still let the publishers of
    this path (CloudWatch alarms: "cloudwatch"; EventBridge rules: "events") publish to it
    (kms:Decrypt and kms:GenerateDataKey*, with SNS's encryption context:
    https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html), and does it let no principal
    of another account in?"""
    def fetch() -> tuple[str, dict] | None:  # read once per topic, judged per path's publishers
        region = parse_arn(topic_arn)["region"]
        attributes = ctx.client("sns", region).get_topic_attributes(TopicArn=topic_arn)["Attributes"]
        key_id = attributes.get("KmsMasterKeyId")
        if not key_id:
            return None
        kms = ctx.client("kms", region)
        key_arn = kms.describe_key(KeyId=key_id)["KeyMetadata"]["Arn"]  # the attribute may be an alias
        return key_arn, json.loads(kms.get_key_policy(KeyId=key_arn, PolicyName="default")["Policy"])

    key = ctx.cached(f"sns:topic-key-policy:{topic_arn}", fetch)
    if key is None:
        return []
    key_arn, policy = key
    account = parse_arn(topic_arn)["account"]
    context = {"kms:EncryptionContext:aws:sns:topicArn": topic_arn}
    every = {"cloudwatch": Caller("cloudwatch.amazonaws.com", service=True,
                                  context={**context, "aws:SourceAccount": account}),
             "events": Caller("events.amazonaws.com", service=True, context=context)}
    gaps = []
    for caller in (every[p] for p in publishers):
        missing = [a for a in ("kms:Decrypt", "kms:GenerateDataKey") if not allows(policy, caller, a)]
        if missing:
            gaps.append(f"the policy of key {key_arn} no longer lets {caller.principal} publish to "
                        f"{topic_arn} ({', '.join(missing)}): nobody is notified")
    outsiders = outside_principals(policy, account)
    if outsiders:
        gaps.append(f"the policy of key {key_arn} lets principals outside account {account} in: "
                    f"{', '.join(outsiders)}")
    return gaps


def _metric_filter_finding(ctx: CheckContext) -> Finding:
    resource = f"arn:{partition(ctx.region)}:logs:{ctx.region}:{ctx.account_id}:metric-filter/{ADDRESS_EVENT}"
    feeding = _feeding_trails(ctx)
    local = {g: t for g, t in feeding.items() if _log_group(g)[0] == ctx.account_id}
    if feeding and not local:
        return ctx.skipped(resource, "the trails' log groups belong to another account "
                           f"({', '.join(sorted(feeding))}): check the metric filter there",
                           log_groups=sorted(feeding))
    groups, gaps, key_broken = [], [], []
    for group_arn, trails in sorted(local.items()):
        trail_gaps = [g for g in (_trail_gap(ctx, t) for t in trails) if g]
        usable = len(trail_gaps) < len(trails)
        filters = _filter_entries(ctx, group_arn) if usable else []
        groups.append({"log_group": group_arn, "trails": [t["Name"] for t in trails],
                       "trail_gaps": trail_gaps, "filters": filters})
        # Every complete path (filter -> alarm -> confirmed topic) is tried: one whose topic key
        # CloudWatch can use passes the control, whichever comes first.
        paths = [(entry, alarm, topic) for entry in filters if not entry["misses"]
                 for alarm in entry["alarms"] if not alarm["gaps"]
                 for topic in alarm["topics"] if _topic_problem(topic) is None]
        for entry, alarm, topic in paths:
            key_gaps = _topic_key_gaps(ctx, topic["topic_arn"], ("cloudwatch",))
            if key_gaps:
                key_broken.append(f"alarm {alarm['alarm']} notifies {topic['topic_arn']}, but " + "; ".join(key_gaps))
                continue
            return ctx.passed(resource, f"metric filter {entry['filter']} on {_log_group(group_arn)[2]} "
                              f"(trail {', '.join(t['Name'] for t in trails)}) feeds alarm {alarm['alarm']}, "
                              f"which notifies {topic['topic_arn']}{_link_risk_note(topic)}", log_groups=groups)
        if paths:
            continue  # complete but for the topic's key: said below
        if not usable:
            gaps.append(f"log group {_log_group(group_arn)[2]}: {'; '.join(trail_gaps)}")
        elif not filters:
            gaps.append(f"log group {_log_group(group_arn)[2]}: no metric filter matches AllocateAddress or an address move")
        else:
            gaps += [_filter_gap(e) for e in filters]
    if key_broken:
        return ctx.failed(resource, "; ".join(key_broken), log_groups=groups)
    if not local:
        return ctx.failed(resource, "missing: no trail delivers to CloudWatch Logs, so no metric filter can "
                          "count AllocateAddress; give the multi-region trail a log group, then a metric filter "
                          "and an alarm on it", log_groups=[])
    return ctx.failed(resource, "missing: no metric filter with an alarm that notifies a confirmed topic for "
                      "AllocateAddress and address moves on an active multi-region trail's log group ("
                      + "; ".join(gaps) + ")",
                      log_groups=groups)


@control("alarms.allocate_address", title="Elastic IP allocation and moves are detected and someone is notified",
         scope="regional", severity="high",
         rationale="the detective control for this tool's core risk: without it an allocation outside "
         "the allow-list is recorded but nobody is told until the next verify",
         mappings=Mappings(none="CIS section 4 alarms cover other API calls, none covers AllocateAddress"),
         fix="an EventBridge rule in every region and a metric filter + alarm in the home region, to a "
         "topic with a confirmed subscription (the alarms module; `harden apply`)",
         terraform="alarms/aws_cloudwatch_event_rule.address_api_calls")
def allocate_address(ctx: CheckContext) -> list[Finding]:
    """Every region: an enabled EventBridge rule that catches every AllocateAddress call
    (succeeded or denied, by any kind of principal) and every call that moves an address
    (AssociateAddress, DisassociateAddress, AssignPrivateIpAddresses with allowReassignment,
    AttachNetworkInterface, CreateNatGateway, the NAT gateway address calls) targets an SNS topic
    with a confirmed subscription. Home region: a metric filter on an active multi-region trail's log group
    catches the same calls, and an alarm on its metric fires at the baseline threshold and
    notifies such a topic."""
    findings = [_event_rule_finding(ctx)]
    if ctx.region == ctx.baseline.home_region:
        findings.append(_metric_filter_finding(ctx))
    return findings


# ---------------------------------------------------------------------------------------------
# Pattern evaluation: EventBridge event patterns and CloudWatch Logs filter patterns.
# Whatever cannot be understood counts as "does not match": verify then reports the detection
# as missing and names the pattern, rather than trusting it.

_MISSING = object()


# -- EventBridge event patterns ------------------------------------------------------------------

def event_pattern_matches(pattern: dict | str, event: dict) -> bool:
    """True when an EventBridge event pattern matches the event (the documented semantics:
    every key of the pattern must match; a list matches when any of its values does)."""
    if isinstance(pattern, str):
        try:
            pattern = json.loads(pattern)
        except ValueError:
            return False
    return isinstance(pattern, dict) and _match_object(pattern, event)


def _match_object(pattern: dict, event: Any) -> bool:
    for key, rule in pattern.items():
        if key == "$or":
            if not isinstance(rule, list) or not any(_match_object(p, event) for p in rule if isinstance(p, dict)):
                return False
            continue
        value = event.get(key, _MISSING) if isinstance(event, dict) else _MISSING
        if isinstance(rule, dict):
            if not isinstance(value, dict) or not _match_object(rule, value):
                return False
        elif isinstance(rule, list):
            if not _match_field(rule, value):
                return False
        else:
            return False  # not a valid pattern: EventBridge would have refused it
    return True


def _match_field(rules: list, value: Any) -> bool:
    if value is _MISSING:
        # Only {"exists": false} matches a field that is not there.
        return any(isinstance(r, dict) and r.get("exists") is False for r in rules)
    values = value if isinstance(value, list) else [value]
    return any(_match_value(rule, v) for rule in rules for v in values)


def _match_value(rule: Any, value: Any) -> bool:
    if not isinstance(rule, dict):
        if isinstance(rule, bool) or isinstance(value, bool) or rule is None or value is None:
            return rule is value or rule == value and type(rule) is type(value)
        if isinstance(rule, (int, float)) and isinstance(value, (int, float)):
            return float(rule) == float(value)
        return rule == value
    if len(rule) != 1:
        return False
    (op, arg), = rule.items()
    return _OPERATORS.get(op, lambda _a, _v: False)(arg, value)


def _prefix(arg: Any, value: Any) -> bool:
    if isinstance(arg, dict) and "equals-ignore-case" in arg:
        return isinstance(value, str) and value.lower().startswith(str(arg["equals-ignore-case"]).lower())
    return isinstance(arg, str) and isinstance(value, str) and value.startswith(arg)


def _suffix(arg: Any, value: Any) -> bool:
    if isinstance(arg, dict) and "equals-ignore-case" in arg:
        return isinstance(value, str) and value.lower().endswith(str(arg["equals-ignore-case"]).lower())
    return isinstance(arg, str) and isinstance(value, str) and value.endswith(arg)


def _wildcard(arg: Any, value: Any) -> bool:
    if not isinstance(arg, str) or not isinstance(value, str):
        return False
    regex = ".*".join(re.escape(part) for part in arg.split("*"))
    return re.fullmatch(regex, value, re.DOTALL) is not None


def _anything_but(arg: Any, value: Any) -> bool:
    if isinstance(arg, dict):
        return not _match_value(arg, value) if len(arg) == 1 else False
    excluded = arg if isinstance(arg, list) else [arg]
    return not any(_match_value(e, value) for e in excluded)


def _numeric(arg: Any, value: Any) -> bool:
    if not isinstance(arg, list) or isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    compare = {"=": float.__eq__, "<": float.__lt__, "<=": float.__le__, ">": float.__gt__, ">=": float.__ge__}
    pairs = list(zip(arg[::2], arg[1::2]))
    return bool(pairs) and all(op in compare and compare[op](float(value), float(bound)) for op, bound in pairs)


def _cidr(arg: Any, value: Any) -> bool:
    try:
        return ipaddress.ip_address(value) in ipaddress.ip_network(arg, strict=False)
    except (TypeError, ValueError):
        return False


_OPERATORS = {
    "prefix": _prefix,
    "suffix": _suffix,
    "wildcard": _wildcard,
    "anything-but": _anything_but,
    "numeric": _numeric,
    "cidr": _cidr,
    "exists": lambda arg, _value: arg is True,  # the value is present here; a missing one is above
    "equals-ignore-case": lambda arg, v: isinstance(arg, str) and isinstance(v, str) and arg.lower() == v.lower(),
}


# -- CloudWatch Logs filter patterns -------------------------------------------------------------

class PatternError(ValueError):
    """A filter pattern this evaluator does not understand."""


_TOKEN = re.compile(r"""\s*(?:
    (?P<op>&&|\|\||!=|<=|>=|=|<|>|\(|\)|\{|\})
  | (?P<selector>\$[^\s=!<>()&|{}]*)
  | (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<word>[^\s=!<>()&|{}"]+)
)""", re.VERBOSE)


def filter_pattern_matches(pattern: str, record: dict) -> bool:
    """True when a CloudWatch Logs filter pattern matches the log event that is `record` as JSON
    (CloudTrail writes one JSON record per event). Raises PatternError when it cannot tell."""
    text = (pattern or "").strip()
    if not text:
        return True  # an empty pattern matches every event
    if text.startswith("{"):
        return _JsonPattern(text).evaluate(record)
    if text.startswith("["):
        raise PatternError("space-delimited patterns do not apply to JSON CloudTrail records")
    return _terms_match(text, json.dumps(record, separators=(",", ":")))


def _terms_match(text: str, message: str) -> bool:
    terms = re.findall(r'[-?]?"(?:[^"\\]|\\.)*"|\S+', text)
    required, optional, excluded = [], [], []
    for term in terms:
        kind = {"-": excluded, "?": optional}.get(term[0], required)
        word = term[1:] if kind is not required else term
        kind.append(word[1:-1] if word.startswith('"') and word.endswith('"') else word)
    if any(t in message for t in excluded):
        return False
    if optional and not required:
        return any(t in message for t in optional)
    return all(t in message for t in required)


class _JsonPattern:
    """`{ $.a = "x" && ($.b != 1 || $.c IS NULL) }`: a recursive-descent parser and evaluator."""

    def __init__(self, text: str) -> None:
        self.tokens = self._tokenize(text)
        self.pos = 0

    @staticmethod
    def _tokenize(text: str) -> list[tuple[str, str]]:
        tokens, pos = [], 0
        while pos < len(text):
            if text[pos:].strip() == "":
                break
            match = _TOKEN.match(text, pos)
            if not match or match.end() == pos:
                raise PatternError(f"cannot read the pattern at {text[pos:pos + 20]!r}")
            tokens.append((match.lastgroup, match.group(match.lastgroup)))
            pos = match.end()
        return tokens

    def _peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _take(self, expected: str | None = None) -> tuple[str, str]:
        token = self._peek()
        if token is None or (expected is not None and token[1] != expected):
            raise PatternError(f"expected {expected or 'more'} in the pattern")
        self.pos += 1
        return token

    def evaluate(self, record: dict) -> bool:
        self.pos = 0
        self._take("{")
        result = self._or(record)
        self._take("}")
        if self._peek() is not None:
            raise PatternError("text after the closing brace")
        return result

    def _or(self, record: dict) -> bool:
        result = self._and(record)
        while self._peek() == ("op", "||"):
            self._take()
            result = self._and(record) or result  # evaluate both sides: a parse error must surface
        return result

    def _and(self, record: dict) -> bool:
        result = self._factor(record)
        while self._peek() == ("op", "&&"):
            self._take()
            result = self._factor(record) and result
        return result

    def _factor(self, record: dict) -> bool:
        if self._peek() == ("op", "("):
            self._take()
            result = self._or(record)
            self._take(")")
            return result
        kind, selector = self._take()
        if kind != "selector":
            raise PatternError(f"expected a $. selector, got {selector!r}")
        value = _select(record, selector)
        kind, op = self._take()
        if kind == "word" and op.upper() in ("IS", "NOT"):
            return self._is(op.upper(), value)
        if kind != "op" or op not in ("=", "!=", "<", "<=", ">", ">="):
            raise PatternError(f"expected a comparison after {selector}, got {op!r}")
        kind, literal = self._take()
        if kind not in ("string", "word"):
            raise PatternError(f"expected a value after {selector} {op}")
        return _compare(value, op, literal, quoted=kind == "string")

    def _is(self, keyword: str, value: Any) -> bool:
        _, word = self._take()
        word = word.upper()
        if keyword == "NOT" and word == "EXISTS":
            return value is _MISSING
        if keyword == "IS" and word in ("NULL", "TRUE", "FALSE"):
            return value is not _MISSING and value is {"NULL": None, "TRUE": True, "FALSE": False}[word]
        raise PatternError(f"unknown test {keyword} {word}")


def _select(record: Any, selector: str) -> Any:
    path = selector[1:]
    for part in re.findall(r"\.([^.\[\]]+)|\[(\d+)\]", path):
        name, index = part
        if name:
            record = record.get(name, _MISSING) if isinstance(record, dict) else _MISSING
        else:
            record = record[int(index)] if isinstance(record, list) and int(index) < len(record) else _MISSING
        if record is _MISSING:
            break
    return record


def _compare(value: Any, op: str, literal: str, *, quoted: bool) -> bool:
    if value is _MISSING or isinstance(value, (dict, list)):
        return False  # a comparison never matches a field that is absent or not a scalar
    text = literal[1:-1].replace('\\"', '"') if quoted else literal
    number = _number(text) if not quoted else None
    if op in ("<", "<=", ">", ">="):
        if number is None or isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        return {"<": value < number, "<=": value <= number, ">": value > number, ">=": value >= number}[op]
    equal = _equals(value, text, number)
    return equal if op == "=" else not equal


def _equals(value: Any, text: str, number: float | None) -> bool:
    if number is not None and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value) == number
    if isinstance(value, bool) or value is None:
        return str(value).lower() == text.lower() if value is not None else text.upper() == "NULL"
    value = str(value)
    if len(text) > 1 and text.startswith("%") and text.endswith("%"):
        return re.search(text[1:-1], value) is not None
    regex = ".*".join(re.escape(part) for part in text.split("*"))
    return re.fullmatch(regex, value, re.DOTALL) is not None


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None
