"""Verify a whole AWS Organization: every member account, through a role assumed in each.

Run from the management account (or the Organizations delegated administrator). Each member is
verified with the same baseline by assuming `arn:<partition>:iam::<account>:role/<role name>`
(a read-only audit role deployed by StackSets, or OrganizationAccountAccessRole). The
organization-scope controls (the SCPs) run once, from the caller's account: members cannot call
the Organizations API. An account whose role cannot be assumed is reported as `error` and the
others still run.

Scale (hundreds to thousands of accounts, run nightly):
- accounts run in parallel: `processes` worker processes (the CPU is the limit: botocore's
  request handling holds the GIL), each verifying `account_workers` accounts at once, each account
  fanning out over its regions (`AwsSession.max_workers`); at most processes x account_workers x
  max_workers calls are in flight, the run's global concurrency budget;
- throttling is per account, region and API on AWS's side; every client harden makes is one
  (account, region, service) and uses botocore's adaptive retry mode, whose client-side token
  bucket backs off on Throttling/RequestLimitExceeded for exactly that scope;
- each account's report is handed to `on_report` as soon as it is done and then dropped, so
  memory does not grow with the organization (`provisioner.report_stream` writes it to disk);
- `shard=(i, n)` keeps the accounts whose stable hash falls in slice i of n, so n machines of an
  engine people already run (a CI matrix, a batch array job) each verify a slice; `skip` leaves out
  accounts a previous, interrupted run already reported (resume).
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable

from provisioner.aws import AwsSession, describe_error, paginate, partition_for
from provisioner.baseline import Baseline
from provisioner.controls import select
from provisioner.findings import GLOBAL, STATUSES, Finding, Report, all_rules, report_header
from provisioner.verify import run_verify

ROLE_NAME_RE = r"^[\w+=,.@-]{1,64}$"
DEFAULT_ACCOUNT_WORKERS = 8
# A worker process costs ~1 s of CPU to start (boto3, the controls) and only pays off once one
# process's CPU is the limit: about 3.5 ms of CPU per API call (bench/organization.py) is ~285
# calls/s per core, which threads reach only with hundreds of accounts in flight. Below this many
# accounts per process, everything runs in threads of this process (measured on 2 cores: 50
# accounts in threads 14 s, in 2 processes 30 s, the emulator competing for the same cores).
MIN_ACCOUNTS_PER_PROCESS = 100


# -- which accounts ------------------------------------------------------------------------------

def shard_of(account_id: str, shards: int) -> int:
    """The 1-based shard an account belongs to: a stable hash, the same on every machine and run
    (Python's hash() is salted per process, so it cannot be used)."""
    digest = hashlib.sha256(account_id.encode("ascii")).digest()
    return int.from_bytes(digest[:8], "big") % shards + 1


def parse_shard(text: str) -> tuple[int, int]:
    """'2/4' -> (2, 4). ValueError with the expected form otherwise."""
    try:
        index, total = (int(part) for part in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard {text!r}: expected I/N, e.g. 1/4 (this worker's slice of N)") from None
    if not (1 <= total <= 10_000 and 1 <= index <= total):
        raise ValueError(f"--shard {text!r}: expected 1 <= I <= N <= 10000")
    return index, total


def active_accounts(aws: AwsSession) -> list[dict]:
    """The organization's ACTIVE accounts (suspended or closing ones cannot be assumed into)."""
    org = aws.client("organizations")
    return sorted((a for a in paginate(org, "list_accounts", "Accounts") if a.get("Status") == "ACTIVE"),
                  key=lambda a: a["Id"])


@dataclass(frozen=True)
class Plan:
    """What one organization run verifies: decided once, in the parent, before any work."""
    organization_id: str
    caller: str
    accounts: tuple[str, ...]          # in order, after shard and skip
    known: frozenset[str]              # the organization's active accounts
    per_account: tuple[str, ...]       # control ids every account runs
    org_wide: tuple[str, ...]          # control ids the caller's account runs once
    partition: str


def plan_run(aws: AwsSession, *, accounts: list[str] | None = None, controls: list[str] | None = None,
             shard: tuple[int, int] | None = None, skip: Iterable[str] = ()) -> Plan:
    org_id = aws.client("organizations").describe_organization()["Organization"]["Id"]
    caller = aws.account_id()
    known = frozenset(a["Id"] for a in active_accounts(aws))
    wanted = list(dict.fromkeys(accounts)) if accounts else sorted(known)
    if shard:
        wanted = [a for a in wanted if shard_of(a, shard[1]) == shard[0]]
    done = set(skip)
    selected = select(controls)
    return Plan(organization_id=org_id, caller=caller, accounts=tuple(a for a in wanted if a not in done),
                known=known, per_account=tuple(c.id for c in selected if c.scope != "organization"),
                org_wide=tuple(c.id for c in selected if c.scope == "organization"),
                partition=partition_for(aws.default_region))


# -- one account ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class AccountJob:
    """Everything a worker (thread or process) needs to verify accounts: picklable."""
    baseline: Baseline
    role_name: str
    plan: Plan
    regions: tuple[str, ...] | None
    since: timedelta
    region_workers: int


def verify_account(job: AccountJob, account_id: str, base: AwsSession,
                   factory: Callable[[str], AwsSession] | None = None) -> Report:
    """One account's report; never raises (an account's failure is its `error` finding)."""
    plan = job.plan
    if account_id not in plan.known:
        return Report(account=account_id, regions=[], findings=[Finding(
            "verify", GLOBAL, account_id, "error",
            f"{account_id} is not an active account of organization {plan.organization_id}")])
    controls = list(plan.per_account) + (list(plan.org_wide) if account_id == plan.caller else [])
    if not controls:
        return Report(account=account_id, regions=[], findings=[])  # only organization-scope controls asked
    try:
        if account_id == plan.caller:
            aws = base
        elif factory is not None:
            aws = factory(account_id)
        else:
            aws = AwsSession(role_arn=f"arn:{plan.partition}:iam::{account_id}:role/{job.role_name}",
                             region=job.baseline.home_region, max_workers=job.region_workers, base=base)
        return run_verify(aws, job.baseline, regions=list(job.regions) if job.regions else None,
                          controls=controls, since=job.since)
    except Exception as exc:  # one account's failure (role missing, access denied) must not stop the rest
        return Report(account=account_id, regions=[], findings=[Finding(
            "verify", GLOBAL, account_id, "error", f"could not verify {account_id}: {describe_error(exc)}")])


# -- the run -------------------------------------------------------------------------------------

@dataclass
class Totals:
    """What the summary needs, accumulated account by account (constant memory)."""
    statuses: dict[str, int] = field(default_factory=lambda: {s: 0 for s in STATUSES})
    accounts: int = 0
    accounts_failing: int = 0
    accounts_unable: int = 0
    api_calls: int = 0

    def add(self, report: Report, fail_on: str | None = None) -> None:
        self.add_counts({s: sum(1 for f in report.findings if f.status == s) for s in STATUSES},
                        sum(report.api_calls.values()), report.exit_code(fail_on))

    def add_counts(self, statuses: dict[str, int], api_calls: int, exit_code: int) -> None:
        for status in STATUSES:
            self.statuses[status] += statuses.get(status, 0)
        self.accounts += 1
        self.accounts_failing += exit_code == 1
        self.accounts_unable += exit_code == 3
        self.api_calls += api_calls

    def exit_code(self) -> int:
        return 3 if self.accounts_unable else 1 if self.accounts_failing else 0

    def summary(self) -> dict[str, Any]:
        return {**self.statuses, "accounts": self.accounts, "accounts_failing": self.accounts_failing,
                "accounts_unable": self.accounts_unable, "api_calls": self.api_calls}


@dataclass(frozen=True)
class Parallelism:
    processes: int = 1
    account_workers: int = DEFAULT_ACCOUNT_WORKERS

    @classmethod
    def auto(cls, accounts: int, processes: int | None = None, account_workers: int | None = None,
             sequential: bool = False) -> "Parallelism":
        """processes given: exactly that many; else one per CPU, fewer for small organizations."""
        if sequential:
            return cls(1, 1)
        workers = account_workers or DEFAULT_ACCOUNT_WORKERS
        if processes:
            return cls(processes, workers)
        return cls(max(1, min(os.cpu_count() or 1, accounts // MIN_ACCOUNTS_PER_PROCESS)), workers)


def run_organization(
    aws: AwsSession,
    baseline: Baseline,
    role_name: str,
    plan: Plan,
    on_report: Callable[[Report], None],
    *,
    regions: list[str] | None = None,
    since: timedelta = timedelta(days=7),
    parallelism: Parallelism = Parallelism(),
    session_factory: Callable[[str], AwsSession] | None = None,
    base_spec: dict[str, Any] | None = None,
) -> None:
    """Verify plan.accounts, calling on_report(report) in this thread as each account finishes
    (in completion order). base_spec (profile, role_arn) rebuilds the caller's session in worker
    processes; session_factory (tests) only works in-process."""
    job = AccountJob(baseline=baseline, role_name=role_name, plan=plan,
                     regions=tuple(regions) if regions else None, since=since, region_workers=aws.max_workers)
    if parallelism.processes <= 1 or session_factory is not None:
        _run_threads(job, aws, plan.accounts, on_report, parallelism.account_workers, session_factory)
    else:
        _run_processes(job, plan.accounts, on_report, parallelism, base_spec or {})


def _run_threads(job: AccountJob, base: AwsSession, accounts: Iterable[str], on_report, workers: int,
                 factory) -> None:
    accounts = list(accounts)
    if workers <= 1:
        for account_id in accounts:
            on_report(verify_account(job, account_id, base, factory))
        return
    from concurrent.futures import as_completed

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="harden-account") as pool:
        futures = [pool.submit(verify_account, job, a, base, factory) for a in accounts]
        try:
            for future in as_completed(futures):
                on_report(future.result())
        except BaseException:  # the run ends here (its report cannot be written): start no more accounts
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def _worker_main(job: AccountJob, base_spec: dict[str, Any], tasks, results, threads: int) -> None:
    """A worker process: `threads` accounts at once, pulled from the shared task queue."""
    try:
        base = AwsSession(profile=base_spec.get("profile"), role_arn=base_spec.get("role_arn"),
                          region=job.baseline.home_region, max_workers=job.region_workers)
        base.account_id()  # fail here, once, rather than once per account
    except Exception as exc:
        results.put(("fatal", None, describe_error(exc)))
        return

    def loop() -> None:
        while True:
            account_id = tasks.get()
            if account_id is None:
                return
            results.put(("start", account_id, os.getpid()))
            report = verify_account(job, account_id, base)
            results.put(("done", account_id, report_payload(report)))

    pool = [threading.Thread(target=loop, name=f"harden-account-{i}") for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()


def _run_processes(job: AccountJob, accounts: Iterable[str], on_report, par: Parallelism,
                   base_spec: dict[str, Any]) -> None:
    # spawn, not fork: the parent has threads (progress display, botocore's pools), and a forked
    # child would inherit their locks mid-flight.
    ctx = multiprocessing.get_context("spawn")
    tasks, results = ctx.Queue(), ctx.Queue()
    pending = list(accounts)
    for account_id in pending:
        tasks.put(account_id)
    for _ in range(par.processes * par.account_workers):
        tasks.put(None)
    procs = [ctx.Process(target=_worker_main, args=(job, base_spec, tasks, results, par.account_workers),
                         name=f"harden-worker-{i}", daemon=True) for i in range(par.processes)]
    for p in procs:
        p.start()
    remaining = set(pending)
    running: dict[str, int] = {}  # account -> pid of the worker verifying it
    fatal: str | None = None
    try:
        while remaining:
            try:
                kind, account_id, payload = results.get(timeout=1.0)
            except queue.Empty:
                dead = {p.pid for p in procs if not p.is_alive()}
                for account_id in [a for a, pid in running.items() if pid in dead]:
                    del running[account_id]
                    remaining.discard(account_id)
                    on_report(_lost(account_id, "its worker process died while verifying it"))
                if len(dead) == len(procs):
                    for account_id in sorted(remaining):
                        on_report(_lost(account_id, fatal or "every worker process stopped before reaching it"))
                    remaining.clear()
                continue
            if kind == "fatal":
                fatal = f"worker could not start an AWS session: {payload}"
            elif kind == "start":
                running[account_id] = payload
            elif account_id in remaining:
                running.pop(account_id, None)
                remaining.discard(account_id)
                on_report(report_from_payload(payload))
    finally:
        for p in procs:
            p.join(timeout=5)
            if p.is_alive():
                p.kill()


def _lost(account_id: str, why: str) -> Report:
    return Report(account=account_id, regions=[], findings=[Finding(
        "verify", GLOBAL, account_id, "error", f"could not verify {account_id}: {why}")])


# -- reports across processes and files ----------------------------------------------------------

def report_payload(report: Report, exit_code: int | None = None) -> dict[str, Any]:
    """A report as plain data: the verify JSON contract (`report`) plus the call counts and, in a
    stream, the account's exit code as the run judged it (--fail-on)."""
    payload = {"account": report.account, "report": report.to_dict(), "api_calls": dict(report.api_calls),
               "duration_seconds": round(report.duration_seconds, 3)}
    if exit_code is not None:
        payload["exit_code"] = exit_code
    return payload


def report_from_payload(payload: dict[str, Any]) -> Report:
    import dataclasses

    doc = payload["report"]
    names = {f.name for f in dataclasses.fields(Finding)}
    findings = [Finding(**{k: v for k, v in f.items() if k in names}) for f in doc.get("findings", [])]
    generated = datetime.fromisoformat(doc["generated_at"]) if doc.get("generated_at") else datetime.now(timezone.utc)
    return Report(account=doc.get("account"), regions=list(doc.get("regions", [])), findings=findings,
                  api_calls=dict(payload.get("api_calls") or {}),
                  duration_seconds=float(payload.get("duration_seconds") or 0.0), generated_at=generated)


# -- the in-memory form (small organizations, programmatic use) -----------------------------------

@dataclass
class OrganizationReport:
    organization_id: str | None
    reports: list[Report] = field(default_factory=list)

    def exit_code(self, fail_on: str | None = None) -> int:
        codes = {r.exit_code(fail_on) for r in self.reports}
        return 3 if 3 in codes else 1 if 1 in codes else 0

    def summary(self, fail_on: str | None = None) -> dict[str, Any]:
        totals = Totals()
        for report in self.reports:
            totals.add(report, fail_on)
        return totals.summary()

    def to_dict(self) -> dict[str, Any]:
        rules = all_rules()
        generated = min((r.generated_at for r in self.reports), default=None) or datetime.now(timezone.utc)
        return {**report_header(generated), "organization": self.organization_id,
                "accounts": [r.to_dict(rules) for r in self.reports], "summary": self.summary()}

    def merged(self) -> Report:
        """One report for JUnit/SARIF: each resource is prefixed with its account."""
        return merge_reports(self.organization_id, self.reports)


def merge_reports(organization_id: str | None, reports: Iterable[Report]) -> Report:
    findings: list[Finding] = []
    regions: set[str] = set()
    for r in reports:
        regions.update(r.regions)
        findings.extend(replace(f, resource=f"{r.account}:{f.resource}", evidence={**f.evidence, "account": r.account})
                        for f in r.findings)
    return Report(account=organization_id, regions=sorted(regions), findings=findings)


def verify_organization(
    aws: AwsSession,
    baseline: Baseline,
    role_name: str,
    *,
    accounts: list[str] | None = None,
    regions: list[str] | None = None,
    controls: list[str] | None = None,
    since: timedelta = timedelta(days=7),
    session_factory: Callable[[str], AwsSession] | None = None,
    on_account: Callable[[str, Report], None] | None = None,
    shard: tuple[int, int] | None = None,
    parallelism: Parallelism | None = None,
) -> OrganizationReport:
    """Every account's report in memory, in account order (for tests and small organizations;
    the CLI streams instead)."""
    plan = plan_run(aws, accounts=accounts, controls=controls, shard=shard)
    collected: dict[str, Report] = {}

    def keep(report: Report) -> None:
        collected[report.account] = report
        if on_account:
            on_account(report.account, report)

    run_organization(aws, baseline, role_name, plan, keep, regions=regions, since=since,
                     parallelism=parallelism or Parallelism(1, DEFAULT_ACCOUNT_WORKERS),
                     session_factory=session_factory)
    return OrganizationReport(plan.organization_id, [collected[a] for a in plan.accounts])
