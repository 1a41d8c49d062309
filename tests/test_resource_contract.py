"""One desired state, two ways to reach it. On a fresh emulated account with no harden resources,
`remediate --apply` leaves no fixable control failing and a second run plans nothing; then every
resource the fixes created is compared, attribute by attribute, with what the rendered modules
declare (their HCL evaluated with tests/hcl_eval.py, resource references resolved against the
live account): encryption, retention, tags, settings, and policy documents compared as IAM reads
them. The count of disagreeing attributes must be 0, and each fix must have module counterparts
(COUNTERPARTS): a new fix without one fails here.

The emulator lacks three read APIs (delivery channel status, the default EBS key id, LookupEvents):
the sandbox's additions to moto (provisioner/sandbox_emulator.py) answer them in this test.
"""

from __future__ import annotations

import json
import sys

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest

from provisioner import sandbox_emulator
from provisioner.aws import dns_suffix_for, partition_for
from provisioner.baseline import parse_baseline
from provisioner.converge import KEY_TAG
from provisioner.remediate import FIXES, fixable_controls, run_remediation
from provisioner.render import render
from tests.hcl import load_hcl
from tests.hcl_eval import EvalError, _Json, evaluate, normal_policy, policy_document, walk

HOME, OTHER = "eu-west-1", "us-east-1"
IMAGE = "ami-12c6146b"

# Each fix -> the module resources it creates or changes: (module, resource type). A fix added
# without its counterparts here fails test_every_fix_has_module_counterparts.
COUNTERPARTS: dict[str, list[tuple[str, str]]] = {
    "cloudtrail.multi_region": [("cloudtrail", t) for t in (
        "aws_cloudtrail", "aws_kms_key", "aws_kms_alias", "aws_s3_bucket", "aws_s3_bucket_public_access_block",
        "aws_s3_bucket_ownership_controls", "aws_s3_bucket_versioning",
        "aws_s3_bucket_server_side_encryption_configuration", "aws_s3_bucket_lifecycle_configuration",
        "aws_s3_bucket_policy", "aws_cloudwatch_log_group", "aws_iam_role", "aws_iam_role_policy")],
    "cloudtrail.log_validation": [("cloudtrail", "aws_cloudtrail")],
    "flow_logs.all_vpcs": [("flow_logs", t) for t in (
        "aws_kms_key", "aws_kms_alias", "aws_cloudwatch_log_group", "aws_iam_role", "aws_iam_role_policy",
        "aws_flow_log")],
    "config.recorder": [("config", "aws_config_configuration_recorder"),
                        ("config", "aws_config_configuration_recorder_status"),
                        ("account", "aws_iam_role"), ("account", "aws_iam_role_policy"),
                        ("account", "aws_iam_role_policy_attachment")],
    "config.delivery": [("config", "aws_config_delivery_channel")],
    "scp.allocate_address": [("scp", "aws_organizations_policy"), ("scp", "aws_organizations_policy_attachment")],
    "scp.baseline_protection": [("scp", "aws_organizations_policy"), ("scp", "aws_organizations_policy_attachment")],
    "ebs.default_encryption": [("ebs_encryption", t) for t in (
        "aws_kms_key", "aws_kms_alias", "aws_ebs_encryption_by_default", "aws_ebs_default_kms_key")],
    # Outside the home region the fix also routes the alarms' state changes to the topic: the
    # EventBridge rules and targets and the account root's forwarding role (aws_iam_role above).
    "alarms.cpu": [("alarms", t) for t in (
        "aws_kms_key", "aws_kms_alias", "aws_sns_topic", "aws_sns_topic_policy", "aws_cloudwatch_metric_alarm",
        "aws_cloudwatch_event_rule", "aws_cloudwatch_event_target")] + [("account", "aws_iam_role"),
                                                                         ("account", "aws_iam_role_policy")],
    # admin_ports only revokes rules: no module resource at all (the groups are the applications').
    "network.admin_ports": [],
    # The default group's fix empties and tags the VPC's existing group, as aws_default_security_group
    # keeps it (adopted, not created: no import block either, see compare()).
    "network.default_security_group": [("network", "aws_default_security_group")],
}

# Arguments that are not a property of the live resource, with the reason; every other declared
# argument of a counterpart is compared, so a new argument in a template is compared or listed.
NOT_COMPARED = {
    "region": "where, not what: each resource is read in its module's region",
    "count": "meta-argument", "for_each": "meta-argument", "depends_on": "meta-argument",
    "lifecycle": "meta-argument", "provider": "meta-argument",
    "deletion_window_in_days": "used only when deletion is scheduled; AWS does not store it on the key",
    "force_destroy": "Terraform-only",
    "target_key_id": "the alias is found by name and must point at the compared key",
    "bucket": "the identity the resource is read by", "role": "the identity the resource is read by",
    "arn": "the identity the resource is read by (aws_sns_topic_policy)",
    "rule": "the identity the resource is read by (aws_cloudwatch_event_target)",
    "subscription_role_arn": "subscriptions are not created by the fix (alarms.subscriptions is empty here)",
}

# What the provider sends when an argument is not declared (the live value is compared with it).
PROVIDER_DEFAULTS = {
    ("aws_iam_role", "max_session_duration"): 3600,
    ("aws_cloudwatch_log_group", "log_group_class"): "STANDARD",
    ("aws_cloudtrail", "is_organization_trail"): False,
    ("aws_kms_key", "customer_master_key_spec"): "SYMMETRIC_DEFAULT",
    ("aws_kms_key", "multi_region"): False,
    ("aws_flow_log", "log_format"): None,
    ("aws_sns_topic", "kms_master_key_id"): None,
    # No ingress/egress block: the provider removes every rule of the adopted group and keeps it so.
    ("aws_default_security_group", "ingress"): [],
    ("aws_default_security_group", "egress"): [],
}

# Declared, but the emulator cannot show it (checked against AWS by the aws_provider tests).
EMULATOR_GAPS = {
    ("aws_config_configuration_recorder", "recording_mode"): "moto neither stores nor returns recordingMode",
    ("aws_kms_key", "rotation_period_in_days"): "moto does not return RotationPeriodInDays",
    ("aws_flow_log", "log_format"): "moto returns no LogFormat",
}


@dataclass
class Tally:
    compared: int = 0
    mismatches: list[str] = field(default_factory=list)
    gaps: set[str] = field(default_factory=set)
    seen: set[str] = field(default_factory=set)
    addresses: set[tuple[str, str]] = field(default_factory=set)  # (root, instance address)

    def check(self, where: str, attribute: str, declared: Any, live: Any) -> None:
        self.compared += 1
        if declared != live:
            self.mismatches.append(f"{where}.{attribute}: module {declared!r} != fix {live!r}")


