"""config.* against the emulator. describe_delivery_channel_status is not in the emulator, and
it cannot produce a failed recording or a DAILY recorder: there botocore's Stubber answers for
the session's config client (validating params and responses against the real service model),
fed with the emulator's own answers for the other calls of that client."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from botocore.stub import Stubber

from provisioner.baseline import parse_baseline
from provisioner.controls import CheckContext
from provisioner.controls import config as cfg
from provisioner.verify import run_verify

HOME = "us-east-1"
OTHER = "eu-west-1"
ACCOUNT = "123456789012"
LOG_BUCKET = f"harden-logs-{ACCOUNT}-{HOME}"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/config.amazonaws.com/AWSServiceRoleForConfig"


def _ctx(aws, control_id, region=HOME, baseline=None):
    return CheckContext(aws=aws, baseline=baseline or parse_baseline({}), region=region,
                        account_id=aws.account_id(), control_id=control_id)


def _one(findings):
    assert len(findings) == 1, findings
    return findings[0]


def _bucket(aws, name=LOG_BUCKET):
    aws.client("s3", HOME).create_bucket(Bucket=name)


def _recorder(aws, region=HOME, global_types=None, all_supported=True, channel_bucket=LOG_BUCKET, start=True):
    """The recorder the baseline's module creates: all types, global ones in the home region."""
    client = aws.client("config", region)
    group = {"allSupported": True, "includeGlobalResourceTypes": region == HOME if global_types is None else global_types}
    if not all_supported:
        group = {"allSupported": False, "resourceTypes": ["AWS::EC2::Instance"]}
    client.put_configuration_recorder(ConfigurationRecorder={"name": "default", "roleARN": ROLE,
                                                             "recordingGroup": group})
    if channel_bucket:
        client.put_delivery_channel(DeliveryChannel={
            "name": "default", "s3BucketName": channel_bucket, "s3KeyPrefix": "config",
            "configSnapshotDeliveryProperties": {"deliveryFrequency": "TwentyFour_Hours"}})
        if start:
            client.start_configuration_recorder(ConfigurationRecorderName="default")


def _without_metadata(resp):
    return {k: v for k, v in resp.items() if k != "ResponseMetadata"}


def _emulator_answers(client):
    return {
        "recorders": _without_metadata(client.describe_configuration_recorders()),
        "statuses": _without_metadata(client.describe_configuration_recorder_status()),
        "channels": _without_metadata(client.describe_delivery_channels()),
    }


# -- config.recorder ---------------------------------------------------------------------------

@pytest.mark.parametrize("region,global_types,note", [
    (HOME, True, False),
    (OTHER, False, False),
    # Recording global types outside the home region too only duplicates items: a pass, noted.
    (OTHER, True, True),
])
def test_recorder_passes(aws, region, global_types, note):
    _bucket(aws)
    _recorder(aws, region, global_types=global_types)
    finding = _one(cfg.recorder(_ctx(aws, "config.recorder", region)))
    assert finding.status == "pass", finding.message
    assert finding.resource == "default" and finding.region == region
    ev = finding.evidence
    assert ev["recording"] and ev["all_supported"] and ev["delivery_channels"] == ["default"]
    assert ev["include_global_resource_types"] is global_types
    assert ev["recording_frequency"] == "CONTINUOUS"
    assert ("note" in ev) is note


def test_recorder_home_region_without_global_types_fails(aws):
    _bucket(aws)
    _recorder(aws, HOME, global_types=False)
    finding = _one(cfg.recorder(_ctx(aws, "config.recorder")))
    assert finding.status == "fail" and finding.resource == "default"
    assert "does not record global resource types" in finding.message
    assert finding.evidence["home_region"] is True


def test_no_recorder_fails_on_the_region(aws):
    finding = _one(cfg.recorder(_ctx(aws, "config.recorder", OTHER)))
    assert finding.status == "fail" and finding.resource == OTHER
    assert "no AWS Config recorder" in finding.message


