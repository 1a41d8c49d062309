"""The sandbox: a local AWS emulator (moto) seeded with a realistic, insecure account.

    with Sandbox() as sandbox:
        summary = sandbox.seed()
        with sandbox.activated():          # AWS_ENDPOINT_URL + dummy credentials in os.environ
            report = run_verify(AwsSession(), baseline)

`harden sandbox serve` calls `serve()`; a demo can call `run_in_sandbox(fn)`.

Nothing here reaches AWS: every client is built with the emulator's endpoint and dummy
credentials. moto keeps its state in process-wide backends, so two emulators in one process share
one account; `reset()` wipes it for both. The three read APIs moto lacks (LookupEvents,
DescribeDeliveryChannelStatus, GetEbsDefaultKmsKeyId) are added while a sandbox runs, by
`provisioner.sandbox_emulator`.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import urllib.request
from contextlib import ExitStack, contextmanager
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterator, Sequence, TypeVar

import boto3
import botocore.session
from botocore.config import Config

from provisioner.baseline import Baseline, parse_baseline
from provisioner.policies import allocate_address_policy_name, allocate_address_scp

T = TypeVar("T")

DEFAULT_REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-2")
DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
_PROFILE_VARS = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE")
# Variables that would send boto3 elsewhere than the emulator, or fail on a missing profile.
_CLEARED = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ROLE_ARN",
            "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE")

# The people in the story the seed tells (CloudTrail event history).
APPROVED_ROLE = "NetworkAdmin"         # in the allow-list of the suggested config
UNKNOWN_USER = "contractor-tmp"        # not in it
ODD_IP = "203.0.113.66"                # TEST-NET-3: documentation range, never a real host
OFFICE_IP = "198.51.100.20"            # TEST-NET-2
KEEP_TAG = "harden:keep"
VENDOR_ACCOUNT = "111122223333"        # another account a key policy lets in (AWS's documentation example id)
SANDBOX_AMI = "ami-04681a1dbd79675a5"  # amzn2-ami-hvm-2.0.20180810-x86_64-gp2 in moto's default AMIs


class Sandbox:
    """A moto server on loopback. Use as a context manager, or start()/stop()."""

    def __init__(self, port: int | None = None, host: str = "127.0.0.1", region: str = "us-east-1") -> None:
        self.host = host
        self.requested_port = port or 0
        self.region = region
        self._server = None
        self._port: int | None = None
        self._werkzeug_level: int | None = None
        self._hidden_profile: ExitStack | None = None
        # Its own session, deaf to AWS_PROFILE (a profile this machine lacks would fail every call).
        core = botocore.session.Session(session_vars={"profile": (None, None, None, None)})
        self._session = boto3.session.Session(aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                                              aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                                              region_name=region, botocore_session=core)
        self._clients: dict[tuple[str, str, str], Any] = {}
        self._lock = threading.Lock()

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> "Sandbox":
        # moto, in this process, builds boto3 sessions as it loads and as it serves: a profile
        # named in the environment (perhaps one this machine lacks) must not reach them while
        # the emulator runs. Restored by stop().
        self._hidden_profile = ExitStack()
        self._hidden_profile.enter_context(_environment({k: None for k in _PROFILE_VARS}))
        try:
            from moto.server import ThreadedMotoServer

            from provisioner import sandbox_emulator

            # werkzeug logs every request, and a traceback for every action moto lacks.
            werkzeug = logging.getLogger("werkzeug")
            self._werkzeug_level = werkzeug.level
            werkzeug.setLevel(logging.CRITICAL)
            sandbox_emulator.install()
            sandbox_emulator.load_aws_managed_policies()
            try:
                self._server = ThreadedMotoServer(ip_address=self.host, port=self.requested_port, verbose=False)
                self._server.start()
                self.host, self._port = self._server.get_host_and_port()
            except BaseException:
                sandbox_emulator.uninstall()
                raise
        except BaseException:
            self._restore()
            raise
        return self

    def stop(self) -> None:
        from provisioner import sandbox_emulator

        if self._server is None:
            return
        try:
            self._server.stop()
        finally:
            self._server = None
            sandbox_emulator.uninstall()
            self._restore()

    def _restore(self) -> None:
        if self._werkzeug_level is not None:
            logging.getLogger("werkzeug").setLevel(self._werkzeug_level)
            self._werkzeug_level = None
        if self._hidden_profile is not None:
            self._hidden_profile.close()
            self._hidden_profile = None

    def __enter__(self) -> "Sandbox":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- where it is ----------------------------------------------------------------------------
    @property
    def endpoint_url(self) -> str:
        if self._port is None:
            raise RuntimeError("the sandbox is not running")
        return f"http://{self.host}:{self._port}"

    def env(self) -> dict[str, str]:
        """What points boto3 (and harden) at the emulator."""
        return {"AWS_ENDPOINT_URL": self.endpoint_url, **DUMMY_CREDENTIALS,
                "AWS_DEFAULT_REGION": self.region, "AWS_REGION": self.region}

    @contextmanager
    def activated(self) -> Iterator[dict[str, str]]:
        """os.environ points at the sandbox inside the block (profile variables removed);
        restored afterwards."""
        with _environment({**{k: None for k in _CLEARED}, **self.env()}):
            yield self.env()

    def reset(self) -> None:
        """Wipe every emulated resource (POST /moto-api/reset)."""
        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()

    def client(self, service: str, region: str | None = None):
        """A boto3 client bound to the emulator whatever the environment says (cached)."""
        key = (service, region or self.region, self.endpoint_url)
        with self._lock:
            if key not in self._clients:
                self._clients[key] = self._session.client(
                    service, region_name=key[1], endpoint_url=self.endpoint_url,
                    aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                    aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                    config=Config(retries={"max_attempts": 2, "mode": "standard"}))
            return self._clients[key]

    def seed(self, regions: Sequence[str] = DEFAULT_REGIONS, home: str = "us-east-1") -> dict[str, Any]:
        """Build the insecure account; returns what was made (see `Seeder`)."""
        return Seeder(self, list(regions), home).run()


@contextmanager
def _environment(changes: dict[str, str | None]) -> Iterator[None]:
    """Set (or, for None, remove) environment variables inside the block."""
    saved = {k: os.environ.get(k) for k in changes}
    try:
        for key, value in changes.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


# =============================================================================================
# The seeded account
# =============================================================================================

class Seeder:
    """Builds a realistic, insecure account. Same call, same layout (ids differ run to run).

    Every region: the default VPC (no flow log) and an `app` VPC; a running `web` instance with an
    unencrypted data volume and an Elastic IP, a stopped instance, an encrypted detached volume
    and an idle Elastic IP. The home region adds a REJECT-only `legacy` VPC, a `batch` instance
    (encrypted volume, no alarm), an unencrypted detached volume, an idle address tagged
    harden:keep, the only CPU alarm with an action, the trail (no log validation, no KMS; its
    bucket has no TLS-only policy), the only Config recorder, the organization (an OU, a member
    account, one unrelated SCP), an SNS topic whose only subscription is pending, and CloudTrail
    events of AllocateAddress by the approved role and by an unknown user from an odd address.
    Security groups: every region's `web` instance sits behind `web-ssh` (SSH from 0.0.0.0/0 and
    ::/0) on its Elastic IP, `batch` behind an office-only group, and the app VPC's default group
    allows traffic from itself. Images: in the home region `web` runs a deprecated image and
    `batch` one built 400 days ago. The last region's Elastic IP quota equals what it holds.
    The second region has EBS default encryption on with a customer key whose policy also lets a
    vendor's backup account use it (a key policy that lets another account in); the others have it off.
    """

    def __init__(self, sandbox: Sandbox, regions: list[str], home: str) -> None:
        if home not in regions:
            raise ValueError(f"home region {home} must be one of {regions}")
        if len(regions) < 2:
            raise ValueError("the seed needs at least two regions")
        self.sb = sandbox
        self.regions = regions
        self.home = home
        self.now = datetime.now(timezone.utc)
        self.account = sandbox.client("sts", home).get_caller_identity()["Account"]
        self.out: dict[str, Any] = {"account_id": self.account, "home_region": home, "regions": list(regions),
                                    "per_region": {}}

    def run(self) -> dict[str, Any]:
        iam = self._iam()
        buckets = self._buckets()
        for region in self.regions:
            self.out["per_region"][region] = self._region(region, iam, buckets)
        self.out["encryption_region"] = self._encryption_region()
        self.out["trail"] = self._trail(buckets["trail"])
        self.out["config"] = self._config(iam, buckets["config"])
        self.out["topic"] = self._topic()
        self._alarms()
        self.out["organization"] = self._organization()
        self.out["events"] = self._events(iam)
        return self.out

    # -- account-wide --------------------------------------------------------------------------
    def _iam(self) -> dict[str, str]:
        iam = self.sb.client("iam", self.home)

        def role(name: str, service: str) -> str:
            trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                             "Principal": {"Service": service}}]}
            return iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]

        approved = iam.create_role(RoleName=APPROVED_ROLE, AssumeRolePolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                    "Principal": {"AWS": f"arn:aws:iam::{self.account}:root"}}]}))
        user = iam.create_user(UserName=UNKNOWN_USER)["User"]
        key = iam.create_access_key(UserName=UNKNOWN_USER)["AccessKey"]["AccessKeyId"]
        out = {
            "approved_role_arn": approved["Role"]["Arn"], "approved_role_id": approved["Role"]["RoleId"],
            "unknown_user_arn": user["Arn"], "unknown_user_id": user["UserId"], "unknown_user_key": key,
            "flow_logs_role_arn": role("flow-logs-delivery", "vpc-flow-logs.amazonaws.com"),
            "config_role_arn": role("config-recorder", "config.amazonaws.com"),
        }
        self.out["iam"] = dict(out)
        return out

    def _buckets(self) -> dict[str, str]:
        s3 = self.sb.client("s3", self.home)
        names = {"trail": f"legacy-cloudtrail-{self.account}", "config": f"config-history-{self.account}",
                 "flow_logs": f"vpc-flow-logs-{self.account}"}
        for name in names.values():
            if self.home == "us-east-1":
                s3.create_bucket(Bucket=name)
            else:
                s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": self.home})
        # CloudTrail may write, but nothing insists on TLS, and the aws:SourceArn condition is a
        # confused deputy: negated, it lets every trail but a decommissioned one write here.
        s3.put_bucket_policy(Bucket=names["trail"], Policy=json.dumps({
            "Version": "2012-10-17",
            "Statement": [
                {"Sid": "AWSCloudTrailAclCheck", "Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
                 "Action": "s3:GetBucketAcl", "Resource": f"arn:aws:s3:::{names['trail']}"},
                {"Sid": "AWSCloudTrailWrite", "Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
                 "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{names['trail']}/AWSLogs/{self.account}/*",
                 "Condition": {"StringNotEquals": {
                     "aws:SourceArn": f"arn:aws:cloudtrail:{self.home}:{self.account}:trail/decommissioned"}}},
            ]}))
        self.out["buckets"] = dict(names)
        return names

    # -- one region ------------------------------------------------------------------------------
    def _region(self, region: str, iam: dict[str, str], buckets: dict[str, str]) -> dict[str, Any]:
        ec2 = self.sb.client("ec2", region)
        home = region == self.home
        vpcs = {"default": next(v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"] if v.get("IsDefault"))}
        vpcs["app"] = self._vpc(ec2, "app", "10.20.0.0/16")
        flow_logs = {"app": self._flow_log_all(ec2, region, vpcs["app"], iam, buckets)}
        if home:
            vpcs["legacy"] = self._vpc(ec2, "legacy", "10.30.0.0/16")
            flow_logs["legacy"] = self._create_flow_log(ec2, vpcs["legacy"], "REJECT", {
                "LogDestinationType": "s3", "LogDestination": f"arn:aws:s3:::{buckets['flow_logs']}"})
        subnet = ec2.create_subnet(VpcId=vpcs["app"], CidrBlock="10.20.1.0/24")["Subnet"]
        zone, subnet_id = subnet["AvailabilityZone"], subnet["SubnetId"]

        image = self._image(ec2)
        names = ["web", "batch", "legacy-bastion"] if home else ["web", "worker"]
        groups = self._security_groups(ec2, region, vpcs)
        images = self._stale_images(ec2, region) if home else {}
        # The seed document's example: a web server with SSH open to the world, on an Elastic IP
        # (below), and in the home region on a deprecated image; the batch host on an old one.
        launch = {"web": (images.get("deprecated", image), [groups["open_ssh"]]),
                  "batch": (images.get("old", image), [groups["office_ssh"]])}
        instances = {n: self._instance(ec2, *launch.get(n, (image, [])), subnet_id, n) for n in names}
        stopped = names[-1]
        ec2.stop_instances(InstanceIds=[instances[stopped]])

        volumes = {"web-data": self._volume(ec2, zone, "web-data", encrypted=False, attach_to=instances["web"]),
                   "archive": self._volume(ec2, zone, "archive", encrypted=True)}
        if home:
            volumes["batch-data"] = self._volume(ec2, zone, "batch-data", encrypted=True, attach_to=instances["batch"])
            volumes["scratch"] = self._volume(ec2, zone, "scratch", encrypted=False)

        addresses = {"web": self._address(ec2, "web", instances["web"]), "idle": self._address(ec2, "idle")}
        if home:
            addresses["kept"] = self._address(ec2, "kept", keep=True)
        quota = self._address_quota(region, len(addresses))
        return {"vpcs": vpcs, "flow_logs": flow_logs, "instances": instances, "running": names[:-1],
                "stopped": [stopped], "availability_zone": zone, "volumes": volumes, "addresses": addresses,
                "image_id": image, "images": images, "security_groups": groups, "address_quota": quota}

    def _security_groups(self, ec2, region: str, vpcs: dict[str, str]) -> dict[str, str]:
        """An SSH group open to 0.0.0.0/0 and ::/0 (the seed's own example), an SSH group scoped to
        an office prefix list (fine), and the app VPC's default group with the self-referencing
        ingress rule AWS gives every default group (the emulator gives only the egress rule)."""
        open_ssh = ec2.create_security_group(GroupName="web-ssh", Description="SSH for the web servers",
                                             VpcId=vpcs["app"])["GroupId"]
        ec2.authorize_security_group_ingress(GroupId=open_ssh, IpPermissions=[{
            "IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
            "IpRanges": [{"CidrIp": "0.0.0.0/0", "Description": "SSH from anywhere"}],
            "Ipv6Ranges": [{"CidrIpv6": "::/0", "Description": "SSH from anywhere (IPv6)"}]}])
        office = ec2.create_managed_prefix_list(PrefixListName="office", MaxEntries=2, AddressFamily="IPv4",
                                                Entries=[{"Cidr": f"{OFFICE_IP}/32", "Description": "office"}]
                                                )["PrefixList"]["PrefixListId"]
        office_ssh = ec2.create_security_group(GroupName="office-ssh", Description="SSH from the office only",
                                               VpcId=vpcs["app"])["GroupId"]
        ec2.authorize_security_group_ingress(GroupId=office_ssh, IpPermissions=[{
            "IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "PrefixListIds": [{"PrefixListId": office}]}])
        default = next(g["GroupId"] for g in ec2.describe_security_groups(
            Filters=[{"Name": "vpc-id", "Values": [vpcs["app"]]}, {"Name": "group-name", "Values": ["default"]}]
        )["SecurityGroups"])
        ec2.authorize_security_group_ingress(GroupId=default, IpPermissions=[{
            "IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": default}]}])
        return {"open_ssh": open_ssh, "office_ssh": office_ssh, "office_prefix_list": office, "app_default": default}

    def _stale_images(self, ec2, region: str) -> dict[str, str]:
        """Two images of the account: one built 400 days ago, one deprecated last month."""
        from provisioner.sandbox_emulator import set_image_creation_date

        old = ec2.register_image(Name="golden-base-2024", RootDeviceName="/dev/xvda", Architecture="x86_64",
                                 Description="the team's golden image, never rebuilt")["ImageId"]
        set_image_creation_date(self.account, region, old, self.now - timedelta(days=400))
        deprecated = ec2.register_image(Name="legacy-web-base", RootDeviceName="/dev/xvda", Architecture="x86_64",
                                        Description="superseded web image")["ImageId"]
        ec2.enable_image_deprecation(ImageId=deprecated, DeprecateAt=self.now - timedelta(days=30))
        return {"old": old, "deprecated": deprecated}

    def _address_quota(self, region: str, allocated: int) -> float | None:
        """The last region other than home has an Elastic IP quota of what it already holds: the unknown user's idle
        address took the last free one (the other regions keep AWS's default of 5)."""
        if region != [r for r in self.regions if r != self.home][-1]:
            return None
        from provisioner.sandbox_emulator import set_address_quota

        set_address_quota(self.account, region, allocated)
        return float(allocated)

    def _vpc(self, ec2, name: str, cidr: str) -> str:
        return ec2.create_vpc(CidrBlock=cidr, TagSpecifications=[
            {"ResourceType": "vpc", "Tags": [{"Key": "Name", "Value": name}]}])["Vpc"]["VpcId"]

    def _flow_log_all(self, ec2, region: str, vpc_id: str, iam: dict[str, str], buckets: dict[str, str]) -> str:
        if region == self.home:
            logs = self.sb.client("logs", region)
            logs.create_log_group(logGroupName="/vpc/flow-logs")
            return self._create_flow_log(ec2, vpc_id, "ALL", {
                "LogDestinationType": "cloud-watch-logs", "LogGroupName": "/vpc/flow-logs",
                "DeliverLogsPermissionArn": iam["flow_logs_role_arn"]})
        # An S3 destination without a prefix: the emulator needs the bucket to exist, and it does.
        return self._create_flow_log(ec2, vpc_id, "ALL", {
            "LogDestinationType": "s3", "LogDestination": f"arn:aws:s3:::{buckets['flow_logs']}"})

    @staticmethod
    def _create_flow_log(ec2, vpc_id: str, traffic: str, destination: dict) -> str:
        resp = ec2.create_flow_logs(ResourceIds=[vpc_id], ResourceType="VPC", TrafficType=traffic, **destination)
        if resp.get("Unsuccessful"):
            raise RuntimeError(f"flow log for {vpc_id}: {resp['Unsuccessful']}")
        return resp["FlowLogIds"][0]

    @staticmethod
    def _image(ec2) -> str:
        """Amazon Linux 2 from the emulator's default AMIs (the same id in every region); listing
        all of Amazon's images instead costs about a second per region."""
        found = ec2.describe_images(Filters=[{"Name": "image-id", "Values": [SANDBOX_AMI]}])["Images"]
        if found:
            return SANDBOX_AMI
        images = ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "architecture", "Values": ["x86_64"]}])
        return min(i["ImageId"] for i in images["Images"])  # the lowest id: every run picks the same

    @staticmethod
    def _instance(ec2, image: str, groups: list[str], subnet_id: str, name: str) -> str:
        placement = {"SecurityGroupIds": groups} if groups else {}
        return ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.micro", SubnetId=subnet_id,
                                 **placement,
                                 TagSpecifications=[{"ResourceType": "instance",
                                                     "Tags": [{"Key": "Name", "Value": name}]}]
                                 )["Instances"][0]["InstanceId"]

    def _volume(self, ec2, zone: str, name: str, *, encrypted: bool, attach_to: str | None = None) -> str:
        volume_id = ec2.create_volume(AvailabilityZone=zone, Size=8, VolumeType="gp3", Encrypted=encrypted,
                                      TagSpecifications=[{"ResourceType": "volume",
                                                          "Tags": [{"Key": "Name", "Value": name}]}])["VolumeId"]
        if attach_to:
            ec2.attach_volume(VolumeId=volume_id, InstanceId=attach_to, Device="/dev/sdf")
        return volume_id

    @staticmethod
    def _address(ec2, name: str, instance_id: str | None = None, keep: bool = False) -> dict[str, str]:
        tags = [{"Key": "Name", "Value": name}] + ([{"Key": KEEP_TAG, "Value": "true"}] if keep else [])
        allocated = ec2.allocate_address(Domain="vpc", TagSpecifications=[{"ResourceType": "elastic-ip", "Tags": tags}])
        address = {"allocation_id": allocated["AllocationId"], "public_ip": allocated["PublicIp"]}
        if instance_id:
            address["association_id"] = ec2.associate_address(AllocationId=allocated["AllocationId"],
                                                              InstanceId=instance_id)["AssociationId"]
        return address

    def _encryption_region(self) -> dict[str, Any]:
        """EBS default encryption: on in one region (with a customer key shared with another
        account through its key policy), off everywhere else."""
        region = next(r for r in self.regions if r != self.home)
        kms = self.sb.client("kms", region)
        outsider = f"arn:aws:iam::{VENDOR_ACCOUNT}:root"
        policy = {"Version": "2012-10-17", "Statement": [
            {"Sid": "EnableIAMUserPermissions", "Effect": "Allow",
             "Principal": {"AWS": f"arn:aws:iam::{self.account}:root"}, "Action": "kms:*", "Resource": "*"},
            {"Sid": "VendorBackupCopies", "Effect": "Allow", "Principal": {"AWS": outsider},
             "Action": ["kms:Decrypt", "kms:DescribeKey", "kms:CreateGrant"], "Resource": "*"}]}
        key = kms.create_key(Description="EBS default key (sandbox)", Policy=json.dumps(policy))["KeyMetadata"]
        kms.create_alias(AliasName="alias/ebs-default", TargetKeyId=key["KeyId"])
        ec2 = self.sb.client("ec2", region)
        ec2.enable_ebs_encryption_by_default()
        ec2.modify_ebs_default_kms_key_id(KmsKeyId=key["Arn"])
        for r in self.regions:
            self.out["per_region"][r]["ebs_encryption_by_default"] = r == region
        return {"region": region, "kms_key_arn": key["Arn"], "key_policy_lets_in": outsider}

    # -- logging and detection -----------------------------------------------------------------
    def _trail(self, bucket: str) -> dict[str, Any]:
        cloudtrail = self.sb.client("cloudtrail", self.home)
        trail = cloudtrail.create_trail(Name="legacy-trail", S3BucketName=bucket, IsMultiRegionTrail=True,
                                        IncludeGlobalServiceEvents=True, EnableLogFileValidation=False)
        # What AWS gives a new trail (all management events, read and write); the emulator starts
        # a trail with no selectors, which would hide the trail's real weaknesses behind this one.
        cloudtrail.put_event_selectors(TrailName="legacy-trail", EventSelectors=[
            {"ReadWriteType": "All", "IncludeManagementEvents": True}])
        cloudtrail.start_logging(Name="legacy-trail")
        return {"name": "legacy-trail", "arn": trail["TrailARN"], "bucket": bucket,
                "log_file_validation": False, "kms_key_id": None}

    def _config(self, iam: dict[str, str], bucket: str) -> dict[str, Any]:
        config = self.sb.client("config", self.home)
        config.put_configuration_recorder(ConfigurationRecorder={
            "name": "default", "roleARN": iam["config_role_arn"],
            "recordingGroup": {"allSupported": True, "includeGlobalResourceTypes": True}})
        config.put_delivery_channel(DeliveryChannel={"name": "default", "s3BucketName": bucket})
        config.start_configuration_recorder(ConfigurationRecorderName="default")
        return {"region": self.home, "recorder": "default", "delivery_channel": "default", "bucket": bucket,
                "regions_without_config": [r for r in self.regions if r != self.home]}

    def _topic(self) -> dict[str, Any]:
        from provisioner.sandbox_emulator import mark_subscription_pending

        sns = self.sb.client("sns", self.home)
        topic_arn = sns.create_topic(Name="security-alerts")["TopicArn"]
        subscription = sns.subscribe(TopicArn=topic_arn, Protocol="email", Endpoint="secops@example.com",
                                     ReturnSubscriptionArn=True)["SubscriptionArn"]
        # Nobody can click the confirmation link in an emulator: it stays pending, as in AWS.
        mark_subscription_pending(self.account, self.home, subscription)
        return {"arn": topic_arn, "pending_subscription": "secops@example.com"}

    def _alarms(self) -> None:
        """One CPU alarm with an action (home `web`); one without an action (second region `web`)."""
        other = next(r for r in self.regions if r != self.home)
        for region, action in ((self.home, [self.out["topic"]["arn"]]), (other, [])):
            instance = self.out["per_region"][region]["instances"]["web"]
            name = f"cpu-high-{instance}"
            self.sb.client("cloudwatch", region).put_metric_alarm(
                AlarmName=name, MetricName="CPUUtilization", Namespace="AWS/EC2", Statistic="Average",
                Dimensions=[{"Name": "InstanceId", "Value": instance}], Period=300, EvaluationPeriods=3,
                Threshold=80.0, ComparisonOperator="GreaterThanThreshold", AlarmActions=action)
            self.out["per_region"][region]["cpu_alarms"] = {instance: {"name": name, "actions": action}}

    def _organization(self) -> dict[str, Any]:
        org = self.sb.client("organizations", self.home)
        org_id = org.create_organization(FeatureSet="ALL")["Organization"]["Id"]
        root = org.list_roots()["Roots"][0]["Id"]
        org.enable_policy_type(RootId=root, PolicyType="SERVICE_CONTROL_POLICY")
        ou = org.create_organizational_unit(ParentId=root, Name="workloads")["OrganizationalUnit"]["Id"]
        member = org.create_account(AccountName="workload-prod", Email="aws+workload-prod@example.com"
                                    )["CreateAccountStatus"]["AccountId"]
        org.move_account(AccountId=member, SourceParentId=root, DestinationParentId=ou)
        # A guardrail, but not the one that matters: nothing limits AllocateAddress.
        scp = org.create_policy(Name="deny-leave-organization", Type="SERVICE_CONTROL_POLICY",
                                Description="Member accounts may not leave the organization",
                                Content=json.dumps({"Version": "2012-10-17", "Statement": [{
                                    "Sid": "DenyLeave", "Effect": "Deny", "Action": "organizations:LeaveOrganization",
                                    "Resource": "*"}]}))["Policy"]["PolicySummary"]["Id"]
        org.attach_policy(PolicyId=scp, TargetId=root)
        # On the workloads OU, harden's Elastic IP SCP as someone edited it: the Global Accelerator
        # and Lightsail paths taken out. Every action the older checks list is still denied; only
        # the comparison with the computed policy sees it.
        weakened = self._weakened_harden_scp()
        harden = org.create_policy(Name=allocate_address_policy_name(Baseline()), Type="SERVICE_CONTROL_POLICY",
                                   Description="harden scp.allocate_address (edited by hand)",
                                   Content=json.dumps(weakened))["Policy"]["PolicySummary"]["Id"]
        org.attach_policy(PolicyId=harden, TargetId=ou)
        return {"id": org_id, "root": root, "ou": ou, "member_account": member,
                "management_account": self.account,
                "scps": {"deny-leave-organization": scp, "harden-deny-eip-allocation": harden}}

    def _weakened_harden_scp(self) -> dict[str, Any]:
        approved = self.out["iam"]["approved_role_arn"]
        document = allocate_address_scp(parse_baseline({"allocate_address": {"allowed_principals": [approved]}}))
        for statement in document["Statement"]:
            statement["Action"] = [a for a in statement["Action"] if not a.startswith(("globalaccelerator:", "lightsail:"))]
        return document

    def _events(self, iam: dict[str, str]) -> list[dict[str, Any]]:
        """AllocateAddress in CloudTrail event history: the approved role (web addresses, from the
        office) and an unknown IAM user (idle addresses, from an odd address, at night)."""
        from provisioner.sandbox_emulator import record_event

        approved = {
            "type": "AssumedRole", "principalId": f"{iam['approved_role_id']}:alice",
            "arn": f"arn:aws:sts::{self.account}:assumed-role/{APPROVED_ROLE}/alice", "accountId": self.account,
            "accessKeyId": "ASIAQSANDBOXAPPROVED",
            "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": iam["approved_role_id"],
                                                 "arn": iam["approved_role_arn"], "accountId": self.account,
                                                 "userName": APPROVED_ROLE},
                               "attributes": {"creationDate": self._ago(hours=30), "mfaAuthenticated": "true"}},
        }
        unknown = {"type": "IAMUser", "principalId": iam["unknown_user_id"], "arn": iam["unknown_user_arn"],
                   "accountId": self.account, "accessKeyId": iam["unknown_user_key"], "userName": UNKNOWN_USER}
        plan = []
        for i, region in enumerate(self.regions):
            addresses = self.out["per_region"][region]["addresses"]
            plan.append((region, "web", approved, OFFICE_IP, "aws-cli/2.17.0 Python/3.12.4", timedelta(hours=30 + i)))
            plan.append((region, "idle", unknown, ODD_IP, "python-requests/2.31.0", timedelta(hours=5 + i)))
            if "kept" in addresses:
                plan.append((region, "kept", approved, OFFICE_IP, "aws-cli/2.17.0 Python/3.12.4",
                             timedelta(days=20)))  # outside a 7-day look-back
        events = []
        for region, address, who, ip, agent, age in plan:
            allocation = self.out["per_region"][region]["addresses"][address]
            when = self.now - age
            record_event(self.account, region, event_name="AllocateAddress", user_identity=who, event_time=when,
                         source_ip=ip, user_agent=agent, request_parameters={"domain": "vpc"},
                         response_elements={"requestId": f"sandbox-{allocation['allocation_id']}",
                                            "publicIp": allocation["public_ip"], "domain": "vpc",
                                            "allocationId": allocation["allocation_id"]},
                         resources=[{"ResourceType": "AWS::EC2::EIP", "ResourceName": allocation["allocation_id"]}])
            events.append({"region": region, "event_name": "AllocateAddress", "principal_arn":
                           who.get("sessionContext", {}).get("sessionIssuer", {}).get("arn", who["arn"]),
                           "source_ip": ip, "allocation_id": allocation["allocation_id"],
                           "event_time": when.isoformat()})
        return events

    def _ago(self, **delta: float) -> str:
        return (self.now - timedelta(**delta)).strftime("%Y-%m-%dT%H:%M:%SZ")