# -- the evaluation scope of a module instance ------------------------------------------------------

class Scope:
    """Resolves the references of one module instance: its variables (the root's arguments),
    locals, data sources and resource attributes (ARNs read from the live account)."""

    def __init__(self, parsed: dict, aws, account: str, region: str, args: dict[str, Any],
                 each: dict[str, Any] | None = None, parent: "Scope | None" = None, tree: Path | None = None,
                 calls: dict | None = None):
        self.parsed, self.aws, self.account, self.region = parsed, aws, account, region
        self.args, self.each, self.parent, self.tree, self.calls = args, each or {}, parent, tree, calls or {}
        self._locals: dict[str, Any] = {}
        self._children: dict[tuple[str, str | None], Scope] = {}

    def __call__(self, path: tuple) -> Any:
        head = path[0]
        if head == "var":
            if path[1] in self.args:
                return walk(self.args[path[1]], path[2:])
            return walk(evaluate(self.parsed["variable"][path[1]].get("default"), self), path[2:])
        if head == "local":
            name = path[1]
            if name not in self._locals:
                self._locals[name] = evaluate(self.parsed["locals"][name], self)
            return walk(self._locals[name], path[2:])
        if head == "each":
            return walk(self.each[path[1]], path[2:])
        if head == "data":
            return self.data(path[1], path[2], path[3:])
        if head == "module":
            return self.module_output(path[1], path[2:])
        return self.attribute(path[0], path[1], path[2:])

    def data(self, dtype: str, name: str, rest: tuple) -> Any:
        if dtype == "aws_caller_identity":
            return {"account_id": self.account}[rest[0]]
        if dtype == "aws_partition":
            return {"partition": partition_for(self.region), "dns_suffix": dns_suffix_for(self.region)}[rest[0]]
        if dtype == "aws_iam_policy_document":
            block = self.parsed["data"][dtype][name]
            present = evaluate(block.get("count", 1), self)
            doc = policy_document(block, self) if present else None
            if rest and rest[0] == "*":
                return [doc] if doc else []
            rest = rest[1:] if rest and isinstance(rest[0], int) else rest
            assert rest == ("json",), rest
            return doc
        block = self.parsed["data"][dtype][name]
        if rest and isinstance(rest[0], int) and rest[0] >= evaluate(block.get("count", 1), self):
            raise IndexError(f"data.{dtype}.{name}[{rest[0]}]: no such instance")  # what try() catches
        rest = rest[1:] if rest and isinstance(rest[0], int) else rest
        if dtype == "aws_vpcs":
            return {"ids": sorted(v["VpcId"] for v in self.aws.client("ec2", self.region).describe_vpcs()["Vpcs"])}[
                rest[0]]
        if dtype == "aws_servicequotas_service_quota":  # read from the account, as the provider does
            quota = self.aws.client("service-quotas", self.region).get_service_quota(
                ServiceCode=evaluate(block["service_code"], self), QuotaCode=evaluate(block["quota_code"], self))["Quota"]
            metric = quota.get("UsageMetric")
            usage = [] if not metric else [{
                "metric_name": metric.get("MetricName", ""), "metric_namespace": metric.get("MetricNamespace", ""),
                "metric_statistic_recommendation": metric.get("MetricStatisticRecommendation", ""),
                "metric_dimensions": [{k.lower(): v for k, v in metric.get("MetricDimensions", {}).items()}]}]
            return walk({"value": quota["Value"], "usage_metric": usage}, rest)
        if dtype == "aws_instances":
            reservations = self.aws.client("ec2", self.region).describe_instances(Filters=[
                {"Name": "instance-state-name", "Values": ["running"]}])["Reservations"]
            return {"ids": sorted(i["InstanceId"] for r in reservations for i in r["Instances"])}[rest[0]]
        raise EvalError(f"data.{dtype}.{name} is not known to the contract test")

    def module_output(self, name: str, rest: tuple) -> Any:
        child = self.child(name, self.region if name != "cloudtrail" else None)
        value = evaluate(child.parsed["output"][rest[0]]["value"], child)
        return walk(value, rest[1:])

    def child(self, name: str, key: str | None) -> "Scope":
        if (name, key) not in self._children:
            self._children[(name, key)] = self._child(name, key)
        return self._children[(name, key)]

    def _child(self, name: str, key: str | None) -> "Scope":
        call = self.parsed["module"][name]
        each = {"key": key, "value": key} if key else {}
        inner = Scope(self.parsed, self.aws, self.account, self.region, self.args, each, self.parent, self.tree)
        inner._locals = self._locals
        args = {k: evaluate(v, inner) for k, v in call.items() if k not in ("source", "for_each", "depends_on")}
        region = args.get("region", self.region)
        parsed = _load(self.tree / "modules" / name)
        return Scope(parsed, self.aws, self.account, region, args, parent=self, tree=self.tree)

    def instance(self, key: Any, value: Any) -> "Scope":
        """This scope with each.key and each.value of one for_each instance."""
        return Scope(self.parsed, self.aws, self.account, self.region, self.args,
                     {"key": key, "value": value}, self.parent, self.tree)

    def body(self, rtype: str, name: str) -> dict:
        return self.parsed["resource"][rtype][name]

    def attribute(self, rtype: str, name: str, rest: tuple) -> Any:
        body = self.body(rtype, name)
        if len(rest) > 1 and isinstance(rest[0], str) and "for_each" in body:  # resource.name[key].attr
            key, rest = rest[0], rest[1:]
            return self.instance(key, _each_value(evaluate(body["for_each"], self), key)).attribute(rtype, name, rest)
        rest = rest[1:] if rest and isinstance(rest[0], int) else rest
        p = partition_for(self.region)
        attr = rest[0]
        if rtype == "aws_kms_key":
            alias = next(evaluate(a["name"], self) for a in self.parsed["resource"]["aws_kms_alias"].values()
                         if f"aws_kms_key.{name}" in a["target_key_id"])
            meta = self.aws.client("kms", self.region).describe_key(KeyId=alias)["KeyMetadata"]
            return {"arn": meta["Arn"], "key_id": meta["KeyId"]}[attr]
        if rtype == "aws_cloudwatch_log_group":
            group = evaluate(body["name"], self)
            return {"arn": f"arn:{p}:logs:{self.region}:{self.account}:log-group:{group}", "name": group}[attr]
        if rtype == "aws_iam_role":
            role = evaluate(body["name"], self)
            if attr in ("id", "name"):
                return role
            return self.aws.client("iam").get_role(RoleName=role)["Role"]["Arn"]
        if rtype == "aws_s3_bucket":
            bucket = evaluate(body["bucket"], self)
            return {"id": bucket, "arn": f"arn:{p}:s3:::{bucket}"}[attr]
        if rtype == "aws_sns_topic":
            return f"arn:{p}:sns:{self.region}:{self.account}:{evaluate(body['name'], self)}"
        if rtype == "aws_cloudwatch_event_rule":
            rule = evaluate(body["name"], self)
            return rule if attr in ("id", "name") else f"arn:{p}:events:{self.region}:{self.account}:rule/{rule}"
        if rtype == "aws_organizations_policy":
            name_ = evaluate(body["name"], self)
            listed = self.aws.client("organizations").list_policies(Filter="SERVICE_CONTROL_POLICY")["Policies"]
            return next(pol["Id"] for pol in listed if pol["Name"] == name_)
        if attr in body:  # an argument read back: what the configuration says
            return evaluate(body[attr], self)
        raise EvalError(f"{rtype}.{name}.{attr} is not known to the contract test")