@pytest.mark.parametrize("setup,expected", [
    (dict(start=False), ["not recording"]),
    (dict(all_supported=False), ["does not record all supported resource types"]),
    # A recorder cannot be started without a channel (in AWS as in the emulator).
    (dict(channel_bucket=None), ["not recording", "no delivery channel"]),
])
def test_recorder_gaps(aws, setup, expected):
    _bucket(aws)
    _recorder(aws, OTHER, **setup)
    finding = _one(cfg.recorder(_ctx(aws, "config.recorder", OTHER)))
    assert finding.status == "fail" and finding.resource == "default"
    gaps = finding.message.split(": ", 1)[1].split("; ")
    assert [g for g in gaps if any(g.startswith(e) for e in expected)] == gaps and len(gaps) == len(expected)


def _stubbed_recorder_check(aws, change, calls=("recorders", "statuses", "channels")):
    _bucket(aws)
    _recorder(aws, HOME)
    client = aws.client("config", HOME)
    answers = _emulator_answers(client)
    change(answers)
    operations = {"recorders": "describe_configuration_recorders",
                  "statuses": "describe_configuration_recorder_status",
                  "channels": "describe_delivery_channels"}
    with Stubber(client) as stub:
        for call in calls:
            stub.add_response(operations[call], answers[call], {})
        findings = cfg.recorder(_ctx(aws, "config.recorder"))
        stub.assert_no_pending_responses()
    return _one(findings)


def test_recorder_last_status_failure_fails(aws):
    def failed(answers):  # the emulator never fails to record: the state AWS reports instead
        answers["statuses"]["ConfigurationRecordersStatus"][0].update(
            lastStatus="Failure", lastErrorCode="AccessDenied", lastErrorMessage="role cannot read")

    finding = _stubbed_recorder_check(aws, failed)
    assert finding.status == "fail" and "last recording attempt failed (AccessDenied)" in finding.message


def test_recorder_daily_recording_fails(aws):
    def daily(answers):  # the emulator does not store recordingMode
        answers["recorders"]["ConfigurationRecorders"][0]["recordingMode"] = {"recordingFrequency": "DAILY"}

    finding = _stubbed_recorder_check(aws, daily)
    assert finding.status == "fail" and "records DAILY, not CONTINUOUS" in finding.message


def test_recorder_ignores_service_linked_recorders(aws):
    def service_linked_only(answers):
        for key, item in (("recorders", "ConfigurationRecorders"), ("statuses", "ConfigurationRecordersStatus")):
            for entry in answers[key][item]:
                entry.update(name="AWSConfigurationRecorderForSecurityHub",
                             servicePrincipal="securityhub.amazonaws.com")

    finding = _stubbed_recorder_check(aws, service_linked_only, calls=("recorders",))
    assert finding.status == "fail" and finding.resource == HOME and "no AWS Config recorder" in finding.message


def test_recorder_and_delivery_share_lookups(aws):
    _bucket(aws)
    _recorder(aws, OTHER, channel_bucket=None)  # no channel: delivery needs no status call
    ctx = _ctx(aws, "config.recorder", OTHER)
    before = aws.calls.by_operation()
    cfg.recorder(ctx)
    ctx.control_id = "config.delivery"
    cfg.delivery(ctx)
    after = aws.calls.by_operation()
    for op in ("DescribeConfigurationRecorders", "DescribeConfigurationRecorderStatus", "DescribeDeliveryChannels"):
        assert after[f"config:{op}"] - before.get(f"config:{op}", 0) == 1, op


def test_disabled_in_baseline_is_skipped(aws):
    report = run_verify(aws, parse_baseline({"regions": [HOME, OTHER], "config": {"enabled": False}}),
                        controls=["config"])
    assert sorted((f.control, f.region, f.status) for f in report.findings) == sorted(
        (control, region, "skipped") for control in ("config.recorder", "config.delivery") for region in (HOME, OTHER))
    assert all("config.enabled = false" in f.message for f in report.findings)


# -- config.delivery ---------------------------------------------------------------------------

