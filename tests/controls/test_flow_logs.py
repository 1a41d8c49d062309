"""flow_logs.all_vpcs against the emulator: ACTIVE + ALL passes; REJECT-only or none fails."""

from __future__ import annotations

from provisioner.baseline import parse_baseline
from provisioner.controls import CheckContext
from provisioner.controls.flow_logs import all_vpcs

REGION = "eu-west-1"


def _ctx(aws, baseline=None):
    return CheckContext(aws=aws, baseline=baseline or parse_baseline({}), region=REGION,
                        account_id=aws.account_id(), control_id="flow_logs.all_vpcs")


def _flow_log(ec2, vpc_id, traffic="ALL"):
    # The emulator, like AWS, refuses an S3 destination that does not exist (as Unsuccessful).
    resp = ec2.create_flow_logs(ResourceIds=[vpc_id], ResourceType="VPC", TrafficType=traffic,
                         LogDestinationType="s3", LogDestination="arn:aws:s3:::flow-bucket")
    assert not resp.get("Unsuccessful"), resp["Unsuccessful"]


def _bucket(aws):
    aws.client("s3", REGION).create_bucket(Bucket="flow-bucket",
                                           CreateBucketConfiguration={"LocationConstraint": REGION})


def test_all_vpcs_pass_and_fail(aws):
    _bucket(aws)
    ec2 = aws.client("ec2", REGION)
    default_vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    covered = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    reject_only = ec2.create_vpc(CidrBlock="10.2.0.0/16")["Vpc"]["VpcId"]
    _flow_log(ec2, covered, "ALL")
    _flow_log(ec2, reject_only, "REJECT")

    by_vpc = {f.resource: f for f in all_vpcs(_ctx(aws))}

    assert set(by_vpc) == {default_vpc, covered, reject_only}
    assert by_vpc[covered].status == "pass"
    assert by_vpc[covered].region == REGION
    assert by_vpc[covered].evidence["flow_logs"][0]["traffic_type"] == "ALL"
    assert by_vpc[reject_only].status == "fail"
    assert "traffic REJECT" in by_vpc[reject_only].message
    assert by_vpc[default_vpc].status == "fail" and by_vpc[default_vpc].message == "no flow log"


def test_vpc_ids_narrow_the_check(aws):
    _bucket(aws)
    ec2 = aws.client("ec2", REGION)
    vpc = ec2.create_vpc(CidrBlock="10.3.0.0/16")["Vpc"]["VpcId"]
    _flow_log(ec2, vpc)
    baseline = parse_baseline({"flow_logs": {"vpc_ids": {REGION: [vpc, "vpc-0000000000000dead"]}}})
    by_vpc = {f.resource: f for f in all_vpcs(_ctx(aws, baseline))}
    assert by_vpc[vpc].status == "pass"
    assert by_vpc["vpc-0000000000000dead"].status == "fail"
    others = [f for r, f in by_vpc.items() if r not in (vpc, "vpc-0000000000000dead")]
    assert others and all(f.status == "skipped" for f in others)


def test_one_describe_flow_logs_per_region(aws):
    _bucket(aws)
    ec2 = aws.client("ec2", REGION)
    for i in range(5):
        _flow_log(ec2, ec2.create_vpc(CidrBlock=f"10.{10 + i}.0.0/16")["Vpc"]["VpcId"])
    before = aws.calls.by_operation().get("ec2:DescribeFlowLogs", 0)
    all_vpcs(_ctx(aws))
    assert aws.calls.by_operation()["ec2:DescribeFlowLogs"] - before == 1
