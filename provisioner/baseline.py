"""harden.toml -> Baseline: the one desired state that render, verify and remediate share.

An empty file is a valid, secure baseline. Every value that can reach HCL, an IAM policy or an
AWS API is validated here first; what cannot be validated by shape (tag values, alarm endpoints)
is escaped by the renderer.
"""

from __future__ import annotations

import re
import sys
from datetime import date
from pathlib import Path
from typing import Annotated, Literal, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

from provisioner import naming


# ---------------------------------------------------------------------------------------------
# Value shapes. Each pattern is also the one-line explanation users see on bad input.

REGION_RE = r"^(af|ap|ca|cn|eu|il|me|mx|sa|us)(-gov|-iso[a-z]?)?-(central|north|south|east|west|northeast|northwest|southeast|southwest)-[1-9]$"
ACCOUNT_RE = r"^[0-9]{12}$"
ORG_ID_RE = r"^o-[a-z0-9]{10,32}$"
# IAM names allow [\w+=,.@-]; paths add '/'; '*' and '?' are ArnLike wildcards. The account is 12
# digits or '*' (every account the SCP reaches). Only what aws:PrincipalArn can hold: for a role
# session it is the role's ARN, never the assumed-role session ARN
# (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html#condition-keys-principalarn),
# so an assumed-role/... entry would exempt nobody (principal_entry_problem says what to write).
PRINCIPAL_ARN_RE = r"^arn:aws(-cn|-us-gov)?:iam::([0-9]{12}|\*):(root|(user|role)/[A-Za-z0-9+=,.@_/*?-]{1,512})$"
SCP_TARGET_RE = r"^(r-[0-9a-z]{4,32}|ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}|[0-9]{12})$"
VPC_ID_RE = r"^vpc-[0-9a-f]{8,17}$"
INSTANCE_ID_RE = r"^i-([0-9a-f]{8}|[0-9a-f]{17})$"
KMS_KEY_ARN_RE = r"^arn:aws(-cn|-us-gov)?:kms:[a-z0-9-]+:[0-9]{12}:key/[a-zA-Z0-9-]{1,64}$"
NAME_PREFIX_RE = r"^[a-z0-9][a-z0-9-]{0,19}$"
# CloudTrail: 3-128 chars, letters, digits, '.', '_', '-', starting and ending alphanumeric.
TRAIL_NAME_RE = r"^[A-Za-z0-9][A-Za-z0-9._-]{1,126}[A-Za-z0-9]$"
BUCKET_RE = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
# S3's safe characters but '*': a prefix becomes part of the bucket policy's and the delivery
# roles' resource ARNs, where '*' is a wildcard that would widen them beyond the prefix.
KEY_PREFIX_RE = r"^[A-Za-z0-9!_.'()-]+(/[A-Za-z0-9!_.'()-]+)*$"
SNS_NAME_RE = r"^[A-Za-z0-9_-]{1,256}$"
CONFIG_RULE_RE = r"^[A-Z0-9_]{3,128}$"
TAG_KEY_RE = r"^[\w .:/=+@-]{1,128}$"
PRINTABLE_RE = r"^[^\x00-\x1f\x7f]*$"
# An AMI owner: a 12-digit account id or one of the owner aliases EC2's Allowed AMIs accept.
AMI_OWNER_RE = r"^([0-9]{12}|amazon|aws-marketplace|aws-backup-vault)$"
# A glob (fnmatch: *, ?, [..]) over a region or a resource id/ARN; printable, no newlines.
GLOB_RE = r"^[^\x00-\x1f\x7f]{1,2048}$"

