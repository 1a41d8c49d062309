"""flow_logs.all_vpcs against the emulator: ACTIVE + ALL passes; REJECT-only or none fails."""

from __future__ import annotations

import json

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


def _encrypted_group_flow_log(aws, policy_of):
    """A VPC whose flow log delivers to a log group encrypted with a key whose policy is
    policy_of(account, group_arn)."""
    account = aws.account_id()
    group = "/aws/vpc-flow-logs/harden"
    group_arn = f"arn:aws:logs:{REGION}:{account}:log-group:{group}"
    key = aws.client("kms", REGION).create_key(Policy=json.dumps(policy_of(account, group_arn)))["KeyMetadata"]["Arn"]
    aws.client("logs", REGION).create_log_group(logGroupName=group, kmsKeyId=key)
    ec2 = aws.client("ec2", REGION)
    vpc = ec2.create_vpc(CidrBlock="10.3.0.0/16")["Vpc"]["VpcId"]
    resp = ec2.create_flow_logs(ResourceIds=[vpc], ResourceType="VPC", TrafficType="ALL",
                                LogDestinationType="cloud-watch-logs", LogGroupName=group,
                                DeliverLogsPermissionArn=f"arn:aws:iam::{account}:role/flow")
    assert not resp.get("Unsuccessful"), resp["Unsuccessful"]
    return vpc, key


def _harden_policy(account, group_arn):
    from provisioner.resources import Site, flow_log_key
    return flow_log_key(parse_baseline({}), Site(account, REGION)).policy


def test_flow_log_group_key_policy_is_judged(aws):
    vpc, _ = _encrypted_group_flow_log(aws, _harden_policy)
    finding = {f.resource: f for f in all_vpcs(_ctx(aws))}[vpc]
    assert finding.status == "pass", finding.message


def test_flow_log_group_key_policy_stripped_fails(aws):
    def stripped(account, group_arn):
        policy = _harden_policy(account, group_arn)
        return {**policy, "Statement": [s for s in policy["Statement"] if "Service" not in s["Principal"]]}
    vpc, key = _encrypted_group_flow_log(aws, stripped)
    finding = {f.resource: f for f in all_vpcs(_ctx(aws))}[vpc]
    assert finding.status == "fail"
    assert key in finding.message and f"logs.{REGION}.amazonaws.com" in finding.message
    assert "kms:Encrypt, kms:Decrypt, kms:GenerateDataKey" in finding.message


def test_flow_log_group_key_policy_outside_principal_fails(aws):
    def widened(account, group_arn):
        policy = _harden_policy(account, group_arn)
        return {**policy, "Statement": policy["Statement"] + [
            {"Sid": "Outsider", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::999999999999:root"},
             "Action": "kms:Decrypt", "Resource": "*"}]}
    vpc, key = _encrypted_group_flow_log(aws, widened)
    finding = {f.resource: f for f in all_vpcs(_ctx(aws))}[vpc]
    assert finding.status == "fail"
    assert key in finding.message and "arn:aws:iam::999999999999:root" in finding.message


def test_vpcs_another_account_owns_are_left_to_their_owner(aws):
    """DescribeVpcs lists the VPCs shared with a participant too (OwnerId: the owner's), but a
    participant cannot create or describe flow logs for them: only VPCs of the checked account
    are judged. The emulator's VPCs belong to its account; the context is another account's."""
    ec2 = aws.client("ec2", REGION)
    vpc = ec2.create_vpc(CidrBlock="10.4.0.0/16")["Vpc"]["VpcId"]
    assert vpc in {f.resource for f in all_vpcs(_ctx(aws))}
    participant = CheckContext(aws=aws, baseline=parse_baseline({}), region=REGION, account_id="210987654321",
                               control_id="flow_logs.all_vpcs")
    assert vpc not in {f.resource for f in all_vpcs(participant)}
