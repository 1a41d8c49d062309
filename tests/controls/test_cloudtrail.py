"""cloudtrail.* against the emulator. Where the emulator cannot produce a state (a delivery
error, an AWS managed key), botocore's Stubber stands in for that one client, fed with the
emulator's own answers plus the one field the emulator cannot set; it validates params and
responses against the real service model."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from botocore.stub import Stubber

from provisioner.baseline import parse_baseline
from provisioner.controls import CheckContext
from provisioner.controls import cloudtrail as ct

HOME = "us-east-1"
OTHER = "eu-west-1"
ACCOUNT = "123456789012"
BUCKET = "harden-logs-123456789012-us-east-1"
ALL_FOUR = {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True}


def _ctx(aws, control_id, baseline=None):
    return CheckContext(aws=aws, baseline=baseline or parse_baseline({}), region=HOME,
                        account_id=aws.account_id(), control_id=control_id)


def _run(aws, check, control_id, **kwargs):
    return check(_ctx(aws, control_id, **kwargs))


def _bucket(aws, name=BUCKET, region=HOME):
    kwargs = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    aws.client("s3", region).create_bucket(Bucket=name, **kwargs)
    return name


def trail_key_policy(account=ACCOUNT, extra=()):
    """The cloudtrail module's key policy, as far as verify reads it: the account administers,
    CloudTrail encrypts this account's trails."""
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "AccountAdministersKey", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
         "Action": ["kms:Describe*", "kms:Put*", "kms:Get*"], "Resource": "*"},
        {"Sid": "CloudTrailEncryptsThisTrailsLogs", "Effect": "Allow",
         "Principal": {"Service": "cloudtrail.amazonaws.com"}, "Action": "kms:GenerateDataKey*", "Resource": "*",
         "Condition": {"StringLike": {"kms:EncryptionContext:aws:cloudtrail:arn":
                                      f"arn:aws:cloudtrail:*:{account}:trail/*"}}},
        *extra]}


def _key(aws, region=HOME, rotate=True, policy=None):
    kms = aws.client("kms", region)
    arn = kms.create_key(Description="trail key",
                         Policy=json.dumps(policy or trail_key_policy()))["KeyMetadata"]["Arn"]
    if rotate:
        kms.enable_key_rotation(KeyId=arn)
    return arn


def _trail(aws, name="harden-trail", region=HOME, bucket=BUCKET, multi=True, global_events=True,
           validation=True, kms_key=None, cloudwatch=True, logging=True, selectors=None):
    """A trail; by default the compliant one the baseline's module creates."""
    client = aws.client("cloudtrail", region)
    kwargs = dict(Name=name, S3BucketName=bucket, IsMultiRegionTrail=multi,
                  IncludeGlobalServiceEvents=global_events, EnableLogFileValidation=validation)
    if kms_key:
        kwargs["KmsKeyId"] = kms_key
    if cloudwatch:
        kwargs["CloudWatchLogsLogGroupArn"] = f"arn:aws:logs:{region}:{ACCOUNT}:log-group:/aws/cloudtrail/{name}:*"
        kwargs["CloudWatchLogsRoleArn"] = f"arn:aws:iam::{ACCOUNT}:role/harden-cloudtrail-{region}"
    arn = client.create_trail(**kwargs)["TrailARN"]
    if logging:
        client.start_logging(Name=name)
    # The emulator starts a trail with no selectors (AWS starts it with All management events):
    # every trail here states its selectors.
    if selectors is None:
        selectors = {"EventSelectors": [{"ReadWriteType": "All", "IncludeManagementEvents": True}]}
    if selectors:
        client.put_event_selectors(TrailName=name, **selectors)
    return arn


