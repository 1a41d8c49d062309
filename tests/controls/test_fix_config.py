"""The config.recorder and config.delivery fixes against the emulator: seed the failure,
remediate with apply, the real checks pass after; a second run has nothing to do; a dry run
leaves the account as it was.

Stubbed (botocore's Stubber, which validates against the real service model), and only these:
describe_delivery_channel_status, which the emulator lacks and config.delivery's check calls
whenever a region has a channel; and, in one test, the recorder describe/put calls, because the
emulator neither stores nor returns recordingMode (a DAILY recorder cannot be seeded there)."""

from __future__ import annotations

from provisioner.baseline import parse_baseline
from provisioner.converge import KEY_CALLS
from provisioner.controls import config as cfg
from provisioner.remediate import run_remediation
from tests.controls.helpers import assert_converges
from tests.stubbing import OperationStubber

HOME = "us-east-1"
OTHER = "eu-west-1"
ACCOUNT = "123456789012"
BUCKET = f"harden-logs-{ACCOUNT}-{HOME}"
BOTH = ["config.recorder", "config.delivery"]
EMULATED_SLR_PATH = "/aws-service-role/config.amazonaws.com/"


def _baseline(regions=(HOME,), **config):
    return parse_baseline({"home_region": HOME, "regions": list(regions), "config": config})


def _bucket(aws):
    aws.client("s3", HOME).create_bucket(Bucket=BUCKET)


def _without_metadata(resp):
    return {k: v for k, v in resp.items() if k != "ResponseMetadata"}


def _state(aws, regions=(HOME,)) -> dict:
    """Recorders, their status, channels in each region, and the Config roles in IAM."""
    out = {}
    for region in regions:
        client = aws.client("config", region)
        statuses = client.describe_configuration_recorder_status()["ConfigurationRecordersStatus"]
        out[region] = {
            "recorders": client.describe_configuration_recorders()["ConfigurationRecorders"],
            "recording": {s["name"]: s["recording"] for s in statuses},
            "channels": client.describe_delivery_channels()["DeliveryChannels"],
        }
    out["roles"] = sorted(r["Arn"] for r in aws.client("iam").list_roles(PathPrefix=EMULATED_SLR_PATH)["Roles"])
    return out


def _channel_status(name="default"):
    ok = {"lastStatus": "Success"}
    return {"DeliveryChannelsStatus": [{"name": name, "configHistoryDeliveryInfo": ok,
                                        "configSnapshotDeliveryInfo": ok,
                                        "configStreamDeliveryInfo": {"lastStatus": "Not_Applicable"}}]}


class ChannelStatus:
    """Answers describe_delivery_channel_status (not in the emulator) in each region: `calls`
    answers per region, all of which must be used."""

    def __init__(self, aws, regions=(HOME,), calls=2, name="default"):
        self.stubbers = [OperationStubber(aws.client("config", r), "DescribeDeliveryChannelStatus") for r in regions]
        for stub in self.stubbers:
            for _ in range(calls):
                stub.add_response("describe_delivery_channel_status", _channel_status(name), {})

    def __enter__(self):
        for stub in self.stubbers:
            stub.activate()
        return self

    def __exit__(self, *exc):
        for stub in self.stubbers:
            stub.deactivate()
        if exc[0] is None:
            for stub in self.stubbers:
                stub.assert_no_pending_responses()


# -- a region without AWS Config ------------------------------------------------------------------

def test_empty_regions_get_the_module_recorder_channel_role_and_key(aws):
    _bucket(aws)
    regions = (HOME, OTHER)
    # No channel before: the status call happens after apply and in the second run only.
    with ChannelStatus(aws, regions, calls=2):
        dry, applied = assert_converges(aws, _baseline(regions), BOTH, expected_actions=4,
                                        state=lambda: _state(aws, regions))

    delivery = next(a for a in dry.actions if a.control == "config.delivery" and a.region == HOME)
    assert delivery.resource == HOME
    # No cloudtrail key yet: it is adopted or created first (converge.ensure_key's calls).
    assert delivery.calls == KEY_CALLS + ["iam:CreateRole", "config:PutConfigurationRecorder",
                                          "config:PutDeliveryChannel", "config:StartConfigurationRecorder"]
    assert f"s3://{BUCKET}/config/ every TwentyFour_Hours" in delivery.description
    # Delivery runs first in each region (it needs the recorder, so it puts and starts it); the
    # recorder's action then finds nothing left.
    by_control = {(r.action.control, r.action.region): r.message for r in applied.results}
    assert by_control[("config.recorder", HOME)] == "nothing left to do (an earlier action did it)"

    state = _state(aws, regions)
    assert state["roles"] == []  # no service-linked role: the account root module's role
    role = aws.client("iam").get_role(RoleName="harden-config-recorder")["Role"]["Arn"]
    key = aws.client("kms", HOME).describe_key(KeyId="alias/harden-cloudtrail")["KeyMetadata"]["Arn"]
    for region in regions:
        [recorder] = state[region]["recorders"]
        assert recorder["name"] == "default" and recorder["roleARN"] == role
        assert recorder["recordingGroup"]["allSupported"] is True
        # Global resource types (IAM) are recorded once, in the home region.
        assert recorder["recordingGroup"]["includeGlobalResourceTypes"] is (region == HOME)
        assert state[region]["recording"] == {"default": True}
        [channel] = state[region]["channels"]
        assert channel["name"] == "default" and channel["s3BucketName"] == BUCKET
        assert channel["s3KeyPrefix"] == "config" and channel["s3KmsKeyArn"] == key
        assert channel["configSnapshotDeliveryProperties"] == {"deliveryFrequency": "TwentyFour_Hours"}