_EXPLAIN = {
    GLOB_RE: "a pattern such as '*', 'eu-*' or 'eipalloc-0abc*' (printable characters)",
    REGION_RE: "an AWS region name such as 'eu-west-1'",
    ACCOUNT_RE: "a 12-digit AWS account id",
    ORG_ID_RE: "an organization id such as 'o-a1b2c3d4e5'",
    PRINCIPAL_ARN_RE: "an IAM user or role ARN such as 'arn:aws:iam::123456789012:role/NetworkAdmin' "
    "(wildcards * and ? in the name; '*' for the account covers every account)",
    SCP_TARGET_RE: "an organization root (r-...), an OU (ou-...-...) or a 12-digit account id",
    VPC_ID_RE: "a VPC id such as 'vpc-0a1b2c3d'",
    INSTANCE_ID_RE: "an instance id such as 'i-0123456789abcdef0'",
    KMS_KEY_ARN_RE: "a KMS key ARN such as 'arn:aws:kms:eu-west-1:123456789012:key/<id>'",
    NAME_PREFIX_RE: "1-20 lowercase letters, digits or '-', starting with a letter or digit",
    TRAIL_NAME_RE: "3-128 letters, digits, '.', '_' or '-', starting and ending with a letter or digit",
    BUCKET_RE: "an S3 bucket name: 3-63 lowercase letters, digits, '.' or '-'",
    KEY_PREFIX_RE: "an S3 key prefix of letters, digits and !_.'()- separated by '/'",
    SNS_NAME_RE: "1-256 letters, digits, '_' or '-'",
    CONFIG_RULE_RE: "an AWS Config managed rule identifier such as 'CLOUD_TRAIL_ENABLED'",
    PRINTABLE_RE: "text without control characters or line breaks",
    TAG_KEY_RE: "a tag key of 1-128 letters, digits, spaces or _.:/=+@-",
    AMI_OWNER_RE: "a 12-digit AWS account id, 'amazon', 'aws-marketplace' or 'aws-backup-vault'",
}


def _shaped(pattern: str) -> type[str]:
    return Annotated[str, StringConstraints(pattern=pattern)]  # type: ignore[return-value]


def _rule(problem):
    """A pydantic after-validator from a provisioner.naming rule (a function returning why not)."""
    def check(value):
        if value is not None and (why := problem(value)):
            raise ValueError(why)
        return value

    return AfterValidator(check)


Region = Annotated[_shaped(REGION_RE), _rule(naming.region_problem)]
AccountId = _shaped(ACCOUNT_RE)
OrgId = _shaped(ORG_ID_RE)
PrincipalArn = _shaped(PRINCIPAL_ARN_RE)
ScpTarget = _shaped(SCP_TARGET_RE)
VpcId = _shaped(VPC_ID_RE)
KmsKeyArn = _shaped(KMS_KEY_ARN_RE)
TagKey = _shaped(TAG_KEY_RE)
# Tag values are free text for most services: anything printable, escaped when rendered.
TagValue = Annotated[str, StringConstraints(max_length=256, pattern=PRINTABLE_RE)]

# CloudWatch Logs accepts only these retention periods.
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096,
                      1827, 2192, 2557, 2922, 3288, 3653)

DEFAULT_CONFIG_RULES = (
    "CLOUD_TRAIL_ENABLED",
    "MULTI_REGION_CLOUD_TRAIL_ENABLED",
    "CLOUD_TRAIL_LOG_FILE_VALIDATION_ENABLED",
    "CLOUD_TRAIL_ENCRYPTION_ENABLED",
    "VPC_FLOW_LOGS_ENABLED",
    "EC2_EBS_ENCRYPTION_BY_DEFAULT",
    "ENCRYPTED_VOLUMES",
    "EIP_ATTACHED",
    # network.*: SSH open to the world, the default security group, and the common ports
    # (RESTRICTED_INCOMING_TRAFFIC takes network.admin_ports as its blockedPort parameters).
    "INCOMING_SSH_DISABLED",
    "VPC_DEFAULT_SECURITY_GROUP_CLOSED",
    "RESTRICTED_INCOMING_TRAFFIC",
)


BucketName = Annotated[_shaped(BUCKET_RE), _rule(naming.bucket_name_problem)]
KeyPrefix = Annotated[_shaped(KEY_PREFIX_RE), _rule(naming.key_prefix_problem)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)


def _retention(value: int) -> int:
    if value not in LOG_RETENTION_DAYS:
        raise ValueError(f"must be one of CloudWatch Logs' retention periods {list(LOG_RETENTION_DAYS)}")
    return value


