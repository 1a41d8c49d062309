"""What harden creates, described once: the resources that both a Terraform module and a boto3 fix
create, with their names, settings, tags and policy documents, computed from the Baseline and the
place they live in (account, region).

The fixes create from these descriptions (provisioner/converge.py); the contract test
(tests/test_resource_contract.py) evaluates the rendered modules and proves each description is
what the module declares, attribute by attribute, so the two ways of reaching the baseline cannot
drift apart. Pure functions, no AWS calls; imports the Baseline and policies only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from provisioner.aws import dns_suffix_for, partition_for
from provisioner.baseline import Baseline
from provisioner.policies import address_rule_name, alarm_state_rule_name

POLICY_VERSION = "2012-10-17"


@dataclass(frozen=True)
class Site:
    """Where a resource lives: the account and the region (IAM resources: the region whose module
    creates them)."""

    account: str
    region: str

    @property
    def partition(self) -> str:
        return partition_for(self.region)

    @property
    def dns_suffix(self) -> str:
        # Regional service principals and kms:ViaService values end in it (aws_partition.dns_suffix).
        return dns_suffix_for(self.region)

    @property
    def root(self) -> str:
        return f"arn:{self.partition}:iam::{self.account}:root"

    def arn(self, service: str, resource: str, region: bool = True) -> str:
        return f"arn:{self.partition}:{service}:{self.region if region else ''}:{self.account}:{resource}"


# -- descriptions ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Key:
    """A customer-managed symmetric KMS key behind its alias, rotation on."""

    alias: str
    description: str
    policy: dict[str, Any]
    tags: dict[str, str]
    # No deletion window: the module's deletion_window_in_days ([kms] deletion_window_days) is what
    # Terraform sends when it destroys the key, not a property of the key (KMS stores none, the
    # contract test's NOT_COMPARED says so). The only deletion converge schedules is of a key its
    # own run created moments earlier and lost the alias race with: it encrypted nothing, so it
    # gets the shortest window, converge.PENDING_WINDOW_DAYS, not the configured one.
    # What the module leaves to the provider's default is not sent either (the topic key's
    # rotation period is the module's explicit 365 days, the others KMS's default, also 365).


@dataclass(frozen=True)
class LogGroup:
    name: str
    retention_days: int
    tags: dict[str, str]
    key: Key | None                 # encrypted with this key (created first)


@dataclass(frozen=True)
class Role:
    name: str
    description: str
    trust: dict[str, Any]
    tags: dict[str, str]
    inline: dict[str, dict[str, Any]] = field(default_factory=dict)   # policy name -> document
    managed: tuple[str, ...] = ()                                     # attached managed policy ARNs
    max_session_seconds: int = 3600


@dataclass(frozen=True)
class Bucket:
    name: str
    tags: dict[str, str]
    key: Key                        # SSE-KMS default encryption with a bucket key
    policy: dict[str, Any]
    expiration_days: int            # current and noncurrent versions
    abort_multipart_days: int = 7


@dataclass(frozen=True)
class FlowLog:
    vpc_id: str
    traffic_type: str
    max_aggregation_interval: int
    tags: dict[str, str]
    destination_type: str           # cloud-watch-logs | s3
    log_group: LogGroup | None
    role: Role | None
    s3_destination: str | None      # bucket ARN/prefix/, for an s3 destination
    destination_options: dict[str, Any] | None = None   # CreateFlowLogs DestinationOptions, for s3


# The flow_logs module's destination_options for an s3 destination (its variables' defaults, which
# the account root keeps): AWS's own default would be daily partitions, and the provider replaces
# a flow log whose options differ. Hive-style keys would fall outside the prefix the bucket policy grants.
S3_FLOW_LOG_OPTIONS = {"FileFormat": "plain-text", "HiveCompatiblePartitions": False, "PerHourPartition": True}


@dataclass(frozen=True)
class Recorder:
    name: str
    all_supported: bool
    include_global_resource_types: bool
    recording_frequency: str


@dataclass(frozen=True)
class Channel:
    name: str
    bucket: str
    prefix: str
    frequency: str


@dataclass(frozen=True)
class DefaultSecurityGroup:
    """A VPC's default security group as the network module's aws_default_security_group keeps
    it: adopted (never created), every rule removed, the module's tags."""

    vpc_id: str
    tags: dict[str, str]
    ingress: tuple[dict[str, Any], ...] = ()
    egress: tuple[dict[str, Any], ...] = ()