def _secure_policy(bucket, trail_arns):
    arns = trail_arns if isinstance(trail_arns, list) else [trail_arns]
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "s3:*",
             "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
             "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
            {"Sid": "CloudTrailAclCheck", "Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
             "Action": "s3:GetBucketAcl", "Resource": f"arn:aws:s3:::{bucket}",
             "Condition": {"StringEquals": {"aws:SourceArn": arns}}},
            {"Sid": "CloudTrailWrite", "Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
             "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{bucket}/cloudtrail/AWSLogs/{ACCOUNT}/*",
             "Condition": {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control",
                                            "aws:SourceArn": arns}}},
        ],
    }


def _secure_bucket(aws, trail_arns, bucket=BUCKET, policy=None, pab=ALL_FOUR, versioning="Enabled",
                   ownership="BucketOwnerEnforced"):
    s3 = aws.client("s3", HOME)
    if pab is not None:
        s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=pab)
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy or _secure_policy(bucket, trail_arns)))
    if versioning:
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": versioning})
    if ownership:
        s3.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls={"Rules": [{"ObjectOwnership": ownership}]})


def _without_metadata(resp):
    return {k: v for k, v in resp.items() if k != "ResponseMetadata"}


def _one(findings):
    assert len(findings) == 1, findings
    return findings[0]


ALL_CONTROLS = [
    ("cloudtrail.multi_region", ct.multi_region),
    ("cloudtrail.log_validation", ct.log_validation),
    ("cloudtrail.kms", ct.kms),
    ("cloudtrail.cloudwatch_logs", ct.cloudwatch_logs),
    ("cloudtrail.bucket", ct.bucket),
]


# -- every control ---------------------------------------------------------------------------

@pytest.mark.parametrize("control_id,check", ALL_CONTROLS)
def test_no_trail_fails_on_the_account(aws, control_id, check):
    finding = _one(_run(aws, check, control_id))
    assert finding.status == "fail"
    assert finding.resource == ACCOUNT
    assert finding.region == HOME
    assert "no CloudTrail trail" in finding.message and "harden-trail" in finding.message


def test_the_baseline_trail_passes_every_control_with_shared_lookups(aws):
    _bucket(aws)
    arn = _trail(aws, kms_key=_key(aws))
    _secure_bucket(aws, arn)
    ctx = _ctx(aws, "")
    for control_id, check in ALL_CONTROLS:
        ctx.control_id = control_id
        finding = _one(check(ctx))
        assert finding.status == "pass", (control_id, finding.message)
    calls = aws.calls.by_operation()
    # One status and one selectors lookup for the trail, shared by the five checks.
    assert calls["cloudtrail:DescribeTrails"] == 1
    assert calls["cloudtrail:GetTrailStatus"] == 1
    assert calls["cloudtrail:GetEventSelectors"] == 1
    # Bucket level blocks everything: the account-level block is not read.
    assert "s3control:GetPublicAccessBlock" not in calls


# -- cloudtrail.multi_region -------------------------------------------------------------------

def test_multi_region_pass_names_the_trail(aws):
    _bucket(aws)
    arn = _trail(aws)
    finding = _one(_run(aws, ct.multi_region, "cloudtrail.multi_region"))
    assert finding.status == "pass"
    assert finding.resource == arn
    assert "harden-trail" in finding.message and "not the baseline's" not in finding.message
    summary = finding.evidence["trails"][0]
    assert summary["missing"] == [] and summary["is_logging"] is True
    assert summary["management_events"]["read"] and summary["management_events"]["write"]


def test_multi_region_accepts_a_compliant_trail_with_another_name(aws):
    _bucket(aws)
    _trail(aws, name="single", multi=False)
    arn = _trail(aws, name="org-audit")
    finding = _one(_run(aws, ct.multi_region, "cloudtrail.multi_region"))
    assert finding.status == "pass" and finding.resource == arn
    assert "org-audit" in finding.message and "not the baseline's trail harden-trail" in finding.message


