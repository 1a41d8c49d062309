"""Apply adopts what remediate made: find the resources that carry harden's names (and, where a name
is not enough, harden's Name tag) in the live account but not in Terraform's state, and write
Terraform `import` blocks for them, so `harden plan`/`apply` import them instead of failing with
"already exists".

Import blocks need Terraform >= 1.5 (https://developer.hashicorp.com/terraform/language/import);
harden writes one block per resource instance with a literal address, so the `for_each` in import
blocks that Terraform 1.7 added is not needed. The addresses are the account and organization
roots' (module keys are the regions of `for_each = local.regions`). Regional resources are
imported with `@<region>` appended to the import ID, the AWS provider v6's way to import into a
resource's own region (https://registry.terraform.io/providers/hashicorp/aws/latest/docs/guides/enhanced-region-support#how-region-works).
Import IDs are the provider documentation's for each resource type (the "Import" section of
https://registry.terraform.io/providers/hashicorp/aws/latest/docs/resources/<type without aws_>).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import botocore.exceptions

from provisioner import converge, resources
from provisioner.aws import AwsSession, error_code, paginate, partition_for
from provisioner.baseline import Baseline
from provisioner.policies import (PolicyError, alarm_state_rule_name, allocate_address_policy_name,
                                 baseline_protection_policy_name, harden_scps)
from provisioner.render import hcl_string

IMPORTS_FILE = "harden_imports.tf"


@dataclass(frozen=True)
class Adoption:
    root: str          # "account" or "organization"
    address: str       # the resource instance address in that root
    id: str            # the import ID
    what: str          # for people: what was found

    def block(self) -> str:
        # The address is built from identifiers, region names and resource ids harden reads
        # (validated below); the ID is data: a quoted, escaped HCL string.
        return f"import {{\n  to = {self.address}\n  id = {hcl_string(self.id)}\n}}\n"


def _key(value: str) -> str:
    """A for_each key in an address: an HCL string."""
    return f"[{hcl_string(value)}]"


def _regional(root_module: str, region: str) -> str:
    return f"module.{root_module}{_key(region)}"


class _Finder:
    def __init__(self, aws: AwsSession, baseline: Baseline, account: str):
        self.aws, self.b, self.account = aws, baseline, account
        self.found: list[Adoption] = []

    def add(self, address: str, import_id: str, what: str, root: str = "account") -> None:
        self.found.append(Adoption(root, address, import_id, what))

    # -- shared shapes ---------------------------------------------------------------------
    def key(self, module: str, region: str, key: resources.Key, name: str = "this", index: str = "[0]") -> None:
        meta = converge.key_by_alias(self.aws.client("kms", region), key.alias)
        if meta is None:
            return
        self.add(f"{module}.aws_kms_key.{name}{index}", f"{meta['KeyId']}@{region}", f"KMS key {key.alias}")
        self.add(f"{module}.aws_kms_alias.{name}{index}", f"{key.alias}@{region}", f"KMS alias {key.alias}")

    def log_group(self, module: str, region: str, name: str, resource: str) -> bool:
        if converge.find_log_group(self.aws.client("logs", region), name) is None:
            return False
        self.add(f"{module}.aws_cloudwatch_log_group.{resource}", f"{name}@{region}", f"log group {name}")
        return True

    def role(self, prefix: str, role: resources.Role, resource: str, policies: dict[str, str],
             attachments: dict[str, str] | None = None) -> None:
        iam = self.aws.client("iam")
        if converge.role_arn(iam, role.name) is None:
            return
        self.add(f"{prefix}aws_iam_role.{resource}", role.name, f"IAM role {role.name}")
        inline = set(paginate(iam, "list_role_policies", "PolicyNames", RoleName=role.name))
        for policy_name, address in policies.items():
            if policy_name in inline:
                self.add(f"{prefix}aws_iam_role_policy.{address}", f"{role.name}:{policy_name}",
                         f"inline policy {policy_name} of {role.name}")
        attached = {p["PolicyArn"] for p in paginate(iam, "list_attached_role_policies", "AttachedPolicies",
                                                         RoleName=role.name)}
        for arn, address in (attachments or {}).items():
            if arn in attached:
                self.add(f"{prefix}aws_iam_role_policy_attachment.{address}", f"{role.name}/{arn}",
                         f"{arn} attached to {role.name}")

    # -- families --------------------------------------------------------------------------
    def cloudtrail(self) -> None:
        home, m = self.b.home_region, "module.cloudtrail"
        desired = resources.trail(self.b, self.account)
        self.key(m, home, desired.bucket.key, index="")
        s3 = self.aws.client("s3", home)
        if converge.bucket_exists(s3, desired.bucket.name):
            bucket_id = f"{desired.bucket.name}@{home}"
            self.add(f"{m}.aws_s3_bucket.this", bucket_id, f"log bucket {desired.bucket.name}")
            for rtype, read in (("aws_s3_bucket_public_access_block", s3.get_public_access_block),
                                ("aws_s3_bucket_ownership_controls", s3.get_bucket_ownership_controls),
                                ("aws_s3_bucket_versioning", s3.get_bucket_versioning),
                                ("aws_s3_bucket_server_side_encryption_configuration", s3.get_bucket_encryption),
                                ("aws_s3_bucket_lifecycle_configuration", s3.get_bucket_lifecycle_configuration),
                                ("aws_s3_bucket_policy", s3.get_bucket_policy)):
                if _configured(read, desired.bucket.name, rtype):
                    self.add(f"{m}.{rtype}.this", bucket_id, f"{rtype[len('aws_s3_bucket_'):]} of the log bucket")
        self.log_group(m, home, desired.log_group.name, "this")
        self.role(f"{m}.", desired.role, "cloudwatch_logs", {"deliver-to-log-group": "cloudwatch_logs"})
        client = self.aws.client("cloudtrail", home)
        arn = resources.trail_arn(self.b, self.account)
        try:
            client.get_trail(Name=desired.name)
        except botocore.exceptions.ClientError as exc:
            if error_code(exc) != "TrailNotFoundException":
                raise
            return
        self.add(f"{m}.aws_cloudtrail.this", f"{arn}@{home}", f"trail {desired.name}")

    def flow_logs(self, region: str) -> None:
        if not self.b.flow_logs.enabled:
            return
        m, site = _regional("flow_logs", region), resources.Site(self.account, region)
        if self.b.flow_logs.destination == "cloud-watch-logs":
            self.key(m, region, resources.flow_log_key(self.b, site))
            self.log_group(m, region, resources.flow_log_group_name(self.b), "this[0]")
            self.role(f"{m}.", resources.flow_log_role(self.b, site), "this[0]", {"flow-logs-delivery": "delivery[0]"})
        ec2 = self.aws.client("ec2", region)
        for fl in paginate(ec2, "describe_flow_logs", "FlowLogs"):
            vpc = fl.get("ResourceId", "")
            wanted = resources.flow_log(self.b, site, vpc).tags.get("Name")
            if {t["Key"]: t["Value"] for t in fl.get("Tags", [])}.get("Name") == wanted:
                self.add(f"{m}.aws_flow_log.this{_key(vpc)}", f"{fl['FlowLogId']}@{region}", f"flow log of {vpc}")

    def config(self, region: str) -> None:
        if not self.b.config.enabled:
            return
        m, client = _regional("config", region), self.aws.client("config", region)
        recorders = {r["name"] for r in client.describe_configuration_recorders()["ConfigurationRecorders"]}
        if resources.CONFIG_RECORDER_NAME in recorders:
            name = resources.CONFIG_RECORDER_NAME
            self.add(f"{m}.aws_config_configuration_recorder.this", f"{name}@{region}", f"recorder {name}")
            self.add(f"{m}.aws_config_configuration_recorder_status.this", f"{name}@{region}",
                     f"recorder status {name}")
        channels = {c["name"] for c in client.describe_delivery_channels()["DeliveryChannels"]}
        if resources.CONFIG_CHANNEL_NAME in channels:
            self.add(f"{m}.aws_config_delivery_channel.this", f"{resources.CONFIG_CHANNEL_NAME}@{region}",
                     f"delivery channel {resources.CONFIG_CHANNEL_NAME}")

    def config_role(self) -> None:
        if not self.b.config.enabled:
            return
        role = resources.config_role(self.b, self.account, key_arn="")
        self.role("", role, "config", {"deliver-to-log-bucket": "config_delivery"},
                  {arn: "config" for arn in role.managed})

    def ebs(self, region: str) -> None:
        if not self.b.ebs.enabled:
            return
        m, ec2 = _regional("ebs_encryption", region), self.aws.client("ec2", region)
        if region not in self.b.ebs.kms_key_arns:
            self.key(m, region, resources.Key(resources.ebs_key_alias(self.b), "", {}, {}))
        if ec2.get_ebs_encryption_by_default()["EbsEncryptionByDefault"]:
            self.add(f"{m}.aws_ebs_encryption_by_default.this", f"default@{region}", "EBS encryption by default")
        wanted = self.b.ebs.kms_key_arns.get(region) or _arn_of(self.aws, region, resources.ebs_key_alias(self.b))
        if wanted and ec2.get_ebs_default_kms_key_id().get("KmsKeyId") == wanted:
            self.add(f"{m}.aws_ebs_default_kms_key.this", f"{wanted}@{region}", "default EBS key")

    def alarms(self, region: str) -> None:
        if not self.b.alarms.enabled:
            return
        m, topic = _regional("alarms", region), self.b.topic_name
        if region == self.b.home_region:  # the one topic and its key live in the home region
            self.key(m, region, resources.Key(resources.topic_key_alias(self.b), "", {}, {}), name="topic")
            arn = f"arn:{partition_for(region)}:sns:{region}:{self.account}:{topic}"
            try:
                attrs = self.aws.client("sns", region).get_topic_attributes(TopicArn=arn)["Attributes"]
            except botocore.exceptions.ClientError as exc:
                if error_code(exc) != "NotFound":
                    raise
                attrs = None
            if attrs is not None:
                self.add(f"{m}.aws_sns_topic.alarms[0]", f"{arn}@{region}", f"topic {topic}")
                if attrs.get("Policy"):
                    self.add(f"{m}.aws_sns_topic_policy.alarms[0]", f"{arn}@{region}", f"policy of topic {topic}")
        cw = self.aws.client("cloudwatch", region)
        prefix = f"{self.b.name_prefix}-cpu-"
        listed = set(self.b.alarms.cpu_instance_ids.get(region, []))
        for alarm in paginate(cw, "describe_alarms", "MetricAlarms", AlarmNamePrefix=prefix):
            suffix = alarm["AlarmName"][len(prefix):]
            if suffix == "fleet":
                self.add(f"{m}.aws_cloudwatch_metric_alarm.cpu_fleet[0]", f"{alarm['AlarmName']}@{region}",
                         "the CPU fleet alarm")
            elif suffix in listed:  # the module's own alarms: alarms.cpu_instance_ids of the region
                self.add(f"{m}.aws_cloudwatch_metric_alarm.cpu{_key(suffix)}", f"{alarm['AlarmName']}@{region}",
                         f"CPU alarm of {suffix}")

    def event_forwarding_role(self) -> None:
        if not self.b.alarms.enabled:
            return
        role = resources.event_forwarding_role(self.b, self.account)
        self.role("", role, "event_forwarding", {resources.EVENT_FORWARDING_POLICY: "event_forwarding"})

    def alarm_route(self, region: str) -> None:
        """The alarm state route the alarms.cpu fix creates: the region's rule and its target (the
        topic in the home region, the home bus elsewhere). Import IDs: the rule's name, and
        rule/target-id for a target on the default bus:
        https://registry.terraform.io/providers/hashicorp/aws/latest/docs/resources/cloudwatch_event_target#import"""
        if not self.b.alarms.enabled:
            return
        m, events, rule = _regional("alarms", region), self.aws.client("events", region), alarm_state_rule_name(self.b)
        try:
            events.describe_rule(Name=rule)
        except botocore.exceptions.ClientError as exc:
            if error_code(exc) != "ResourceNotFoundException":
                raise
            return
        self.add(f"{m}.aws_cloudwatch_event_rule.alarm_state_changes", f"{rule}@{region}", f"EventBridge rule {rule}")
        targets = {t["Id"] for t in paginate(events, "list_targets_by_rule", "Targets", Rule=rule)}
        home = region == self.b.home_region
        target = resources.ALARM_ROUTE_TOPIC_TARGET if home else resources.ALARM_ROUTE_BUS_TARGET
        if target in targets:
            address = "alarm_state_changes[0]" if home else f"to_home_bus{_key('alarm_state_changes')}"
            self.add(f"{m}.aws_cloudwatch_event_target.{address}", f"{rule}/{target}@{region}",
                     f"target {target} of {rule}")

    def scp(self) -> None:
        if not self.b.scp.enabled:
            return
        org = self.aws.client("organizations")
        try:
            policies = {p["Name"]: p["Id"] for p in paginate(org, "list_policies", "Policies",
                                                                 Filter="SERVICE_CONTROL_POLICY")}
        except botocore.exceptions.ClientError as exc:
            if error_code(exc) in ("AWSOrganizationsNotInUseException", "AccessDeniedException"):
                return  # not the management account: the organization root is not this caller's
            raise
        wanted = [(allocate_address_policy_name(self.b), "allocate_address", "")]
        if self.b.scp.protect_baseline:
            wanted.append((baseline_protection_policy_name(self.b), "baseline_protection", "[0]"))
        try:  # what did not fit AWS's size limit continues in overflow policies (<name>-2, ...)
            firsts = {name for name, _, _ in wanted}
            overflow = [p.name for p in harden_scps(self.b) if p.name not in firsts]
        except PolicyError:
            overflow = []  # render refuses such a baseline with its own message: nothing to adopt into
        # templates/modules/scp/main.tf.j2: overflow policies keyed by name, their attachments "name/target".
        wanted += [(name, "overflow", _key(name)) for name in overflow]
        for name, resource, index in wanted:
            if name not in policies:
                continue
            pid = policies[name]
            self.add(f"module.scp.aws_organizations_policy.{resource}{index}", pid, f"SCP {name}", "organization")
            targets = {t["TargetId"] for t in paginate(org, "list_targets_for_policy", "Targets", PolicyId=pid)}
            for target in sorted(targets & set(self.b.scp.targets)):
                key = _key(f"{name}/{target}") if resource == "overflow" else _key(target)
                self.add(f"module.scp.aws_organizations_policy_attachment.{resource}{key}",
                         f"{target}:{pid}", f"SCP {name} attached to {target}", "organization")