class CloudTrailSettings(_Section):
    # No `enabled`: the trail, its key and its bucket are the foundation every other control
    # delivers into; a baseline without them is not a baseline.
    trail_name: Annotated[_shaped(TRAIL_NAME_RE), _rule(naming.trail_name_problem)] | None = Field(
        None, description="default: <name_prefix>-trail")
    bucket_name: BucketName | None = Field(
        None, description="default: <name_prefix>-logs-<account id>-<home region>")
    s3_key_prefix: KeyPrefix = "cloudtrail"
    log_retention_days: int = 365
    log_expiration_days: int = Field(2555, ge=1, le=36500)
    organization_trail: bool = False

    _check_retention = field_validator("log_retention_days")(_retention)


class KmsSettings(_Section):
    deletion_window_days: int = Field(30, ge=7, le=30)


class FlowLogSettings(_Section):
    enabled: bool = True
    destination: Literal["cloud-watch-logs", "s3"] = "cloud-watch-logs"
    traffic_type: Literal["ALL", "ACCEPT", "REJECT"] = "ALL"
    # Per region; a region left out gets flow logs on every VPC it has.
    vpc_ids: dict[Region, list[VpcId]] = Field(default_factory=dict)
    log_retention_days: int = 365
    max_aggregation_interval: Literal[60, 600] = 600
    s3_key_prefix: KeyPrefix = "flow-logs"

    _check_retention = field_validator("log_retention_days")(_retention)


class ConfigSettings(_Section):
    enabled: bool = True
    delivery_frequency: Literal["One_Hour", "Three_Hours", "Six_Hours", "Twelve_Hours",
                                "TwentyFour_Hours"] = "TwentyFour_Hours"
    rules: list[_shaped(CONFIG_RULE_RE)] = Field(default_factory=lambda: list(DEFAULT_CONFIG_RULES))
    s3_key_prefix: KeyPrefix = "config"


def principal_entry_problem(entry: str) -> str | None:
    """Why an allow-list entry can never match aws:PrincipalArn, and what to write instead; None
    when it can. The one-line explanation bad input deserves, beyond the shape's."""
    session = re.match(r"^arn:(aws[a-z-]*):sts::([0-9]{12}|\*):assumed-role/([^/]+)(/.*)?$", entry)
    if session:
        return (f"{entry!r} is an assumed-role session ARN, which aws:PrincipalArn never holds (it carries the "
                f"role's ARN): write 'arn:{session[1]}:iam::{session[2]}:role/{session[3]}' (with the role's path, "
                "if it has one)")
    if re.match(r"^arn:[^:]*:iam::[^:]*:role/aws-service-role/", entry):
        return f"{entry!r} is a service-linked role, which SCPs never restrict: leave it out"
    if re.match(r"^arn:[^:]*:iam::[^:]*:group/", entry):
        return (f"{entry!r} is an IAM group, which is never a request's principal: list its users, or the role "
                "they assume")
    if re.match(r"^arn:[^:]*:iam::[0-9?*]*[*?][0-9?*]*:", entry) and not re.match(r"^arn:[^:]*:iam::\*:", entry):
        return f"{entry!r}: a partial wildcard in the account id matches unknown accounts: write 12 digits or '*'"
    everyone = re.match(r"^arn:[^:]*:iam::[^:]*:(\*.*|(role|user)/\**)$", entry)
    if everyone:
        return (f"{entry!r} matches every role or user of the account, so the guardrail would restrict nobody "
                "there: name the roles (a path such as role/network/* is fine)")
    return None


def _principal_entries(values):
    # Before the shape check, so that a session ARN gets this explanation rather than the regex's;
    # anything that is not a list of strings is left to the type check.
    for value in values if isinstance(values, list) else []:
        problem = principal_entry_problem(value) if isinstance(value, str) else None
        if problem:
            raise ValueError(problem)
    return values


