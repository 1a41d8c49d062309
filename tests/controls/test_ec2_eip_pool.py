"""ec2.ami_currency and eip.pool against the emulator.

The emulator cannot deprecate an image, backdate one, or answer Service Quotas for EC2: the AMI
tests run with the sandbox's additions installed (provisioner/sandbox_emulator.py, which sets
what the real APIs would return), and the quota tests stub Service Quotas with botocore's Stubber
(validated against the real service model), as they do CloudTrail's LookupEvents.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from provisioner import sandbox_emulator
from provisioner.baseline import parse_baseline
from provisioner.controls import CheckContext
from provisioner.controls.ec2 import ami_currency
from provisioner.controls.eip import EIP_QUOTA_CODE, pool
from provisioner.sandbox import SANDBOX_AMI
from tests.stubbing import OperationStubber

REGION = "sa-east-1"
NOW = datetime.now(timezone.utc)


def _ctx(aws, control_id, baseline=None, region=REGION, since=timedelta(days=7)):
    return CheckContext(aws=aws, baseline=baseline or parse_baseline({}), region=region,
                        account_id=aws.account_id(), control_id=control_id, since=NOW - since, now=NOW)


@pytest.fixture()
def emulator_additions():
    sandbox_emulator.install()
    yield
    sandbox_emulator.uninstall()


def _run(ec2, image, name):
    return ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, TagSpecifications=[
        {"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": name}]}])["Instances"][0]["InstanceId"]


def test_ami_currency_flags_old_deprecated_missing_and_foreign_images(aws, emulator_additions):
    ec2 = aws.client("ec2", REGION)
    account = aws.account_id()
    fresh = ec2.register_image(Name="fresh \"build\"", RootDeviceName="/dev/xvda")["ImageId"]
    old = ec2.register_image(Name="old", RootDeviceName="/dev/xvda")["ImageId"]
    sandbox_emulator.set_image_creation_date(account, REGION, old, NOW - timedelta(days=91))
    edge = ec2.register_image(Name="edge", RootDeviceName="/dev/xvda")["ImageId"]
    sandbox_emulator.set_image_creation_date(account, REGION, edge, NOW - timedelta(days=89))
    deprecated = ec2.register_image(Name="deprecated", RootDeviceName="/dev/xvda")["ImageId"]
    ec2.enable_image_deprecation(ImageId=deprecated, DeprecateAt=NOW - timedelta(hours=1))
    later = ec2.register_image(Name="deprecated-later", RootDeviceName="/dev/xvda")["ImageId"]
    ec2.enable_image_deprecation(ImageId=later, DeprecateAt=NOW + timedelta(days=30))
    gone = ec2.register_image(Name="gone", RootDeviceName="/dev/xvda")["ImageId"]
    ids = {name: _run(ec2, image, name) for name, image in
           (("fresh", fresh), ("old", old), ("edge", edge), ("deprecated", deprecated), ("later", later),
            ("gone", gone), ("amazon", SANDBOX_AMI))}
    ec2.deregister_image(ImageId=gone)
    ec2.stop_instances(InstanceIds=[_run(ec2, old, "stopped-old")])  # not running: not checked

    by_id = {f.resource: f for f in ami_currency(_ctx(aws, "ec2.ami_currency"))}

    assert set(by_id) == set(ids.values())
    status = {name: by_id[i].status for name, i in ids.items()}
    assert status == {"fresh": "pass", "old": "fail", "edge": "pass", "deprecated": "fail", "later": "pass",
                      "gone": "fail", "amazon": "pass"}
    old_row = by_id[ids["old"]].evidence
    assert (old_row["image_id"], old_row["image_name"], old_row["owner_id"], old_row["age_days"]) == (old, "old", account, 91)
    assert "91 days old" in by_id[ids["old"]].message and "(old)" in by_id[ids["old"]].message
    assert "deprecated since" in by_id[ids["deprecated"]].message
    assert "no longer exists" in by_id[ids["gone"]].message

    # Owners: only Amazon's images allowed now; the account's own (fresh) fails, Amazon's passes.
    strict = parse_baseline({"ami": {"allowed_owners": ["amazon"], "max_age_days": 365}})
    by_id = {f.resource: f for f in ami_currency(_ctx(aws, "ec2.ami_currency", strict))}
    assert by_id[ids["fresh"]].status == "fail" and "not in ami.allowed_owners" in by_id[ids["fresh"]].message
    assert by_id[ids["amazon"]].status == "pass"
    assert by_id[ids["old"]].status == "fail"  # owner, not age, this time
    assert by_id[ids["old"]].evidence["problems"] == [f"the image's owner {account} is not in ami.allowed_owners"]


def test_ami_currency_passes_an_empty_region(aws):
    [finding] = ami_currency(_ctx(aws, "ec2.ami_currency", region="eu-north-1"))
    assert finding.status == "pass" and finding.evidence["instances"] == 0


def _quota(value: float, region=REGION) -> dict:
    return {"Quota": {"ServiceCode": "ec2", "QuotaCode": EIP_QUOTA_CODE, "QuotaName": "EC2-VPC Elastic IPs",
                      "QuotaArn": f"arn:aws:servicequotas:{region}:123456789012:ec2/{EIP_QUOTA_CODE}",
                      "Value": value, "Adjustable": True, "GlobalQuota": False}}


def _event(region, allocation_id, hours_ago, user="arn:aws:iam::123456789012:user/mallory"):
    record = {"eventSource": "ec2.amazonaws.com", "eventName": "AllocateAddress", "awsRegion": region,
              "eventTime": (NOW - timedelta(hours=hours_ago)).strftime("%Y-%m-%dT%H:%M:%SZ"),
              "eventID": f"e-{allocation_id}", "userIdentity": {"type": "IAMUser", "arn": user},
              "responseElements": {"allocationId": allocation_id, "publicIp": "203.0.113.9"}}
    return {"EventId": f"e-{allocation_id}", "EventName": "AllocateAddress", "EventTime": NOW - timedelta(hours=hours_ago),
            "CloudTrailEvent": json.dumps(record)}


def _stub_pool(aws, region, quota_value, events, applied=True):
    quotas = OperationStubber(aws.client("service-quotas", region), "GetServiceQuota", "GetAWSDefaultServiceQuota")
    expected = {"ServiceCode": "ec2", "QuotaCode": EIP_QUOTA_CODE}
    if applied:
        quotas.add_response("get_service_quota", _quota(quota_value, region), expected)
    else:
        quotas.add_client_error("get_service_quota", "NoSuchResourceException", expected_params=expected)
        quotas.add_response("get_aws_default_service_quota", _quota(quota_value, region), expected)
    trail = OperationStubber(aws.client("cloudtrail", region), "LookupEvents")
    for name in ("AllocateAddress", "EnableAddressTransfer", "AcceptAddressTransfer"):
        mine = [e for e in events if e["EventName"] == name]
        trail.add_response("lookup_events", {"Events": mine})
    return quotas, trail


@pytest.mark.parametrize("quota, allocated, share, status", [
    (5, 4, 0.8, "fail"),     # exactly at the share
    (5, 3, 0.8, "pass"),
    (10, 9, 0.95, "pass"),   # a configured share
    (2, 2, 0.8, "fail"),     # full
])
def test_pool_against_quota(aws, quota, allocated, share, status):
    ec2 = aws.client("ec2", REGION)
    ids = [ec2.allocate_address(Domain="vpc")["AllocationId"] for _ in range(allocated)]
    events = [_event(REGION, a, hours_ago=24 * i + 1) for i, a in enumerate(ids[:3])]
    quotas, trail = _stub_pool(aws, REGION, quota, events)
    baseline = parse_baseline({"eip": {"pool_max_share": share}})
    with quotas, trail:
        [finding] = pool(_ctx(aws, "eip.pool", baseline))
    assert finding.status == status, finding.message
    assert finding.resource == REGION and finding.region == REGION
    assert finding.evidence["allocated"] == allocated and finding.evidence["quota"] == quota
    assert finding.evidence["allocations_in_window"] == len(events)
    assert finding.evidence["allocations_per_day"] == round(len(events) / 7, 3)
    assert finding.evidence["allocated_by"] == ["arn:aws:iam::123456789012:user/mallory"]
    assert f"{allocated} of {quota} Elastic IPs" in finding.message


def test_pool_uses_the_default_quota_when_none_was_applied(aws):
    quotas, trail = _stub_pool(aws, "me-central-1", 5, [], applied=False)
    with quotas, trail:
        [finding] = pool(_ctx(aws, "eip.pool", region="me-central-1"))
    assert finding.status == "pass" and finding.evidence["quota"] == 5
    assert finding.evidence["days_until_full_at_this_rate"] is None


def test_sandbox_quota_answers_through_service_quotas(aws, emulator_additions):
    sandbox_emulator.set_address_quota(aws.account_id(), REGION, 3)
    quotas = aws.client("service-quotas", REGION)
    assert quotas.get_service_quota(ServiceCode="ec2", QuotaCode=EIP_QUOTA_CODE)["Quota"]["Value"] == 3
    assert quotas.get_aws_default_service_quota(ServiceCode="ec2", QuotaCode=EIP_QUOTA_CODE)["Quota"]["Value"] == 5
    # moto's own quotas still answer through the wrapper
    vpc = quotas.list_aws_default_service_quotas(ServiceCode="vpc")["Quotas"]
    assert quotas.get_service_quota(ServiceCode="vpc", QuotaCode=vpc[0]["QuotaCode"])["Quota"]["QuotaCode"] == vpc[0]["QuotaCode"]


# -- harden ec2 amis: the seed's describe-instances view ------------------------------------------

def _amis(aws, monkeypatch, tmp_path, *args):
    from typer.testing import CliRunner

    from provisioner import cli

    from rich.console import Console

    monkeypatch.setattr(cli, "_aws_session", lambda *a, **k: aws)
    monkeypatch.setattr(cli, "out", Console(width=250))  # a wide terminal: every cell on one line
    config = tmp_path / "harden.toml"
    config.write_text(f'home_region = "{REGION}"\nregions = ["{REGION}"]\n[ami]\nmax_age_days = 30\n')
    return CliRunner().invoke(cli.app, ["ec2", "amis", "-c", str(config), *args])


def test_ec2_amis_table_and_json(aws, emulator_additions, monkeypatch, tmp_path):
    ec2 = aws.client("ec2", REGION)
    old = ec2.register_image(Name="base-[bold]odd[/]", RootDeviceName="/dev/xvda")["ImageId"]
    sandbox_emulator.set_image_creation_date(aws.account_id(), REGION, old, NOW - timedelta(days=45))
    stale = _run(ec2, old, "api")
    fresh = _run(ec2, SANDBOX_AMI, "web")

    table = _amis(aws, monkeypatch, tmp_path, "--regions", REGION)
    assert table.exit_code == 1, table.output
    assert stale in table.stdout and fresh in table.stdout and "base-[bold]odd[/]" in table.stdout
    assert "45 days old (ami.max_age_days = 30)" in table.stdout and "current" in table.stdout

    doc = json.loads(_amis(aws, monkeypatch, tmp_path, "--regions", REGION, "--format", "json").stdout)
    rows = {r["instance_id"]: r for r in doc["instances"]}
    assert rows[stale]["status"] == "fail" and rows[stale]["age_days"] == 45 and rows[stale]["image_id"] == old
    assert rows[fresh]["status"] == "pass" and rows[fresh]["instance_name"] == "web"
