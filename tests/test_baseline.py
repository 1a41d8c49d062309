"""Config: the defaults are a valid, secure baseline; every kind of bad input is one line, exit 2."""

from __future__ import annotations

import subprocess
import sys

import pytest

from provisioner.baseline import Baseline, ConfigError, load_baseline, parse_baseline

HARDEN = [sys.executable, "-m", "provisioner.cli"]


def test_empty_file_is_the_secure_default(tmp_path):
    cfg = tmp_path / "harden.toml"
    cfg.write_text("")
    b = load_baseline(cfg)
    assert b == Baseline()
    assert b.regions == "all-enabled" and b.explicit_regions is None
    assert b.flow_logs.traffic_type == "ALL"
    assert b.flow_logs.enabled and b.config.enabled and b.ebs.enabled and b.alarms.enabled
    assert b.scp.protect_baseline is True
    assert b.allocate_address.allowed_principals == []  # nobody may allocate until named
    assert b.trail_name == "harden-trail"
    assert b.topic_name == "harden-security-alarms"


def test_example_config_loads(example_baseline):
    assert example_baseline.home_region == "eu-west-1"
    assert example_baseline.explicit_regions == ["eu-west-1", "eu-central-1", "us-east-1"]
    assert example_baseline.alarms.subscriptions[0].endpoint == "secops@example.com"


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ('regions = ["eu-west-9x"]', "regions[0]: expected an AWS region name such as 'eu-west-1', got 'eu-west-9x'"),
        ('account_id = "12345"', "account_id: expected a 12-digit AWS account id, got '12345'"),
        ('account_id = 123456789012', "account_id: input should be a valid string"),
        ('[scp]\ntargetz = ["r-abcd"]', "scp.targetz: unknown key (expected one of: enabled, targets, protect_baseline, admin_principals)"),
        ('colour = "red"', "colour: unknown key (expected one of: account_id,"),
        # Issue 11.2: the protection SCP with nobody exempt would deny applying the baseline itself.
        ('[scp]\ntargets = ["r-abcd"]', "scp: targets are set but admin_principals is empty"),
        ('[scp]\ntargets = ["r-abcd"]', "or protect_baseline = false"),
        ('[scp]\ntargets = ["foo"]', "scp.targets[0]: expected an organization root (r-...), an OU (ou-...-...) or a 12-digit account id, got 'foo'"),
        ('[allocate_address]\nallowed_principals = ["arn:aws:iam::123456789012:role/a\\"b"]',
         "allocate_address.allowed_principals[0]: expected an IAM user or role ARN"),
        ('[allocate_address]\nallowed_principals = ["role/NetworkAdmin"]', "allocate_address.allowed_principals[0]: expected an IAM user or role ARN"),
        ('[alarms]\ncpu_threshold = "high"', "alarms.cpu_threshold: input should be a valid number"),
        ('[alarms]\ncpu_threshold = 150', "alarms.cpu_threshold: input should be less than or equal to 100"),
        ('[alarms]\ncpu_period_seconds = 90', "alarms.cpu_period_seconds: must be 10, 30 or a multiple of 60 seconds"),
        ('[flow_logs]\ntraffic_type = "SOME"', "flow_logs.traffic_type: expected 'ALL', 'ACCEPT' or 'REJECT', got 'SOME'"),
        ('[flow_logs]\nlog_retention_days = 42', "flow_logs.log_retention_days: must be one of CloudWatch Logs' retention periods"),
        ('regions = "all"', "regions: expected 'all-enabled', got 'all'"),
        ('regions = []', "regions: must name at least one region"),
        ('home_region = "eu-west-1"\nregions = ["us-east-1"]', "home_region 'eu-west-1' must be one of regions ['us-east-1']"),
        ('name_prefix = "Harden_Prod"', "name_prefix: expected 1-20 lowercase letters, digits or '-'"),
        ('[cloudtrail]\ntrail_name = "a\\"}\\n"', "cloudtrail.trail_name: expected 3-128 letters, digits"),
        ('[tags]\n"aws:owner" = "x"', "tags: tag key 'aws:owner': the aws: prefix is reserved for AWS"),
        ('[tags]\nOwner = "line\\nbreak"', "tags.Owner: expected text without control characters or line breaks"),
        ('[[alarms.subscriptions]]\nprotocol = "email"\nendpoint = "nope"', "alarms.subscriptions[0]: an email subscription needs an email address, got 'nope'"),
        ('[[alarms.subscriptions]]\nprotocol = "https"\nendpoint = "http://x.example"', "an https subscription needs an https:// URL"),
        ('[ebs.kms_key_arns]\neu-west-1 = "arn:aws:kms:us-east-1:123456789012:key/abcd"', "the key for eu-west-1 is in region us-east-1"),
        ('[cloudtrail]\norganization_trail = true', "cloudtrail.organization_trail needs organization_id"),
        # A key prefix lands in bucket-policy and IAM resource ARNs, where '*' is a wildcard.
        ('[config]\ns3_key_prefix = "*"', "config.s3_key_prefix: expected an S3 key prefix of letters, digits"),
        ('[flow_logs]\ns3_key_prefix = "logs/*"', "flow_logs.s3_key_prefix: expected an S3 key prefix"),
        ('[cloudtrail]\ns3_key_prefix = "ct*"', "cloudtrail.s3_key_prefix: expected an S3 key prefix"),
        ('[network]\nadmin_ports = [22, 22]', "network.admin_ports: lists a port twice"),
        ('[network]\nadmin_ports = []', "network.admin_ports: must name at least one port"),
        ('[network]\nadmin_ports = [65536]', "network.admin_ports[0]: input should be less than or equal to 65535"),
        ('[network]\nadmin_ports = ["ssh"]', "network.admin_ports[0]: input should be a valid integer"),
        ('[ami]\nmax_age_days = 0', "ami.max_age_days: input should be greater than or equal to 1"),
        ('[ami]\nallowed_owners = ["self"]', "ami.allowed_owners[0]: expected a 12-digit AWS account id, 'amazon'"),
        ('[ami]\nallowed_images_state = "on"', "ami.allowed_images_state: expected 'audit-mode' or 'enabled', got 'on'"),
        ('[eip]\npool_max_share = 80', "eip.pool_max_share: input should be less than or equal to 1"),
        ('[eip]\npool_max_share = 0', "eip.pool_max_share: input should be greater than 0"),
    ],
)
def test_bad_input_is_one_clear_line(tmp_path, toml, expected):
    cfg = tmp_path / "harden.toml"
    cfg.write_text(toml + "\n")
    with pytest.raises(ConfigError) as info:
        load_baseline(cfg)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{cfg}: ")
    assert expected in message


