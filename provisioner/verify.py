"""The drift-verification engine: every selected control in every region, concurrently.

Regions run on a bounded pool, each region's checks in one worker (they share that region's
clients and cache). A check that raises becomes an `error` finding with the reason; a region that
cannot be reached (a connection refused, a connect or read timeout) turns its remaining checks into
`error` findings without waiting on each, and the whole fan-out is bounded by the run timeout
(aws.Timeouts.run): a region still unfinished then has one `error` per control it did not report,
and the others are reported as they are. A control whose family the baseline switches off
(controls.disabled_reason) is not checked: it is one `skipped` finding per region, saying so.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Callable

import botocore.exceptions

from provisioner.aws import AwsSession, RegionUnreachable, RunTimedOut, describe_error
from provisioner.baseline import Baseline
from provisioner.controls import CheckContext, Control, disabled_reason, rule_metadata, select
from provisioner.findings import GLOBAL, Finding, Report
from provisioner.triage import triage

ProgressFn = Callable[[str], None]

# After one of these, the unit's remaining checks would only fail the same way (or wait again).
_UNREACHABLE = (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectTimeoutError,
                botocore.exceptions.ReadTimeoutError, RegionUnreachable, RunTimedOut)


def _run_checks(aws: AwsSession, baseline: Baseline, controls: list[Control], region: str,
                account_id: str, since: datetime, now: datetime, regions: tuple[str, ...],
                cache: dict) -> list[Finding]:
    ctx = CheckContext(aws=aws, baseline=baseline, region=region, account_id=account_id,
                       since=since, now=now, regions=regions, cache=cache)
    findings: list[Finding] = []
    unreachable: str | None = None
    for c in controls:
        ctx.control_id = c.id
        if reason := disabled_reason(baseline, c.id):  # switched off: one skipped finding, no check
            family = c.id.split(".", 1)[0]
            resource = (baseline.organization_id or "organization") if c.scope == "organization" else region
            findings.append(ctx.skipped(resource, reason, **{f"{family}_enabled": False}))
            continue
        if unreachable:
            findings.append(ctx.errored(region, unreachable))
            continue
        try:
            findings.extend(c.check(ctx))
        except _UNREACHABLE as exc:
            unreachable = describe_error(exc)
            findings.append(ctx.errored(region, unreachable))
        except Exception as exc:  # one check's failure must not hide the others
            findings.append(ctx.errored(region, describe_error(exc), exception=type(exc).__name__))
    return findings


def run_verify(
    aws: AwsSession,
    baseline: Baseline,
    *,
    regions: list[str] | None = None,
    controls: list[str] | None = None,
    since: timedelta = timedelta(days=7),
    progress: ProgressFn | None = None,
    on_regions: Callable[[list[str]], None] | None = None,
) -> Report:
    """Verify the live account against the baseline. Raises UnknownControl for a bad id and
    lets AWS errors that stop the whole run (no credentials, STS unreachable) propagate."""
    started = time.monotonic()
    selected = select(controls)
    account_id = aws.account_id()
    run_regions = aws.resolve_regions(regions or baseline.explicit_regions)
    if on_regions:
        on_regions(run_regions)
    now = datetime.now(timezone.utc)
    start = now - since

    regional = [c for c in selected if c.scope == "regional"]
    account_wide = [c for c in selected if c.scope == "account"]
    org_wide = [c for c in selected if c.scope == "organization"]

    # Work units: one per region (the home region's unit also runs the account-scope controls,
    # so they share its cache: the trail list is read once), plus one for Organizations.
    home = baseline.home_region
    units: dict[str, Callable[[], list[Finding]]] = {}
    unit_controls: dict[str, list[Control]] = {}  # what each unit checks: named if it never reports

    def region_unit(region: str) -> list[Finding]:
        cache: dict = {}
        found = _run_checks(aws, baseline, regional, region, account_id, start, now, tuple(run_regions), cache)
        if region == home:
            found += _run_checks(aws, baseline, account_wide, home, account_id, start, now,
                                 tuple(run_regions), cache)
        return found

    for region in run_regions:
        if regional or (region == home and account_wide):
            units[region] = lambda r=region: region_unit(r)
            unit_controls[region] = regional + (account_wide if region == home else [])
    if account_wide and home not in run_regions:
        units[home] = lambda: _run_checks(aws, baseline, account_wide, home, account_id, start, now,
                                          tuple(run_regions), {})
        unit_controls[home] = account_wide
    if org_wide:
        units[GLOBAL] = lambda: _run_checks(aws, baseline, org_wide, GLOBAL, account_id, start, now,
                                            tuple(run_regions), {})
        unit_controls[GLOBAL] = org_wide

    findings: list[Finding] = []
    for unit, result in aws.map_regions(lambda key: units[key](), units, timeout=aws.timeouts.run):
        if isinstance(result, RunTimedOut):  # never reported: each of its controls is unchecked
            findings += [Finding(c.id, unit, unit, "error", describe_error(result)) for c in unit_controls[unit]]
        elif isinstance(result, BaseException):
            findings.append(Finding("verify", unit, unit, "error", describe_error(result)))
        else:
            findings.extend(result)
        if progress:
            progress(unit)

    return Report(
        account=account_id,
        regions=run_regions,
        findings=triage(findings, rule_metadata(), baseline.suppress, now),
        api_calls=aws.calls.by_operation(),
        api_calls_by_region=aws.calls.by_region(),
        duration_seconds=time.monotonic() - started,
        generated_at=now,
    )


def parse_since(text: str) -> timedelta:
    """'7d', '12h', '30m', '2w' -> timedelta. ValueError with the accepted forms otherwise."""
    import re

    match = re.fullmatch(r"\s*(\d+)\s*([mhdw])\s*", text or "")
    if not match:
        raise ValueError(f"--since {text!r}: expected a number and a unit, such as 30m, 12h, 7d or 2w")
    too_long = ValueError(f"--since {text!r}: must be more than 0 and at most 90d "
                          "(CloudTrail event history keeps 90 days)")
    if len(match.group(1).lstrip("0")) > 6:  # beyond 90 days in any unit; timedelta would overflow
        raise too_long
    value, unit = int(match.group(1)), match.group(2)
    delta = {"m": timedelta(minutes=value), "h": timedelta(hours=value),
             "d": timedelta(days=value), "w": timedelta(weeks=value)}[unit]
    if delta <= timedelta(0) or delta > timedelta(days=90):
        raise too_long
    return delta
