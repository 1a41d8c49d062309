"""flow_logs.*: every VPC of every region has an ACTIVE flow log capturing ALL traffic."""

from __future__ import annotations

import json
import uuid

import botocore.exceptions

from provisioner import converge, resources
from provisioner.aws import dns_suffix_for, error_code, paginate, partition_for
from provisioner.controls import CheckContext, Mappings, control
from provisioner.findings import Finding
from provisioner.key_policy import Caller, allows, outside_principals
from provisioner.remediate import Action, fix


def vpcs(ctx: CheckContext) -> list[dict]:
    """The VPCs this account owns. DescribeVpcs also lists VPCs shared with it (VPC sharing), but a
    participant "cannot create, delete, or describe flow logs for a shared VPC subnet"
    (https://docs.aws.amazon.com/vpc/latest/userguide/vpc-share-limitations.html): the owner's
    account watches those, as the flow_logs module's aws_vpcs owner-id filter says."""
    def fetch() -> list[dict]:
        return [v for v in paginate(ctx.client("ec2"), "describe_vpcs", "Vpcs")
                if v.get("OwnerId") in (None, ctx.account_id)]

    return ctx.cached("ec2:vpcs", fetch)


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


def _group_name(destination: str) -> str:
    # LogDestination is the group's ARN (sometimes with a trailing ":*"); LogGroupName is the bare name.
    return destination.split(":log-group:", 1)[1].removesuffix(":*") if ":log-group:" in destination else destination


def _counts(fl: dict, traffic_type: str) -> bool:
    # Stricter than "a flow log exists": it must be ACTIVE, capture ALL traffic (or the narrower
    # flow_logs.traffic_type someone chose, which the module then declares too), and not be
    # failing to deliver (DeliverLogsStatus FAILED means nobody receives the records).
    return (fl.get("FlowLogStatus") == "ACTIVE" and fl.get("TrafficType") in {"ALL", traffic_type}
            and fl.get("DeliverLogsStatus", "SUCCESS") != "FAILED")