def _status(history="Success", snapshot="Success", error=None):
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)

    def info(state):
        out = {"lastStatus": state, "lastAttemptTime": when}
        if state == "Success":
            out["lastSuccessfulTime"] = when
        if state == "Failure":
            out.update(lastErrorCode=error, lastErrorMessage="cannot write")
        return out

    return {"DeliveryChannelsStatus": [{"name": "default", "configHistoryDeliveryInfo": info(history),
                                        "configSnapshotDeliveryInfo": info(snapshot),
                                        "configStreamDeliveryInfo": {"lastStatus": "Not_Applicable"}}]}


def _delivery(aws, status, region=HOME, baseline=None):
    client = aws.client("config", region)
    channels = _without_metadata(client.describe_delivery_channels())
    # describe_delivery_channel_status is not implemented by the emulator: Stubber answers it,
    # and (being the same client) replays the emulator's describe_delivery_channels answer.
    with Stubber(client) as stub:
        stub.add_response("describe_delivery_channels", channels, {})
        stub.add_response("describe_delivery_channel_status", status, {})
        findings = cfg.delivery(_ctx(aws, "config.delivery", region, baseline))
        stub.assert_no_pending_responses()
    return _one(findings)


def test_delivery_to_the_baseline_bucket_passes(aws):
    _bucket(aws)
    _recorder(aws, OTHER)
    finding = _delivery(aws, _status(), OTHER)
    assert finding.status == "pass" and finding.resource == "default" and finding.region == OTHER
    ev = finding.evidence
    assert ev["bucket"] == LOG_BUCKET and ev["is_baseline_bucket"] is True and ev["bucket_state"] == "exists"
    assert ev["config_history_delivery"] == {"last_status": "Success", "last_error": None,
                                             "last_successful_time": "2026-01-02T03:04:05+00:00"}


def test_delivery_to_another_existing_bucket_passes_and_says_so(aws):
    _bucket(aws, "central-config-bucket")
    _recorder(aws, channel_bucket="central-config-bucket")
    finding = _delivery(aws, _status())
    assert finding.status == "pass"
    assert "not the baseline's bucket" in finding.message and LOG_BUCKET in finding.message
    assert finding.evidence["is_baseline_bucket"] is False


def test_delivery_bucket_name_from_the_baseline(aws):
    _bucket(aws, "my-log-bucket")
    _recorder(aws, channel_bucket="my-log-bucket")
    baseline = parse_baseline({"cloudtrail": {"bucket_name": "my-log-bucket"}})
    finding = _delivery(aws, _status(), baseline=baseline)
    assert finding.status == "pass" and finding.evidence["is_baseline_bucket"] is True


def test_delivery_to_a_missing_bucket_fails(aws):
    _recorder(aws, channel_bucket=LOG_BUCKET)  # the emulator, unlike AWS, takes a missing bucket
    finding = _delivery(aws, _status())
    assert finding.status == "fail" and f"its bucket {LOG_BUCKET} does not exist" in finding.message
    assert finding.evidence["bucket_state"] == "not found"


@pytest.mark.parametrize("history,snapshot,expected", [
    ("Failure", "Success", "last configuration history delivery failed (NoSuchBucket)"),
    ("Success", "Failure", "last configuration snapshot delivery failed (NoSuchBucket)"),
])
def test_delivery_failure_fails(aws, history, snapshot, expected):
    _bucket(aws)
    _recorder(aws)
    finding = _delivery(aws, _status(history, snapshot, "NoSuchBucket"))
    assert finding.status == "fail" and finding.resource == "default"
    assert expected in finding.message


def test_no_delivery_channel_fails_on_the_region(aws):
    _recorder(aws, OTHER, channel_bucket=None)
    finding = _one(cfg.delivery(_ctx(aws, "config.delivery", OTHER)))
    assert finding.status == "fail" and finding.resource == OTHER
    assert LOG_BUCKET in finding.message and finding.evidence["baseline_bucket"] == LOG_BUCKET
