"""flow_logs.*: every VPC of every region has an ACTIVE flow log capturing ALL traffic."""

from __future__ import annotations

import json

from provisioner.aws import paginate, partition_for
from provisioner.controls import CheckContext, Mappings, control
from provisioner.findings import Finding
from provisioner.remediate import Action, fix


def vpcs(ctx: CheckContext) -> list[dict]:
    return ctx.cached("ec2:vpcs", lambda: paginate(ctx.client("ec2"), "describe_vpcs", "Vpcs"))


def flow_logs_by_vpc(ctx: CheckContext) -> dict[str, list[dict]]:
    """One describe_flow_logs per region (not one per VPC), grouped by the VPC they watch."""
    def fetch() -> dict[str, list[dict]]:
        grouped: dict[str, list[dict]] = {}
        for fl in paginate(ctx.client("ec2"), "describe_flow_logs", "FlowLogs"):
            grouped.setdefault(fl.get("ResourceId", ""), []).append(fl)
        return grouped

    return ctx.cached("ec2:flow_logs_by_vpc", fetch)


def _summary(fl: dict) -> dict:
    return {
        "flow_log_id": fl.get("FlowLogId"),
        "status": fl.get("FlowLogStatus"),
        "traffic_type": fl.get("TrafficType"),
        "destination_type": fl.get("LogDestinationType"),
        "destination": fl.get("LogDestination") or fl.get("LogGroupName"),
        "deliver_logs_status": fl.get("DeliverLogsStatus"),
    }


def _counts(fl: dict) -> bool:
    # Stricter than "a flow log exists": it must be ACTIVE, capture ALL traffic, and not be
    # failing to deliver (DeliverLogsStatus FAILED means nobody receives the records).
    return (fl.get("FlowLogStatus") == "ACTIVE" and fl.get("TrafficType") == "ALL"
            and fl.get("DeliverLogsStatus", "SUCCESS") != "FAILED")


@control("flow_logs.all_vpcs", title="Every VPC has an active flow log capturing ALL traffic",
         scope="regional", severity="medium",
         rationale="flow logs are how traffic to and from a hijacked or newly associated address is seen; "
         "a VPC without them is unobserved network",
         mappings=Mappings(cis_v3=("3.7",), cis_v4=("3.7",), securityhub=("EC2.6",)),
         fix="a flow log capturing ALL traffic on every VPC (`harden remediate --controls flow_logs`, or "
         "the flow_logs module)",
         terraform="flow_logs/aws_flow_log.this")
def all_vpcs(ctx: CheckContext) -> list[Finding]:
    wanted = set(ctx.baseline.flow_logs.vpc_ids.get(ctx.region, []))
    logs = flow_logs_by_vpc(ctx)
    findings: list[Finding] = []
    region_vpcs = vpcs(ctx)
    for vpc in sorted(region_vpcs, key=lambda v: v["VpcId"]):
        vpc_id = vpc["VpcId"]
        if wanted and vpc_id not in wanted:
            findings.append(ctx.skipped(vpc_id, "not in flow_logs.vpc_ids for this region"))
            continue
        attached = [_summary(fl) for fl in logs.get(vpc_id, [])]
        good = [s for s, fl in zip(attached, logs.get(vpc_id, [])) if _counts(fl)]
        if good:
            findings.append(ctx.passed(vpc_id, f"flow log {good[0]['flow_log_id']} captures ALL traffic",
                                       flow_logs=attached))
        elif attached:
            why = "; ".join(f"{s['flow_log_id']}: status {s['status']}, traffic {s['traffic_type']}"
                            + (f", delivery {s['deliver_logs_status']}" if s["deliver_logs_status"] == "FAILED" else "")
                            for s in attached)
            findings.append(ctx.failed(vpc_id, f"no flow log that is ACTIVE and captures ALL traffic ({why})",
                                       flow_logs=attached))
        else:
            findings.append(ctx.failed(vpc_id, "no flow log", flow_logs=[]))
    present = {v["VpcId"] for v in region_vpcs}
    for missing in sorted(wanted - present):
        findings.append(ctx.failed(missing, "listed in flow_logs.vpc_ids but no such VPC in this region"))
    if not findings:
        findings.append(ctx.passed(ctx.region, "no VPC in this region", vpc_count=0))
    return findings


# -- fix ------------------------------------------------------------------------------------------
# Names match the flow_logs module, so the state converges to what Terraform declares (a later
# `harden apply` imports or replaces them; see the README).

_TRUST_SERVICE = "vpc-flow-logs.amazonaws.com"


def log_group_name(ctx: CheckContext) -> str:
    return f"/aws/vpc-flow-logs/{ctx.baseline.name_prefix}"


def role_name(ctx: CheckContext) -> str:
    return f"{ctx.baseline.name_prefix}-flow-logs-{ctx.region}"