def test_multi_region_fail_names_what_each_trail_lacks(aws):
    _bucket(aws)
    # (AWS, like the emulator, refuses a multi-region trail without global service events.)
    _trail(aws, name="regional", multi=False, global_events=False, logging=False)
    _trail(aws, name="writes-only",
           selectors={"EventSelectors": [{"ReadWriteType": "WriteOnly", "IncludeManagementEvents": True}]})
    finding = _one(_run(aws, ct.multi_region, "cloudtrail.multi_region"))
    assert finding.status == "fail"
    assert finding.resource == ACCOUNT
    assert ("regional: not multi-region, not logging, global service events (IAM, STS) not included"
            in finding.message)
    assert "writes-only: does not capture read management events" in finding.message
    missing = {s["trail"].rsplit("/", 1)[1]: s["missing"] for s in finding.evidence["trails"]}
    assert len(missing["regional"]) == 3
    assert missing["writes-only"] == ["does not capture read management events"]


def test_multi_region_data_events_only_is_not_enough(aws):
    _bucket(aws)
    _trail(aws, selectors={"EventSelectors": [{
        "ReadWriteType": "All", "IncludeManagementEvents": False,
        "DataResources": [{"Type": "AWS::S3::Object", "Values": ["arn:aws:s3"]}]}]})
    finding = _one(_run(aws, ct.multi_region, "cloudtrail.multi_region"))
    assert finding.status == "fail" and "captures no management events" in finding.message


def _advanced(*selectors):
    return {"AdvancedEventSelectors": [{"Name": f"s{i}", "FieldSelectors": fs} for i, fs in enumerate(selectors)]}


MANAGEMENT = {"Field": "eventCategory", "Equals": ["Management"]}


@pytest.mark.parametrize("selectors,status,detail", [
    (_advanced([MANAGEMENT]), "pass", None),
    (_advanced([MANAGEMENT, {"Field": "readOnly", "Equals": ["true"]}]), "fail", "does not capture write"),
    (_advanced([MANAGEMENT, {"Field": "readOnly", "Equals": ["false"]}]), "fail", "does not capture read"),
    # Two selectors, one per half, capture everything: AWS takes their union.
    (_advanced([MANAGEMENT, {"Field": "readOnly", "Equals": ["true"]}],
               [MANAGEMENT, {"Field": "readOnly", "Equals": ["false"]}]), "pass", None),
    # Excluding KMS events (allowed by AWS to cut volume) still captures EC2's.
    (_advanced([MANAGEMENT, {"Field": "eventSource", "NotEquals": ["kms.amazonaws.com"]}]), "pass", None),
    (_advanced([MANAGEMENT, {"Field": "eventSource", "Equals": ["ec2.amazonaws.com"]}]), "fail",
     "keeps only some event sources"),
    (_advanced([{"Field": "eventCategory", "Equals": ["Data"]}, {"Field": "resources.type",
                                                                "Equals": ["AWS::S3::Object"]}]),
     "fail", "captures no management events"),
    ({"EventSelectors": [{"ReadWriteType": "ReadOnly", "IncludeManagementEvents": True},
                         {"ReadWriteType": "WriteOnly", "IncludeManagementEvents": True}]}, "pass", None),
])
def test_multi_region_management_event_selectors(aws, selectors, status, detail):
    _bucket(aws)
    _trail(aws, selectors=selectors)
    finding = _one(_run(aws, ct.multi_region, "cloudtrail.multi_region"))
    assert finding.status == status, finding.message
    if detail:
        assert detail in finding.message


def test_multi_region_excluded_sources_are_in_evidence(aws):
    _bucket(aws)
    _trail(aws, selectors=_advanced([MANAGEMENT, {"Field": "eventSource",
                                                  "NotEquals": ["kms.amazonaws.com", "rdsdata.amazonaws.com"]}]))
    finding = _one(_run(aws, ct.multi_region, "cloudtrail.multi_region"))
    coverage = finding.evidence["trails"][0]["management_events"]
    assert coverage["excluded_sources"] == ["kms.amazonaws.com", "rdsdata.amazonaws.com"]
    assert coverage["selector_type"] == "advanced"


