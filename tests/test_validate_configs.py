"""Every shape of harden.toml renders Terraform that the provider schema and Terraform's own
loader accept: defaults, every option on, S3 vs CloudWatch flow logs, an organization trail,
many regions, families switched off, an S3 state backend, the emulator endpoints."""

from __future__ import annotations

import pytest

from provisioner.baseline import parse_baseline
from provisioner.render import render
from provisioner.terraform import load_check
from provisioner.validate import validate_tree

ACCOUNT = "123456789012"
EVERYTHING = {
    "account_id": ACCOUNT,
    "organization_id": "o-a1b2c3d4e5",
    "home_region": "eu-west-1",
    "regions": ["eu-west-1", "eu-central-1", "us-east-1", "ap-southeast-2", "sa-east-1"],
    "name_prefix": "acme-sec",
    "tags": {"Owner": 'platform "sec" ${x}', "cost:center": "a+b=c@d"},
    "cloudtrail": {"trail_name": "org.trail-1", "bucket_name": "acme-audit-logs", "s3_key_prefix": "ct/logs",
                   "log_retention_days": 731, "log_expiration_days": 3650, "organization_trail": True},
    "kms": {"deletion_window_days": 7},
    "flow_logs": {"destination": "s3", "traffic_type": "ALL", "max_aggregation_interval": 60,
                  "vpc_ids": {"us-east-1": ["vpc-0a1b2c3d4e5f60718"]}, "s3_key_prefix": "vpc"},
    "config": {"delivery_frequency": "One_Hour", "rules": ["CLOUD_TRAIL_ENABLED", "EIP_ATTACHED"],
               "s3_key_prefix": "cfg"},
    "allocate_address": {"allowed_principals": [f"arn:aws:iam::{ACCOUNT}:role/net/NetAdmin+Ops"],
                         "allowed_regions": ["eu-west-1"]},
    "scp": {"targets": ["r-ab12", "ou-ab12-cdef3456", ACCOUNT], "admin_principals": [f"arn:aws:iam::{ACCOUNT}:role/pipeline"]},
    "ebs": {"kms_key_arns": {"eu-west-1": f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"}},
    "alarms": {"topic_name": "acme_alarms", "cpu_threshold": 92.5, "cpu_evaluation_periods": 2,
               "cpu_period_seconds": 60, "allocate_address_threshold": 3,
               "subscriptions": [{"protocol": "email", "endpoint": "sec+alerts@example.com"},
                                 {"protocol": "https", "endpoint": "https://hooks.example.com/x?y=1"}]},
    "state": {"backend": "s3", "bucket": "acme-tf-state", "dynamodb_table": "locks"},
}

CONFIGS = {
    "defaults": {},
    "every-option": EVERYTHING,
    "cloudwatch-flow-logs": {"regions": ["us-east-1"], "home_region": "us-east-1",
                             "flow_logs": {"destination": "cloud-watch-logs", "log_retention_days": 30}},
    "s3-flow-logs": {"regions": ["us-west-2"], "home_region": "us-west-2", "flow_logs": {"destination": "s3"}},
    "organization-trail": {"organization_id": "o-a1b2c3d4e5", "cloudtrail": {"organization_trail": True}},
    "families-off": {"flow_logs": {"enabled": False}, "config": {"enabled": False}, "alarms": {"enabled": False},
                     "ebs": {"enabled": False}, "scp": {"enabled": False}},
    "no-baseline-protection": {"scp": {"protect_baseline": False, "targets": ["r-ab12"]}},
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_rendering_validates_against_the_provider_schema(name, tmp_path):
    render(parse_baseline(CONFIGS[name]), tmp_path, endpoint_url="http://127.0.0.1:4566" if name == "defaults" else None)
    problems = validate_tree(tmp_path)
    assert problems == [], "\n".join(map(str, problems))


@pytest.mark.parametrize("name", ["every-option", "families-off"])
def test_rendering_loads_in_terraform(name, tmp_path):
    render(parse_baseline(CONFIGS[name]), tmp_path)
    roots = [tmp_path / "account"] + ([tmp_path / "organization"] if (tmp_path / "organization").exists() else [])
    for root in roots:
        assert load_check(root) == [], root