_PARSED: dict[Path, dict] = {}


def _load(directory: Path) -> dict:
    """A rendered module parsed once per test (python-hcl2 is slow: ~0.3 s a file)."""
    if directory not in _PARSED:
        _PARSED[directory] = load_hcl(directory)
    return _PARSED[directory]


# -- live readers: what exists, in the module's argument names --------------------------------------

def _tags(pairs: list[dict], key: str = "Key", value: str = "Value") -> dict[str, str]:
    return {p[key]: p[value] for p in pairs}


def _kms_key(scope: Scope, body: dict, name: str) -> dict[str, Any]:
    kms = scope.aws.client("kms", scope.region)
    arn = scope.attribute("aws_kms_key", name, ("arn",))
    meta = kms.describe_key(KeyId=arn)["KeyMetadata"]
    return {"description": meta["Description"], "key_usage": meta["KeyUsage"],
            "customer_master_key_spec": meta.get("KeySpec", meta.get("CustomerMasterKeySpec")),
            "multi_region": meta.get("MultiRegion", False),
            "enable_key_rotation": kms.get_key_rotation_status(KeyId=arn)["KeyRotationEnabled"],
            "policy": normal_policy(kms.get_key_policy(KeyId=arn, PolicyName="default")["Policy"]),
            "tags": _fix_key_tags(kms, arn)}


def _fix_key_tags(kms, arn: str) -> dict[str, str]:
    """The key's tags but converge.KEY_TAG: the fix tags every key it creates with its alias so a
    run killed between CreateKey and CreateAlias can be adopted (test_concurrency.py checks that);
    Terraform needs no such tag (its state ties the key to its alias), so the module has none."""
    tags = _tags(kms.list_resource_tags(KeyId=arn)["Tags"], "TagKey", "TagValue")
    assert tags.pop(KEY_TAG, "").startswith("alias/"), (arn, tags)
    return tags


def _kms_alias(scope: Scope, body: dict, name: str) -> dict[str, Any]:
    alias = evaluate(body["name"], scope)
    scope.aws.client("kms", scope.region).describe_key(KeyId=alias)  # it exists
    return {"name": alias}


def _log_group(scope: Scope, body: dict, name: str) -> dict[str, Any]:
    logs = scope.aws.client("logs", scope.region)
    group_name = evaluate(body["name"], scope)
    [group] = [g for g in logs.describe_log_groups(logGroupNamePrefix=group_name)["logGroups"]
               if g["logGroupName"] == group_name]
    return {"name": group_name, "retention_in_days": group.get("retentionInDays"), "kms_key_id": group.get("kmsKeyId"),
            "log_group_class": group.get("logGroupClass", "STANDARD"),
            "tags": logs.list_tags_log_group(logGroupName=group_name).get("tags", {})}


def _role(scope: Scope, body: dict, name: str) -> dict[str, Any]:
    iam = scope.aws.client("iam")
    role = iam.get_role(RoleName=evaluate(body["name"], scope))["Role"]
    return {"name": role["RoleName"], "description": role.get("Description"),
            "assume_role_policy": normal_policy(role["AssumeRolePolicyDocument"]),
            "max_session_duration": role["MaxSessionDuration"],
            "tags": _tags(iam.list_role_tags(RoleName=role["RoleName"])["Tags"])}


def _role_policy(scope: Scope, body: dict, name: str) -> dict[str, Any]:
    role, policy_name = evaluate(body["role"], scope), evaluate(body["name"], scope)
    doc = scope.aws.client("iam").get_role_policy(RoleName=role, PolicyName=policy_name)["PolicyDocument"]
    return {"name": policy_name, "policy": normal_policy(doc)}


def _role_attachment(scope: Scope, body: dict, name: str) -> dict[str, Any]:
    role, wanted = evaluate(body["role"], scope), evaluate(body["policy_arn"], scope)
    attached = [p["PolicyArn"] for p in scope.aws.client("iam").list_attached_role_policies(RoleName=role)[
        "AttachedPolicies"]]
    return {"policy_arn": wanted if wanted in attached else attached}


def _flow_log(scope: Scope, body: dict, name: str, vpc_id: str) -> dict[str, Any]:
    [fl] = scope.aws.client("ec2", scope.region).describe_flow_logs(
        Filters=[{"Name": "resource-id", "Values": [vpc_id]}])["FlowLogs"]
    destination = fl.get("LogDestination")
    if destination is None and fl.get("LogGroupName"):
        # AWS returns the group's ARN as LogDestination too; the emulator only the name.
        destination = (f"arn:{partition_for(scope.region)}:logs:{scope.region}:{scope.account}:log-group:"
                       f"{fl['LogGroupName']}")
    return {"vpc_id": fl["ResourceId"], "traffic_type": fl["TrafficType"],
            "log_destination_type": fl["LogDestinationType"], "log_destination": destination,
            "iam_role_arn": fl.get("DeliverLogsPermissionArn"), "max_aggregation_interval": fl["MaxAggregationInterval"],
            "tags": _tags(fl.get("Tags", [])), "log_format": None,
            "destination_options": [{"file_format": o.get("FileFormat"),
                                     "hive_compatible_partitions": o.get("HiveCompatiblePartitions"),
                                     "per_hour_partition": o.get("PerHourPartition")}
                                    for o in [fl.get("DestinationOptions") or SENT_DESTINATION_OPTIONS.get(vpc_id)]
                                    if o]}