# The cloudtrail module's aws_cloudtrail settings and its event_selector (every management event,
# read and write), in the API's words.
TRAIL_SETTINGS = {"IsMultiRegionTrail": True, "IncludeGlobalServiceEvents": True, "EnableLogFileValidation": True}
MANAGEMENT_SELECTOR = {"ReadWriteType": "All", "IncludeManagementEvents": True}


@dataclass(frozen=True)
class Trail:
    name: str
    bucket: Bucket
    prefix: str
    log_group: LogGroup
    role: Role
    organization: bool
    settings: dict[str, bool] = field(default_factory=lambda: dict(TRAIL_SETTINGS))
    event_selectors: tuple[dict[str, Any], ...] = (MANAGEMENT_SELECTOR,)


def tags(baseline: Baseline, name: str | None = None) -> dict[str, str]:
    """The baseline's tags; with a Name where the module adds one (merge(var.tags, {Name = ...}))."""
    return {**baseline.tags, "Name": name} if name else dict(baseline.tags)


def _allow(sid: str | None, principal: dict[str, Any] | str, actions: list[str] | str, resources: list[str] | str,
           condition: dict[str, Any] | None = None, effect: str = "Allow") -> dict[str, Any]:
    statement: dict[str, Any] = {"Sid": sid} if sid else {}
    statement.update({"Effect": effect, "Principal": principal, "Action": actions, "Resource": resources})
    if condition:
        statement["Condition"] = condition
    return statement


def _policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": POLICY_VERSION, "Statement": list(statements)}


def _service(name: str) -> dict[str, str]:
    return {"Service": name}


# -- cloudtrail: key, log bucket, CloudWatch Logs copy and its role, trail -------------------------
# templates/modules/cloudtrail/main.tf.j2, called once, in the home region, by the account root.

def _home(baseline: Baseline, account: str) -> Site:
    return Site(account, baseline.home_region)


def trail_arn(baseline: Baseline, account: str) -> str:
    return _home(baseline, account).arn("cloudtrail", f"trail/{baseline.trail_name}")


def trail_log_group_name(baseline: Baseline) -> str:
    return f"/aws/cloudtrail/{baseline.trail_name}"


def _config_prefix(baseline: Baseline) -> str | None:
    return baseline.config.s3_key_prefix if baseline.config.enabled else None


def _flow_logs_prefix(baseline: Baseline) -> str | None:
    flow = baseline.flow_logs
    return flow.s3_key_prefix if flow.enabled and flow.destination == "s3" else None


def trail_key_alias(baseline: Baseline) -> str:
    return f"alias/{baseline.name_prefix}-cloudtrail"


