"""One CLI: the same flag means the same thing on every command, help that reads at 80 columns,
usage errors on one line, --version, shell completion, reports to --output everywhere."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
import typer.main

from provisioner import __version__, cli

HARDEN = [sys.executable, "-m", "provisioner.cli"]
FIXTURES = Path(__file__).parent / "fixtures"

# Commands that talk to AWS, and commands that print a report (table/json or more).
AWS_COMMANDS = {"verify", "remediate", "respond", "plan", "apply", "bootstrap", "drift", "eip release",
                "events allocate-address", "ebs migrate", "ec2 amis"}
REPORTING = {"scan", "verify", "remediate", "respond", "bootstrap", "drift", "eip release",
             "events allocate-address", "ebs migrate", "ec2 amis", "controls"}


def _commands():
    """(path, click command) of every leaf command, walking the real command tree."""
    def walk(prefix, command):
        subcommands = getattr(command, "commands", None)
        if subcommands:
            for name, sub in subcommands.items():
                yield from walk(f"{prefix} {name}".strip(), sub)
        else:
            yield prefix, command
    return list(walk("", typer.main.get_command(cli.app)))


def _options(command) -> dict[str, object]:
    return {opt: p for p in command.params for opt in (*p.opts, *p.secondary_opts)}


class _Done:
    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def _run(args, env=None, cwd=None):
    """harden in this process (a subprocess per call costs seconds on a busy machine), at 80 columns."""
    from typer.testing import CliRunner

    previous = Path.cwd()
    try:
        if cwd:
            os.chdir(cwd)
        result = CliRunner().invoke(cli.app, args, env={"COLUMNS": "80", **(env or {})}, prog_name="harden")
    finally:
        os.chdir(previous)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return _Done(result.exit_code, result.stdout, result.stderr)


def test_the_tree_has_every_command_we_reason_about():
    names = {path for path, _ in _commands()}
    assert AWS_COMMANDS | REPORTING | {"render", "validate", "sandbox serve", "sandbox exec", "version"} <= names


@pytest.mark.parametrize("path", sorted(AWS_COMMANDS))
def test_aws_commands_take_profile_role_and_regions(path):
    options = _options(dict(_commands())[path])
    for flag in ("--profile", "--role-arn", "--regions", "-r"):
        assert flag in options, f"harden {path} has no {flag}"
    assert options["--regions"].metavar == "REGION[,REGION...]"


@pytest.mark.parametrize("path", sorted(REPORTING))
def test_reporting_commands_take_format_and_output(path):
    options = _options(dict(_commands())[path])
    assert options["--format"] is options["-f"]
    assert options["--output"] is options["-o"] and options["--output"].name == "output"


def test_same_flag_same_meaning_everywhere():
    for path, command in _commands():
        options = _options(command)
        assert "--verbose" in options and "--debug" in options, path
        visible = [p for p in command.params if not getattr(p, "hidden", False)]
        for p in visible:
            # -o is always the report file; the Terraform directory is --dir/-d
            if "-o" in p.opts:
                assert p.name == "output", f"harden {path}: -o is {p.name}"
            if "--dir" in p.opts:
                assert "-d" in p.opts


def test_every_help_has_examples_and_fits_80_columns():
    for path, command in _commands():
        proc = _run([*path.split(), "-h"])
        assert proc.returncode == 0, (path, proc.stderr)
        assert "Examples:" in proc.stdout, path
        lines = proc.stdout.splitlines()
        # nothing cut off (a usage line ends in "..." for arguments that repeat)
        assert not [line for line in lines if line.rstrip().endswith(("…", "...")) and not line.startswith("Usage:")], path
        assert not [line for line in lines if len(line) > 80], path
        # real metavars (REGION[,REGION...], FILE, ARN, DIR), not <list[str]>, TEXT or <str>, in the
        # Options and the Arguments sections (typer 0.2x labels an argument with its Python type:
        # `FILE <list[Path]>`, `DIR <path>`) and in the usage line (typer braces a required one: `{FILE}`)
        described = proc.stdout.split("Examples:", 1)[0]
        assert not [w for w in ("list[", "<str>", " TEXT", "<int", "<float", "<path>", "<Path>") if w in described], \
            (path, described)
        usage = lines[0]
        assert "{" not in usage and "<" not in usage, (path, usage)
        arguments = [p for p in command.params if p.param_type_name == "argument" and not getattr(p, "hidden", False)]
        for argument in arguments:
            shown = argument.metavar + ("..." if argument.nargs != 1 else "")
            assert argument.metavar and argument.metavar.isupper(), (path, argument.name)
            assert f" {shown if argument.required else f'[{shown}]'}" in usage, (path, usage)
            listed = proc.stdout.split("Arguments:", 1)[1].split("Options:", 1)[0]
            assert f"\n  {shown}  " in listed, (path, listed)
    top = _run(["-h"]).stdout
    for name in ("render", "verify", "drift", "sandbox"):
        assert f"\n  {name} " in top


@pytest.mark.parametrize(("args", "expected"), [
    (["verify", "--bogus"], "No such option: --bogus"),
    (["verify", "--format", "xml"], "'xml' is not one of"),
    (["nope"], "No such command 'nope'"),
    (["eip", "release", "--workers", "3"], "No such option: --workers"),
    (["respond"], "Missing option '--principal'"),
])
def test_usage_errors_are_one_line_exit_2(args, expected):
    proc = _run(args)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ") and expected in lines[0], lines[0]
    assert "-h'" in lines[0]  # says where to look


@pytest.mark.parametrize(("args", "expected"), [
    (["verify", "--role-arn", "notarn"], "--role-arn 'notarn': expected an IAM role ARN"),
    (["remediate", "--role-arn", "arn:aws:iam::123456789012:user/alice"], "expected an IAM role ARN"),
    (["verify", "--profile", "no-such-profile-here"], "no-such-profile-here"),
    (["eip", "release", "--profile", "no-such-profile-here"], "no-such-profile-here"),
])
def test_bad_credentials_flags_are_usage_errors(args, expected, tmp_path):
    """A malformed --role-arn or a profile that does not exist is the user's input: one line,
    exit 2, before any AWS call (it was exit 3, 'could not start', as if AWS were down)."""
    empty = tmp_path / "empty"
    empty.write_text("")
    proc = _run(args, env={"AWS_CONFIG_FILE": str(empty), "AWS_SHARED_CREDENTIALS_FILE": str(empty),
                           "AWS_ENDPOINT_URL": "http://127.0.0.1:9"})
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = [line for line in proc.stderr.splitlines() if line.strip() and not line.startswith("no harden.toml")]
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], proc.stderr


def test_version_flag_and_command_agree_with_the_distribution():
    from importlib.metadata import version

    assert version("harden-aws") == __version__
    for args in (["--version"], ["-V"], ["version"]):
        proc = subprocess.run([*HARDEN, *args], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0 and proc.stdout.strip() == f"harden {__version__}", args


def test_shell_completion_installs_and_completes():
    # --show-completion prints the script for the shell it runs under (as a user types it in bash)
    # ("; exit": bash would otherwise exec harden in its place, and harden would see the caller's shell)
    script = subprocess.run(["bash", "-c", shlex.join([*HARDEN, "--show-completion"]) + "; exit $?"],
                            capture_output=True, text=True, timeout=60)
    assert script.returncode == 0 and "complete" in script.stdout and "_HARDEN_COMPLETE" in script.stdout
    # What the installed script asks of harden when the user presses Tab after `harden ver`
    proc = subprocess.run(HARDEN, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "_HARDEN_COMPLETE": "complete_bash",
                               "COMP_WORDS": "harden ver", "COMP_CWORD": "1"})
    assert set(proc.stdout.split()) == {"verify", "version"}, proc.stdout
    proc = subprocess.run(HARDEN, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "_HARDEN_COMPLETE": "complete_bash",
                               "COMP_WORDS": "harden drift --fo", "COMP_CWORD": "2"})
    assert proc.stdout.split() == ["--format"]


def test_old_out_spelling_still_works_with_a_deprecation_line(tmp_path):
    for spelling in ("--out", "-o"):
        target = tmp_path / spelling.strip("-")
        proc = _run(["render", spelling, str(target)], cwd=tmp_path, env={"AWS_ENDPOINT_URL": ""})
        assert proc.returncode == 0, proc.stderr
        assert (target / "account" / "main.tf").is_file()
        assert "deprecated: --out/-o for the Terraform directory is now --dir/-d" in proc.stderr
    assert "--out" not in _run(["render", "-h"]).stdout
    assert "--out" not in _run(["render", "--ot", "x"]).stderr  # not suggested either
    proc = _run(["render", "--dir", str(tmp_path / "new")], cwd=tmp_path, env={"AWS_ENDPOINT_URL": ""})
    assert proc.returncode == 0 and "deprecated" not in proc.stderr


def _aws_cli(args, emulator, tmp_path):
    config = tmp_path / "harden.toml"
    config.write_text('home_region = "us-east-1"\nregions = ["us-east-1"]\n')
    return _run([*args, "-c", str(config)], env={"AWS_ENDPOINT_URL": emulator, "AWS_ACCESS_KEY_ID": "testing",
                                                 "AWS_SECRET_ACCESS_KEY": "testing"})


@pytest.mark.parametrize("args", [
    ["remediate", "--controls", "flow_logs"],
    ["eip", "release"],
    ["ebs", "migrate"],
    ["ec2", "amis"],
])
def test_reports_go_to_output(aws, emulator, tmp_path, args):
    report = tmp_path / "report.json"
    proc = _aws_cli([*args, "--format", "json", "--output", str(report)], emulator, tmp_path)
    assert proc.returncode in (0, 1), proc.stderr
    assert proc.stdout.strip() == ""  # the report went to the file, not stdout
    assert isinstance(json.loads(report.read_text()), dict)
    assert f"report written to {report}" in proc.stderr


def test_a_table_report_in_a_file_is_plain_text(aws, emulator, tmp_path):
    aws.client("ec2").allocate_address(Domain="vpc")
    table = tmp_path / "report.txt"
    proc = _aws_cli(["eip", "release", "-o", str(table)], emulator, tmp_path)
    assert proc.returncode == 1, proc.stderr  # a dry run with an address to release
    text = table.read_text()
    assert "eipalloc-" in text and "\x1b[" not in text  # no colour codes in a file
    assert not [line for line in text.splitlines() if line != line.rstrip()]  # no trailing padding


def test_output_that_cannot_be_written_is_one_line_exit_2(aws, emulator, tmp_path):
    proc = _aws_cli(["eip", "release", "-f", "json", "-o", str(tmp_path / "no" / "such" / "dir.json")],
                    emulator, tmp_path)
    assert proc.returncode == 2
    assert [line for line in proc.stderr.splitlines() if line.startswith("error: --output")], proc.stderr


def test_verbose_shows_each_aws_call_on_stderr(aws, emulator, tmp_path):
    import logging

    args = ["verify", "--controls", "flow_logs", "-r", "us-east-1", "-f", "json"]
    quiet = _aws_cli(args, emulator, tmp_path)
    assert "DescribeVpcs" not in quiet.stderr
    try:
        proc = _aws_cli([*args, "--verbose"], emulator, tmp_path)
    finally:
        logging.getLogger("harden").setLevel(logging.NOTSET)
    assert proc.returncode in (0, 1), proc.stderr
    assert "us-east-1 ec2:DescribeVpcs" in proc.stderr
    json.loads(proc.stdout)  # the log stays off stdout


def test_drift_exits_3_and_still_writes_its_report_when_terraform_cannot_init(tmp_path):
    root = tmp_path / "tf" / "account"
    root.mkdir(parents=True)
    # A module that cannot be installed: terraform init fails, as with an unreachable backend.
    (root / "main.tf").write_text('module "gone" {\n  source = "./does-not-exist"\n}\n')
    report = tmp_path / "drift.json"
    proc = _run(["drift", "--no-verify", "--dir", str(tmp_path / "tf"), "-f", "json", "-o", str(report)],
                cwd=tmp_path)
    assert proc.returncode == 3, proc.stderr
    doc = json.loads(report.read_text())
    [finding] = doc["findings"]
    assert finding["control"] == "terraform.plan" and finding["status"] == "error"
    assert "could not init or plan" in finding["message"]


@pytest.mark.checkov
@pytest.mark.parametrize("fmt", ["sarif", "junit"])
def test_scan_writes_checkovs_sarif_and_junit(tmp_path, fmt, rendered):
    target = tmp_path / f"scan.{fmt}"
    proc = _run(["scan", str(rendered / "modules" / "flow_logs"), "--format", fmt, "--output", str(target)])
    assert proc.returncode == 0, proc.stderr
    text = target.read_text()
    if fmt == "sarif":
        doc = json.loads(text)
        assert doc["version"] == "2.1.0" and doc["runs"][0]["tool"]["driver"]["name"] == "Checkov"
    else:
        suites = ET.fromstring(text)
        assert suites.tag == "testsuites" and int(suites.get("tests", "0")) > 0
        assert any(case.get("name", "").startswith("[NONE][CKV_HARDEN_1]") or "CKV_HARDEN_1" in case.get("name", "")
                   for case in suites.iter("testcase"))


def test_plan_regions_replace_the_baselines_and_are_validated_like_the_config(tmp_path):
    config = tmp_path / "harden.toml"
    config.write_text('home_region = "us-east-1"\nregions = ["us-east-1", "eu-west-1", "ap-south-1"]\n')
    tf = tmp_path / "tf"
    # No AWS provider here: plan stops at init, after rendering what --regions asked for.
    _run(["plan", "-c", str(config), "--dir", str(tf), "--regions", "us-east-1,eu-west-1"],
         env={"AWS_ENDPOINT_URL": ""})
    variables = (tf / "account" / "variables.tf").read_text()
    assert '["us-east-1", "eu-west-1"]' in variables and "ap-south-1" not in variables
    proc = _run(["plan", "-c", str(config), "--dir", str(tmp_path / "other"), "-r", "eu-west-1"])
    assert proc.returncode == 2 and not (tmp_path / "other").exists()
    [line] = [line for line in proc.stderr.splitlines() if line.strip()]
    assert line.startswith("error: --regions: ") and "home_region 'us-east-1' must be one of" in line


def test_terraform_commands_hand_the_assumed_role_to_terraform(aws, emulator, tmp_path, monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, os.environ.get(name, "testing"))  # restored after the test
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    shutil.copytree(FIXTURES / "terraform_data", tmp_path / "tf" / "account")
    report = tmp_path / "drift.json"
    role = "arn:aws:iam::123456789012:role/harden-drift"
    proc = _run(["drift", "--no-verify", "--role-arn", role, "--dir", str(tmp_path / "tf"), "-f", "json",
                 "-o", str(report)], env={"AWS_ENDPOINT_URL": emulator})
    assert proc.returncode == 1, proc.stderr  # the fixture's terraform_data is not applied yet: drift
    # Terraform (a child process) reads these: the assumed role's keys, not the caller's profile.
    assert os.environ["AWS_ACCESS_KEY_ID"] != "testing" and os.environ["AWS_SESSION_TOKEN"]
    assert json.loads(report.read_text())["findings"][0]["status"] == "fail"