def _configured(read: Any, bucket: str, what: str) -> bool:
    try:
        read(Bucket=bucket)
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) in ("NoSuchPublicAccessBlockConfiguration", "OwnershipControlsNotFoundError",
                               "ServerSideEncryptionConfigurationNotFoundError", "NoSuchLifecycleConfiguration",
                               "NoSuchBucketPolicy"):
            return False
        raise
    return True


def _arn_of(aws: AwsSession, region: str, alias: str) -> str | None:
    meta = converge.key_by_alias(aws.client("kms", region), alias)
    return meta["Arn"] if meta else None


def discover(aws: AwsSession, baseline: Baseline, account: str, regions: Iterable[str]) -> list[Adoption]:
    """Every harden resource the live account has, with its address in the roots."""
    finder = _Finder(aws, baseline, account)
    finder.cloudtrail()
    finder.config_role()
    finder.event_forwarding_role()
    for region in regions:
        finder.flow_logs(region)
        finder.config(region)
        finder.ebs(region)
        finder.alarms(region)
        finder.alarm_route(region)
    finder.scp()
    return finder.found


def render_imports(adoptions: list[Adoption]) -> str:
    header = ("# Generated by harden: resources that exist in the account (made by `harden remediate` or by\n"
              "# hand) but not in this root's Terraform state. Terraform imports them on the next apply.\n"
              "# Regenerated at every `harden plan`; delete it to create everything anew instead.\n")
    return header + "".join("\n" + a.block() for a in adoptions)


def adopt(tf: Any, aws: AwsSession, baseline: Baseline, root_dir: Path) -> list[Adoption]:
    """Before a plan of `root_dir` (initialised): write the import blocks for what the account has
    and this root's state does not."""
    account = baseline.account_id or aws.account_id()
    regions = aws.resolve_regions(baseline.explicit_regions)
    return write_imports(root_dir, discover(aws, baseline, account, regions), tf.state_addresses())


def write_imports(root_dir: Path, adoptions: list[Adoption], in_state: set[str]) -> list[Adoption]:
    """Write the root's import file with the adoptions not yet in state (or remove it when there
    are none); returns what it wrote."""
    todo = [a for a in adoptions if a.root == root_dir.name and a.address not in in_state]
    path = root_dir / IMPORTS_FILE
    if todo:
        path.write_text(render_imports(todo), encoding="utf-8")
    else:
        path.unlink(missing_ok=True)
    return todo