def trail_key(baseline: Baseline, account: str) -> Key:
    site = _home(baseline, account)
    s3_via = {"kms:CallerAccount": account, "kms:ViaService": f"s3.{site.region}.{site.dns_suffix}"}
    by_trail = {"StringEquals": {"aws:SourceArn": trail_arn(baseline, account)}}
    group_arn = site.arn("logs", f"log-group:{trail_log_group_name(baseline)}")
    statements = [
        _allow("AccountAdministersKey", {"AWS": site.root}, [
            "kms:CancelKeyDeletion", "kms:CreateAlias", "kms:Delete*", "kms:Describe*", "kms:Disable*",
            "kms:Enable*", "kms:Get*", "kms:List*", "kms:Put*", "kms:Revoke*", "kms:RotateKeyOnDemand",
            "kms:ScheduleKeyDeletion", "kms:TagResource", "kms:UntagResource", "kms:Update*"], "*"),
        _allow("CloudTrailEncryptsThisTrailsLogs", _service("cloudtrail.amazonaws.com"), "kms:GenerateDataKey*", "*",
               {"StringLike": {"kms:EncryptionContext:aws:cloudtrail:arn":
                               f"arn:{site.partition}:cloudtrail:*:{account}:trail/*"}, **by_trail}),
        _allow("CloudTrailDescribesKey", _service("cloudtrail.amazonaws.com"), "kms:DescribeKey", "*", by_trail),
        _allow("CloudTrailUsesBucketKey", _service("cloudtrail.amazonaws.com"), "kms:Decrypt", "*", by_trail),
        _allow("CloudWatchLogsEncryptsTrailLogGroup", _service(f"logs.{site.region}.{site.dns_suffix}"),
               ["kms:Decrypt*", "kms:Describe*", "kms:Encrypt*", "kms:GenerateDataKey*", "kms:ReEncrypt*"], "*",
               {"ArnEquals": {"kms:EncryptionContext:aws:logs:arn": group_arn}}),
        _allow("AccountPrincipalsReadLogsThroughS3", {"AWS": site.root}, "kms:Decrypt", "*", {"StringEquals": s3_via}),
        _allow("AccountDeliveryRolesWriteThroughS3", {"AWS": site.root}, "kms:GenerateDataKey", "*",
               {"StringEquals": s3_via}),
    ]
    if _config_prefix(baseline):
        statements.append(_allow("AWSConfigEncryptsDeliveries", _service("config.amazonaws.com"),
                                 ["kms:Decrypt", "kms:GenerateDataKey"], "*",
                                 {"StringEquals": {"aws:SourceAccount": account}}))
    if _flow_logs_prefix(baseline):
        statements.append(_allow("FlowLogsEncryptDeliveries", _service("delivery.logs.amazonaws.com"),
                                 "kms:GenerateDataKey*", "*",
                                 {"StringEquals": {"aws:SourceAccount": account},
                                  "ArnLike": {"aws:SourceArn": f"arn:{site.partition}:logs:*:{account}:*"}}))
    bucket = baseline.log_bucket_name(account)
    return Key(trail_key_alias(baseline),
               f"Encrypts the CloudTrail trail {baseline.trail_name}, its CloudWatch Logs copy and the AWS Config "
               f"/ VPC flow log objects in {bucket}",
               _policy(*statements), tags(baseline))