class AllocateAddressSettings(_Section):
    """Who may allocate Elastic IPs, and where: read by the SCP and by the eip.allocations check."""

    allowed_principals: list[PrincipalArn] = Field(default_factory=list)
    allowed_regions: list[Region] = Field(default_factory=list)
    # Deny AssociateAddress/DisassociateAddress outside the allow-list too (moving an address moves
    # its traffic). Off only for deploy tooling that re-associates addresses itself.
    deny_association: bool = True

    _check_principals = field_validator("allowed_principals", mode="before")(_principal_entries)


class ScpSettings(_Section):
    enabled: bool = True
    targets: list[ScpTarget] = Field(default_factory=list)
    protect_baseline: bool = True
    # Exempt from baseline protection: the pipeline role that applies harden, break-glass roles.
    admin_principals: list[PrincipalArn] = Field(default_factory=list)

    _check_principals = field_validator("admin_principals", mode="before")(_principal_entries)

    @model_validator(mode="after")
    def _someone_can_apply(self) -> "ScpSettings":
        # The protection SCP denies PutConfigurationRecorder, PutMetricAlarm on harden's alarms and
        # the rest of what applying the baseline calls: with nobody exempt, nobody in the targeted
        # accounts could ever apply or repair it.
        if self.enabled and self.protect_baseline and self.targets and not self.admin_principals:
            raise ValueError("targets are set but admin_principals is empty, so the protection SCP would "
                             "deny everyone in those accounts the calls that apply the baseline: set "
                             "scp.admin_principals to the role that applies harden (e.g. "
                             "'arn:aws:iam::*:role/harden-pipeline'), or protect_baseline = false")
        return self


class EbsSettings(_Section):
    enabled: bool = True
    # Existing customer keys, per region; a region left out gets a key created for it.
    kms_key_arns: dict[Region, KmsKeyArn] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _key_in_its_region(self) -> "EbsSettings":
        from provisioner.aws import parse_arn  # botocore's parser; imported here: loading a config needs no boto

        for region, arn in self.kms_key_arns.items():
            key_region = parse_arn(arn)["region"]
            if key_region != region:
                raise ValueError(f"the key for {region} is in region {key_region}; "
                                 "EBS needs a key in the volume's region")
        return self


class Subscription(_Section):
    protocol: Literal["email", "email-json", "https", "sqs", "lambda", "sms", "application", "firehose"]
    endpoint: Annotated[str, StringConstraints(min_length=1, max_length=2048, pattern=r"^[^\s\x00-\x1f\x7f]+$")]

    @model_validator(mode="after")
    def _endpoint_fits_protocol(self) -> "Subscription":
        ep, proto = self.endpoint, self.protocol
        if proto.startswith("email") and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", ep):
            raise ValueError(f"an {proto} subscription needs an email address, got {ep!r}")
        if proto == "https" and not ep.startswith("https://"):
            raise ValueError(f"an https subscription needs an https:// URL, got {ep!r}")
        if proto in ("sqs", "lambda", "firehose", "application") and not ep.startswith("arn:"):
            raise ValueError(f"a {proto} subscription needs an ARN, got {ep!r}")
        return self


