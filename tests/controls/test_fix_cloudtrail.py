"""The cloudtrail.multi_region and cloudtrail.log_validation fixes against the emulator: seed the
failure, remediate with apply, the real checks pass after; a second run has nothing to do; a dry
run leaves every trail as it was. Everything here is emulated (no Stubber needed: CloudTrail,
S3, KMS, Logs and IAM calls of these fixes all exist in the emulator)."""

from __future__ import annotations

import json

import pytest

from provisioner.baseline import parse_baseline
from provisioner.controls import CheckContext
from provisioner.controls import cloudtrail as ct
from provisioner.findings import Finding
from provisioner.remediate import run_remediation
from tests.controls.helpers import assert_converges
from tests.stubbing import OperationStubber

HOME = "us-east-1"
ACCOUNT = "123456789012"
BUCKET = f"harden-logs-{ACCOUNT}-{HOME}"
TRAIL = "harden-trail"
TRAIL_ARN = f"arn:aws:cloudtrail:{HOME}:{ACCOUNT}:trail/{TRAIL}"
BOTH = ["cloudtrail.multi_region", "cloudtrail.log_validation"]
DATA_SELECTOR = {"ReadWriteType": "All", "IncludeManagementEvents": False,
                 "DataResources": [{"Type": "AWS::S3::Object", "Values": ["arn:aws:s3:::payroll/"]}]}


def _baseline(**settings):
    return parse_baseline({"home_region": HOME, "regions": [HOME], **settings})


def _module_policy(trail_arn=TRAIL_ARN, bucket=BUCKET, prefix="cloudtrail"):
    """The grants the cloudtrail module's bucket policy gives CloudTrail."""
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "CloudTrailAclCheck", "Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
         "Action": "s3:GetBucketAcl", "Resource": f"arn:aws:s3:::{bucket}",
         "Condition": {"StringEquals": {"aws:SourceArn": trail_arn}}},
        {"Sid": "CloudTrailWrite", "Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
         "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{bucket}/{prefix}/AWSLogs/{ACCOUNT}/*",
         "Condition": {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control", "aws:SourceArn": trail_arn}}},
    ]}


def _bucket(aws, policy=None):
    s3 = aws.client("s3", HOME)
    s3.create_bucket(Bucket=BUCKET)
    if policy is not None:
        s3.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps(policy))


def _trail(aws, name=TRAIL, multi=True, global_events=True, validation=True, logging=True, selectors=None):
    client = aws.client("cloudtrail", HOME)
    arn = client.create_trail(Name=name, S3BucketName=BUCKET, IsMultiRegionTrail=multi,
                              IncludeGlobalServiceEvents=global_events, EnableLogFileValidation=validation)["TrailARN"]
    if logging:
        client.start_logging(Name=name)
    client.put_event_selectors(TrailName=name, **(selectors or {"EventSelectors": [ct.MANAGEMENT_SELECTOR]}))
    return arn


def _state(aws) -> list[dict]:
    """Every trail as the account shows it: settings, logging, selectors (no timestamps)."""
    client = aws.client("cloudtrail", HOME)
    out = []
    for trail in client.describe_trails(includeShadowTrails=True)["trailList"]:
        selectors = client.get_event_selectors(TrailName=trail["Name"])
        out.append({**trail, "IsLogging": client.get_trail_status(Name=trail["Name"])["IsLogging"],
                    "EventSelectors": selectors.get("EventSelectors"),
                    "AdvancedEventSelectors": selectors.get("AdvancedEventSelectors")})
    return sorted(out, key=lambda t: t["TrailARN"])


# -- no trail: create the baseline's trail into the module's bucket ------------------------------

def test_no_trail_creates_the_baseline_trail_into_the_module_bucket(aws):
    _bucket(aws, _module_policy())
    dry, applied = assert_converges(aws, _baseline(), BOTH, expected_actions=2, state=lambda: _state(aws))
    assert {a.resource for a in dry.actions} == {TRAIL_ARN}
    assert "create the baseline trail harden-trail" in dry.actions[0].description
    assert dry.actions[0].calls[-4:] == ["s3:GetBucketPolicy", "cloudtrail:CreateTrail",
                                         "cloudtrail:PutEventSelectors", "cloudtrail:StartLogging"]
    # log_validation runs first and creates it; multi_region then finds nothing left to do.
    messages = [r.message for r in applied.results]
    assert messages[0].startswith(f"created and started trail {TRAIL_ARN} (created arn:aws:kms:{HOME}:")
    assert messages[0].endswith(" as alias/harden-cloudtrail)") and "already compliant" in messages[1]

    [trail] = _state(aws)
    assert trail["Name"] == TRAIL and trail["S3BucketName"] == BUCKET and trail["S3KeyPrefix"] == "cloudtrail"
    assert trail["IsMultiRegionTrail"] and trail["IncludeGlobalServiceEvents"] and trail["LogFileValidationEnabled"]
    assert trail["IsLogging"] and trail["EventSelectors"] == [ct.MANAGEMENT_SELECTOR]
    tags = aws.client("cloudtrail", HOME).list_tags(ResourceIdList=[TRAIL_ARN])["ResourceTagList"][0]["TagsList"]
    assert tags == [{"Key": "ManagedBy", "Value": "harden"}]