def test_unreadable_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_baseline(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="is a directory"):
        load_baseline(tmp_path)
    bad = tmp_path / "bad.toml"
    bad.write_text("name_prefix = \"x\"\nregions == 2\n")
    with pytest.raises(ConfigError, match=r"bad.toml: not valid TOML: .*line 2"):
        load_baseline(bad)
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError, match="cannot read"):
        load_baseline(binary)


def test_odd_but_valid_values_are_accepted():
    b = parse_baseline({
        "tags": {"Team": 'Sec "Ops" ${var.x} %{ if true }\\', "cost:center": "a+b=c@d"},
        "allocate_address": {"allowed_principals": ["arn:aws:iam::123456789012:role/path/Net+Ops=,.@_-*"]},
        "regions": ["ap-southeast-2", "us-west-2", "il-central-1"],
        "home_region": "ap-southeast-2",
    })
    assert b.tags["Team"].startswith('Sec "Ops"')


@pytest.mark.parametrize("args", [["render", "-c", "{bad}", "-d", "{out}"]])
def test_cli_bad_config_exit_2_no_traceback(tmp_path, args):
    bad = tmp_path / "bad.toml"
    bad.write_text('[scp]\ntargets = ["nope"]\n')
    argv = [a.format(bad=bad, out=tmp_path / "out") for a in args]
    proc = subprocess.run(HARDEN + argv, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ") and "scp.targets[0]" in lines[0]
    assert not (tmp_path / "out").exists()  # nothing written on a config error
