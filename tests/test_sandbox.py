"""The sandbox: the seed builds the insecure account it promises, the APIs added to the emulator
answer in the shapes botocore's service model defines, reset wipes, serve() starts and stops.

moto's state is process-wide: the `aws` fixture of other modules resets it, so `seeded` checks a
marker and seeds again when another test wiped the account.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import botocore.exceptions
import pytest
from botocore.validate import ParamValidator

from provisioner import sandbox_emulator
from provisioner.sandbox import APPROVED_ROLE, KEEP_TAG, ODD_IP, UNKNOWN_USER, Sandbox, suggested_config

REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-2")
HOME = "us-east-1"


@pytest.fixture(scope="module")
def sandbox():
    sb = Sandbox().start()
    yield sb
    sb.stop()
    # The emulator is as moto made it once the last sandbox stops.
    from moto.cloudtrail.responses import CloudTrailResponse
    from moto.ec2.responses import EC2Response

    assert not sandbox_emulator.installed()
    assert not hasattr(CloudTrailResponse, "lookup_events")
    assert not hasattr(EC2Response, "get_ebs_default_kms_key_id")


_state: dict = {}


@pytest.fixture()
def seeded(sandbox) -> dict:
    """The seed summary; seeds (again) when the account no longer holds it."""
    summary = _state.get("summary")
    if summary is None or not _still_seeded(sandbox, summary):
        sandbox.reset()
        _state["summary"] = summary = sandbox.seed(REGIONS, HOME)
    return summary


def _still_seeded(sandbox: Sandbox, summary: dict) -> bool:
    trails = sandbox.client("cloudtrail", HOME).describe_trails()["trailList"]
    return any(t["TrailARN"] == summary["trail"]["arn"] for t in trails)


def _valid(client, operation: str, response: dict) -> None:
    """The response fits the operation's output shape in botocore's service model."""
    model = client.meta.service_model.operation_model(operation)
    body = {k: v for k, v in response.items() if k != "ResponseMetadata"}
    report = ParamValidator().validate(body, model.output_shape)
    assert not report.has_errors(), report.generate_report()


# =============================================================================================
# The seed
# =============================================================================================

def test_summary_names_every_region_and_the_organization(seeded):
    assert seeded["regions"] == list(REGIONS) and seeded["home_region"] == HOME
    assert set(seeded["per_region"]) == set(REGIONS)
    org = seeded["organization"]
    assert org["root"].startswith("r-") and org["ou"].startswith("ou-") and len(org["member_account"]) == 12
    config = suggested_config(seeded)
    assert config["scp"]["targets"] == [org["root"]]
    assert config["allocate_address"]["allowed_principals"] == [f"arn:aws:iam::{seeded['account_id']}:role/{APPROVED_ROLE}"]
    json.dumps(seeded)  # printable as it is


def test_vpcs_with_and_without_flow_logs(sandbox, seeded):
    for region in REGIONS:
        ec2 = sandbox.client("ec2", region)
        vpcs = seeded["per_region"][region]["vpcs"]
        logs = {}
        for fl in ec2.describe_flow_logs()["FlowLogs"]:
            logs.setdefault(fl["ResourceId"], []).append(fl)
        assert vpcs["default"] not in logs                       # no flow log at all
        (app,) = logs[vpcs["app"]]
        assert app["TrafficType"] == "ALL" and app["FlowLogStatus"] == "ACTIVE"
        assert app["LogDestinationType"] == ("cloud-watch-logs" if region == HOME else "s3")
        if region == HOME:
            (legacy,) = logs[vpcs["legacy"]]
            assert legacy["TrafficType"] == "REJECT"             # only rejected traffic
        else:
            assert "legacy" not in vpcs


def test_instances_volumes_and_alarms(sandbox, seeded):
    for region in REGIONS:
        facts = seeded["per_region"][region]
        ec2 = sandbox.client("ec2", region)
        states = {i["InstanceId"]: i["State"]["Name"]
                  for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]}
        for name in facts["running"]:
            assert states[facts["instances"][name]] == "running"
        for name in facts["stopped"]:
            assert states[facts["instances"][name]] == "stopped"

        volumes = {v["VolumeId"]: v for v in ec2.describe_volumes(VolumeIds=list(facts["volumes"].values()))["Volumes"]}
        web_data = volumes[facts["volumes"]["web-data"]]
        assert not web_data["Encrypted"] and web_data["Attachments"][0]["InstanceId"] == facts["instances"]["web"]
        archive = volumes[facts["volumes"]["archive"]]
        assert archive["Encrypted"] and not archive["Attachments"]
        if region == HOME:
            assert volumes[facts["volumes"]["batch-data"]]["Encrypted"]
            assert volumes[facts["volumes"]["batch-data"]]["Attachments"]
            assert not volumes[facts["volumes"]["scratch"]]["Encrypted"]
            assert not volumes[facts["volumes"]["scratch"]]["Attachments"]

        alarms = sandbox.client("cloudwatch", region).describe_alarms()["MetricAlarms"]
        watched = {d["Value"]: a for a in alarms for d in a["Dimensions"] if d["Name"] == "InstanceId"}
        if region == HOME:
            assert watched[facts["instances"]["web"]]["AlarmActions"] == [seeded["topic"]["arn"]]
            assert facts["instances"]["batch"] not in watched    # running, no alarm
        elif region == REGIONS[1]:
            assert watched[facts["instances"]["web"]]["AlarmActions"] == []  # an alarm nobody hears
        else:
            assert not watched


def test_elastic_ips_associated_idle_and_kept(sandbox, seeded):
    for region in REGIONS:
        facts = seeded["per_region"][region]["addresses"]
        by_id = {a["AllocationId"]: a for a in sandbox.client("ec2", region).describe_addresses()["Addresses"]}
        assert by_id[facts["web"]["allocation_id"]].get("AssociationId")
        assert not by_id[facts["idle"]["allocation_id"]].get("AssociationId")
        if region == HOME:
            kept = by_id[facts["kept"]["allocation_id"]]
            assert not kept.get("AssociationId")
            assert {"Key": KEEP_TAG, "Value": "true"} in kept["Tags"]


def test_open_ssh_on_an_elastic_ip_default_groups_stale_images_and_a_full_pool(sandbox, seeded):
    for region in REGIONS:
        facts = seeded["per_region"][region]
        ec2 = sandbox.client("ec2", region)
        groups = facts["security_groups"]
        web = ec2.describe_instances(InstanceIds=[facts["instances"]["web"]])["Reservations"][0]["Instances"][0]
        assert [g["GroupId"] for g in web["SecurityGroups"]] == [groups["open_ssh"]]
        rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [groups["open_ssh"]]}])
        sources = {r.get("CidrIpv4") or r.get("CidrIpv6") for r in rules["SecurityGroupRules"]
                   if not r["IsEgress"] and r["FromPort"] == 22}
        assert sources == {"0.0.0.0/0", "::/0"}
        address = ec2.describe_addresses(AllocationIds=[facts["addresses"]["web"]["allocation_id"]])["Addresses"][0]
        assert address["InstanceId"] == web["InstanceId"]  # the attack the seed describes
        default = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [groups["app_default"]]}])
        assert any(not r["IsEgress"] for r in default["SecurityGroupRules"])
        quota = sandbox.client("service-quotas", region).get_service_quota(ServiceCode="ec2", QuotaCode="L-0263D0A3")
        expected = len(facts["addresses"]) if region == REGIONS[-1] else 5
        assert quota["Quota"]["Value"] == expected == (facts["address_quota"] or 5)
    home = seeded["per_region"][HOME]
    images = {i["ImageId"]: i for i in sandbox.client("ec2", HOME).describe_images(
        ImageIds=list(home["images"].values()))["Images"]}
    old = datetime.fromisoformat(images[home["images"]["old"]]["CreationDate"].replace("Z", "+00:00"))
    assert datetime.now(timezone.utc) - old > timedelta(days=399)
    deprecated = images[home["images"]["deprecated"]]["DeprecationTime"]
    assert datetime.fromisoformat(deprecated.replace("Z", "+00:00")) < datetime.now(timezone.utc)


def test_trail_and_its_bucket_are_weak(sandbox, seeded):
    cloudtrail = sandbox.client("cloudtrail", HOME)
    (trail,) = cloudtrail.describe_trails(trailNameList=[seeded["trail"]["name"]])["trailList"]
    assert trail["IsMultiRegionTrail"] and trail["IncludeGlobalServiceEvents"]
    assert trail["LogFileValidationEnabled"] is False
    assert "KmsKeyId" not in trail
    assert cloudtrail.get_trail_status(Name=trail["Name"])["IsLogging"]
    (selector,) = cloudtrail.get_event_selectors(TrailName=trail["Name"])["EventSelectors"]
    assert selector["ReadWriteType"] == "All" and selector["IncludeManagementEvents"]  # AWS's default
    policy = sandbox.client("s3", HOME).get_bucket_policy(Bucket=seeded["trail"]["bucket"])["Policy"]
    # A confused deputy: aws:SourceArn negated lets every other trail write.
    assert "aws:SecureTransport" not in policy and '"StringNotEquals": {"aws:SourceArn"' in policy


def test_config_in_one_region_and_ebs_default_encryption_in_another(sandbox, seeded):
    for region in REGIONS:
        config = sandbox.client("config", region)
        statuses = config.describe_configuration_recorder_status()["ConfigurationRecordersStatus"]
        assert bool(statuses and statuses[0]["recording"]) is (region == HOME)

        ec2 = sandbox.client("ec2", region)
        on = ec2.get_ebs_encryption_by_default()["EbsEncryptionByDefault"]
        key = ec2.get_ebs_default_kms_key_id()["KmsKeyId"]
        if region == seeded["encryption_region"]["region"]:
            assert on and key == seeded["encryption_region"]["kms_key_arn"]
        else:
            assert not on and key == "alias/aws/ebs"


def test_organization_has_no_allocate_address_guardrail(sandbox, seeded):
    org = sandbox.client("organizations", HOME)
    root = seeded["organization"]["root"]
    (listed,) = org.list_roots()["Roots"]
    assert {"Type": "SERVICE_CONTROL_POLICY", "Status": "ENABLED"} in listed["PolicyTypes"]
    attached = org.list_policies_for_target(TargetId=root, Filter="SERVICE_CONTROL_POLICY")["Policies"]
    assert {p["Name"] for p in attached} == {"FullAWSAccess", "deny-leave-organization"}
    for policy in attached:
        content = org.describe_policy(PolicyId=policy["Id"])["Policy"]["Content"]
        assert "AllocateAddress" not in content and '"ec2:' not in content
    parents = org.list_parents(ChildId=seeded["organization"]["member_account"])["Parents"]
    assert parents == [{"Id": seeded["organization"]["ou"], "Type": "ORGANIZATIONAL_UNIT"}]
    # The OU carries harden's Elastic IP SCP, edited by hand to be weaker.
    on_ou = org.list_policies_for_target(TargetId=seeded["organization"]["ou"], Filter="SERVICE_CONTROL_POLICY")
    assert {p["Name"] for p in on_ou["Policies"]} == {"FullAWSAccess", "harden-deny-eip-allocation"}


def test_verify_names_the_seeded_weaknesses(sandbox, seeded):
    """The weakened harden SCP, the confused-deputy bucket policy and the shared EBS key each fail,
    with the reason."""
    from provisioner.aws import AwsSession
    from provisioner.baseline import parse_baseline
    from provisioner.sandbox import suggested_config
    from provisioner.verify import run_verify

    config = suggested_config(seeded)
    config["scp"]["targets"] = [seeded["organization"]["ou"]]
    with sandbox.activated():
        report = run_verify(AwsSession(region=HOME), parse_baseline(config),
                            controls=["scp.allocate_address", "cloudtrail.bucket", "ebs.default_encryption"])
    # The one region with default encryption on fails only for its key policy, which lets another account in.
    encryption = seeded["encryption_region"]
    [ebs] = [f for f in report.findings if f.control == "ebs.default_encryption" and f.region == encryption["region"]]
    assert ebs.status == "fail" and ebs.message == (
        f"the policy of the default key {encryption['kms_key_arn']} lets principals outside the account in: "
        f"{encryption['key_policy_lets_in']}")
    by_control = {f.control: f for f in report.findings if f.status == "fail"}
    scp = by_control["scp.allocate_address"]
    assert "weaker than harden's 'harden-deny-eip-allocation'" in scp.message
    assert "globalaccelerator:" in scp.message or "lightsail:" in scp.message
    bucket = [f for f in report.findings if f.control == "cloudtrail.bucket" and seeded["trail"]["bucket"] in f.resource]
    assert bucket and "stringnotequals, which does not confine it to the trail" in bucket[0].message


def test_topic_subscription_is_pending(sandbox, seeded):
    sns = sandbox.client("sns", HOME)
    (subscription,) = sns.list_subscriptions_by_topic(TopicArn=seeded["topic"]["arn"])["Subscriptions"]
    assert subscription["SubscriptionArn"] == "PendingConfirmation"
    assert subscription["Endpoint"] == seeded["topic"]["pending_subscription"]


# =============================================================================================
# The APIs added to the emulator
# =============================================================================================

def test_lookup_events_answers_from_the_seeded_history(sandbox, seeded):
    cloudtrail = sandbox.client("cloudtrail", HOME)
    by_name = [{"AttributeKey": "EventName", "AttributeValue": "AllocateAddress"}]
    response = cloudtrail.lookup_events(LookupAttributes=by_name)
    _valid(cloudtrail, "LookupEvents", response)
    events = response["Events"]
    times = [e["EventTime"] for e in events]
    assert times == sorted(times, reverse=True)             # newest first, as CloudTrail answers
    assert {e["Username"] for e in events} == {"alice", UNKNOWN_USER}

    unknown = [e for e in events if e["Username"] == UNKNOWN_USER]
    (record,) = [json.loads(e["CloudTrailEvent"]) for e in unknown]
    assert record["userIdentity"]["arn"] == seeded["iam"]["unknown_user_arn"]
    assert record["sourceIPAddress"] == ODD_IP and record["awsRegion"] == HOME
    assert record["responseElements"]["allocationId"] == seeded["per_region"][HOME]["addresses"]["idle"]["allocation_id"]
    assert unknown[0]["Resources"] == [{"ResourceType": "AWS::EC2::EIP",
                                        "ResourceName": record["responseElements"]["allocationId"]}]

    # A look-back window leaves the 20-day-old allocation out; other regions have their own history.
    week = cloudtrail.lookup_events(LookupAttributes=by_name,
                                    StartTime=datetime.now(timezone.utc) - timedelta(days=7))["Events"]
    assert len(week) == len(events) - 1
    other = sandbox.client("cloudtrail", REGIONS[1]).lookup_events(LookupAttributes=by_name)["Events"]
    assert len(other) == 2 and all(json.loads(e["CloudTrailEvent"])["awsRegion"] == REGIONS[1] for e in other)
    by_user = cloudtrail.lookup_events(LookupAttributes=[{"AttributeKey": "Username",
                                                          "AttributeValue": UNKNOWN_USER}])["Events"]
    assert [e["EventId"] for e in by_user] == [e["EventId"] for e in unknown]


def test_lookup_events_paginates_and_rejects_bad_requests(sandbox, seeded):
    cloudtrail = sandbox.client("cloudtrail", HOME)
    pages = list(cloudtrail.get_paginator("lookup_events").paginate(PaginationConfig={"PageSize": 1}))
    assert len(pages) == 3 and all(len(p["Events"]) == 1 for p in pages)
    assert len({p["Events"][0]["EventId"] for p in pages}) == 3
    with pytest.raises(botocore.exceptions.ClientError) as err:
        cloudtrail.lookup_events(LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "A"},
                                                   {"AttributeKey": "Username", "AttributeValue": "B"}])
    assert err.value.response["Error"]["Code"] == "InvalidLookupAttributesException"
    now = datetime.now(timezone.utc)
    with pytest.raises(botocore.exceptions.ClientError) as err:
        cloudtrail.lookup_events(StartTime=now, EndTime=now - timedelta(hours=1))
    assert err.value.response["Error"]["Code"] == "InvalidTimeRangeException"


def test_delivery_channel_status_follows_what_exists(sandbox, seeded):
    config = sandbox.client("config", HOME)
    response = config.describe_delivery_channel_status()
    _valid(config, "DescribeDeliveryChannelStatus", response)
    (status,) = response["DeliveryChannelsStatus"]
    assert status["name"] == seeded["config"]["delivery_channel"]
    assert status["configHistoryDeliveryInfo"]["lastStatus"] == "Success"
    with pytest.raises(botocore.exceptions.ClientError) as err:
        config.describe_delivery_channel_status(DeliveryChannelNames=["nope"])
    assert err.value.response["Error"]["Code"] == "NoSuchDeliveryChannelException"

    # Outside the seed's regions: a channel to a bucket that does not exist fails once recording...
    other = sandbox.client("config", "us-west-2")
    other.put_configuration_recorder(ConfigurationRecorder={"name": "default", "roleARN": seeded["iam"]["config_role_arn"]})
    other.put_delivery_channel(DeliveryChannel={"name": "default", "s3BucketName": "no-such-bucket-anywhere"})
    (idle,) = other.describe_delivery_channel_status()["DeliveryChannelsStatus"]
    assert idle["configSnapshotDeliveryInfo"]["lastStatus"] == "Not_Applicable"  # ...not before
    other.start_configuration_recorder(ConfigurationRecorderName="default")
    response = other.describe_delivery_channel_status()
    _valid(other, "DescribeDeliveryChannelStatus", response)
    failing = response["DeliveryChannelsStatus"][0]["configSnapshotDeliveryInfo"]
    assert failing["lastStatus"] == "Failure" and failing["lastErrorCode"] == "NoSuchBucket"


def test_ebs_default_kms_key_id_shape(sandbox, seeded):
    ec2 = sandbox.client("ec2", REGIONS[2])
    response = ec2.get_ebs_default_kms_key_id()
    _valid(ec2, "GetEbsDefaultKmsKeyId", response)
    assert response["KmsKeyId"] == "alias/aws/ebs"


# =============================================================================================
# Lifecycle
# =============================================================================================

def test_env_points_at_the_endpoint(sandbox):
    env = sandbox.env()
    assert env["AWS_ENDPOINT_URL"] == sandbox.endpoint_url.rstrip("/")
    assert env["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
    os.environ["AWS_PROFILE"] = "does-not-exist"
    try:
        with sandbox.activated():
            assert "AWS_PROFILE" not in os.environ
            assert os.environ["AWS_ENDPOINT_URL"] == sandbox.endpoint_url
        assert os.environ["AWS_PROFILE"] == "does-not-exist"
    finally:
        os.environ.pop("AWS_PROFILE", None)


def test_a_second_sandbox_keeps_the_added_apis_for_the_first(sandbox, seeded):
    with Sandbox() as second:
        assert second.endpoint_url != sandbox.endpoint_url
    assert sandbox_emulator.installed()
    assert sandbox.client("ec2", HOME).get_ebs_default_kms_key_id()["KmsKeyId"] == "alias/aws/ebs"


def test_reset_wipes_and_the_seed_is_repeatable(sandbox, seeded):
    shape = _layout(seeded)
    sandbox.reset()
    assert sandbox.client("cloudtrail", HOME).describe_trails()["trailList"] == []
    assert sandbox.client("cloudtrail", HOME).lookup_events()["Events"] == []
    with pytest.raises(botocore.exceptions.ClientError):
        sandbox.client("organizations", HOME).describe_organization()
    _state["summary"] = again = sandbox.seed(REGIONS, HOME)
    assert _layout(again) == shape                      # same layout; only the ids differ


def _layout(summary: dict) -> dict:
    return {region: {k: sorted(v) if isinstance(v, dict) else v for k, v in facts.items()
                     if k in ("vpcs", "instances", "volumes", "addresses", "running", "stopped",
                              "ebs_encryption_by_default")}
            for region, facts in summary["per_region"].items()} | {"events": len(summary["events"])}


def test_serve_prints_exports_and_stops_on_interrupt():
    proc = subprocess.Popen([sys.executable, "-c", "from provisioner.sandbox import serve; serve(seed=False, port=None)"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={k: v for k, v in os.environ.items() if not k.startswith("AWS_")})
    try:
        first = proc.stdout.readline()
        assert first.startswith("export AWS_ENDPOINT_URL=http://127.0.0.1:"), proc.stderr.read()
        url = first.strip().split("=", 1)[1]
        import urllib.request

        urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"), timeout=10).read()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        rest = proc.stdout.read()
        assert "export AWS_ACCESS_KEY_ID=testing" in rest and "unset AWS_PROFILE" in rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