class AlarmSettings(_Section):
    enabled: bool = True
    topic_name: _shaped(SNS_NAME_RE) | None = Field(None, description="default: <name_prefix>-security-alarms")
    subscriptions: list[Subscription] = Field(default_factory=list)
    cpu_threshold: float = Field(80, gt=0, le=100)
    cpu_evaluation_periods: int = Field(3, ge=1, le=1440)
    cpu_period_seconds: int = 300
    # Per region, instances that get a CPU alarm of their own besides the region's fleet alarm.
    cpu_instance_ids: dict[Region, list[_shaped(INSTANCE_ID_RE)]] = Field(default_factory=dict)
    allocate_address_threshold: int = Field(1, ge=1)

    @field_validator("cpu_period_seconds")
    @classmethod
    def _period(cls, value: int) -> int:
        if value not in (10, 30) and (value < 60 or value % 60):
            raise ValueError("must be 10, 30 or a multiple of 60 seconds")
        return value

    @field_validator("subscriptions")
    @classmethod
    def _no_duplicate_subscriptions(cls, value: list[Subscription]) -> list[Subscription]:
        # The alarms module keys each subscription by "protocol:endpoint"; a `for` expression that
        # builds an object from two equal keys is an error at plan ("Duplicate object key",
        # https://developer.hashicorp.com/terraform/language/expressions/for#grouping-results).
        seen: dict[tuple[str, str], int] = {}
        for i, s in enumerate(value):
            first = seen.setdefault((s.protocol, s.endpoint), i)
            if first != i:
                raise ValueError(f"[{i}] repeats [{first}]: {s.protocol} subscription to {s.endpoint!r} twice")
        return value

    @property
    def cpu_fleet_period_seconds(self) -> int:
        """The fleet alarm's period: Metrics Insights has no sub-minute data."""
        return max(60, self.cpu_period_seconds)

    @model_validator(mode="after")
    def _fleet_alarm_window(self) -> "AlarmSettings":
        # Alarms on Metrics Insights queries evaluate the latest 3 hours only
        # (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/alarm-limits.html).
        if self.cpu_evaluation_periods * self.cpu_fleet_period_seconds > 3 * 3600:
            raise ValueError("cpu_evaluation_periods x cpu_period_seconds must be at most 3 hours: the fleet "
                             "CPU alarm (a Metrics Insights query) evaluates the latest 3 hours only")
        return self


class NetworkSettings(_Section):
    """Security groups: read by the network.* checks, the network module and the Config rules."""

    enabled: bool = True
    # Ports nobody may reach from 0.0.0.0/0 or ::/0 (SSH, RDP by default). A rule open to the
    # world on every port or protocol fails whatever this list says.
    admin_ports: list[Annotated[int, Field(ge=0, le=65535)]] = Field(default_factory=lambda: [22, 3389])
    # Terraform adopts each VPC's default security group and removes all its rules.
    manage_default_security_groups: bool = True

    @field_validator("admin_ports")
    @classmethod
    def _ports(cls, value: list[int]) -> list[int]:
        if not value:
            raise ValueError("must name at least one port (22 and 3389 are the defaults)")
        if len(set(value)) != len(value):
            raise ValueError("lists a port twice")
        return value


class AmiSettings(_Section):
    """ec2.ami_currency: how old an instance's image may be, and whose images are allowed."""

    max_age_days: int = Field(90, ge=1, le=3650)
    # Empty: any owner. Otherwise the image's owner account (or alias) must be listed.
    allowed_owners: list[_shaped(AMI_OWNER_RE)] = Field(default_factory=list)
    # EC2 Allowed AMIs (account-level, per region), rendered only when allowed_owners is set:
    # "audit-mode" reports images outside the list, "enabled" blocks launching them.
    allowed_images_state: Literal["audit-mode", "enabled"] = "audit-mode"


class EipSettings(_Section):
    """eip.pool: the share of the region's Elastic IP quota at which the pool check fails."""

    pool_max_share: float = Field(0.8, gt=0, le=1)


class StateSettings(_Section):
    """Where Terraform keeps state. local: terraform.tfstate beside each root module."""

    backend: Literal["local", "s3"] = "local"
    bucket: BucketName | None = None
    key_prefix: _shaped(KEY_PREFIX_RE) = "harden"
    region: Region | None = Field(None, description="default: home_region")
    kms_key_id: KmsKeyArn | None = None
    # Locking: the S3 native lock file (Terraform >= 1.10) unless a DynamoDB table is named.
    dynamodb_table: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{3,255}$")] | None = None

    @model_validator(mode="after")
    def _bucket_for_s3(self) -> "StateSettings":
        if self.backend == "s3" and not self.bucket:
            raise ValueError("backend = \"s3\" needs state.bucket (an existing, versioned, encrypted bucket)")
        return self