def test_multi_region_finds_a_shadow_trail_and_asks_its_home_region(aws):
    _bucket(aws, "eu-logs-bucket", OTHER)
    arn = _trail(aws, name="eu-trail", region=OTHER, bucket="eu-logs-bucket")
    ctx = _ctx(aws, "cloudtrail.multi_region")
    before = aws.calls.by_operation()
    finding = _one(ct.multi_region(ctx))
    assert finding.status == "pass" and finding.resource == arn
    assert finding.evidence["trails"][0]["home_region"] == OTHER
    # describe_trails in the home region, the per-trail lookups by ARN in the trail's own region.
    assert aws.calls.by_operation()["cloudtrail:DescribeTrails"] - before.get("cloudtrail:DescribeTrails", 0) == 1
    assert set(ctx.cache) >= {f"cloudtrail:status:{arn}", f"cloudtrail:selectors:{arn}"}
    assert aws.client("cloudtrail", HOME).describe_trails(includeShadowTrails=False)["trailList"] == []


def test_multi_region_s3_delivery_error_fails(aws):
    _bucket(aws, "eu-logs-bucket", OTHER)
    arn = _trail(aws, name="eu-trail", region=OTHER, bucket="eu-logs-bucket")
    client = aws.client("cloudtrail", OTHER)
    status = _without_metadata(client.get_trail_status(Name=arn))
    selectors = _without_metadata(client.get_event_selectors(TrailName=arn))
    # The emulator never fails a delivery: Stubber returns its answer plus the error AWS reports.
    status["LatestDeliveryError"] = "AccessDenied"
    with Stubber(client) as stub:
        stub.add_response("get_trail_status", status, {"Name": arn})
        stub.add_response("get_event_selectors", selectors, {"TrailName": arn})
        finding = _one(_run(aws, ct.multi_region, "cloudtrail.multi_region"))
        stub.assert_no_pending_responses()
    assert finding.status == "fail" and finding.resource == ACCOUNT
    assert "S3 delivery failing (AccessDenied)" in finding.message
    assert finding.evidence["trails"][0]["latest_delivery_error"] == "AccessDenied"


# -- cloudtrail.log_validation -----------------------------------------------------------------

def test_log_validation_pass_and_fail_per_multi_region_trail(aws):
    _bucket(aws)
    good = _trail(aws, name="validated")
    bad = _trail(aws, name="unvalidated", validation=False)
    _trail(aws, name="regional-unvalidated", multi=False, validation=False)
    by_trail = {f.resource: f for f in _run(aws, ct.log_validation, "cloudtrail.log_validation")}
    # The single-region trail is not part of the account's record while multi-region ones exist.
    assert set(by_trail) == {good, bad}
    assert by_trail[good].status == "pass"
    assert by_trail[good].evidence == {"log_file_validation_enabled": True, "multi_region": True}
    assert by_trail[bad].status == "fail"
    assert "--enable-log-file-validation" in by_trail[bad].message
    assert by_trail[bad].evidence["log_file_validation_enabled"] is False


def test_log_validation_checks_every_trail_when_none_is_multi_region(aws):
    _bucket(aws)
    a = _trail(aws, name="regional-a", multi=False)
    b = _trail(aws, name="regional-b", multi=False, validation=False)
    by_trail = {f.resource: f.status for f in _run(aws, ct.log_validation, "cloudtrail.log_validation")}
    assert by_trail == {a: "pass", b: "fail"}


# -- cloudtrail.kms ----------------------------------------------------------------------------

def test_kms_customer_key_with_rotation_passes(aws):
    _bucket(aws)
    key = _key(aws)
    arn = _trail(aws, kms_key=key)
    finding = _one(_run(aws, ct.kms, "cloudtrail.kms"))
    assert finding.status == "pass" and finding.resource == arn
    assert finding.evidence["key_manager"] == "CUSTOMER"
    assert finding.evidence["key_state"] == "Enabled"
    assert finding.evidence["rotation_enabled"] is True
    assert finding.evidence["kms_key_id"] == key