# The emulator neither stores nor returns a flow log's DestinationOptions: where a test records
# what the fix sent in CreateFlowLogs (vpc id -> DestinationOptions), that is compared instead.
SENT_DESTINATION_OPTIONS: dict[str, dict[str, Any]] = {}


def _bucket(scope: Scope, body: dict, name: str) -> dict[str, Any]:
    bucket = evaluate(body["bucket"], scope)
    s3 = scope.aws.client("s3", scope.region)
    return {"tags": _tags(s3.get_bucket_tagging(Bucket=bucket)["TagSet"])}


def _bucket_name(scope: Scope, body: dict) -> str:
    return evaluate(body["bucket"], scope)


def _public_access_block(scope, body, name):
    conf = scope.aws.client("s3", scope.region).get_public_access_block(Bucket=_bucket_name(scope, body))[
        "PublicAccessBlockConfiguration"]
    return {"block_public_acls": conf["BlockPublicAcls"], "block_public_policy": conf["BlockPublicPolicy"],
            "ignore_public_acls": conf["IgnorePublicAcls"], "restrict_public_buckets": conf["RestrictPublicBuckets"]}


def _ownership(scope, body, name):
    rules = scope.aws.client("s3", scope.region).get_bucket_ownership_controls(Bucket=_bucket_name(scope, body))[
        "OwnershipControls"]["Rules"]
    return {"rule": [{"object_ownership": r["ObjectOwnership"]} for r in rules]}


def _versioning(scope, body, name):
    status = scope.aws.client("s3", scope.region).get_bucket_versioning(Bucket=_bucket_name(scope, body)).get("Status")
    return {"versioning_configuration": [{"status": status}]}


def _encryption(scope, body, name):
    rules = scope.aws.client("s3", scope.region).get_bucket_encryption(Bucket=_bucket_name(scope, body))[
        "ServerSideEncryptionConfiguration"]["Rules"]
    return {"rule": [{"apply_server_side_encryption_by_default": [{
        "sse_algorithm": r["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"],
        "kms_master_key_id": r["ApplyServerSideEncryptionByDefault"].get("KMSMasterKeyID")}],
        "bucket_key_enabled": r.get("BucketKeyEnabled", False)} for r in rules]}


def _lifecycle(scope, body, name):
    rules = scope.aws.client("s3", scope.region).get_bucket_lifecycle_configuration(
        Bucket=_bucket_name(scope, body))["Rules"]
    return {"rule": [{
        "id": r["ID"], "status": r["Status"],
        "filter": [{}] if r.get("Filter", {}).get("Prefix", "") == "" and len(r.get("Filter", {})) <= 1 else [r["Filter"]],
        "expiration": [{"days": r["Expiration"]["Days"]}],
        "noncurrent_version_expiration": [{"noncurrent_days": r["NoncurrentVersionExpiration"]["NoncurrentDays"]}],
        "abort_incomplete_multipart_upload": [{
            "days_after_initiation": r["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"]}],
    } for r in rules]}


def _bucket_policy(scope, body, name):
    policy = scope.aws.client("s3", scope.region).get_bucket_policy(Bucket=_bucket_name(scope, body))["Policy"]
    return {"policy": normal_policy(policy)}


def _trail(scope: Scope, body: dict, name: str) -> dict[str, Any]:
    ct = scope.aws.client("cloudtrail", scope.region)
    trail_name = evaluate(body["name"], scope)
    trail = ct.get_trail(Name=trail_name)["Trail"]
    selectors = ct.get_event_selectors(TrailName=trail_name).get("EventSelectors", [])
    return {"name": trail["Name"], "s3_bucket_name": trail["S3BucketName"], "s3_key_prefix": trail.get("S3KeyPrefix"),
            "kms_key_id": trail.get("KmsKeyId"), "is_multi_region_trail": trail["IsMultiRegionTrail"],
            "include_global_service_events": trail["IncludeGlobalServiceEvents"],
            "enable_log_file_validation": trail["LogFileValidationEnabled"],
            "enable_logging": ct.get_trail_status(Name=trail_name)["IsLogging"],
            "is_organization_trail": trail.get("IsOrganizationTrail", False),
            "cloud_watch_logs_group_arn": trail.get("CloudWatchLogsLogGroupArn"),
            "cloud_watch_logs_role_arn": trail.get("CloudWatchLogsRoleArn"),
            "event_selector": [{"read_write_type": s["ReadWriteType"],
                                "include_management_events": s["IncludeManagementEvents"]} for s in selectors],
            "tags": _tags(ct.list_tags(ResourceIdList=[trail["TrailARN"]])["ResourceTagList"][0]["TagsList"])}


def _recorder(scope, body, name):
    [rec] = scope.aws.client("config", scope.region).describe_configuration_recorders()["ConfigurationRecorders"]
    group = rec["recordingGroup"]
    return {"name": rec["name"], "role_arn": rec["roleARN"], "recording_group": [{
        "all_supported": group["allSupported"], "include_global_resource_types": group["includeGlobalResourceTypes"]}]}


def _recorder_status(scope, body, name):
    [status] = scope.aws.client("config", scope.region).describe_configuration_recorder_status()[
        "ConfigurationRecordersStatus"]
    return {"name": status["name"], "is_enabled": status["recording"]}


def _channel(scope, body, name):
    [ch] = scope.aws.client("config", scope.region).describe_delivery_channels()["DeliveryChannels"]
    return {"name": ch["name"], "s3_bucket_name": ch["s3BucketName"], "s3_key_prefix": ch.get("s3KeyPrefix"),
            "s3_kms_key_arn": ch.get("s3KmsKeyArn"), "sns_topic_arn": ch.get("snsTopicARN"),
            "snapshot_delivery_properties": [{
                "delivery_frequency": ch["configSnapshotDeliveryProperties"]["deliveryFrequency"]}]}


def _ebs_default(scope, body, name):
    return {"enabled": scope.aws.client("ec2", scope.region).get_ebs_encryption_by_default()[
        "EbsEncryptionByDefault"]}


def _ebs_key(scope, body, name):
    return {"key_arn": scope.aws.client("ec2", scope.region).get_ebs_default_kms_key_id()["KmsKeyId"]}


def _topic(scope, body, name):
    sns = scope.aws.client("sns", scope.region)
    arn = scope.attribute("aws_sns_topic", name, ("arn",))
    attrs = sns.get_topic_attributes(TopicArn=arn)["Attributes"]
    return {"name": arn.rsplit(":", 1)[1], "display_name": attrs.get("DisplayName"),
            "kms_master_key_id": attrs.get("KmsMasterKeyId"),
            "tags": _tags(sns.list_tags_for_resource(ResourceArn=arn)["Tags"])}