def log_bucket_policy(baseline: Baseline, account: str) -> dict[str, Any]:
    site = _home(baseline, account)
    bucket_arn = f"arn:{site.partition}:s3:::{baseline.log_bucket_name(account)}"
    prefix = baseline.cloudtrail.s3_key_prefix
    this_account = {"aws:SourceAccount": account}
    by_trail = {"aws:SourceArn": trail_arn(baseline, account)}
    owner_acl = {"s3:x-amz-acl": "bucket-owner-full-control"}
    trail_objects = [f"{bucket_arn}/{prefix}/AWSLogs/{account}/*"]
    if baseline.cloudtrail.organization_trail:
        trail_objects.append(f"{bucket_arn}/{prefix}/AWSLogs/{baseline.organization_id}/*")
    statements = [
        _allow("DenyInsecureTransport", "*", "s3:*", [bucket_arn, f"{bucket_arn}/*"],
               {"Bool": {"aws:SecureTransport": "false"}}, effect="Deny"),
        _allow("CloudTrailAclCheck", _service("cloudtrail.amazonaws.com"), "s3:GetBucketAcl", bucket_arn,
               {"StringEquals": by_trail}),
        _allow("CloudTrailWrite", _service("cloudtrail.amazonaws.com"), "s3:PutObject",
               trail_objects if len(trail_objects) > 1 else trail_objects[0],
               {"StringEquals": {**owner_acl, **by_trail}}),
    ]
    config_prefix = _config_prefix(baseline)
    if config_prefix:
        config = _service("config.amazonaws.com")
        statements += [
            _allow("AWSConfigBucketPermissionsCheck", config, "s3:GetBucketAcl", bucket_arn,
                   {"StringEquals": this_account}),
            _allow("AWSConfigBucketExistenceCheck", config, "s3:ListBucket", bucket_arn,
                   {"StringEquals": this_account}),
            _allow("AWSConfigBucketDelivery", config, "s3:PutObject",
                   f"{bucket_arn}/{config_prefix}/AWSLogs/{account}/Config/*",
                   {"StringEquals": {**owner_acl, **this_account}}),
        ]
    flow_prefix = _flow_logs_prefix(baseline)
    if flow_prefix:
        delivery = _service("delivery.logs.amazonaws.com")
        from_logs = {"aws:SourceArn": f"arn:{site.partition}:logs:*:{account}:*"}
        statements += [
            # ListBucket too: the cloudtrail module says why (flow-logs-s3-permissions).
            _allow("FlowLogsAclCheck", delivery, ["s3:GetBucketAcl", "s3:ListBucket"], bucket_arn,
                   {"StringEquals": this_account, "ArnLike": from_logs}),
            _allow("FlowLogsWrite", delivery, "s3:PutObject", f"{bucket_arn}/{flow_prefix}/AWSLogs/{account}/*",
                   {"StringEquals": {**owner_acl, **this_account}, "ArnLike": from_logs}),
        ]
    return _policy(*statements)


def log_bucket(baseline: Baseline, account: str) -> Bucket:
    return Bucket(baseline.log_bucket_name(account), tags(baseline), trail_key(baseline, account),
                  log_bucket_policy(baseline, account), baseline.cloudtrail.log_expiration_days)


def trail_log_group(baseline: Baseline, account: str) -> LogGroup:
    return LogGroup(trail_log_group_name(baseline), baseline.cloudtrail.log_retention_days, tags(baseline),
                    trail_key(baseline, account))


def trail_role(baseline: Baseline, account: str) -> Role:
    site = _home(baseline, account)
    group_arn = site.arn("logs", f"log-group:{trail_log_group_name(baseline)}")
    # No aws:SourceArn/SourceAccount: CloudTrail does not send them when it assumes the delivery
    # role, and CreateTrail fails with them (the cloudtrail module's comment cites the guide).
    trust = _policy({"Sid": "CloudTrailAssumesToDeliverLogs", "Effect": "Allow",
                     "Principal": _service("cloudtrail.amazonaws.com"), "Action": "sts:AssumeRole"})
    return Role(f"{baseline.name_prefix}-cloudtrail-{site.region}",
                f"CloudTrail delivers the trail {baseline.trail_name} to the log group {trail_log_group_name(baseline)}",
                trust, tags(baseline),
                inline={"deliver-to-log-group": _policy(_identity("DeliverToTrailLogGroup",
                        ["logs:CreateLogStream", "logs:PutLogEvents"], f"{group_arn}:log-stream:*"))})


def trail(baseline: Baseline, account: str) -> Trail:
    return Trail(baseline.trail_name, log_bucket(baseline, account), baseline.cloudtrail.s3_key_prefix,
                 trail_log_group(baseline, account), trail_role(baseline, account),
                 baseline.cloudtrail.organization_trail)


def _identity(sid: str | None, actions: list[str] | str, resources: list[str] | str,
              condition: dict[str, Any] | None = None) -> dict[str, Any]:
    """A statement of an identity (role) policy: no Principal."""
    statement = _allow(sid, "", actions, resources, condition)
    del statement["Principal"]
    return statement


# -- flow_logs: key, log group, delivery role, one flow log per VPC --------------------------------
# templates/modules/flow_logs/main.tf.j2, once per region.

def flow_log_group_name(baseline: Baseline) -> str:
    # Log groups are regional: the name is unique per region without the region in it.
    return f"/aws/vpc-flow-logs/{baseline.name_prefix}"