def test_kms_key_policy_that_cut_cloudtrail_off_or_lets_another_account_in_fails(aws):
    _bucket(aws)
    stripped = trail_key_policy()
    stripped["Statement"] = stripped["Statement"][:1]  # the CloudTrail statement removed
    _trail(aws, kms_key=_key(aws, policy=stripped))
    finding = _one(_run(aws, ct.kms, "cloudtrail.kms"))
    assert finding.status == "fail" and "no longer lets CloudTrail encrypt" in finding.message
    assert finding.evidence["cloudtrail_can_encrypt"] is False


@pytest.mark.parametrize("intruder, named", [
    ({"Sid": "Partner", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::444455556666:root"},
      "Action": "kms:Decrypt", "Resource": "*"}, "arn:aws:iam::444455556666:root"),
    ({"Sid": "Anyone", "Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*"}, "* (Anyone)"),
])
def test_kms_key_policy_with_a_principal_outside_the_account_fails(aws, intruder, named):
    _bucket(aws)
    _trail(aws, kms_key=_key(aws, policy=trail_key_policy(extra=[intruder])))
    finding = _one(_run(aws, ct.kms, "cloudtrail.kms"))
    assert finding.status == "fail" and "outside account" in finding.message
    assert finding.evidence["key_policy_outside_principals"] == [named]


def test_kms_no_key_fails(aws):
    _bucket(aws)
    arn = _trail(aws)
    finding = _one(_run(aws, ct.kms, "cloudtrail.kms"))
    assert finding.status == "fail" and finding.resource == arn
    assert "SSE-S3 only" in finding.message and finding.evidence == {"kms_key_id": None}


def test_kms_key_without_rotation_fails(aws):
    _bucket(aws)
    arn = _trail(aws, kms_key=_key(aws, rotate=False))
    finding = _one(_run(aws, ct.kms, "cloudtrail.kms"))
    assert finding.status == "fail" and finding.resource == arn
    assert "rotation is off" in finding.message and finding.evidence["rotation_enabled"] is False


def test_kms_disabled_key_fails_without_asking_rotation(aws):
    _bucket(aws)
    key = _key(aws)
    aws.client("kms", HOME).disable_key(KeyId=key.rsplit("/", 1)[1])  # the emulator takes no ARN here
    _trail(aws, kms_key=key)
    finding = _one(_run(aws, ct.kms, "cloudtrail.kms"))
    assert finding.status == "fail" and "the key is Disabled" in finding.message
    assert "kms:GetKeyRotationStatus" not in aws.calls.by_operation()


def test_kms_aws_managed_key_fails(aws):
    _bucket(aws)
    key = _key(aws)
    arn = _trail(aws, kms_key=key)
    kms = aws.client("kms", HOME)
    meta = _without_metadata(kms.describe_key(KeyId=key))
    # The emulator creates every key as CUSTOMER: Stubber answers as AWS does for aws/* keys.
    meta["KeyMetadata"]["KeyManager"] = "AWS"
    with Stubber(kms) as stub:
        stub.add_response("describe_key", meta, {"KeyId": key})
        finding = _one(_run(aws, ct.kms, "cloudtrail.kms"))
        stub.assert_no_pending_responses()  # and no rotation lookup for a key that is not ours
    assert finding.status == "fail" and finding.resource == arn
    assert "AWS-managed, not a customer managed key" in finding.message


def test_kms_one_lookup_per_key(aws):
    _bucket(aws)
    key = _key(aws)
    _trail(aws, name="trail-one", kms_key=key)
    _trail(aws, name="trail-two", kms_key=key)
    findings = _run(aws, ct.kms, "cloudtrail.kms")
    assert [f.status for f in findings] == ["pass", "pass"]
    calls = aws.calls.by_operation()
    assert calls["kms:DescribeKey"] == 1 and calls["kms:GetKeyRotationStatus"] == 1