def _log_group_key_gaps(ctx: CheckContext, group_name: str) -> list[str]:
    """When a flow log's CloudWatch Logs group is encrypted with a KMS key: does the key policy still
    let CloudWatch Logs use it for this group (the actions and the encryption context it sends:
    https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html), and does it
    let no principal of another account in (the key decrypts the flow records)?"""
    def fetch() -> list[str]:
        groups = paginate(ctx.client("logs"), "describe_log_groups", "logGroups", logGroupNamePrefix=group_name)
        group = next((g for g in groups if g.get("logGroupName") == group_name), None)
        key_id = (group or {}).get("kmsKeyId")
        if not key_id:
            return []
        policy = json.loads(ctx.client("kms").get_key_policy(KeyId=key_id, PolicyName="default")["Policy"])
        group_arn = f"arn:{partition_for(ctx.region)}:logs:{ctx.region}:{ctx.account_id}:log-group:{group_name}"
        logs = Caller(f"logs.{ctx.region}.{dns_suffix_for(ctx.region)}", service=True, context={
            "kms:EncryptionContext:aws:logs:arn": group_arn})
        gaps = []
        missing = [a for a in ("kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey") if not allows(policy, logs, a)]
        if missing:
            gaps.append(f"the policy of key {key_id} no longer lets CloudWatch Logs ({logs.principal}) use it for "
                        f"{group_name} ({', '.join(missing)}): flow records cannot be written or read")
        outsiders = outside_principals(policy, ctx.account_id)
        if outsiders:
            gaps.append(f"the policy of key {key_id} lets principals outside account {ctx.account_id} in: "
                        f"{', '.join(outsiders)}")
        return gaps

    return ctx.cached(f"logs:group-key-gaps:{group_name}", fetch)


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
    wanted_traffic = ctx.baseline.flow_logs.traffic_type
    logs = flow_logs_by_vpc(ctx)
    findings: list[Finding] = []
    region_vpcs = vpcs(ctx)
    for vpc in sorted(region_vpcs, key=lambda v: v["VpcId"]):
        vpc_id = vpc["VpcId"]
        if wanted and vpc_id not in wanted:
            findings.append(ctx.skipped(vpc_id, "not in flow_logs.vpc_ids for this region"))
            continue
        attached = [_summary(fl) for fl in logs.get(vpc_id, [])]
        good = [s for s, fl in zip(attached, logs.get(vpc_id, [])) if _counts(fl, wanted_traffic)]
        key_gaps = sorted({g for s in good if s["destination_type"] == "cloud-watch-logs"
                           for g in _log_group_key_gaps(ctx, _group_name(s["destination"]))})
        if good and key_gaps:
            findings.append(ctx.failed(vpc_id, f"flow log {good[0]['flow_log_id']}: {'; '.join(key_gaps)}",
                                       flow_logs=attached))
        elif good:
            findings.append(ctx.passed(vpc_id, f"flow log {good[0]['flow_log_id']} captures "
                                       f"{good[0]['traffic_type']} traffic", flow_logs=attached))
        elif attached:
            why = "; ".join(f"{s['flow_log_id']}: status {s['status']}, traffic {s['traffic_type']}"
                            + (f", delivery {s['deliver_logs_status']}" if s["deliver_logs_status"] == "FAILED" else "")
                            for s in attached)
            captures = "ALL" if wanted_traffic == "ALL" else f"ALL or {wanted_traffic} (flow_logs.traffic_type)"
            findings.append(ctx.failed(vpc_id, f"no flow log that is ACTIVE and captures {captures} traffic ({why})",
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
# What the flow_logs module declares (provisioner/resources.py): the key, then the log group it
# encrypts, the delivery role and its policy, then the flow log; a later `harden apply` imports
# them (the import blocks harden renders).


def _ensure_cloudwatch_destination(ctx: CheckContext, desired: resources.FlowLog,
                                   notes: list[str]) -> tuple[str, str]:
    """The region's flow-log group (after its key) and the role that writes to it."""
    group = converge.ensure_log_group(ctx.client("logs"), ctx.client("kms"), desired.log_group, notes)
    return group, converge.ensure_role(ctx.aws.client("iam"), desired.role, notes)


@fix("flow_logs.all_vpcs")
def create_flow_logs(ctx: CheckContext, failed: list[Finding]) -> list[Action]:
    """One action per VPC without a compliant flow log: create one capturing ALL traffic to the
    baseline's destination. Existing non-compliant flow logs are left in place (deleting a
    flow log is never a fix)."""
    vpc_ids = {v["VpcId"] for v in vpcs(ctx)}
    actions: list[Action] = []
    for finding in failed:
        vpc_id = finding.resource
        if vpc_id not in vpc_ids:
            continue  # a VPC named in the baseline that does not exist: nothing to attach to
        desired = resources.flow_log(ctx.baseline, converge.site_of(ctx), vpc_id)
        # flow_logs.traffic_type (ALL unless someone chose less), as the module declares it: a
        # flow log of another type would be replaced when Terraform adopts it.
        common = dict(ResourceIds=[vpc_id], ResourceType="VPC", TrafficType=desired.traffic_type,
                      MaxAggregationInterval=desired.max_aggregation_interval,
                      TagSpecifications=[{"ResourceType": "vpc-flow-log",
                                          "Tags": [{"Key": k, "Value": v} for k, v in desired.tags.items()]}])
        if desired.destination_type == "s3":
            bucket = resources.log_bucket(ctx.baseline, ctx.account_id)
            target = f"{desired.s3_destination} (the log bucket{_missing_note(ctx, bucket)})"

            def run(common=common, desired=desired, bucket=bucket) -> dict:
                notes: list[str] = []
                converge.ensure_bucket(ctx.client("s3", ctx.baseline.home_region),
                                       ctx.client("kms", ctx.baseline.home_region), bucket, ctx.baseline.home_region,
                                       notes)
                return _create(ctx.client("ec2"), desired, notes, LogDestinationType="s3",
                               LogDestination=desired.s3_destination,
                               DestinationOptions=desired.destination_options, **common)
            key_calls = ctx.cached(f"kms:calls:{ctx.baseline.home_region}:{bucket.key.alias}", lambda: converge.key_calls(
                ctx.client("kms", ctx.baseline.home_region), bucket.key.alias))
            calls = [*key_calls, "s3:CreateBucket (if missing)", "ec2:CreateFlowLogs", "ec2:DescribeFlowLogs"]
        else:
            target = f"CloudWatch Logs {desired.log_group.name}{_prerequisites_note(ctx, desired)}"

            def run(common=common, desired=desired) -> dict:
                notes: list[str] = []
                group, role_arn = _ensure_cloudwatch_destination(ctx, desired, notes)
                return _create(ctx.client("ec2"), desired, notes, LogDestinationType="cloud-watch-logs",
                               LogGroupName=group, DeliverLogsPermissionArn=role_arn, **common)
            alias = desired.log_group.key.alias
            key_calls = ctx.cached(f"kms:calls:{ctx.region}:{alias}", lambda: converge.key_calls(ctx.client("kms"), alias))
            calls = [*key_calls, "logs:CreateLogGroup (if missing)", "logs:TagResource (if a tag differs)",
                     *converge.ROLE_CALLS, "ec2:CreateFlowLogs", "ec2:DescribeFlowLogs"]
        actions.append(Action(ctx.control_id, ctx.region, vpc_id,
                              f"create a flow log capturing {desired.traffic_type} traffic of {vpc_id} to {target}", calls, run))
    return actions


def _prerequisites_note(ctx: CheckContext, desired: resources.FlowLog) -> str:
    """What the action creates first, in order, as the flow_logs module would (from the cache:
    asked once per region by the planner)."""
    def missing() -> list[str]:
        todo = []
        if converge.key_by_alias(ctx.client("kms"), desired.log_group.key.alias) is None:
            todo.append(f"the KMS key {desired.log_group.key.alias}")
        if converge.find_log_group(ctx.client("logs"), desired.log_group.name) is None:
            todo.append(f"the log group {desired.log_group.name} (encrypted with that key, "
                        f"{desired.log_group.retention_days} days)")
        if converge.role_arn(ctx.aws.client("iam"), desired.role.name) is None:
            todo.append(f"the delivery role {desired.role.name}")
        return todo

    todo = ctx.cached("flow_logs:prerequisites", missing)
    return f"; first creates {', then '.join(todo)}, as the flow_logs module declares them" if todo else ""


def _missing_note(ctx: CheckContext, bucket: resources.Bucket) -> str:
    exists = ctx.cached(f"s3:exists:{bucket.name}", lambda: converge.bucket_exists(
        ctx.client("s3", ctx.baseline.home_region), bucket.name))
    return "" if exists else f" {bucket.name}, created first with its key {bucket.key.alias} as the cloudtrail " \
        "module declares them"


def _create(ec2, desired: resources.FlowLog, notes: list[str], **kwargs) -> dict:
    """CreateFlowLogs, safe to run twice. One ClientToken per action: botocore resends the same
    parameters when it retries (a connection cut after AWS made the flow log), and with the same
    token AWS answers the retry with the first call's result instead of a second flow log,
    https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-idempotency.html (CreateFlowLogs is
    listed there; its ClientToken: https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateFlowLogs.html).
    When the answer is FlowLogAlreadyExists all the same (the token expired, another run made it,
    an emulator that ignores tokens), the flow log that exists is looked up: one to the same
    destination with the same traffic type is the outcome wanted, and the action says it found it."""
    try:
        resp = ec2.create_flow_logs(ClientToken=str(uuid.uuid4()), **kwargs)
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) != "FlowLogAlreadyExists":
            raise
        resp = {"Unsuccessful": [{"Error": exc.response.get("Error", {})}]}
    problem = (resp.get("Unsuccessful") or [{}])[0].get("Error", {})
    if problem.get("Code") == "FlowLogAlreadyExists":
        found = _same_flow_log(ec2, desired, kwargs)
        if found:
            return {"message": f"found {found} already in place (a CreateFlowLogs retried after its answer was "
                               "lost, or another run)" + converge.said(notes),
                    "flow_log_ids": [found]}
    return _created(resp, notes)


def _same_flow_log(ec2, desired: resources.FlowLog, kwargs: dict) -> str | None:
    """The id of a flow log of desired.vpc_id to the destination in kwargs, with its traffic type."""
    for fl in paginate(ec2, "describe_flow_logs", "FlowLogs",
                       Filters=[{"Name": "resource-id", "Values": [desired.vpc_id]}]):
        to = fl.get("LogDestination") if kwargs["LogDestinationType"] == "s3" else fl.get("LogGroupName")
        wanted = kwargs.get("LogDestination") or kwargs.get("LogGroupName")
        if to == wanted and fl.get("TrafficType") == desired.traffic_type:
            return fl["FlowLogId"]
    return None


def _created(resp: dict, notes: list[str]) -> dict:
    """The action's result; `notes` say what ensure_key did (a key created, or a losing race's key
    scheduled for deletion with the command that cancels it) and what an existing log group or role
    needed to match the module."""
    if resp.get("Unsuccessful"):
        problem = resp["Unsuccessful"][0].get("Error", {})
        raise RuntimeError(f"CreateFlowLogs refused: {problem.get('Code')}: {problem.get('Message')}"
                           + converge.said(notes))
    return {"message": f"created {', '.join(resp.get('FlowLogIds', []))}"
                       + converge.said(notes),
            "flow_log_ids": resp.get("FlowLogIds", [])}