def suggested_config(summary: dict[str, Any]) -> dict[str, Any]:
    """A harden.toml (as a dict) for the seeded account: its regions, its organization, the
    approved role in the allow-list. Verify against it to see every control fail as seeded."""
    return {
        "account_id": summary["account_id"],
        "organization_id": summary["organization"]["id"],
        "home_region": summary["home_region"],
        "regions": summary["regions"],
        "allocate_address": {"allowed_principals": [summary["iam"]["approved_role_arn"]]},
        # The role that applies harden is exempt from the baseline protection (without one, no
        # one in the targeted accounts could apply it: the configuration is refused).
        "scp": {"targets": [summary["organization"]["root"]],
                "admin_principals": [f"arn:aws:iam::{summary['account_id']}:role/harden-pipeline"]},
        # The account's existing log archive: remediation delivers AWS Config there (the
        # bucket the cloudtrail module would create does not exist until Terraform runs).
        "cloudtrail": {"bucket_name": summary["buckets"]["config"]},
    }


# =============================================================================================
# Entry points
# =============================================================================================

def export_lines(sandbox: Sandbox) -> list[str]:
    """Shell lines that point another shell (and harden in it) at the sandbox."""
    return ([f"export {key}={value}" for key, value in sandbox.env().items()]
            + [f"unset {' '.join(_CLEARED)}"])