def flow_log_key(baseline: Baseline, site: Site) -> Key:
    group_arn = site.arn("logs", f"log-group:{flow_log_group_name(baseline)}")
    policy = _policy(
        _allow("AccountRootAdministers", {"AWS": site.root}, "kms:*", "*"),
        _allow("CloudWatchLogsUseForThisLogGroupOnly", _service(f"logs.{site.region}.{site.dns_suffix}"),
               ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"], "*",
               {"ArnEquals": {"kms:EncryptionContext:aws:logs:arn": group_arn}}))
    return Key(f"alias/{baseline.name_prefix}-flow-logs",
               f"Encrypts the VPC flow log group {flow_log_group_name(baseline)} ({baseline.name_prefix}, {site.region})",
               policy, tags(baseline, f"{baseline.name_prefix}-flow-logs-{site.region}"))


def flow_log_group(baseline: Baseline, site: Site) -> LogGroup:
    name = flow_log_group_name(baseline)
    return LogGroup(name, baseline.flow_logs.log_retention_days, tags(baseline, name), flow_log_key(baseline, site))


def flow_log_role(baseline: Baseline, site: Site) -> Role:
    name = f"{baseline.name_prefix}-flow-logs-{site.region}"
    group_arn = site.arn("logs", f"log-group:{flow_log_group_name(baseline)}")
    trust = _policy({"Sid": "VpcFlowLogsOfThisAccountAndRegion", "Effect": "Allow",
                     "Principal": _service("vpc-flow-logs.amazonaws.com"), "Action": "sts:AssumeRole",
                     "Condition": {"StringEquals": {"aws:SourceAccount": site.account},
                                   "ArnLike": {"aws:SourceArn": site.arn("ec2", "vpc-flow-log/*")}}})
    delivery = _policy(_identity("WriteThisLogGroupOnly",
                                 ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                                 [group_arn, f"{group_arn}:*"]),
                       # The service lists log groups before it delivers (the module cites the guide).
                       _identity("ListLogGroupsOfThisRegion", "logs:DescribeLogGroups",
                                 site.arn("logs", "log-group:*")))
    return Role(name, f"Lets VPC Flow Logs in {site.region} write to {flow_log_group_name(baseline)}", trust,
                tags(baseline, name), inline={"flow-logs-delivery": delivery})


def flow_log(baseline: Baseline, site: Site, vpc_id: str) -> FlowLog:
    settings = baseline.flow_logs
    to_cloudwatch = settings.destination == "cloud-watch-logs"
    # AWS expects bucket_ARN/folder/ for a folder (the module's local.s3_destination).
    s3 = None if to_cloudwatch else \
        f"arn:{site.partition}:s3:::{baseline.log_bucket_name(site.account)}/{settings.s3_key_prefix}/"
    return FlowLog(vpc_id, settings.traffic_type, settings.max_aggregation_interval,
                   tags(baseline, f"{baseline.name_prefix}-flow-logs-{vpc_id}"), settings.destination,
                   flow_log_group(baseline, site) if to_cloudwatch else None,
                   flow_log_role(baseline, site) if to_cloudwatch else None, s3,
                   None if to_cloudwatch else dict(S3_FLOW_LOG_OPTIONS))


# -- config: the recorder role (account root module), recorder and channel per region --------------

CONFIG_RECORDER_NAME = "default"   # the config module's local.recorder_name (the console's name too)
CONFIG_CHANNEL_NAME = "default"
CONFIG_MANAGED_POLICY = "service-role/AWS_ConfigRole"