# -- cloudtrail.cloudwatch_logs ----------------------------------------------------------------

def test_cloudwatch_logs_configured_passes(aws):
    _bucket(aws)
    arn = _trail(aws)
    finding = _one(_run(aws, ct.cloudwatch_logs, "cloudtrail.cloudwatch_logs"))
    assert finding.status == "pass" and finding.resource == arn
    assert finding.evidence["log_group_arn"].endswith("log-group:/aws/cloudtrail/harden-trail:*")
    assert finding.evidence["latest_delivery_error"] is None


def test_cloudwatch_logs_not_configured_fails(aws):
    _bucket(aws)
    arn = _trail(aws, cloudwatch=False)
    finding = _one(_run(aws, ct.cloudwatch_logs, "cloudtrail.cloudwatch_logs"))
    assert finding.status == "fail" and finding.resource == arn
    assert "no CloudWatch Logs log group" in finding.message and "no role" in finding.message
    assert finding.evidence["log_group_arn"] is None and finding.evidence["role_arn"] is None


@pytest.mark.parametrize("fields,expected", [
    ({"LatestCloudWatchLogsDeliveryError": "AccessDeniedException"}, "delivery failing (AccessDeniedException)"),
    ({"LatestCloudWatchLogsDeliveryTime": datetime.now(timezone.utc) - timedelta(days=3)}, "older than 24 hours"),
    ({"LatestCloudWatchLogsDeliveryTime": datetime.now(timezone.utc) - timedelta(minutes=5)}, None),
])
def test_cloudwatch_logs_delivery_state(aws, fields, expected):
    _bucket(aws, "eu-logs-bucket", OTHER)
    arn = _trail(aws, name="eu-trail", region=OTHER, bucket="eu-logs-bucket")
    client = aws.client("cloudtrail", OTHER)
    status = {**_without_metadata(client.get_trail_status(Name=arn)), **fields}
    # The emulator reports no CloudWatch Logs delivery at all: Stubber adds what AWS reports.
    with Stubber(client) as stub:
        stub.add_response("get_trail_status", status, {"Name": arn})
        finding = _one(_run(aws, ct.cloudwatch_logs, "cloudtrail.cloudwatch_logs"))
    assert finding.resource == arn
    if expected:
        assert finding.status == "fail" and expected in finding.message
    else:
        assert finding.status == "pass"
        assert finding.evidence["latest_delivery_time"] == fields["LatestCloudWatchLogsDeliveryTime"].isoformat()


# -- cloudtrail.bucket -------------------------------------------------------------------------

def test_bucket_secured_passes_with_each_check_in_evidence(aws):
    _bucket(aws)
    arn = _trail(aws)
    _secure_bucket(aws, arn)
    finding = _one(_run(aws, ct.bucket, "cloudtrail.bucket"))
    assert finding.status == "pass", finding.message
    assert finding.resource == f"arn:aws:s3:::{BUCKET}"
    assert finding.evidence["checks"] == dict.fromkeys(
        ["public_access_blocked", "tls_only_policy", "cloudtrail_write_scoped_by_source_arn",
         "versioning_enabled", "bucket_owner_enforced"], True)
    assert finding.evidence["cloudtrail_source_arns"] == [arn]


def test_bucket_bare_fails_every_check(aws):
    _bucket(aws)
    _trail(aws)
    finding = _one(_run(aws, ct.bucket, "cloudtrail.bucket"))
    assert finding.status == "fail"
    assert set(finding.evidence["checks"].values()) == {False}
    for fix in ("Block Public Access", "aws:SecureTransport", "aws:SourceArn", "enable versioning (now never",
                "BucketOwnerEnforced (now None)"):
        assert fix in finding.message
    assert finding.evidence["public_access_block_account"] is None


