"""Partition and ARN parsing come from botocore's own data and parser (no hand-written rules)."""

from __future__ import annotations

import pytest

from provisioner.aws import dns_suffix_for, parse_arn, partition_for


@pytest.mark.parametrize(("region", "partition"), [
    ("us-east-1", "aws"), ("il-central-1", "aws"), ("cn-northwest-1", "aws-cn"), ("us-gov-east-1", "aws-us-gov"),
    ("us-iso-east-1", "aws-iso"), ("eu-isoe-west-1", "aws-iso-e"),
    ("ap-somewhere-9", "aws"),  # not listed yet: matched by the aws partition's region pattern
])
def test_partition_of_a_region(region, partition):
    assert partition_for(region) == partition


@pytest.mark.parametrize(("region", "suffix"), [
    ("eu-west-3", "amazonaws.com"), ("cn-north-1", "amazonaws.com.cn"), ("us-gov-west-1", "amazonaws.com"),
    ("us-iso-east-1", "c2s.ic.gov"), ("us-isob-east-1", "sc2s.sgov.gov"), ("ap-somewhere-9", "amazonaws.com"),
])
def test_dns_suffix_of_a_region(region, suffix):
    # kms:ViaService values and regional service principals end in it; a hand-written "cn-" rule got the
    # ISO partitions wrong.
    assert dns_suffix_for(region) == suffix


def test_partition_lookup_needs_no_profile(monkeypatch):
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    partition_for.cache_clear()
    assert partition_for("cn-north-1") == "aws-cn"


def test_arn_parts_keep_the_resources_own_colons():
    parts = parse_arn("arn:aws-us-gov:logs:us-gov-west-1:123456789012:log-group:/aws/trail:name:*")
    assert parts == {"partition": "aws-us-gov", "service": "logs", "region": "us-gov-west-1",
                     "account": "123456789012", "resource": "log-group:/aws/trail:name:*"}
    with pytest.raises(ValueError):
        parse_arn("not-an-arn")