class Suppression(_Section):
    """One `[[suppress]]` entry: a finding of `control` (an id or a family such as "eip")
    whose region and resource match the globs is reported as `suppressed` with `reason` until
    `expires`; after that date it fails again, saying the suppression expired."""

    control: str
    region: _shaped(GLOB_RE) = "*"
    resource: _shaped(GLOB_RE) = "*"
    reason: Annotated[str, StringConstraints(min_length=3, max_length=500, pattern=PRINTABLE_RE)]
    expires: date

    @field_validator("control")
    @classmethod
    def _known_control(cls, value: str) -> str:
        from provisioner.controls import CONTROL_IDS  # controls import this module: look up at use

        families = {cid.split(".", 1)[0] for cid in CONTROL_IDS}
        if value not in CONTROL_IDS and value not in families:
            raise ValueError(f"unknown control {value!r} (expected a control id such as "
                             f"'eip.unassociated' or a family such as 'eip'; `harden controls` lists them)")
        return value


class Baseline(_Section):
    account_id: AccountId | None = None
    organization_id: OrgId | None = None
    home_region: Region = "us-east-1"
    regions: Union[Literal["all-enabled"], list[Region]] = "all-enabled"
    name_prefix: _shaped(NAME_PREFIX_RE) = "harden"
    tags: dict[TagKey, TagValue] = Field(default_factory=lambda: {"ManagedBy": "harden"})

    cloudtrail: CloudTrailSettings = CloudTrailSettings()
    kms: KmsSettings = KmsSettings()
    flow_logs: FlowLogSettings = FlowLogSettings()
    config: ConfigSettings = ConfigSettings()
    allocate_address: AllocateAddressSettings = AllocateAddressSettings()
    scp: ScpSettings = ScpSettings()
    ebs: EbsSettings = EbsSettings()
    alarms: AlarmSettings = AlarmSettings()
    network: NetworkSettings = NetworkSettings()
    ami: AmiSettings = AmiSettings()
    eip: EipSettings = EipSettings()
    state: StateSettings = StateSettings()
    suppress: list[Suppression] = Field(default_factory=list)

    @field_validator("regions")
    @classmethod
    def _regions_unique(cls, value):
        if isinstance(value, list):
            if not value:
                raise ValueError("must name at least one region, or be \"all-enabled\"")
            if len(set(value)) != len(value):
                raise ValueError("lists a region twice")
        return value

    @field_validator("tags")
    @classmethod
    def _tag_count(cls, value: dict) -> dict:
        if len(value) > 40:  # AWS allows 50; the modules add their own Name tags.
            raise ValueError("at most 40 tags")
        reserved = [k for k in value if k.lower().startswith("aws:")]
        if reserved:
            raise ValueError(f"tag key {reserved[0]!r}: the aws: prefix is reserved for AWS")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> "Baseline":
        if isinstance(self.regions, list) and self.home_region not in self.regions:
            raise ValueError(f"home_region {self.home_region!r} must be one of regions {self.regions}")
        if self.cloudtrail.organization_trail and not self.organization_id:
            raise ValueError("cloudtrail.organization_trail needs organization_id")
        for region in self.flow_logs.vpc_ids:
            if isinstance(self.regions, list) and region not in self.regions:
                raise ValueError(f"flow_logs.vpc_ids names region {region!r}, which is not in regions")
        self._names_aws_accepts()
        return self

    def _names_aws_accepts(self) -> None:
        """Names derived from name_prefix, and regions across partitions, that AWS would refuse."""
        from provisioner.aws import partition_for

        if not self.cloudtrail.trail_name and (why := naming.trail_name_problem(self.trail_name)):
            raise ValueError(f"name_prefix {self.name_prefix!r} gives the trail name {self.trail_name!r}, "
                             f"which CloudTrail refuses ({why}); set cloudtrail.trail_name or change name_prefix")
        if not self.cloudtrail.bucket_name:
            bucket = self.log_bucket_name(self.account_id or "000000000000")
            if why := naming.bucket_name_problem(bucket):
                raise ValueError(f"name_prefix {self.name_prefix!r} gives the log bucket name {bucket!r}, which S3 "
                                 f"refuses ({why}); set cloudtrail.bucket_name or change name_prefix")
        home = partition_for(self.home_region)
        for key, regions in (("regions", self.regions if isinstance(self.regions, list) else []),
                             ("allocate_address.allowed_regions", self.allocate_address.allowed_regions),
                             ("state.region", [self.state.region] if self.state.region else [])):
            for region in regions:
                if partition_for(region) != home:
                    raise ValueError(f"{key}: {region!r} is in the {partition_for(region)} partition, home_region "
                                     f"{self.home_region!r} in {home}: one baseline covers one partition")

    # -- derived names: one place, so render, verify and remediate agree -------------------------
    def log_bucket_name(self, account_id: str) -> str:
        """The log bucket: configured, or the name the account root module derives."""
        return self.cloudtrail.bucket_name or f"{self.name_prefix}-logs-{account_id}-{self.home_region}"

    @property
    def trail_name(self) -> str:
        return self.cloudtrail.trail_name or f"{self.name_prefix}-trail"

    @property
    def topic_name(self) -> str:
        return self.alarms.topic_name or f"{self.name_prefix}-security-alarms"

    @property
    def explicit_regions(self) -> list[str] | None:
        """The configured region list, or None for every enabled region (discovered at run time)."""
        return None if self.regions == "all-enabled" else list(self.regions)