def _topic_policy(scope, body, name):
    arn = evaluate(body["arn"], scope)
    attrs = scope.aws.client("sns", scope.region).get_topic_attributes(TopicArn=arn)["Attributes"]
    return {"policy": normal_policy(attrs["Policy"])}


def _alarm(scope, body, name, instance):
    cw = scope.aws.client("cloudwatch", scope.region)
    [alarm] = cw.describe_alarms(AlarmNames=[evaluate(body["alarm_name"], scope)])["MetricAlarms"]
    live = {"alarm_name": alarm["AlarmName"], "alarm_description": alarm.get("AlarmDescription"),
            "evaluation_periods": alarm["EvaluationPeriods"],
            "comparison_operator": alarm["ComparisonOperator"], "threshold": alarm["Threshold"],
            "treat_missing_data": alarm.get("TreatMissingData"), "actions_enabled": alarm["ActionsEnabled"],
            "alarm_actions": alarm["AlarmActions"], "ok_actions": alarm["OKActions"],
            "tags": _tags(cw.list_tags_for_resource(ResourceARN=alarm["AlarmArn"])["Tags"])}
    if alarm.get("Metrics"):  # an alarm on a (Metrics Insights) query
        live["metric_query"] = [{"id": m["Id"], "label": m.get("Label"), "expression": m.get("Expression"),
                                 "period": m.get("Period"), "return_data": m.get("ReturnData")}
                                for m in alarm["Metrics"]]
    else:
        live.update({"namespace": alarm["Namespace"], "metric_name": alarm["MetricName"],
                     "dimensions": {d["Name"]: d["Value"] for d in alarm["Dimensions"]},
                     "statistic": alarm["Statistic"], "period": alarm["Period"]})
    return live


def _event_rule(scope, body, name):
    events = scope.aws.client("events", scope.region)
    rule = events.describe_rule(Name=evaluate(body["name"], scope))
    return {"name": rule["Name"], "description": rule.get("Description"), "state": rule["State"],
            "event_pattern": json.loads(rule["EventPattern"]),
            "tags": _tags(events.list_tags_for_resource(ResourceARN=rule["Arn"])["Tags"])}


def _event_target(scope, body, name, instance):
    rule, target_id = evaluate(body["rule"], scope), evaluate(body["target_id"], scope)
    [target] = [t for t in scope.aws.client("events", scope.region).list_targets_by_rule(Rule=rule)["Targets"]
                if t["Id"] == target_id]
    live = {"target_id": target["Id"], "arn": target["Arn"], "role_arn": target.get("RoleArn")}
    if "InputTransformer" in target:
        live["input_transformer"] = [{"input_paths": target["InputTransformer"].get("InputPathsMap"),
                                      "input_template": target["InputTransformer"]["InputTemplate"]}]
    return live


def _default_group(scope, body, name, vpc_id):
    ec2 = scope.aws.client("ec2", scope.region)
    [group] = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc_id]},
                                                    {"Name": "group-name", "Values": ["default"]}])["SecurityGroups"]
    return {"vpc_id": group["VpcId"], "tags": _tags(group.get("Tags", [])),
            "ingress": group.get("IpPermissions", []), "egress": group.get("IpPermissionsEgress", [])}


def _scp(scope, body, name):
    org = scope.aws.client("organizations")
    policy_id = scope.attribute("aws_organizations_policy", name, ("id",))  # each.key names an overflow one
    policy = org.describe_policy(PolicyId=policy_id)["Policy"]
    summary = policy["PolicySummary"]
    return {"name": summary["Name"], "description": summary["Description"], "type": summary["Type"],
            "content": normal_policy(policy["Content"]),
            "tags": _tags(org.list_tags_for_resource(ResourceId=policy_id)["Tags"])}


def _scp_attachment(scope, body, name, instance):
    policy_id, target = evaluate(body["policy_id"], scope), evaluate(body["target_id"], scope)
    targets = [t["TargetId"] for t in scope.aws.client("organizations").list_targets_for_policy(PolicyId=policy_id)[
        "Targets"]]
    return {"policy_id": policy_id, "target_id": target if target in targets else targets}


READERS: dict[str, Callable[..., dict[str, Any]]] = {
    "aws_kms_key": _kms_key, "aws_kms_alias": _kms_alias, "aws_cloudwatch_log_group": _log_group,
    "aws_iam_role": _role, "aws_iam_role_policy": _role_policy, "aws_iam_role_policy_attachment": _role_attachment,
    "aws_flow_log": _flow_log, "aws_s3_bucket": _bucket, "aws_s3_bucket_public_access_block": _public_access_block,
    "aws_s3_bucket_ownership_controls": _ownership, "aws_s3_bucket_versioning": _versioning,
    "aws_s3_bucket_server_side_encryption_configuration": _encryption,
    "aws_s3_bucket_lifecycle_configuration": _lifecycle, "aws_s3_bucket_policy": _bucket_policy,
    "aws_cloudtrail": _trail, "aws_config_configuration_recorder": _recorder,
    "aws_config_configuration_recorder_status": _recorder_status, "aws_config_delivery_channel": _channel,
    "aws_ebs_encryption_by_default": _ebs_default, "aws_ebs_default_kms_key": _ebs_key, "aws_sns_topic": _topic,
    "aws_sns_topic_policy": _topic_policy, "aws_cloudwatch_metric_alarm": _alarm,
    "aws_organizations_policy": _scp, "aws_organizations_policy_attachment": _scp_attachment,
    "aws_default_security_group": _default_group,
    "aws_cloudwatch_event_rule": _event_rule, "aws_cloudwatch_event_target": _event_target,
}

# Resources of a counterpart type that no fix creates (compared: none), with the reason.
NOT_CREATED_BY_A_FIX = {
    ("alarms", "aws_cloudwatch_metric_alarm", "allocate_address"): "alarms.allocate_address has no boto3 fix",
    ("alarms", "aws_cloudwatch_metric_alarm", "eip_pool"): "eip.pool has no boto3 fix",
    ("alarms", "aws_cloudwatch_event_rule", "address_api_calls"): "alarms.allocate_address has no boto3 fix",
    ("alarms", "aws_cloudwatch_event_target", "address_api_calls"): "alarms.allocate_address has no boto3 fix",
}
# Instances of a resource that no fix creates, for resources whose other instances one does.
NOT_CREATED_INSTANCES = {
    ("alarms", "aws_cloudwatch_event_target", "to_home_bus", "address_api_calls"):
        "alarms.allocate_address has no boto3 fix",
}
POLICY_ATTRIBUTES = {"policy", "assume_role_policy", "content"}