def test_created_trail_reuses_the_module_key_log_group_and_role(aws):
    _bucket(aws, _module_policy())
    key = aws.client("kms", HOME).create_key(Description="trail key")["KeyMetadata"]["Arn"]
    aws.client("kms", HOME).create_alias(AliasName="alias/harden-cloudtrail", TargetKeyId=key)
    aws.client("logs", HOME).create_log_group(logGroupName=f"/aws/cloudtrail/{TRAIL}")
    role = aws.client("iam").create_role(RoleName=f"harden-cloudtrail-{HOME}", AssumeRolePolicyDocument="{}")["Role"]["Arn"]

    # The group exists unencrypted: the fix puts the module's key on it. The emulator lacks
    # AssociateKmsKey, so botocore's Stubber (checked against the real model) answers that call.
    group = f"/aws/cloudtrail/{TRAIL}"
    with OperationStubber(aws.client("logs", HOME), "AssociateKmsKey") as stub:
        stub.add_response("associate_kms_key", {}, {"logGroupName": group, "kmsKeyId": key})
        run = run_remediation(aws, _baseline(), controls=["cloudtrail.multi_region"], apply=True)
        stub.assert_no_pending_responses()
    assert [r.status for r in run.results] == ["applied"], [r.message for r in run.results]
    assert "First creates" not in run.actions[0].description  # nothing is missing
    [trail] = _state(aws)
    assert trail["KmsKeyId"] == key and trail["CloudWatchLogsRoleArn"] == role
    assert trail["CloudWatchLogsLogGroupArn"] == f"arn:aws:logs:{HOME}:{ACCOUNT}:log-group:/aws/cloudtrail/{TRAIL}:*"


@pytest.mark.parametrize("policy,reason", [
    (None, "has no bucket policy letting CloudTrail write"),
    # Written for another trail (aws:SourceArn): CloudTrail would be refused.
    (_module_policy(trail_arn=f"arn:aws:cloudtrail:{HOME}:{ACCOUNT}:trail/other"), "does not grant"),
    # Written under another prefix than cloudtrail.s3_key_prefix.
    (_module_policy(prefix="elsewhere"), "s3:PutObject under its prefix"),
])
def test_create_refused_when_the_bucket_does_not_let_cloudtrail_write(aws, policy, reason):
    _bucket(aws, policy)
    run = run_remediation(aws, _baseline(), controls=["cloudtrail.multi_region"], apply=True)
    [result] = run.results
    assert result.status == "failed" and reason in result.message
    assert "apply the cloudtrail Terraform module first" in result.message
    assert _state(aws) == [] and run.exit_code() == 3


def test_from_nothing_the_key_bucket_log_group_and_role_are_created_first(aws):
    dry, _ = assert_converges(aws, _baseline(), BOTH, expected_actions=2, state=lambda: _state(aws))
    assert (f"First creates the KMS key alias/harden-cloudtrail, then the log bucket {BUCKET}"
            in dry.actions[0].description)
    [trail] = _state(aws)
    key = aws.client("kms", HOME).describe_key(KeyId="alias/harden-cloudtrail")["KeyMetadata"]["Arn"]
    group = aws.client("logs", HOME).describe_log_groups(logGroupNamePrefix=f"/aws/cloudtrail/{TRAIL}")["logGroups"][0]
    assert trail["KmsKeyId"] == key and group["kmsKeyId"] == key and group["retentionInDays"] == 365
    assert trail["CloudWatchLogsRoleArn"].endswith(f":role/harden-cloudtrail-{HOME}")
    assert aws.client("s3", HOME).get_bucket_versioning(Bucket=BUCKET)["Status"] == "Enabled"


# -- an existing trail: converged in place ------------------------------------------------------

