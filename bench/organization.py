"""Benchmark `harden verify --organization-role`: an organization of N member accounts on the
emulator, each with R regions and four planted drifts per region.

    .venv/bin/python bench/organization.py                       # the standard sizes
    .venv/bin/python bench/organization.py --sizes 50x2 --modes parallel,sequential
    .venv/bin/python bench/organization.py --sizes 20x2 --profile   # cProfile one run, top 25

The emulator runs in a process of its own, so harden's CPU and memory are measured apart from
it: each verify is a child process, and os.wait4 gives that child's own CPU time and peak RSS.
Requests are counted by harden (the per-account API call counters, retries excluded).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ALL_REGIONS = ["us-east-1", "us-east-2", "us-west-1", "us-west-2", "eu-west-1", "eu-west-2", "eu-west-3",
               "eu-central-1", "eu-north-1", "ap-southeast-1", "ap-southeast-2", "ap-northeast-1",
               "ap-northeast-2", "ap-south-1", "ca-central-1", "sa-east-1", "ap-northeast-3"]
ROLE = "harden-audit"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Emulator:
    """The sandbox emulator (no seed) in its own process."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen([sys.executable, "-m", "provisioner.cli", "sandbox", "serve", "--no-seed",
                                      "--port", str(self.port)], stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, cwd=ROOT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{self.url}/moto-api/", timeout=2).read()
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("the emulator did not start")

    def reset(self) -> None:
        urllib.request.urlopen(urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")).read()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=30)


def seed_organization(n: int, regions: list[str]) -> list[str]:
    """An organization with n members; in every member region: a VPC without a flow log, an
    unencrypted volume, an unassociated Elastic IP, default encryption off (4 drifts)."""
    import boto3

    org = boto3.client("organizations", region_name=regions[0])
    org.create_organization(FeatureSet="ALL")
    ids = []
    for i in range(n):
        status = org.create_account(Email=f"member{i}@example.com", AccountName=f"member-{i}")
        ids.append(status["CreateAccountStatus"]["AccountId"])
    sts = boto3.client("sts", region_name=regions[0])
    for account in ids:
        creds = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/{ROLE}",
                                RoleSessionName="bench-seed")["Credentials"]
        member = boto3.Session(aws_access_key_id=creds["AccessKeyId"],
                               aws_secret_access_key=creds["SecretAccessKey"],
                               aws_session_token=creds["SessionToken"])
        for region in regions:
            ec2 = member.client("ec2", region_name=region)
            ec2.create_vpc(CidrBlock="10.1.0.0/16")
            ec2.create_volume(AvailabilityZone=f"{region}a", Size=8)
            ec2.allocate_address(Domain="vpc")
            ec2.disable_ebs_encryption_by_default()
    return ids