def test_bucket_account_level_block_counts_per_setting(aws):
    _bucket(aws)
    arn = _trail(aws)
    half = {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": False,
            "RestrictPublicBuckets": False}
    other_half = {k: not v for k, v in half.items()}
    _secure_bucket(aws, arn, pab=half)
    assert _one(_run(aws, ct.bucket, "cloudtrail.bucket")).evidence["checks"]["public_access_blocked"] is False

    # S3 applies the stricter of bucket and account level, setting by setting.
    ct.s3control_client(aws, HOME).put_public_access_block(AccountId=ACCOUNT,
                                                           PublicAccessBlockConfiguration=other_half)
    finding = _one(_run(aws, ct.bucket, "cloudtrail.bucket"))
    assert finding.status == "pass", finding.message
    assert finding.evidence["public_access_block_account"] == other_half


def test_bucket_account_level_block_alone_passes(aws):
    _bucket(aws)
    arn = _trail(aws)
    _secure_bucket(aws, arn, pab=None)
    ct.s3control_client(aws, HOME).put_public_access_block(AccountId=ACCOUNT, PublicAccessBlockConfiguration=ALL_FOUR)
    finding = _one(_run(aws, ct.bucket, "cloudtrail.bucket"))
    assert finding.status == "pass" and finding.evidence["public_access_block_bucket"] is None


def _policy_with(bucket, trail_arn, change):
    policy = _secure_policy(bucket, trail_arn)
    change(policy["Statement"])
    return policy


def _unconditioned_write(statements):
    statements.append({"Effect": "Allow", "Principal": {"Service": ["cloudtrail.amazonaws.com"]},
                       "Action": ["s3:Put*"], "Resource": f"arn:aws:s3:::{BUCKET}/*"})


def _wildcard_account(statements):
    statements[2]["Condition"]["StringEquals"].pop("aws:SourceArn")
    statements[2]["Condition"]["ArnLike"] = {"aws:SourceArn": "arn:aws:cloudtrail:*:*:trail/*"}


def _other_trail(statements):
    statements[2]["Condition"]["StringEquals"]["aws:SourceArn"] = [f"arn:aws:cloudtrail:{HOME}:{ACCOUNT}:trail/other"]


def _negated_source_arn(statements):
    # Confused deputy: "every trail but this one" may write.
    trail = statements[2]["Condition"]["StringEquals"].pop("aws:SourceArn")
    statements[2]["Condition"]["StringNotEquals"] = {"aws:SourceArn": trail}


def _if_exists_source_arn(statements):
    trail = statements[2]["Condition"]["StringEquals"].pop("aws:SourceArn")
    statements[2]["Condition"]["StringEqualsIfExists"] = {"aws:SourceArn": trail}


def _other_accounts_trail(statements):
    # Both this trail and another account's: the other account's trail may write here.
    trail = statements[2]["Condition"]["StringEquals"]["aws:SourceArn"]
    other = (trail[0] if isinstance(trail, list) else trail).replace(ACCOUNT, "444455556666")
    statements[2]["Condition"]["StringEquals"]["aws:SourceArn"] = [*(trail if isinstance(trail, list) else [trail]),
                                                                   other]


def _tls_objects_only(statements):
    statements[0]["Resource"] = f"arn:aws:s3:::{BUCKET}/*"


def _tls_get_only(statements):
    statements[0]["Action"] = "s3:GetObject"


