"""Organization runs at scale: parallel accounts, the jsonl stream, shards merged, resume after
kill -9, credentials refreshed. Everything runs against the moto server over loopback, whose
organization keeps each member account's resources apart (as AWS does)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import boto3
import pytest

from provisioner.aws import AwsSession
from provisioner.baseline import parse_baseline
from provisioner.organization import Parallelism, parse_shard, shard_of, verify_organization
from provisioner.report_stream import STREAM_FORMAT

REGION = "us-east-1"
ROLE = "harden-audit"
HARDEN = [sys.executable, "-m", "provisioner.cli"]
CONTROLS = "flow_logs,eip.unassociated"


def _organization(members: int) -> tuple[str, list[str]]:
    """An organization whose members alternate: even ones compliant (flow logs on), odd ones drifted."""
    org = boto3.client("organizations", region_name=REGION)
    org.create_organization(FeatureSet="ALL")
    ids = [org.create_account(Email=f"m{i}@example.com", AccountName=f"member '{i}\"")
           ["CreateAccountStatus"]["AccountId"] for i in range(members)]
    sts = boto3.client("sts", region_name=REGION)
    for i, account in enumerate(ids):
        if i % 2:
            continue
        creds = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/{ROLE}", RoleSessionName="setup")["Credentials"]
        s = boto3.Session(aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                          aws_session_token=creds["SessionToken"], region_name=REGION)
        s.client("s3").create_bucket(Bucket=f"flow-{account}")
        ec2 = s.client("ec2")
        ec2.create_flow_logs(ResourceIds=[v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"]], ResourceType="VPC",
                             TrafficType="ALL", LogDestinationType="s3", LogDestination=f"arn:aws:s3:::flow-{account}")
    return org.describe_organization()["Organization"]["Id"], ids


def _config(tmp_path: Path) -> Path:
    cfg = tmp_path / "harden.toml"
    cfg.write_text(f'home_region = "{REGION}"\nregions = ["{REGION}"]\n')
    return cfg


def _verify(cfg: Path, *extra: str, env: dict | None = None, timeout: int = 240) -> subprocess.CompletedProcess:
    return subprocess.run(HARDEN + ["verify", "-c", str(cfg), "--controls", CONTROLS, "--organization-role", ROLE,
                                    *extra], capture_output=True, text=True, env=env or dict(os.environ),
                          timeout=timeout)


def _stream(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _findings(lines: list[dict]) -> set[tuple]:
    """Every finding of a stream, keyed without the message (which may carry timings)."""
    return {(a["account"], f["control"], f["region"], f["resource"], f["status"])
            for a in lines if a["type"] == "account" for f in a["report"]["findings"]}


# -- shards ----------------------------------------------------------------------------------------

def test_shards_are_stable_and_partition_the_accounts():
    accounts = [f"{n:012d}" for n in range(0, 10_000_000_000, 37_000_000)]
    slices = [[a for a in accounts if shard_of(a, 4) == i] for i in (1, 2, 3, 4)]
    assert sorted(sum(slices, [])) == sorted(accounts)          # every account in exactly one slice
    assert all(len(s) > len(accounts) // 8 for s in slices)     # and no slice is starved
    # sha256-based: the same answer on every machine and in every process (hash() is salted);
    # pinned to `printf 111122223333 | sha256sum` (first 8 bytes, big-endian, mod N, plus 1).
    assert [shard_of("111122223333", n) for n in (1, 2, 3, 4, 7)] == [1, 1, 1, 1, 5]
    assert parse_shard("2/4") == (2, 4)
    for bad in ("0/4", "5/4", "2", "a/b", "1/0", "-1/3"):
        with pytest.raises(ValueError, match="--shard"):
            parse_shard(bad)


def test_sharded_runs_merge_to_the_single_run(aws, emulator, tmp_path):
    org_id, members = _organization(5)
    cfg = _config(tmp_path)
    single = tmp_path / "single.jsonl"
    whole = _verify(cfg, "--format", "jsonl", "--output", str(single))
    assert whole.returncode == 1, whole.stderr       # odd members drifted
    parts = []
    for i in (1, 2, 3):
        part = tmp_path / f"shard-{i}.jsonl"
        proc = _verify(cfg, "--shard", f"{i}/3", "--format", "jsonl", "--output", str(part))
        assert proc.returncode in (0, 1), proc.stderr
        head = _stream(part)[0]
        assert head["shard"] == f"{i}/3" and head["organization"] == org_id
        parts.append(part)
    merged = tmp_path / "merged.jsonl"
    proc = subprocess.run(HARDEN + ["report", "merge", *map(str, parts), "--format", "jsonl", "--output",
                                    str(merged)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == whole.returncode, proc.stderr
    one, many = _stream(single), _stream(merged)
    assert _findings(many) == _findings(one) and len(_findings(one)) >= 6
    assert {a["account"] for a in many if a["type"] == "account"} == set(members) | {aws.account_id()}
    assert many[-1]["type"] == "summary" and many[-1]["summary"] == one[-1]["summary"] | {
        "api_calls": many[-1]["summary"]["api_calls"]}
    # Other formats come from the same merge; the SCP-free controls are in the SARIF rules.
    sarif = tmp_path / "merged.sarif"
    proc = subprocess.run(HARDEN + ["report", "merge", *map(str, parts), "-f", "sarif", "-o", str(sarif)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    results = json.loads(sarif.read_text())["runs"][0]["results"]
    assert {r["ruleId"] for r in results if r["level"] == "error"} >= {"flow_logs.all_vpcs"}
    assert not list(tmp_path.glob(".harden-spool-*"))       # the spool is gone


def test_merge_refuses_what_it_cannot_combine_honestly(aws, emulator, tmp_path):
    _organization(2)
    cfg = _config(tmp_path)
    a = tmp_path / "a.jsonl"
    assert _verify(cfg, "-f", "jsonl", "-o", str(a)).returncode == 1
    dup = subprocess.run(HARDEN + ["report", "merge", str(a), str(a)], capture_output=True, text=True, timeout=60)
    assert dup.returncode == 2 and "is in both" in dup.stderr and "Traceback" not in dup.stderr
    other = tmp_path / "other.jsonl"
    lines = _stream(a)
    lines[0]["organization"] = "o-someoneelse"
    other.write_text("".join(json.dumps(x) + "\n" for x in lines[:1]))
    mixed = subprocess.run(HARDEN + ["report", "merge", str(a), str(other)], capture_output=True, text=True,
                           timeout=60)
    assert mixed.returncode == 2 and "different organizations" in mixed.stderr
    # A shard that never finished (no summary line): its accounts are kept, the exit says "incomplete".
    cut = tmp_path / "cut.jsonl"
    cut.write_text("".join(json.dumps(x) + "\n" for x in lines[:-1]))
    proc = subprocess.run(HARDEN + ["report", "merge", str(cut), "-f", "json"], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 3 and "interrupted" in proc.stderr
    assert len(json.loads(proc.stdout)["accounts"]) == len(lines) - 2
    junk = tmp_path / "junk.jsonl"
    junk.write_text('{"hello": 1}\n')
    bad = subprocess.run(HARDEN + ["report", "merge", str(junk)], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "not a harden --format jsonl report" in bad.stderr


# -- resume ----------------------------------------------------------------------------------------

def test_resume_after_kill_9_reports_every_account_once(aws, emulator, tmp_path):
    _, members = _organization(6)
    cfg = _config(tmp_path)
    reference = tmp_path / "reference.jsonl"
    assert _verify(cfg, "--sequential", "-f", "jsonl", "-o", str(reference)).returncode == 1
    stream = tmp_path / "run.jsonl"
    proc = subprocess.Popen(HARDEN + ["verify", "-c", str(cfg), "--controls", CONTROLS, "--organization-role", ROLE,
                                      "--sequential", "-f", "jsonl", "-o", str(stream)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not stream.exists() or stream.read_text().count("\n") < 3):
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    before = _stream(stream)
    assert before[0]["type"] == "header" and before[-1]["type"] != "summary"   # killed mid-run
    done_before = [x["account"] for x in before if x["type"] == "account"]
    assert 2 <= len(done_before) < len(members) + 1
    # Mark what the first run wrote, and tear the tail as a kill mid-write would.
    marked = [dict(x, resumed_from_first_run=True) if x["type"] == "account" else x for x in before]
    stream.write_text("".join(json.dumps(x) + "\n" for x in marked) + '{"type": "account", "acc')
    resumed = _verify(cfg, "--sequential", "-f", "jsonl", "--resume", str(stream))
    assert resumed.returncode == 1, resumed.stderr
    assert f"{len(done_before)} accounts already reported" in resumed.stderr
    after = _stream(stream)          # every line parses: the torn one was cut off
    accounts = [x["account"] for x in after if x["type"] == "account"]
    assert sorted(accounts) == sorted(set(accounts)) == sorted(set(members) | {aws.account_id()})
    assert [x["account"] for x in after if x.get("resumed_from_first_run")] == done_before  # not re-verified
    assert after[-1]["type"] == "summary" and after[-1]["exit_code"] == 1
    assert _findings(after) == _findings(_stream(reference))
    assert after[-1]["summary"]["accounts"] == len(members) + 1


def test_resume_refuses_another_organizations_or_shards_stream(aws, emulator, tmp_path):
    _organization(1)
    cfg = _config(tmp_path)
    stream = tmp_path / "run.jsonl"
    assert _verify(cfg, "--shard", "1/1", "-f", "jsonl", "-o", str(stream)).returncode in (0, 1)
    other = _verify(cfg, "--shard", "1/2", "-f", "jsonl", "--resume", str(stream))
    assert other.returncode == 2 and "shard" in other.stderr
    missing = _verify(cfg, "-f", "jsonl", "--resume", str(tmp_path / "nope.jsonl"))
    assert missing.returncode == 2 and "no such file" in missing.stderr
    wrong_format = _verify(cfg, "-f", "json", "--resume", str(stream))
    assert wrong_format.returncode == 2 and "--format jsonl" in wrong_format.stderr
    alone = subprocess.run(HARDEN + ["verify", "-c", str(cfg), "--shard", "1/2"], capture_output=True, text=True,
                           timeout=60)
    assert alone.returncode == 2 and "--shard needs --organization-role" in alone.stderr


# -- parallel ----------------------------------------------------------------------------------------

def test_worker_processes_find_what_the_sequential_run_finds(aws, emulator, tmp_path):
    _organization(4)
    cfg = _config(tmp_path)
    seq, par = tmp_path / "seq.jsonl", tmp_path / "par.jsonl"
    assert _verify(cfg, "--sequential", "-f", "jsonl", "-o", str(seq)).returncode == 1
    proc = _verify(cfg, "--processes", "2", "--account-workers", "2", "-f", "jsonl", "-o", str(par))
    assert proc.returncode == 1, proc.stderr
    assert _findings(_stream(par)) == _findings(_stream(seq))
    # The JSON document, streamed account by account, still matches the report's JSON Schema.
    import jsonschema
    from importlib import resources

    doc = json.loads(_verify(cfg, "--processes", "2", "-f", "json").stdout)
    schema = json.loads(resources.files("provisioner").joinpath("schemas/report.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(doc)
    assert len(doc["accounts"]) == 5 and doc["summary"]["accounts"] == 5 and doc["summary"]["fail"] >= 2


def test_a_worker_that_cannot_start_reports_every_account_as_error(aws, emulator, tmp_path):
    _organization(2)
    # The parent plans with the emulator's default credentials; the workers are told to use a
    # profile that does not exist, so none of them can build a session.
    from provisioner.organization import plan_run, run_organization

    plan = plan_run(aws, controls=["flow_logs"])
    reports = []
    run_organization(aws, parse_baseline({"regions": [REGION], "home_region": REGION}), ROLE, plan,
                     reports.append, parallelism=Parallelism(processes=1 + 1, account_workers=1),
                     base_spec={"profile": "harden-test-no-such-profile"})
    assert sorted(r.account for r in reports) == sorted(plan.accounts)
    assert all(r.exit_code() == 3 for r in reports)
    assert "could not start an AWS session" in reports[0].findings[0].message


def test_verify_organization_in_threads_keeps_account_order(aws):
    _, members = _organization(3)
    baseline = parse_baseline({"regions": [REGION], "home_region": REGION})
    seen = []
    result = verify_organization(aws, baseline, ROLE, controls=["flow_logs"],
                                 parallelism=Parallelism(1, 3), on_account=lambda a, r: seen.append(a))
    assert [r.account for r in result.reports] == sorted(set(members) | {aws.account_id()})
    assert sorted(seen) == sorted(r.account for r in result.reports)


# -- credentials ---------------------------------------------------------------------------------------

def test_assumed_role_credentials_are_refreshed_before_they_expire(aws):
    _, members = _organization(1)
    member = AwsSession(role_arn=f"arn:aws:iam::{members[0]}:role/{ROLE}", region=REGION, base=aws)
    assert member.account_id() == members[0]
    assert aws.calls.by_operation()["sts:AssumeRole"] == 1
    creds = member._core.get_credentials()
    creds._expiry_time = datetime.now(timezone.utc) + timedelta(minutes=5)   # inside botocore's refresh window
    member.client("ec2").describe_vpcs()
    assert aws.calls.by_operation()["sts:AssumeRole"] == 2                    # renewed, not expired mid-run
    assert creds._expiry_time > datetime.now(timezone.utc) + timedelta(minutes=30)


def test_single_account_jsonl_is_a_stream_of_one(aws, emulator, tmp_path):
    cfg = _config(tmp_path)
    proc = subprocess.run(HARDEN + ["verify", "-c", str(cfg), "--controls", "flow_logs", "-f", "jsonl"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [x["type"] for x in lines] == ["header", "account", "summary"]
    assert lines[0]["format"] == STREAM_FORMAT and lines[1]["account"] == aws.account_id()
    assert lines[2]["exit_code"] == 1


def test_the_organization_workflow_example_shards_and_merges_consistently():
    """examples/ci/github-actions-organization.yml: the matrix lists exactly shards 1..N, the
    verify step names the same N, and every harden command it runs exists."""
    import re

    import yaml

    from provisioner.cli import app

    path = Path(__file__).resolve().parent.parent / "examples" / "ci" / "github-actions-organization.yml"
    workflow = yaml.safe_load(path.read_text())
    shards = workflow["jobs"]["verify"]["strategy"]["matrix"]["shard"]
    runs = "\n".join(s.get("run", "") for job in workflow["jobs"].values() for s in job["steps"])
    (total,) = set(re.findall(r"--shard \$\{\{ matrix\.shard \}\}/(\d+)", runs))
    assert shards == list(range(1, int(total) + 1))
    groups = {g.name: {c.name or c.callback.__name__ for c in g.typer_instance.registered_commands}
              for g in app.registered_groups}
    commands = {c.name or c.callback.__name__ for c in app.registered_commands}
    used = [line.split()[1:3] for line in runs.splitlines() if line.strip().startswith("harden ")]
    assert ["verify", "--config"] in used
    for first, second in used:
        assert first in commands or second in groups.get(first, set()), (first, second)
    assert "needs" in workflow["jobs"]["report"] and workflow["jobs"]["report"]["if"] == "always()"


def test_merge_of_shards_that_do_not_cover_the_split_exits_3_and_names_the_missing_ones(tmp_path):
    # Each file is a finished shard (its summary line is there), but shard 3/3 was never given:
    # its accounts are missing, so the merge must not exit 0. Before: exit 0, no warning.
    from typer.testing import CliRunner

    from provisioner import cli
    from provisioner.report_stream import header

    def shard(index: int, total: int) -> Path:
        path = tmp_path / f"shard-{index}-of-{total}.jsonl"
        summary = {"type": "summary", "summary": {"accounts": 0}, "exit_code": 0, "complete": True}
        path.write_text(json.dumps(header("o-example", shard=(index, total))) + "\n" + json.dumps(summary) + "\n")
        return path

    def merge(*paths: Path):
        return CliRunner().invoke(cli.app, ["report", "merge", *map(str, paths), "-f", "json"])

    partial = merge(shard(1, 3), shard(2, 3))
    assert partial.exit_code == 3, partial.stderr
    assert "shard 3/3 of the run is not among the files" in " ".join(partial.stderr.split())
    assert json.loads(partial.stdout)["accounts"] == []
    assert merge(shard(1, 3), shard(2, 3), shard(3, 3)).exit_code == 0
    mixed = merge(shard(1, 2), shard(2, 3))
    assert mixed.exit_code == 3 and "different splits" in mixed.stderr


@pytest.mark.skipif(not Path("/dev/full").is_char_device(), reason="needs Linux's /dev/full")
@pytest.mark.parametrize("fmt", ["jsonl", "json", "table"])
def test_an_organization_report_the_disk_refuses_is_one_line_and_exit_3(aws, emulator, tmp_path, fmt):
    # /dev/full answers every write with ENOSPC, as a full disk does. Before: a traceback, exit 1
    # (the drift's exit code, as if the report had been delivered).
    _organization(1)
    proc = _verify(_config(tmp_path), "--sequential", "-f", fmt, "-o", "/dev/full")
    assert proc.returncode == 3, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines == ["error: --output /dev/full: cannot write the report: No space left on device"], lines
    assert Path("/dev/full").is_char_device()


@pytest.mark.parametrize("resume", [False, True])
def test_a_second_run_writing_the_same_stream_is_refused_and_changes_nothing(aws, emulator, tmp_path, resume):
    # A run holds its report (an flock, as the first run does for its whole life). A second run
    # with the same --output, or resuming the same stream, used to truncate it or append its
    # accounts among the first run's; it is refused with one line, exit 3, the file untouched.
    import fcntl

    _organization(1)
    cfg = _config(tmp_path)
    stream = tmp_path / "run.jsonl"
    assert _verify(cfg, "--sequential", "-f", "jsonl", "-o", str(stream)).returncode == 1
    before = stream.read_bytes()
    with stream.open("rb") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        flag = ["--resume", str(stream)] if resume else ["-o", str(stream)]
        proc = _verify(cfg, "--sequential", "-f", "jsonl", *flag)
    assert proc.returncode == 3, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip() and not line.startswith("resuming")]
    assert lines == [f"error: --output {stream}: another harden run is writing it; wait for it to end "
                     "(or write elsewhere)"], lines
    assert stream.read_bytes() == before


@pytest.mark.parametrize("fmt", ["json", "table"])
def test_an_organization_report_killed_half_way_leaves_the_previous_one(aws, tmp_path, zygote, fmt):
    # kill -9 right before the second account is verified: the first account is written. Before,
    # the report was opened in place (the table until issue 10's follow-up, unlocked too): the
    # previous one was gone and a truncated document left.
    report, args = _over_a_previous_report(tmp_path, fmt, members=2)
    answer, _, err = zygote.run(*args, HARDEN_FAULT_KILL_AT_CALL="provisioner.organization:verify_account:2")
    assert answer == {"signal": 9}, err
    assert report.read_text() == "previous report\n"
    staged = tmp_path / f".org.{fmt}.harden-partial"
    assert staged.exists() and staged.read_text()  # the first account was written, beside the report
    answer, _, err = zygote.run(*args)  # the next run replaces it whole (and reuses the staging name)
    assert answer == {"code": 1}, err
    _assert_whole(report.read_text(), fmt, 3)
    assert [p.name for p in tmp_path.iterdir() if "harden-partial" in p.name] == []


def _over_a_previous_report(tmp_path: Path, fmt: str, members: int) -> tuple[Path, list[str]]:
    """An organization of `members` (+ the management account), a report already at -o, and the
    verify arguments that write it again in `fmt`."""
    _organization(members)
    report = tmp_path / f"org.{fmt}"
    report.write_text("previous report\n")
    return report, ["verify", "-c", str(_config(tmp_path)), "--controls", CONTROLS, "--organization-role", ROLE,
                    "--sequential", "-f", fmt, "-o", str(report)]


def _assert_whole(text: str, fmt: str, accounts: int) -> None:
    if fmt == "json":
        assert len(json.loads(text)["accounts"]) == accounts
    else:  # one table per account, each under its title line
        assert "previous report" not in text and text.count("harden verify · account ") == accounts, text


@pytest.mark.parametrize("fmt", ["table", "json"])
def test_a_second_organization_report_run_at_once_is_refused_and_the_first_is_whole(aws, tmp_path, zygote, fmt):
    # Run A holds its report (paused at its first AssumeRole, after the report is opened); run B,
    # the same command, waits for that, is refused with one line (exit 3) and then lets A finish.
    report, args = _over_a_previous_report(tmp_path, fmt, members=1)
    hold = tmp_path / "hold"
    (a, _, a_err), (b, _, b_err) = zygote.run_together([
        (args, {"HARDEN_FAULT_PAUSE": f"AssumeRole:{hold}"}),
        (args, {"HARDEN_FAULT_PAUSE": f"DescribeOrganization:{hold}.reached", "HARDEN_FAULT_DONE": str(hold)})])
    assert b == {"code": 3}, b_err
    lines = [line for line in b_err.splitlines() if line.strip()]
    assert lines == [f"error: --output {report}: another harden run is writing it; wait for it to end "
                     "(or write elsewhere)"], lines
    assert a == {"code": 1}, a_err
    _assert_whole(report.read_text(), fmt, 2)
    assert [p.name for p in tmp_path.iterdir() if "harden-partial" in p.name] == []


def test_a_resume_while_the_run_is_still_writing_cannot_cut_its_last_lines(aws, tmp_path, zygote, serial_emulator):
    # Run A writes the stream; it is held (at its first AssumeRole, header written, lock taken)
    # until run B, resuming the same stream, gets as far as it can. Before, B read the stream
    # first (header only), let A finish here (B's pause releases A and waits for it), then locked
    # and cut the file back to what it had read: A's accounts and summary were gone, redone by B.
    # Now B takes the lock before reading: refused at once, and A's stream ends whole.
    from tests.fault_cli import REPO

    _, members = _organization(2)
    cfg = _config(tmp_path)
    stream = tmp_path / "run.jsonl"
    a_done = tmp_path / "a_done"
    a = subprocess.Popen([sys.executable, "-m", "tests.fault_cli", "verify", "-c", str(cfg), "--controls", CONTROLS,
                          "--organization-role", ROLE, "--sequential", "-f", "jsonl", "-o", str(stream)],
                         cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                         env={**os.environ, "AWS_ENDPOINT_URL": serial_emulator,
                              "HARDEN_FAULT_PAUSE": f"AssumeRole:{a_done}.reached", "HARDEN_FAULT_DONE": str(a_done)})
    try:
        deadline = time.monotonic() + 60
        while not Path(f"{a_done}.reached.reached").exists() and a.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert a.poll() is None, a.stderr.read()
        answer, _, b_err = zygote.run("verify", "-c", str(cfg), "--controls", CONTROLS, "--organization-role", ROLE,
                                      "--sequential", "-f", "jsonl", "--resume", str(stream),
                                      HARDEN_FAULT_PAUSE=f"DescribeOrganization:{a_done}")
    finally:
        Path(f"{a_done}.reached").touch()  # let A go, whatever B did
        a_err = a.communicate(timeout=120)[1]
    assert answer == {"code": 3}, b_err
    assert f"--output {stream}: another harden run is writing it" in " ".join(b_err.split())
    assert a.returncode == 1, a_err
    lines = _stream(stream)
    assert lines[-1]["type"] == "summary" and lines[-1]["summary"]["accounts"] == len(members) + 1
    accounts = [x["account"] for x in lines if x["type"] == "account"]
    assert sorted(accounts) == sorted(set(members) | {aws.account_id()})