def serve(seed: bool, port: int | None) -> None:
    """Run the sandbox in the foreground until Ctrl-C (or SIGTERM): start, seed, print the
    `export` lines, block, shut down cleanly."""
    stop = threading.Event()
    previous = signal.getsignal(signal.SIGTERM)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        with Sandbox(port=port) as sandbox:
            if seed:
                summary = sandbox.seed()
                print(f"seeded an insecure account {summary['account_id']} in {', '.join(summary['regions'])} "
                      f"(organization {summary['organization']['id']})", file=sys.stderr)
            print(f"AWS emulator listening on {sandbox.endpoint_url}; in another shell run:", file=sys.stderr)
            for line in export_lines(sandbox):
                print(line)
            sys.stdout.flush()
            print("Ctrl-C stops it.", file=sys.stderr)
            try:
                while not stop.wait(0.5):
                    pass
            except KeyboardInterrupt:
                pass
            print("stopping the emulator", file=sys.stderr)
    finally:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, previous)


@contextmanager
def running_sandbox(seed: bool = True, regions: Sequence[str] = DEFAULT_REGIONS, home: str = "us-east-1",
                    port: int | None = None) -> Iterator[tuple[Sandbox, dict[str, Any] | None]]:
    """A started (and seeded) sandbox with os.environ pointed at it, for in-process use."""
    with Sandbox(port=port, region=home) as sandbox:
        summary = sandbox.seed(regions, home) if seed else None
        with sandbox.activated():
            yield sandbox, summary


def run_in_sandbox(fn: Callable[[Sandbox, dict[str, Any] | None], T], seed: bool = True,
                   regions: Sequence[str] = DEFAULT_REGIONS, home: str = "us-east-1") -> T:
    """fn(sandbox, summary) with a fresh (seeded) sandbox and the environment pointed at it."""
    with running_sandbox(seed=seed, regions=regions, home=home) as (sandbox, summary):
        return fn(sandbox, summary)