def config_role(baseline: Baseline, account: str, key_arn: str) -> Role:
    """templates/account/iam.tf.j2: one role for the recorders of every region (IAM is global).
    `key_arn`: the cloudtrail key the deliveries are encrypted with."""
    site = _home(baseline, account)
    bucket_arn = f"arn:{site.partition}:s3:::{baseline.log_bucket_name(account)}"
    trust = _policy({"Effect": "Allow", "Principal": _service("config.amazonaws.com"), "Action": "sts:AssumeRole",
                     "Condition": {"StringEquals": {"aws:SourceAccount": account}}})
    delivery = _policy(
        _identity("ReadBucketAclAndLocation", ["s3:GetBucketAcl", "s3:GetBucketLocation", "s3:ListBucket"],
                  bucket_arn),
        _identity("DeliverSnapshotsAndHistory", "s3:PutObject",
                  f"{bucket_arn}/{baseline.config.s3_key_prefix}/AWSLogs/{account}/Config/*",
                  {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control"}}),
        _identity("EncryptDeliveries", ["kms:GenerateDataKey", "kms:Decrypt"], key_arn))
    return Role(f"{baseline.name_prefix}-config-recorder",
                "AWS Config recorders and delivery channels of the harden baseline", trust, tags(baseline),
                inline={"deliver-to-log-bucket": delivery},
                managed=(f"arn:{site.partition}:iam::aws:policy/{CONFIG_MANAGED_POLICY}",))


def config_recorder(baseline: Baseline, site: Site) -> Recorder:
    # Global resource types (IAM) once, in the home region; continuous, so an address allocated
    # and released within a day still leaves a configuration item.
    return Recorder(CONFIG_RECORDER_NAME, True, site.region == baseline.home_region, "CONTINUOUS")


def config_channel(baseline: Baseline, account: str) -> Channel:
    return Channel(CONFIG_CHANNEL_NAME, baseline.log_bucket_name(account), baseline.config.s3_key_prefix,
                   baseline.config.delivery_frequency)


# -- the regional keys of the ebs_encryption and alarms modules (their policies: controls/ebs.py,
# controls/alarms.py) ------------------------------------------------------------------------------

def ebs_key_alias(baseline: Baseline) -> str:
    return f"alias/{baseline.name_prefix}-ebs"


def topic_key_alias(baseline: Baseline) -> str:
    return f"alias/{baseline.topic_name}"


# -- network ----------------------------------------------------------------------------------------

def default_security_group(baseline: Baseline, vpc_id: str) -> DefaultSecurityGroup:
    return DefaultSecurityGroup(vpc_id, tags(baseline, f"{baseline.name_prefix}-default-closed"))


# -- alarms: the route of the other regions' alarm state changes to the home topic -----------------
# templates/account/iam.tf.j2 (the forwarding role, global) and templates/modules/alarms (the
# rules and their targets, per region).

EVENT_FORWARDING_POLICY = "put-events-on-home-bus"   # aws_iam_role_policy.event_forwarding
ALARM_ROUTE_TOPIC_TARGET = "security-alarms-topic"    # aws_cloudwatch_event_target.alarm_state_changes (home)
ALARM_ROUTE_BUS_TARGET = "home-region-event-bus"      # aws_cloudwatch_event_target.to_home_bus (elsewhere)


def event_forwarding_role(baseline: Baseline, account: str) -> Role:
    """The role EventBridge assumes to put this baseline's rules' events on the home bus."""
    site = _home(baseline, account)
    rules = [f"arn:{site.partition}:events:*:{account}:rule/{name}"
             for name in (address_rule_name(baseline), alarm_state_rule_name(baseline))]
    trust = _policy({"Effect": "Allow", "Principal": _service("events.amazonaws.com"), "Action": "sts:AssumeRole",
                     "Condition": {"StringEquals": {"aws:SourceAccount": account},
                                   "ArnLike": {"aws:SourceArn": rules}}})
    allow = _policy(_identity("PutEventsOnTheHomeBusOnly", "events:PutEvents", site.arn("events", "event-bus/default")))
    return Role(f"{baseline.name_prefix}-events-to-home-region",
                f"EventBridge sends harden's Elastic IP events and alarm state changes to the default event bus of "
                f"{site.region}", trust, tags(baseline), inline={EVENT_FORWARDING_POLICY: allow})
