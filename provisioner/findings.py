"""Findings and the report writers: a table for people; JSON, JUnit XML and SARIF for machines."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Literal

from provisioner import __version__

Status = Literal["pass", "fail", "error", "skipped", "suppressed"]
STATUSES: tuple[Status, ...] = ("pass", "fail", "error", "skipped", "suppressed")
GLOBAL = "global"  # the region of findings about global services (Organizations, IAM)


# The JSON report's layout version: bump the major part when a field changes meaning or goes away.
SCHEMA_VERSION = "1.0"


def report_header(generated_at: datetime) -> dict[str, Any]:
    """What every JSON report starts with: layout version, the tool and when it ran."""
    return {"schema_version": SCHEMA_VERSION, "tool": {"name": "harden", "version": __version__},
            "generated_at": generated_at.astimezone(timezone.utc).isoformat(timespec="seconds")}


def all_rules() -> dict[str, dict[str, Any]]:
    from provisioner.controls import rule_metadata  # controls import this module

    return rule_metadata()


def severity_of(finding: "Finding", rules: dict[str, dict[str, Any]]) -> str | None:
    return finding.severity or rules.get(finding.control, {}).get("severity")


@dataclass(frozen=True)
class Finding:
    control: str
    region: str
    resource: str
    status: Status
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)
    severity: str | None = None          # the control's (provisioner/controls), set by verify
    suppression: dict[str, Any] | None = None  # the [[suppress]] entry that matched: reason, expires

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Report:
    account: str | None
    regions: list[str]
    findings: list[Finding]
    api_calls: dict[str, int] = field(default_factory=dict)
    api_calls_by_region: dict[str, int] = field(default_factory=dict)
    duration_seconds: float = 0.0
    generated_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))

    def sorted_findings(self) -> list[Finding]:
        order = {s: i for i, s in enumerate(("fail", "error", "suppressed", "skipped", "pass"))}
        return sorted(self.findings, key=lambda f: (f.control, f.region, order[f.status], f.resource))

    def summary(self) -> dict[str, Any]:
        counts = Counter(f.status for f in self.findings)
        by_control: dict[str, Counter] = defaultdict(Counter)
        for f in self.findings:
            by_control[f.control][f.status] += 1
        return {
            **{s: counts.get(s, 0) for s in STATUSES},
            "total": len(self.findings),
            "controls": {c: {s: n.get(s, 0) for s in STATUSES} for c, n in sorted(by_control.items())},
            "api_calls": sum(self.api_calls.values()),
            "duration_seconds": round(self.duration_seconds, 3),
        }

    def exit_code(self, fail_on: str | None = None) -> int:
        """3 when something could not be checked (the job is blind there), else 1 on drift, else 0.
        With `fail_on` (a severity) only failures of that severity or worse count as drift."""
        from provisioner.severity import at_least

        statuses = {f.status for f in self.findings}
        if "error" in statuses:
            return 3
        if any(f.status == "fail" and (fail_on is None or at_least(f.severity, fail_on)) for f in self.findings):
            return 1
        return 0

    def filtered(self, min_severity: str | None) -> "Report":
        """The report with only the findings of `min_severity` or worse (every finding without one)."""
        from provisioner.severity import at_least

        if not min_severity:
            return self
        return replace(self, findings=[f for f in self.findings
                                       if f.severity is None or at_least(f.severity, min_severity)])

    # -- writers -------------------------------------------------------------------------------
    def to_dict(self, rules: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
        """The JSON report (schema: provisioner/schemas/report.schema.json, SCHEMA_VERSION)."""
        rules = all_rules() if rules is None else rules
        used = sorted({f.control for f in self.findings} & set(rules))
        return {
            **report_header(self.generated_at),
            "account": self.account,
            "regions": list(self.regions),
            "controls": {c: {k: rules[c][k] for k in ("title", "severity", "mappings", "fix")} for c in used},
            "findings": [{**f.to_dict(), "severity": severity_of(f, rules)} for f in self.sorted_findings()],
            "summary": self.summary(),
        }

    def to_json(self, rules: dict[str, dict[str, Any]] | None = None) -> str:
        return json.dumps(self.to_dict(rules), indent=2, sort_keys=False, default=str)

    def to_junit(self, rules: dict[str, dict[str, Any]] | None = None) -> str:
        """One testsuite per control, one testcase per finding (name: region/resource), written
        by junitparser: CI systems read failure/error/skipped, the severity is a property."""
        from junitparser import Error, Failure, JUnitXml, Skipped, TestCase, TestSuite

        rules = all_rules() if rules is None else rules
        xml = JUnitXml("harden verify")
        grouped: dict[str, list[Finding]] = defaultdict(list)
        for f in self.sorted_findings():
            grouped[f.control].append(f)
        for control, items in grouped.items():
            suite = TestSuite(control)
            severity = rules.get(control, {}).get("severity")
            if severity:
                suite.add_property("severity", severity)
            for key, ids in (rules.get(control, {}).get("mappings") or {}).items():
                if ids:
                    # "none" holds why a control maps to no framework: say so in the property's name.
                    suite.add_property("unmapped_because" if key == "none" else key,
                                       ids if isinstance(ids, str) else ", ".join(ids))
            for f in items:
                case = TestCase(f"{f.region}/{f.resource}", f"{control}.{f.region}")
                detail = json.dumps(f.evidence, sort_keys=True, default=str)
                if f.status == "fail":
                    result = Failure(f.message, "drift")
                    result.text = detail
                    case.result = [result]
                elif f.status == "error":
                    result = Error(f.message, "unable-to-check")
                    result.text = detail
                    case.result = [result]
                elif f.status in ("skipped", "suppressed"):
                    reason = (f"suppressed until {f.suppression['expires']}: {f.suppression['reason']}"
                              if f.status == "suppressed" and f.suppression else f.message)
                    case.result = [Skipped(reason)]
                else:
                    case.system_out = f.message
                suite.add_testcase(case)
            suite.update_statistics()
            xml.add_testsuite(suite)
        xml.update_statistics()
        return '<?xml version="1.0" encoding="UTF-8"?>\n' + xml.tostring().decode("utf-8") + "\n"

    def to_sarif(self, rules: dict[str, dict[str, Any]] | None = None, sources=None,
                 statuses: tuple[str, ...] = ("fail",)) -> str:
        """SARIF 2.1.0 for GitHub code scanning: see provisioner/sarif.py."""
        from provisioner.sarif import Sources, sarif_text

        return sarif_text(self, all_rules() if rules is None else rules, sources or Sources(), statuses)