def test_the_baseline_role_and_key_are_used_when_terraform_made_them(aws):
    _bucket(aws)
    role = aws.client("iam").create_role(RoleName="harden-config-recorder", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    kms = aws.client("kms", HOME)
    key = kms.create_key(Description="baseline key")["KeyMetadata"]["Arn"]
    kms.create_alias(AliasName="alias/harden-cloudtrail", TargetKeyId=key)
    with ChannelStatus(aws, calls=2):
        dry, applied = assert_converges(aws, _baseline(delivery_frequency="One_Hour"), BOTH, expected_actions=2,
                                        state=lambda: _state(aws))
    assert "iam:CreateServiceLinkedRole" not in dry.actions[0].calls
    assert "iam:UpdateAssumeRolePolicy (if it differs)" in dry.actions[0].calls
    # The role's empty trust policy, tags and delivery policy are brought to the account root module's.
    messages = " ".join(r.message for r in applied.results)
    assert "brought the existing role harden-config-recorder to the baseline: trust policy replaced" in messages
    assert "inline policy deliver-to-log-bucket added" in messages, messages
    trust = aws.client("iam").get_role(RoleName="harden-config-recorder")["Role"]["AssumeRolePolicyDocument"]
    assert [s["Principal"] for s in trust["Statement"]] == [{"Service": "config.amazonaws.com"}]
    assert "role the baseline's harden-config-recorder" in dry.actions[0].description
    state = _state(aws)
    assert state["roles"] == []  # no service-linked role was created
    assert state[HOME]["recorders"][0]["roleARN"] == role
    [channel] = state[HOME]["channels"]
    assert channel["s3KmsKeyArn"] == key
    assert channel["configSnapshotDeliveryProperties"] == {"deliveryFrequency": "One_Hour"}


def test_without_the_log_bucket_the_action_creates_it_as_the_module_would(aws):
    with ChannelStatus(aws, calls=1):
        run = run_remediation(aws, _baseline(), controls=["config.delivery"], apply=True)
    [result] = run.results
    assert "does not exist yet: created first, with its key alias/harden-cloudtrail" in result.action.description
    assert result.status == "applied", result.message
    s3 = aws.client("s3", HOME)
    rule = s3.get_bucket_encryption(Bucket=BUCKET)["ServerSideEncryptionConfiguration"]["Rules"][0]
    key = aws.client("kms", HOME).describe_key(KeyId="alias/harden-cloudtrail")["KeyMetadata"]["Arn"]
    assert rule["ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"] == key
    assert "AWSConfigBucketDelivery" in s3.get_bucket_policy(Bucket=BUCKET)["Policy"]
    assert _state(aws)[HOME]["channels"][0]["s3KmsKeyArn"] == key


# -- existing recorders and channels: fixed in place ----------------------------------------------

def test_a_recorder_and_channel_under_other_names_are_fixed_in_place(aws):
    _bucket(aws)
    client = aws.client("config", HOME)
    client.put_configuration_recorder(ConfigurationRecorder={
        "name": "my-recorder", "roleARN": f"arn:aws:iam::{ACCOUNT}:role/hand-made",
        "recordingGroup": {"allSupported": False, "resourceTypes": ["AWS::EC2::Instance"]}})
    # The emulator takes a channel to a missing bucket (AWS would not): that bucket is gone.
    client.put_delivery_channel(DeliveryChannel={"name": "my-channel", "s3BucketName": "gone-bucket",
                                                 "snsTopicARN": f"arn:aws:sns:{HOME}:{ACCOUNT}:config-news"})
    client.start_configuration_recorder(ConfigurationRecorderName="my-recorder")
    # A channel exists from the start: the dry run, the apply (before and after) and the second run
    # each read its status. (With three answers the second run could not check the channel and
    # still said "clean": remediate now exits 3 for that.)
    with ChannelStatus(aws, calls=4, name="my-channel"):
        dry, _ = assert_converges(aws, _baseline(), BOTH, expected_actions=2, state=lambda: _state(aws))
    assert {(a.control, a.resource) for a in dry.actions} == {("config.recorder", "my-recorder"),
                                                              ("config.delivery", "my-channel")}
    recorder_action = next(a for a in dry.actions if a.control == "config.recorder")
    assert recorder_action.calls == KEY_CALLS + ["iam:CreateRole", "config:PutConfigurationRecorder"]

    state = _state(aws)
    [recorder] = state[HOME]["recorders"]
    assert recorder["name"] == "my-recorder" and recorder["recordingGroup"]["allSupported"] is True
    assert state[HOME]["recording"] == {"my-recorder": True}
    [channel] = state[HOME]["channels"]
    assert channel["name"] == "my-channel" and channel["s3BucketName"] == BUCKET
    assert channel["snsTopicARN"] == f"arn:aws:sns:{HOME}:{ACCOUNT}:config-news"  # kept


def test_a_stopped_recorder_is_only_started(aws):
    _bucket(aws)
    client = aws.client("config", OTHER)
    client.put_configuration_recorder(ConfigurationRecorder={
        "name": "default", "roleARN": f"arn:aws:iam::{ACCOUNT}:role/hand-made",
        "recordingGroup": {"allSupported": True, "includeGlobalResourceTypes": False}})
    client.put_delivery_channel(DeliveryChannel={"name": "default", "s3BucketName": BUCKET, "s3KeyPrefix": "config"})
    dry, _ = assert_converges(aws, _baseline((HOME, OTHER)), ["config.recorder"], expected_actions=2,
                              state=lambda: _state(aws, (HOME, OTHER)))
    started = next(a for a in dry.actions if a.region == OTHER)
    assert started.calls == ["config:StartConfigurationRecorder"]
    # The role someone chose is kept when the recorder itself needs no change.
    assert _state(aws, (OTHER,))[OTHER]["recorders"][0]["roleARN"] == f"arn:aws:iam::{ACCOUNT}:role/hand-made"


def test_a_daily_recorder_is_put_back_to_continuous(aws):
    _bucket(aws)
    client = aws.client("config", HOME)
    client.put_configuration_recorder(ConfigurationRecorder={
        "name": "default", "roleARN": f"arn:aws:iam::{ACCOUNT}:role/hand-made",
        "recordingGroup": {"allSupported": True, "includeGlobalResourceTypes": True}})
    client.put_delivery_channel(DeliveryChannel={"name": "default", "s3BucketName": BUCKET, "s3KeyPrefix": "config"})
    client.start_configuration_recorder(ConfigurationRecorderName="default")
    stored = _without_metadata(client.describe_configuration_recorders())
    daily = {"ConfigurationRecorders": [{**stored["ConfigurationRecorders"][0],
                                         "recordingMode": {"recordingFrequency": "DAILY"}}]}
    role = aws.client("iam").create_role(RoleName="harden-config-recorder",
                                         AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    # The emulator drops recordingMode: the recorder is described as DAILY (verify, planner, the
    # action's re-read), the put is checked for CONTINUOUS, then the emulator's own answer (no
    # mode: the API default, CONTINUOUS) is what verify reads after.
    with OperationStubber(client, "DescribeConfigurationRecorders", "PutConfigurationRecorder") as stub:
        for _ in range(3):
            stub.add_response("describe_configuration_recorders", daily, {})
        stub.add_response("put_configuration_recorder", {}, {"ConfigurationRecorder": {
            "name": "default", "roleARN": role,
            "recordingGroup": {"allSupported": True, "includeGlobalResourceTypes": True},
            "recordingMode": {"recordingFrequency": "CONTINUOUS"}}})
        stub.add_response("describe_configuration_recorders", stored, {})
        run = run_remediation(aws, _baseline(), controls=["config.recorder"], apply=True)
        stub.assert_no_pending_responses()
    [result] = run.results
    assert result.status == "applied" and result.action.calls == ["config:PutConfigurationRecorder"]
    assert run.after.exit_code() == 0


def test_disabled_config_plans_nothing(aws):
    # config.enabled = false: both checks skip, so there is no failure to fix.
    run = run_remediation(aws, _baseline(enabled=False), controls=BOTH, apply=True)
    assert run.actions == [] and run.exit_code() == 0
    assert _state(aws)[HOME]["recorders"] == []


def test_desired_channel_keeps_a_key_only_without_the_baseline_key():
    baseline = _baseline()
    ctx = type("Ctx", (), {"baseline": baseline, "account_id": ACCOUNT})()
    current = {"name": "c", "s3KmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/theirs"}
    assert cfg._desired_channel(ctx, "c", current, None)["s3KmsKeyArn"].endswith("/theirs")
    assert cfg._desired_channel(ctx, "c", current, "arn:aws:kms:us-east-1:123456789012:key/ours")[
        "s3KmsKeyArn"].endswith("/ours")