def _compare_resource(tally: Tally, scope: Scope, where: str, rtype: str, name: str, instance: str | None) -> None:
    body = scope.body(rtype, name)
    if instance is not None:
        scope = scope.instance(instance, _each_value(evaluate(body["for_each"], scope), instance))
    reader = READERS[rtype]
    live = reader(scope, body, name, instance) if rtype in ("aws_flow_log", "aws_cloudwatch_metric_alarm",
                                                            "aws_organizations_policy_attachment",
                                                            "aws_default_security_group",
                                                            "aws_cloudwatch_event_target") else \
        reader(scope, body, name)
    body = dict(body)
    for block in body.pop("dynamic", []):  # a dynamic block: its content once per for_each element
        for block_name, spec in block.items():
            elements = evaluate(spec["for_each"], scope)
            if elements:
                body[block_name] = [spec["content"][0] for _ in elements]
    declared_names = [k for k in body if k not in NOT_COMPARED]
    for attribute in sorted(set(declared_names) | {a for (t, a) in PROVIDER_DEFAULTS if t == rtype}):
        if (rtype, attribute) in EMULATOR_GAPS:
            tally.gaps.add(f"{rtype}.{attribute}: {EMULATOR_GAPS[(rtype, attribute)]}")
            continue
        if attribute not in live:
            tally.mismatches.append(f"{where}.{attribute}: declared but not read from the account by this test")
            continue
        if attribute in body:
            declared = evaluate(body[attribute], scope)
        else:
            declared = PROVIDER_DEFAULTS[(rtype, attribute)]
        if attribute in POLICY_ATTRIBUTES:
            declared = normal_policy(declared if isinstance(declared, (dict, str)) else {})
        if attribute == "threshold":
            declared = float(declared)
        if attribute == "event_pattern":  # jsonencode(): compared as the JSON it encodes
            declared = declared.value if isinstance(declared, _Json) else \
                json.loads(declared) if isinstance(declared, str) else declared
        if attribute in ("alarm_actions", "ok_actions"):
            declared = list(declared)
        tally.check(where, attribute, declared, live[attribute])


def _instances(scope: Scope, body: dict) -> list[str | None]:
    if "for_each" in body:  # a map's keys, or a set's elements
        return list(evaluate(body["for_each"], scope))
    if "count" in body and not evaluate(body["count"], scope):
        return []
    return [None]


def _each_value(for_each: Any, key: Any) -> Any:
    """each.value of an instance: the map's value, or for a set the element itself (each.key)."""
    return for_each[key] if isinstance(for_each, dict) else key


def _address(module: str, region: str, rtype: str, name: str, body: dict, instance: str | None) -> tuple[str, str]:
    """The instance address in its root: what an import block's `to` must say."""
    prefix = {"account": "", "cloudtrail": "module.cloudtrail.", "scp": "module.scp."}.get(
        module, f'module.{module}["{region}"].')
    index = f'["{instance}"]' if instance is not None else "[0]" if "count" in body else ""
    return ("organization" if module == "scp" else "account"), f"{prefix}{rtype}.{name}{index}"


def compare(tree: Path, aws, account: str, regions: list[str], baseline,
            only: set[tuple[str, str]] | None = None) -> Tally:
    """`only`: these (module, resource type) pairs, for a story that runs some fixes only."""
    tally = Tally()
    root = Scope(_load(tree / "account"), aws, account, baseline.home_region, {}, tree=tree)
    org_root = Scope(_load(tree / "organization"), aws, account, baseline.home_region, {}, tree=tree)
    org_root.parsed["module"]["scp"]["source"] = "../modules/scp"
    wanted = only or {pair for pairs in COUNTERPARTS.values() for pair in pairs}  # several fixes share some
    modules = {module for module, _ in wanted}  # a module call's arguments are read only when compared
    scopes: list[tuple[str, Scope]] = [("account", root)]
    scopes += [(m, (org_root if m == "scp" else root).child(m, None)) for m in ("cloudtrail", "scp") if m in modules]
    for region in regions:
        for module in ("flow_logs", "config", "ebs_encryption", "alarms", "network"):
            if module in modules:
                scopes.append((module, root.child(module, region)))
    for module, scope in scopes:
        for rtype, named in sorted(scope.parsed["resource"].items()):
            if (module, rtype) not in wanted:
                continue
            for name, body in sorted(named.items()):
                if (module, rtype, name) in NOT_CREATED_BY_A_FIX:
                    continue
                for instance in _instances(scope, body):
                    if (module, rtype, name, instance) in NOT_CREATED_INSTANCES:
                        continue
                    where = f"{module}[{scope.region}].{rtype}.{name}" + (f"[{instance}]" if instance else "")
                    tally.seen.add(where)
                    if rtype != "aws_default_security_group":
                        # The provider adopts a VPC's default group on create, no import needed:
                        # https://registry.terraform.io/providers/hashicorp/aws/latest/docs/resources/default_security_group
                        tally.addresses.add(_address(module, scope.region, rtype, name, body, instance))
                    _compare_resource(tally, scope, where, rtype, name, instance)
    return tally


# -- the story ------------------------------------------------------------------------------------

@pytest.fixture()
def emulated_extras():
    sandbox_emulator.install()
    yield
    sandbox_emulator.uninstall()


def test_every_fix_has_module_counterparts():
    """A fix added without the module resources it must equal (COUNTERPARTS) fails here."""
    assert set(fixable_controls()) == set(FIXES) == set(COUNTERPARTS), \
        f"fixes without counterparts: {sorted(set(FIXES) - set(COUNTERPARTS))}"
    for control, pairs in COUNTERPARTS.items():
        for _, rtype in pairs:
            assert rtype in READERS, f"{control}: no reader for {rtype}"


