"""Bad input is a usage error: one line on stderr, exit 2, nothing written, no AWS call made.

The config rules are AWS's own (provisioner/naming.py cites each page); the emulator accepts most of
these values, so they are tested against the loader, not against it."""

from __future__ import annotations

import os

import pytest
from typer.testing import CliRunner

from provisioner import cli
from provisioner.baseline import ConfigError, parse_baseline
from provisioner.naming import known_regions, region_problem

SUBSCRIPTION = {"protocol": "email", "endpoint": "sec@example.com"}


@pytest.mark.parametrize(("config", "expected"), [
    ({"cloudtrail": {"bucket_name": "192.168.5.4"}}, "cloudtrail.bucket_name: an S3 bucket name cannot be formatted as an IP address"),
    ({"cloudtrail": {"bucket_name": "my..logs"}}, "cloudtrail.bucket_name: an S3 bucket name cannot contain two adjacent periods"),
    ({"cloudtrail": {"bucket_name": "xn--logs"}}, "cannot start with 'xn--'"),
    ({"cloudtrail": {"bucket_name": "logs-s3alias"}}, "cannot end with '-s3alias'"),
    ({"state": {"backend": "s3", "bucket": "sthree-state"}}, "state.bucket: an S3 bucket name cannot start with 'sthree-'"),
    ({"cloudtrail": {"trail_name": "my--trail"}}, "cloudtrail.trail_name: a trail name cannot have adjacent"),
    ({"cloudtrail": {"trail_name": "my._trail"}}, "cannot have adjacent '.', '_' or '-'"),
    ({"cloudtrail": {"trail_name": "10.0.0.1"}}, "a trail name cannot be formatted as an IP address"),
    ({"name_prefix": "team-"}, "name_prefix 'team-' gives the trail name 'team--trail'"),
    ({"name_prefix": "xn", "cloudtrail": {"trail_name": "main"}, "account_id": "123456789012"}, None),
    ({"cloudtrail": {"s3_key_prefix": "a" * 201}}, "cloudtrail.s3_key_prefix: an S3 key prefix has at most 200 characters"),
    ({"flow_logs": {"s3_key_prefix": "vpc/AWSLogs"}}, "flow_logs.s3_key_prefix: an S3 key prefix cannot use 'AWSLogs'"),
    ({"config": {"s3_key_prefix": "AWSLogs"}}, "config.s3_key_prefix"),
    # The fleet CPU alarm is a Metrics Insights query: 3 hours at most (i11's rule, in baseline.py).
    ({"alarms": {"cpu_period_seconds": 300, "cpu_evaluation_periods": 300}}, "alarms: cpu_evaluation_periods x"),
    ({"alarms": {"cpu_period_seconds": 3600, "cpu_evaluation_periods": 4}}, "must be at most 3 hours"),
    ({"alarms": {"cpu_period_seconds": 60, "cpu_evaluation_periods": 180}}, None),      # exactly 3 hours
    ({"alarms": {"subscriptions": [SUBSCRIPTION, {"protocol": "sms", "endpoint": "+15550100"}, SUBSCRIPTION]}},
     "alarms.subscriptions: [2] repeats [0]: email subscription to 'sec@example.com' twice"),
    ({"regions": ["eu-west-1", "eu-west-9"], "home_region": "eu-west-1"},
     "regions[1]: 'eu-west-9' is not a region of any AWS partition"),
    ({"home_region": "us-east-1", "regions": ["us-east-1", "cn-north-1"]},
     "regions: 'cn-north-1' is in the aws-cn partition, home_region 'us-east-1' in aws"),
    ({"allocate_address": {"allowed_regions": ["us-gov-west-1"]}}, "allocate_address.allowed_regions: 'us-gov-west-1'"),
])
def test_config_values_aws_would_refuse_are_config_errors(config, expected):
    if expected is None:
        parse_baseline(config)  # the limit itself is accepted
        return
    with pytest.raises(ConfigError) as caught:
        parse_baseline(config, "harden.toml")
    message = str(caught.value)
    assert expected in message, message
    assert "\n" not in message and message.startswith("harden.toml: ")