def _cpu_seconds(pid: int) -> float:
    """A process's user+system CPU so far, from /proc (the emulator's cost, apart from harden's)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_verify(emulator: Emulator, regions: list[str], extra: list[str], workdir: Path, profile: bool = False,
               tree: Path = ROOT) -> dict:
    """One `harden verify --organization-role` as a child process; tree: the checkout to run
    (another release's, with its own .venv, to compare against)."""
    cfg = workdir / "harden.toml"
    cfg.write_text(f'home_region = "{regions[0]}"\nregions = {json.dumps(regions)}\n')
    old = tree != ROOT
    out = workdir / ("report.json" if old else "report.jsonl")
    out.unlink(missing_ok=True)
    env = {**os.environ, "AWS_ENDPOINT_URL": emulator.url, "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": regions[0]}
    env.pop("AWS_PROFILE", None)
    python = str(tree / ".venv" / "bin" / "python") if old else sys.executable
    cmd = [python] + (["-m", "cProfile", "-s", "cumulative"] if profile else []) + ["-m", "provisioner.cli"]
    cmd += ["verify", "-c", str(cfg), "--organization-role", ROLE, "--format", "json" if old else "jsonl",
            "--output", str(out), *extra]
    emu_cpu = _cpu_seconds(emulator.proc.pid)
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=tree, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)  # this child's own CPU and peak RSS (its children included)
    wall = time.perf_counter() - t0
    stdout, stderr = proc.stdout.read(), proc.stderr.read()
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1):
        raise RuntimeError(f"verify exited {code}: {stderr[-2000:]}")
    res = _read_json(out) if old else _read(out)
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss_mb": usage.ru_maxrss / 1024,
            "emulator_cpu": _cpu_seconds(emulator.proc.pid) - emu_cpu, "profile": stdout if profile else "",
            "exit": code, **res}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1x2,10x2,50x2,200x2,20x17",
                        help="comma-separated NxR: N member accounts, R regions")
    parser.add_argument("--modes", default="parallel", help="parallel (the defaults), threads (one process, 8 accounts at once), sequential, shards4 "
                        "(comma-separated)")
    parser.add_argument("--profile", action="store_true", help="cProfile the (first) run and print the top")
    parser.add_argument("--compare-tree", type=Path, help="another checkout (with its own .venv), e.g. the "
                        "previous release: each size also runs its verify, as mode 'previous'")
    args = parser.parse_args()

    emulator = Emulator()
    os.environ.update({"AWS_ENDPOINT_URL": emulator.url, "AWS_ACCESS_KEY_ID": "testing",
                       "AWS_SECRET_ACCESS_KEY": "testing"})
    os.environ.pop("AWS_PROFILE", None)
    rows = []
    try:
        with tempfile.TemporaryDirectory(prefix="harden-bench-") as tmp:
            work = Path(tmp)
            for size in args.sizes.split(","):
                n, r = (int(x) for x in size.lower().split("x"))
                regions = ALL_REGIONS[:r]
                emulator.reset()
                t0 = time.perf_counter()
                seed_organization(n, regions)
                seeded = time.perf_counter() - t0
                baseline_findings = None
                modes = args.modes.split(",") + (["previous"] if args.compare_tree else [])
                for mode in modes:
                    if mode == "shards4":
                        res = run_shards(emulator, regions, work, 4)
                    elif mode == "previous":
                        res = run_verify(emulator, regions, [], work, tree=args.compare_tree.resolve())
                    else:
                        extra = {"sequential": ["--sequential"],
                                 "threads": ["--processes", "1", "--account-workers", "8"]}.get(mode, [])
                        res = run_verify(emulator, regions, extra, work, profile=args.profile)
                    if args.profile:
                        print("\n".join(res["profile"].splitlines()[:45]))
                    same = "-" if baseline_findings is None else ("yes" if res["findings"] == baseline_findings
                                                                  else "NO")
                    baseline_findings = baseline_findings or res["findings"]
                    rows.append((f"{n}x{r}", mode, seeded, res, same))
                    print(f"  {n}x{r} {mode}: {res['wall']:.1f} s", file=sys.stderr, flush=True)
    finally:
        emulator.stop()
    print(f"{'N x R':>7} {'mode':>10} {'accounts':>8} {'wall s':>7} {'requests':>8} {'harden CPU s':>12} "
          f"{'CPU ms/req':>10} {'emulator CPU s':>14} {'peak RSS MB':>11} {'findings':>8} {'same':>5}")
    for size, mode, _seeded, res, same in rows:
        per = f"{1000 * res['cpu'] / res['calls']:.1f}" if res["calls"] else "-"
        calls = res["calls"] or "-"
        print(f"{size:>7} {mode:>10} {res['accounts']:>8} {res['wall']:>7.1f} {calls:>8} "
              f"{res['cpu']:>12.1f} {per:>10} {res['emulator_cpu']:>14.1f} {res['rss_mb']:>11.0f} "
              f"{len(res['findings']):>8} {same:>5}")


def run_shards(emulator: Emulator, regions: list[str], work: Path, shards: int) -> dict:
    """N shards as separate processes one after the other (wall and CPU added up), then
    `harden report merge`: the findings must equal the single run's."""
    wall = cpu = rss = emu = 0.0
    parts = []
    for i in range(1, shards + 1):
        res = run_verify(emulator, regions, ["--shard", f"{i}/{shards}"], work)
        part = work / f"shard-{i}.jsonl"
        (work / "report.jsonl").rename(part)
        parts.append(part)
        wall, cpu, rss = wall + res["wall"], cpu + res["cpu"], max(rss, res["rss_mb"])
        emu += res["emulator_cpu"]
    merged = work / "merged.jsonl"
    subprocess.run([sys.executable, "-m", "provisioner.cli", "report", "merge", *map(str, parts), "--format", "jsonl",
                    "--output", str(merged)], cwd=ROOT, check=False, capture_output=True)
    (work / "report.jsonl").write_text(merged.read_text())
    res = _read(work / "report.jsonl")
    return {"wall": wall, "cpu": cpu, "rss_mb": rss, "emulator_cpu": emu, **res, "profile": ""}


def _read(path: Path) -> dict:
    accounts, calls, findings = 0, 0, {}
    for line in path.read_text().splitlines():
        doc = json.loads(line)
        if doc.get("type") == "account":
            accounts += 1
            calls += sum((doc.get("api_calls") or {}).values())
            for f in doc["report"]["findings"]:
                key = (doc["report"]["account"], f["control"], f["region"], f["resource"], f["status"])
                findings[key] = findings.get(key, 0) + 1
    return {"accounts": accounts, "calls": calls, "findings": findings}


def _read_json(path: Path) -> dict:
    """The previous release's organization JSON ({"organization", "accounts", "summary"})."""
    doc = json.loads(path.read_text())
    findings: dict = {}
    for report in doc["accounts"]:
        for f in report["findings"]:
            key = (report["account"], f["control"], f["region"], f["resource"], f["status"])
            findings[key] = findings.get(key, 0) + 1
    return {"accounts": len(doc["accounts"]), "calls": 0, "findings": findings}


if __name__ == "__main__":
    main()