def test_remediate_from_nothing_converges_to_what_the_modules_declare(aws, emulated_extras, tmp_path):
    org = aws.client("organizations")
    org.create_organization(FeatureSet="ALL")
    root_id = org.list_roots()["Roots"][0]["Id"]
    org.enable_policy_type(RootId=root_id, PolicyType="SERVICE_CONTROL_POLICY")
    ou = org.create_organizational_unit(ParentId=root_id, Name="workloads")["OrganizationalUnit"]["Id"]
    for region in (HOME, OTHER):  # so that the alarms.cpu fix has work in both regions
        aws.client("ec2", region).run_instances(ImageId=IMAGE, MinCount=1, MaxCount=1, InstanceType="t3.micro")
    # ... and network.admin_ports (SSH open to the internet on an application's group).
    ec2 = aws.client("ec2", HOME)
    open_group = ec2.create_security_group(GroupName="app \"ssh\"", Description="app")["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=open_group, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    account = aws.account_id()
    # Odd but valid values where they reach names, tags and policies.
    baseline = parse_baseline({
        "account_id": account, "home_region": HOME, "regions": [HOME, OTHER], "name_prefix": "hx-1",
        "tags": {"ManagedBy": "harden", "Team": "sec ops/\"blue\" ${x}"},
        "cloudtrail": {"s3_key_prefix": "trail/logs", "log_retention_days": 731},
        "flow_logs": {"log_retention_days": 90, "max_aggregation_interval": 60},
        "config": {"delivery_frequency": "Six_Hours"},
        # Eleven long admin ARNs: the baseline protection overflows AWS's 5,120 characters into a
        # second SCP (module resource overflow, keyed through setproduct()).
        "scp": {"targets": [ou], "admin_principals": [f"arn:aws:iam::{account}:role/harden-pipeline"] + [
            f"arn:aws:iam::{account}:role/platform/network/eip-operator-{i:02d}-automation-role" for i in range(10)]},
        "alarms": {"cpu_threshold": 72.5}})

    applied = run_remediation(aws, baseline, apply=True)
    assert not applied.failed and not applied.plan_errors, [r.message for r in applied.failed]
    assert applied.after is not None and applied.after.exit_code() == 0, \
        [(f.control, f.region, f.message) for f in applied.after.findings if f.status != "pass"]
    # Every fixable control ran and passes now; a second dry run has nothing to do.
    verified = {f.control for f in applied.after.findings if f.status == "pass"}
    assert verified == set(fixable_controls())
    again = run_remediation(aws, baseline)
    assert again.actions == [] and again.exit_code() == 0

    render(baseline, tmp_path)
    tally = compare(tmp_path, aws, account, [HOME, OTHER], baseline)
    assert tally.mismatches == [], "\n".join(tally.mismatches)
    # Every counterpart type was met (a template that renamed a resource would meet none).
    met = {w.split(".")[1] for w in tally.seen}
    assert met == {rtype for pairs in COUNTERPARTS.values() for _, rtype in pairs}, met
    assert tally.compared > 150, tally.compared
    assert any(".aws_organizations_policy_attachment.overflow[" in w for w in tally.seen), sorted(tally.seen)
    _apply_adopts_what_remediate_made(aws, baseline, account, tmp_path, tally)
    print(f"\ncompared {tally.compared} attributes of {len(tally.seen)} resources, 0 disagree; "
          f"not visible in the emulator: {sorted(tally.gaps)}")


def test_flow_logs_to_s3_converge_to_what_the_module_declares(aws, tmp_path, monkeypatch):
    """The s3 destination, which the story above (CloudWatch Logs) does not take: the flow log's
    destination_options (file format, hive partitions, per-hour partitions) are the module's,
    not the API's defaults (per_hour_partition: the module's true, the API's false), so an
    applied import does not replace it."""
    from moto.s3.models import S3Backend

    # AWS takes bucket_ARN/folder/ as an S3 LogDestination ("arn:aws:s3:::bucket/folder/",
    # https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateFlowLogs.html); the
    # emulator looks the whole "bucket/folder/" up as a bucket name and refuses it.
    get_bucket = S3Backend.get_bucket
    monkeypatch.setattr(S3Backend, "get_bucket", lambda self, name, *a, **k: get_bucket(self, name.split("/", 1)[0], *a, **k))
    sent: dict[str, dict[str, Any]] = {}
    monkeypatch.setattr(sys.modules[__name__], "SENT_DESTINATION_OPTIONS", sent)

    def record(params: dict, **_) -> None:
        for vpc_id in params.get("ResourceIds", []):
            sent[vpc_id] = params.get("DestinationOptions") or {}

    aws._core.register("provide-client-params.ec2.CreateFlowLogs", record)  # before any ec2 client exists
    account = aws.account_id()
    aws.client("ec2", HOME).create_vpc(CidrBlock="10.8.0.0/16")
    baseline = parse_baseline({"account_id": account, "home_region": HOME, "regions": [HOME],
                               "flow_logs": {"destination": "s3", "s3_key_prefix": "vpc/flow"}})
    applied = run_remediation(aws, baseline, controls=["flow_logs.all_vpcs"], apply=True)
    assert not applied.failed and applied.actions, [r.message for r in applied.failed]
    render(baseline, tmp_path)
    tally = compare(tmp_path, aws, account, [HOME], baseline, only={("flow_logs", "aws_flow_log")})
    assert tally.mismatches == [], "\n".join(tally.mismatches)
    assert tally.compared >= 2 * len(aws.client("ec2", HOME).describe_vpcs()["Vpcs"]), tally.compared


# -- apply adopts what remediate made ---------------------------------------------------------------

def _shape(scope: Scope) -> Callable[[str, str, dict], Any]:
    def shape(rtype: str, name: str, body: dict) -> Any:
        if "for_each" in body:
            return list(evaluate(body["for_each"], scope))
        return int(evaluate(body["count"], scope))
    return shape


def _apply_adopts_what_remediate_made(aws, baseline, account: str, tree: Path, tally: Tally) -> None:
    """Every resource the fixes created gets an import block at its root's address; the blocks
    pass the schema validator against the real modules; on provider-free stand-ins of the same
    shape the bundled Terraform plans them as imports, with nothing destroyed or replaced."""
    from provisioner.adopt import IMPORTS_FILE, discover, write_imports
    from provisioner.terraform import Terraform
    from provisioner.validate import validate_tree
    from tests.standins import standin_address, write_standins

    adoptions = discover(aws, baseline, account, [HOME, OTHER])
    found = {(a.root, a.address) for a in adoptions}
    assert tally.addresses <= found, sorted(tally.addresses - found)
    assert len(found) == len(adoptions)  # one block per instance

    for root in ("account", "organization"):
        written = write_imports(tree / root, adoptions, in_state=set())
        assert written and (tree / root / IMPORTS_FILE).is_file()
    problems = [str(p) for p in validate_tree(tree) if IMPORTS_FILE in p.file]
    assert problems == [], problems
    # A block whose address the roots do not declare is caught by that validator.
    bad = tree / "account" / IMPORTS_FILE
    good_text = bad.read_text()
    bad.write_text(good_text + 'import {\n  to = module.flow_logs["eu-west-1"].aws_flow_log.that["vpc-1"]\n  id = "x"\n}\n')
    assert any("declares no resource aws_flow_log.that" in str(p) for p in validate_tree(tree))
    bad.write_text(good_text)

    root_scope = Scope(_load(tree / "account"), aws, account, HOME, {}, tree=tree)
    org_scope = Scope(_load(tree / "organization"), aws, account, HOME, {}, tree=tree)
    org_scope.parsed["module"]["scp"]["source"] = "../modules/scp"
    roots = {
        "account": (root_scope, {"cloudtrail": [(None, *_module(root_scope, "cloudtrail", None))],
                                 **{m: [(r, *_module(root_scope, m, r)) for r in (HOME, OTHER)]
                                    for m in ("flow_logs", "config", "ebs_encryption", "alarms")}}),
        "organization": (org_scope, {"scp": [(None, *_module(org_scope, "scp", None))]}),
    }
    for root, (scope, modules) in roots.items():
        standin = tree / f"standin-{root}"
        write_standins(standin, scope.parsed, modules, _shape(scope))
        mine = [a for a in adoptions if a.root == root]
        (standin / IMPORTS_FILE).write_text("".join(
            f'import {{\n  to = {standin_address(a.address)}\n  id = "{a.id}"\n}}\n' for a in mine))
        tf = Terraform(standin)
        tf.init()
        summary = tf.plan().summary
        imported = {c.address for c in summary.changes if c.importing}
        assert imported == {standin_address(a.address) for a in mine}
        assert all(c.action in ("import", "create") for c in summary.changes), \
            [(c.action, c.address) for c in summary.changes if c.action not in ("import", "create")]
        assert summary.to_dict()["import"] == len(mine) and summary.to_dict()["destroy"] == 0
        shape = {k: v for k, v in summary.to_dict().items() if k != "changes"}
        print(f"\nprovider-free plan of the {root} root after remediate: {shape}")


def _module(scope: Scope, name: str, key: str | None) -> tuple[dict, Callable]:
    child = scope.child(name, key)
    return child.parsed, _shape(child)


# -- an existing, drifted role and log group --------------------------------------------------------

def test_remediate_brings_an_existing_drifted_role_and_log_group_to_the_module(aws, tmp_path):
    """The flow-log role and group exist already, drifted: the role's trust policy widened to
    another account, a baseline tag missing and one changed, its inline policy widened; the group
    with other retention and no baseline tags. Remediate's flow-log action converges
    both (its message says what changed), keeps the user's own tags, and leaves a role harden did
    not name alone, even one trusting the same outsider."""
    from provisioner import resources
    from provisioner.converge import ensure_key, ensure_log_group, ensure_role

    account = aws.account_id()
    aws.client("ec2", HOME).create_vpc(CidrBlock="10.9.0.0/16")
    baseline = parse_baseline({"account_id": account, "home_region": HOME, "regions": [HOME], "name_prefix": "hx-2",
                               "tags": {"ManagedBy": "harden", "Team": "sec ops"}})
    site = resources.Site(account, HOME)
    role, group = resources.flow_log_role(baseline, site), resources.flow_log_group(baseline, site)
    outsider = {"AWS": "arn:aws:iam::999988887777:root"}
    widened = {"Version": "2012-10-17", "Statement": [*role.trust["Statement"], {
        "Effect": "Allow", "Principal": outsider, "Action": "sts:AssumeRole"}]}
    iam, logs = aws.client("iam"), aws.client("logs", HOME)
    iam.create_role(RoleName=role.name, AssumeRolePolicyDocument=json.dumps(widened), Description="hand made",
                    Tags=[{"Key": "ManagedBy", "Value": "someone"}, {"Key": "CostCenter", "Value": "42"}])
    [inline_name] = role.inline
    iam.put_role_policy(RoleName=role.name, PolicyName=inline_name, PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "logs:*", "Resource": "*"}]}))
    unrelated = "app-flow-logs-reader"   # not a name harden gives: never read or changed
    iam.create_role(RoleName=unrelated, AssumeRolePolicyDocument=json.dumps(widened),
                    Tags=[{"Key": "ManagedBy", "Value": "someone"}])
    # Encrypted with the baseline key already: the emulator has no AssociateKmsKey to show that step.
    key_arn = ensure_key(aws.client("kms", HOME), group.key)
    logs.create_log_group(logGroupName=group.name, kmsKeyId=key_arn, tags={"Owner": "net team"})
    logs.put_retention_policy(logGroupName=group.name, retentionInDays=1)

    applied = run_remediation(aws, baseline, controls=["flow_logs.all_vpcs"], apply=True)
    assert not applied.failed and applied.actions, [r.message for r in applied.failed]
    messages = " ".join(r.message for r in applied.results)
    assert f"brought the existing role {role.name} to the baseline: trust policy replaced" in messages, messages
    assert f"trust policy replaced; description; tags ManagedBy, Name, Team; inline policy {inline_name} replaced" \
        in messages, messages
    assert f"brought the existing log group {group.name} to the baseline: retention 1 -> " \
           f"{group.retention_days} days; tags ManagedBy, Name, Team" in messages, messages

    # The user's own tags are kept (they are not the module's to remove) ...
    role_tags = _tags(iam.list_role_tags(RoleName=role.name)["Tags"])
    arn = f"arn:aws:logs:{HOME}:{account}:log-group:{group.name}"
    group_tags = logs.list_tags_for_resource(resourceArn=arn)["tags"]
    assert role_tags == {**role.tags, "CostCenter": "42"} and group_tags == {**group.tags, "Owner": "net team"}
    # ... and without them every other attribute is the module's.
    iam.untag_role(RoleName=role.name, TagKeys=["CostCenter"])
    logs.untag_resource(resourceArn=arn, tagKeys=["Owner"])
    render(baseline, tmp_path)
    tally = compare(tmp_path, aws, account, [HOME], baseline, only={
        ("flow_logs", "aws_iam_role"), ("flow_logs", "aws_iam_role_policy"), ("flow_logs", "aws_cloudwatch_log_group")})
    assert tally.mismatches == [], "\n".join(tally.mismatches)
    assert {w.split(".")[1] for w in tally.seen} == {"aws_iam_role", "aws_iam_role_policy", "aws_cloudwatch_log_group"}
    # The role harden did not name still trusts the outsider and keeps its tags.
    other = iam.get_role(RoleName=unrelated)["Role"]
    assert outsider in [s["Principal"] for s in other["AssumeRolePolicyDocument"]["Statement"]]
    assert _tags(iam.list_role_tags(RoleName=unrelated)["Tags"]) == {"ManagedBy": "someone"}
    # Converged: a role and group already as described are left alone (no note, no call).
    notes: list[str] = []
    ensure_role(iam, role, notes)
    ensure_log_group(logs, aws.client("kms", HOME), group, notes)
    assert notes == []