def _ensure_cloudwatch_destination(ctx: CheckContext) -> tuple[str, str]:
    """The region's flow-log group and the role that writes to it, created when missing."""
    logs, iam = ctx.client("logs"), ctx.aws.client("iam")
    group = log_group_name(ctx)
    partition = partition_for(ctx.region)
    group_arn = f"arn:{partition}:logs:{ctx.region}:{ctx.account_id}:log-group:{group}"
    existing = logs.describe_log_groups(logGroupNamePrefix=group).get("logGroups", [])
    if not any(g["logGroupName"] == group for g in existing):
        logs.create_log_group(logGroupName=group, tags=dict(ctx.baseline.tags))
        logs.put_retention_policy(logGroupName=group, retentionInDays=ctx.baseline.flow_logs.log_retention_days)
    name = role_name(ctx)
    try:
        role_arn = iam.get_role(RoleName=name)["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        trust = {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Service": _TRUST_SERVICE}, "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": ctx.account_id},
                          "ArnLike": {"aws:SourceArn": f"arn:{partition}:ec2:{ctx.region}:{ctx.account_id}:vpc-flow-log/*"}},
        }]}
        role_arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust),
                                   Description="VPC flow logs delivery (created by harden remediate)",
                                   Tags=[{"Key": k, "Value": v} for k, v in ctx.baseline.tags.items()])["Role"]["Arn"]
    # Least privilege: write streams of this one log group, nothing else.
    iam.put_role_policy(RoleName=name, PolicyName="deliver-to-log-group", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
            "Resource": [group_arn, f"{group_arn}:*"],
        }]}))
    return group, role_arn


@fix("flow_logs.all_vpcs")
def create_flow_logs(ctx: CheckContext, failed: list[Finding]) -> list[Action]:
    """One action per VPC without a compliant flow log: create one capturing ALL traffic to the
    baseline's destination. Existing non-compliant flow logs are left in place (deleting a
    flow log is never a fix)."""
    settings = ctx.baseline.flow_logs
    vpc_ids = {v["VpcId"] for v in vpcs(ctx)}
    actions: list[Action] = []
    for finding in failed:
        vpc_id = finding.resource
        if vpc_id not in vpc_ids:
            continue  # a VPC named in the baseline that does not exist: nothing to attach to
        if settings.destination == "s3":
            bucket = ctx.baseline.log_bucket_name(ctx.account_id)
            target = f"s3://{bucket}/{settings.s3_key_prefix}/"

            def run(vpc_id=vpc_id, bucket=bucket) -> dict:
                resp = ctx.client("ec2").create_flow_logs(
                    ResourceIds=[vpc_id], ResourceType="VPC", TrafficType="ALL", LogDestinationType="s3",
                    LogDestination=f"arn:{partition_for(ctx.region)}:s3:::{bucket}/{settings.s3_key_prefix}/",
                    MaxAggregationInterval=settings.max_aggregation_interval,
                    TagSpecifications=[{"ResourceType": "vpc-flow-log", "Tags": _tags(ctx, vpc_id)}])
                return _created(resp)
            calls = ["ec2:CreateFlowLogs"]
        else:
            target = f"CloudWatch Logs {log_group_name(ctx)}"

            def run(vpc_id=vpc_id) -> dict:
                group, role_arn = _ensure_cloudwatch_destination(ctx)
                resp = ctx.client("ec2").create_flow_logs(
                    ResourceIds=[vpc_id], ResourceType="VPC", TrafficType="ALL",
                    LogDestinationType="cloud-watch-logs", LogGroupName=group, DeliverLogsPermissionArn=role_arn,
                    MaxAggregationInterval=settings.max_aggregation_interval,
                    TagSpecifications=[{"ResourceType": "vpc-flow-log", "Tags": _tags(ctx, vpc_id)}])
                return _created(resp)
            calls = ["logs:CreateLogGroup (if missing)", "iam:CreateRole (if missing)", "iam:PutRolePolicy",
                     "ec2:CreateFlowLogs"]
        actions.append(Action(ctx.control_id, ctx.region, vpc_id,
                              f"create a flow log capturing ALL traffic of {vpc_id} to {target}", calls, run))
    return actions


def _tags(ctx: CheckContext, vpc_id: str) -> list[dict]:
    tags = {**ctx.baseline.tags, "Name": f"{ctx.baseline.name_prefix}-{vpc_id}"}
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def _created(resp: dict) -> dict:
    if resp.get("Unsuccessful"):
        problem = resp["Unsuccessful"][0].get("Error", {})
        raise RuntimeError(f"CreateFlowLogs refused: {problem.get('Code')}: {problem.get('Message')}")
    return {"message": f"created {', '.join(resp.get('FlowLogIds', []))}", "flow_log_ids": resp.get("FlowLogIds", [])}