@pytest.mark.parametrize("change,check", [
    # Stricter than Prowler: a second, unconditioned grant re-opens the bucket to any trail.
    (_unconditioned_write, "cloudtrail_write_scoped_by_source_arn"),
    (_wildcard_account, "cloudtrail_write_scoped_by_source_arn"),
    (_other_trail, "cloudtrail_write_scoped_by_source_arn"),
    (_negated_source_arn, "cloudtrail_write_scoped_by_source_arn"),
    (_if_exists_source_arn, "cloudtrail_write_scoped_by_source_arn"),
    (_other_accounts_trail, "cloudtrail_write_scoped_by_source_arn"),
    (_tls_objects_only, "tls_only_policy"),
    (_tls_get_only, "tls_only_policy"),
])
def test_bucket_policy_gaps(aws, change, check):
    _bucket(aws)
    arn = _trail(aws)
    _secure_bucket(aws, arn, policy=_policy_with(BUCKET, arn, change))
    finding = _one(_run(aws, ct.bucket, "cloudtrail.bucket"))
    assert finding.status == "fail"
    assert [name for name, ok in finding.evidence["checks"].items() if not ok] == [check]
    if change in (_negated_source_arn, _if_exists_source_arn):
        assert "does not confine it to the trail" in finding.message
    if change is _other_accounts_trail:
        assert "lets trails of another account" in finding.message


def test_bucket_condition_keys_compare_case_insensitively(aws):
    _bucket(aws)
    arn = _trail(aws)

    def lower_keys(statements):
        statements[0]["Condition"] = {"Bool": {"aws:securetransport": False}}
        statements[2]["Condition"] = {"ArnEquals": {"AWS:SourceArn": arn}}

    _secure_bucket(aws, arn, policy=_policy_with(BUCKET, arn, lower_keys))
    assert _one(_run(aws, ct.bucket, "cloudtrail.bucket")).status == "pass"


@pytest.mark.parametrize("versioning,ownership,check", [
    ("Suspended", "BucketOwnerEnforced", "versioning_enabled"),
    ("Enabled", "BucketOwnerPreferred", "bucket_owner_enforced"),
])
def test_bucket_versioning_and_ownership(aws, versioning, ownership, check):
    _bucket(aws)
    arn = _trail(aws)
    _secure_bucket(aws, arn, versioning=versioning, ownership=ownership)
    finding = _one(_run(aws, ct.bucket, "cloudtrail.bucket"))
    assert finding.status == "fail"
    assert [name for name, ok in finding.evidence["checks"].items() if not ok] == [check]


def test_bucket_that_no_longer_exists_fails(aws):
    _bucket(aws)
    _trail(aws)
    aws.client("s3", HOME).delete_bucket(Bucket=BUCKET)
    finding = _one(_run(aws, ct.bucket, "cloudtrail.bucket"))
    assert finding.status == "fail" and "does not exist" in finding.message
    assert finding.evidence["bucket_exists"] is False


def test_bucket_shared_by_two_trails_is_one_finding_needing_both_source_arns(aws):
    _bucket(aws)
    first = _trail(aws, name="trail-one")
    second = _trail(aws, name="trail-two")
    _secure_bucket(aws, [first])
    finding = _one(_run(aws, ct.bucket, "cloudtrail.bucket"))
    assert finding.status == "fail" and finding.evidence["trails"] == [first, second]
    assert finding.evidence["checks"]["cloudtrail_write_scoped_by_source_arn"] is False

    _secure_bucket(aws, [first, second])
    assert _one(_run(aws, ct.bucket, "cloudtrail.bucket")).status == "pass"
    calls = aws.calls.by_operation()
    # Four reads of the bucket per run, not per trail.
    assert calls["s3:GetBucketPolicy"] == 2 and calls["s3:GetBucketVersioning"] == 2


@pytest.mark.parametrize("url,expected", [
    ("http://123456789012.127.0.0.1:5000/v20180820/configuration/publicAccessBlock",
     "http://127.0.0.1:5000/v20180820/configuration/publicAccessBlock"),
    ("http://123456789012.localhost:4566/x", "http://localhost:4566/x"),
    # A real AWS host keeps its account label: the fix is for emulator endpoints only.
    ("https://123456789012.s3-control.us-east-1.amazonaws.com/x",
     "https://123456789012.s3-control.us-east-1.amazonaws.com/x"),
])
def test_s3control_account_label_stripped_only_for_emulator_hosts(url, expected):
    class Request:
        pass

    request = Request()
    request.url = url
    ct._strip_account_from_emulator_host(request)
    assert request.url == expected
