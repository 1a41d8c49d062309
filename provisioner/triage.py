"""What a finding means for this account: its severity, and whether harden.toml suppresses it.

verify calls `triage` on every finding it collects, so every consumer (each report format,
remediate, the exit code) sees the same thing: a failure matched by a live `[[suppress]]` entry
is `suppressed` (with the entry's reason and expiry) and fails nothing; one matched only by
expired entries stays `fail` and says which suppression expired and when.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from fnmatch import fnmatchcase
from typing import Any, Iterable

from provisioner.baseline import Suppression
from provisioner.findings import Finding


def _matches(entry: Suppression, finding: Finding) -> bool:
    control_ok = finding.control == entry.control or finding.control.startswith(entry.control + ".")
    # fnmatchcase: region names and ARNs are case-sensitive, and the result must not depend on the OS.
    return (control_ok and fnmatchcase(finding.region, entry.region)
            and fnmatchcase(finding.resource, entry.resource))


def suppress(finding: Finding, entries: Iterable[Suppression], today: date) -> Finding:
    """A failed finding matched by a live entry becomes `suppressed`; matched only by expired
    entries it stays `fail` and its message says so. Other statuses are left alone: an error
    (could not check) is never hidden by a suppression."""
    if finding.status != "fail":
        return finding
    matching = [e for e in entries if _matches(e, finding)]
    live = [e for e in matching if e.expires >= today]
    if live:
        entry = max(live, key=lambda e: e.expires)
        return replace(finding, status="suppressed",
                       suppression={"reason": entry.reason, "expires": entry.expires.isoformat()})
    if matching:
        entry = max(matching, key=lambda e: e.expires)
        return replace(finding, message=f"{finding.message} (its suppression expired on "
                       f"{entry.expires.isoformat()}: {entry.reason})",
                       suppression={"reason": entry.reason, "expires": entry.expires.isoformat(),
                                    "expired": True})
    return finding


def triage(findings: Iterable[Finding], rules: dict[str, dict[str, Any]],
           entries: Iterable[Suppression], now: datetime) -> list[Finding]:
    """Each finding with its control's severity, then the suppressions applied."""
    entries = list(entries)
    today = now.date()
    out = []
    for f in findings:
        if f.severity is None and (severity := rules.get(f.control, {}).get("severity")):
            f = replace(f, severity=severity)
        out.append(suppress(f, entries, today))
    return out