def test_baseline_trail_out_of_shape_is_updated_keeping_its_data_selectors(aws):
    _bucket(aws)
    _trail(aws, multi=False, global_events=False, validation=False, logging=False,
           selectors={"EventSelectors": [{"ReadWriteType": "ReadOnly", "IncludeManagementEvents": True}, DATA_SELECTOR]})
    dry, _ = assert_converges(aws, _baseline(), BOTH, expected_actions=2, state=lambda: _state(aws))
    multi = next(a for a in dry.actions if a.control == "cloudtrail.multi_region")
    assert multi.resource == TRAIL_ARN and "in place" not in multi.description
    assert multi.calls == ["cloudtrail:UpdateTrail", "cloudtrail:PutEventSelectors", "cloudtrail:StartLogging"]
    [trail] = _state(aws)
    assert trail["IsMultiRegionTrail"] and trail["IncludeGlobalServiceEvents"] and trail["LogFileValidationEnabled"]
    # The ReadOnly management selector now takes All; the data-event selector is kept as it was.
    assert trail["EventSelectors"] == [ct.MANAGEMENT_SELECTOR, DATA_SELECTOR]


def test_only_what_is_wrong_is_called(aws):
    _bucket(aws)
    _trail(aws, logging=False)
    run = run_remediation(aws, _baseline(), controls=BOTH, apply=True)
    [action] = run.actions
    assert action.control == "cloudtrail.multi_region" and action.calls == ["cloudtrail:StartLogging"]
    assert run.after.exit_code() == 0


def test_advanced_selectors_keep_data_selectors_and_replace_the_narrowed_management_one(aws):
    _bucket(aws)
    data = {"Name": "payroll objects", "FieldSelectors": [{"Field": "eventCategory", "Equals": ["Data"]},
                                                          {"Field": "resources.type", "Equals": ["AWS::S3::Object"]}]}
    read_only = {"Name": "reads", "FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]},
                                                     {"Field": "readOnly", "Equals": ["true"]}]}
    _trail(aws, selectors={"AdvancedEventSelectors": [data, read_only]})
    assert_converges(aws, _baseline(), ["cloudtrail.multi_region"], expected_actions=1, state=lambda: _state(aws))
    [trail] = _state(aws)
    assert trail["AdvancedEventSelectors"] == [data, ct.ADVANCED_MANAGEMENT_SELECTOR]


def test_a_non_baseline_trail_is_fixed_in_place_not_duplicated(aws):
    _bucket(aws)
    legacy = _trail(aws, name="legacy-trail", multi=False, validation=False, logging=False)
    _trail(aws, name="other-trail", multi=False, global_events=False, validation=False, logging=False,
           selectors={"EventSelectors": [DATA_SELECTOR]})
    dry, _ = assert_converges(aws, _baseline(), ["cloudtrail.multi_region"], expected_actions=1,
                              state=lambda: _state(aws))
    # The nearest to compliant is chosen (legacy-trail: fewer gaps), and the description says so.
    assert dry.actions[0].resource == legacy
    assert "in place (not the baseline's trail harden-trail" in dry.actions[0].description
    assert [t["Name"] for t in _state(aws)] == ["legacy-trail", "other-trail"]


def test_log_validation_alone_updates_each_trail(aws):
    _bucket(aws)
    first = _trail(aws, name="trail-one", validation=False)
    second = _trail(aws, name="trail-two", validation=False)
    dry, applied = assert_converges(aws, _baseline(), ["cloudtrail.log_validation"], expected_actions=2,
                                    state=lambda: _state(aws))
    assert [(a.resource, a.calls) for a in dry.actions] == [(first, ["cloudtrail:UpdateTrail"]),
                                                           (second, ["cloudtrail:UpdateTrail"])]
    assert all(t["LogFileValidationEnabled"] for t in _state(aws))


def test_another_accounts_organization_trail_is_left_alone(aws):
    # Seen from a member account, the management account's organization trail cannot be updated.
    _bucket(aws)
    arn = _trail(aws, validation=False)
    ctx = CheckContext(aws=aws, baseline=_baseline(), region=HOME, account_id="999999999999",
                       control_id="cloudtrail.log_validation")
    finding = Finding("cloudtrail.log_validation", HOME, arn, "fail", "validation off")
    assert ct.fix_log_validation(ctx, [finding]) == []


@pytest.mark.parametrize("current,expected", [
    ({}, {"EventSelectors": [ct.MANAGEMENT_SELECTOR]}),
    ({"EventSelectors": [{"ReadWriteType": "WriteOnly", "IncludeManagementEvents": True}]},
     {"EventSelectors": [{"ReadWriteType": "All", "IncludeManagementEvents": True}]}),
    ({"EventSelectors": [DATA_SELECTOR] * 5},  # at CloudTrail's limit: the first one takes management events
     {"EventSelectors": [{**DATA_SELECTOR, **ct.MANAGEMENT_SELECTOR}] + [DATA_SELECTOR] * 4}),
])
def test_selectors_with_management(current, expected):
    result = ct.selectors_with_management(current)
    assert result == expected
    assert ct.management_coverage(result)["read"] and ct.management_coverage(result)["write"]