# ---------------------------------------------------------------------------------------------
# Loading, with errors a person can act on.

class ConfigError(Exception):
    """Bad configuration: one line naming the file, the key and what was expected."""


def _loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("list[constrained-str]", "literal['all-enabled']", "function-after") or "[" in str(part):
            continue  # pydantic's union-branch labels say nothing to a user
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _describe(err: dict, model: type[BaseModel]) -> str:
    kind, ctx = err["type"], err.get("ctx") or {}
    if kind == "extra_forbidden":
        return "unknown key" + _known_keys(err["loc"], model)
    if kind == "string_pattern_mismatch":
        expected = _EXPLAIN.get(ctx.get("pattern"), f"text matching {ctx.get('pattern')}")
        return f"expected {expected}, got {err['input']!r}"
    if kind == "literal_error":
        return f"expected {ctx.get('expected')}, got {err['input']!r}"
    if kind in ("value_error", "assertion_error"):
        return str(ctx.get("error", err["msg"]))
    got = err.get("input")
    suffix = f", got {got!r}" if not isinstance(got, (dict, list)) else ""
    return f"{err['msg'][0].lower()}{err['msg'][1:]}{suffix}"


def _known_keys(loc: tuple, model: type[BaseModel]) -> str:
    current: type[BaseModel] | None = model
    for part in loc[:-1]:
        field = current.model_fields.get(part) if current else None
        annotation = getattr(field, "annotation", None)
        current = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    if current is None:
        return ""
    return f" (expected one of: {', '.join(current.model_fields)})"


def format_validation_error(source: str, exc: ValidationError, model: type[BaseModel] = Baseline) -> str:
    errors = exc.errors()
    # A union reports every branch; the most specific (longest location) is the useful one.
    first = max(errors, key=lambda e: len(e["loc"])) if errors else None
    if first is None:
        return f"{source}: invalid configuration"
    line = f"{source}: {_loc(first['loc'])}: {_describe(first, model)}"
    chosen = _loc(first["loc"])
    # A union's other branches fail at a prefix of the chosen location: not separate problems.
    distinct = {_loc(e["loc"]) for e in errors if not chosen.startswith(_loc(e["loc"]))}
    if distinct:
        line += f" (and {len(distinct)} more problem{'s' if len(distinct) > 1 else ''})"
    return line


def parse_baseline(data: dict, source: str = "<config>") -> Baseline:
    try:
        return Baseline.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(source, exc)) from None


def load_baseline(path: Path | str | None) -> Baseline:
    """Read harden.toml. None means no file: the default, secure baseline."""
    if path is None:
        return Baseline()
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, expected a harden.toml file") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(f"{path}: cannot read: {reason}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except RecursionError:  # tomllib parses nested arrays and tables recursively
        raise ConfigError(f"{path}: not valid TOML: arrays or tables nested too deeply") from None
    return parse_baseline(data, str(path))