def test_region_names_come_from_botocore_with_the_nearest_valid_ones():
    assert "eu-west-1" in known_regions("aws") and "cn-north-1" not in known_regions("aws")
    assert region_problem("cn-north-1", "aws-cn") is None
    why = region_problem("xx-fake-1", "aws")
    assert why.startswith("'xx-fake-1' is not a region of the aws partition (botocore ")
    assert why.count(",") == 2 and all(r in known_regions("aws") for r in why.split("nearest: ")[1].split(", "))
    assert "nearest: eu-west-3, eu-west-2, eu-west-1" in region_problem("eu-west-4", "aws")


class _Result:
    def __init__(self, code: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = code, stdout, stderr


def _cli(args: list[str], tmp_path) -> _Result:
    """The CLI in-process (typer's runner). No emulator and a dead endpoint: a usage error must
    come before any AWS call, or this would be exit 3."""
    cfg = tmp_path / "harden.toml"
    cfg.write_text('home_region = "eu-west-1"\nregions = ["eu-west-1"]\n')
    env = {k: None for k in os.environ if k.startswith(("AWS_", "HARDEN_"))}
    env.update(AWS_ENDPOINT_URL="http://127.0.0.1:9", AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x")
    result = CliRunner().invoke(cli.app, [*args, "-c", str(cfg)], env=env)
    return _Result(result.exit_code, result.stdout, result.stderr)


def _one_line_exit_2(proc, expected: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert expected in lines[0], lines[0]


@pytest.mark.parametrize(("args", "expected"), [
    (["verify", "--regions", "eu-west-1,xx-fake-1"], "--regions: 'xx-fake-1' is not a region of the aws partition"),
    (["ebs", "migrate", "--regions", "eu-wset-1"], "nearest: eu-west-1"),
    (["events", "allocate-address", "--since", "99999999999999999999d"], "--since '99999999999999999999d': must be"),
    (["verify", "--since", "99999999999999999999d"], "at most 90d"),
    # An unset variable in `--controls "$CONTROLS"`: verify checked nothing and said "no drift",
    # exit 0; remediate widened to every fix.
    (["verify", "--controls", ""], "--controls '' names no control"),
    (["verify", "--controls", " , "], "names no control"),
    (["remediate", "--apply", "--controls", ""], "--controls '' names no control"),
    # The same for `--regions "$REGION"`: an empty value meant every enabled region, so an unset
    # variable widened `remediate --apply` (and the Terraform commands) to the whole account.
    (["remediate", "--apply", "--regions", ""], "--regions '' names no region"),
    (["verify", "-r", " , "], "names no region"),
    (["plan", "--regions", ""], "--regions '' names no region"),
    (["ec2", "amis", "-r", ""], "--regions '' names no region"),
    (["ec2", "amis", "-r", "eu-wset-1"], "nearest: eu-west-1"),
    (["drift", "--regions", ""], "--regions '' names no region"),
])
def test_cli_bad_arguments_exit_2_before_any_aws_call(args, expected, tmp_path):
    _one_line_exit_2(_cli(args, tmp_path), expected)


def test_cli_output_to_a_directory_or_a_missing_folder_writes_nothing(tmp_path):
    folder = tmp_path / "reports"
    folder.mkdir()
    _one_line_exit_2(_cli(["verify", "--output", str(folder)], tmp_path), "is a directory")
    assert list(folder.iterdir()) == []
    missing = tmp_path / "missing" / "report.json"
    _one_line_exit_2(_cli(["verify", "--format", "json", "--output", str(missing)], tmp_path),
                     f"folder {missing.parent} does not exist")
    assert not missing.parent.exists()


def test_cli_config_error_writes_nothing(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[cloudtrail]\nbucket_name = "10.1.2.3"\n')
    result = CliRunner().invoke(cli.app, ["render", "-c", str(bad), "--dir", str(tmp_path / "out")])
    _one_line_exit_2(_Result(result.exit_code, result.stdout, result.stderr), "cloudtrail.bucket_name: an S3 bucket name cannot be formatted as an IP address")
    assert not (tmp_path / "out").exists()


def test_a_config_nested_too_deeply_is_a_config_error_not_a_traceback(tmp_path):
    # tomllib recurses per nesting level: before, a RecursionError traceback and exit 1.
    cfg = tmp_path / "harden.toml"
    cfg.write_text("x = " + "[" * 5000 + "]" * 5000 + "\n")
    result = CliRunner().invoke(cli.app, ["render", "-c", str(cfg), "--dir", str(tmp_path / "tf")])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.exception
    assert result.stderr.strip() == f"error: {cfg}: not valid TOML: arrays or tables nested too deeply"
    assert not (tmp_path / "tf").exists()
