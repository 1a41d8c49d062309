"""Findings and the report writers: a table for people; JSON, JUnit XML and SARIF for machines."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any, Literal
from xml.etree import ElementTree as ET

from provisioner import __version__

Status = Literal["pass", "fail", "error", "skipped"]
STATUSES: tuple[Status, ...] = ("pass", "fail", "error", "skipped")
GLOBAL = "global"  # the region of findings about global services (Organizations, IAM)


@dataclass(frozen=True)
class Finding:
    control: str
    region: str
    resource: str
    status: Status
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)

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

    def sorted_findings(self) -> list[Finding]:
        order = {s: i for i, s in enumerate(("fail", "error", "skipped", "pass"))}
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

    def exit_code(self) -> int:
        """3 when something could not be checked (the job is blind there), else 1 on drift, else 0."""
        statuses = {f.status for f in self.findings}
        if "error" in statuses:
            return 3
        if "fail" in statuses:
            return 1
        return 0

    # -- writers -------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "regions": list(self.regions),
            "findings": [f.to_dict() for f in self.sorted_findings()],
            "summary": self.summary(),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False, default=str)

    def to_junit(self) -> str:
        """One testsuite per control, one testcase per finding (name: region/resource)."""
        suites = ET.Element("testsuites", name="harden verify", tests=str(len(self.findings)))
        grouped: dict[str, list[Finding]] = defaultdict(list)
        for f in self.sorted_findings():
            grouped[f.control].append(f)
        for control, items in grouped.items():
            counts = Counter(f.status for f in items)
            suite = ET.SubElement(suites, "testsuite", name=control, tests=str(len(items)),
                                  failures=str(counts["fail"]), errors=str(counts["error"]),
                                  skipped=str(counts["skipped"]))
            for f in items:
                case = ET.SubElement(suite, "testcase", classname=f"{control}.{f.region}",
                                     name=f"{f.region}/{f.resource}")
                detail = json.dumps(f.evidence, sort_keys=True, default=str)
                if f.status == "fail":
                    ET.SubElement(case, "failure", message=f.message, type="drift").text = detail
                elif f.status == "error":
                    ET.SubElement(case, "error", message=f.message, type="unable-to-check").text = detail
                elif f.status == "skipped":
                    ET.SubElement(case, "skipped", message=f.message)
                else:
                    ET.SubElement(case, "system-out").text = f.message
        ET.indent(suites)
        return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"

    def to_sarif(self, rules: dict[str, dict[str, str]] | None = None) -> str:
        """SARIF 2.1.0: one rule per control, one result per finding (pass as level "none")."""
        rules = rules or {}
        controls = sorted({f.control for f in self.findings} | set(rules))
        level = {"fail": "error", "error": "warning", "skipped": "note", "pass": "none"}
        kind = {"fail": "fail", "error": "review", "skipped": "notApplicable", "pass": "pass"}
        results = []
        for f in self.sorted_findings():
            results.append({
                "ruleId": f.control,
                "ruleIndex": controls.index(f.control),
                "kind": kind[f.status],
                "level": level[f.status],
                "message": {"text": f"[{f.region}] {f.message}"},
                "locations": [{
                    "logicalLocations": [{
                        "name": f.resource,
                        "fullyQualifiedName": f"{self.account or 'account'}/{f.region}/{f.resource}",
                        "kind": "resource",
                    }],
                }],
                "properties": {"region": f.region, "status": f.status, "evidence": f.evidence},
            })
        doc = {
            "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
            "version": "2.1.0",
            "runs": [{
                "tool": {"driver": {
                    "name": "harden",
                    "version": __version__,
                    "informationUri": "https://github.com/harden/harden",
                    "rules": [{
                        "id": c,
                        "name": c.replace(".", "_"),
                        "shortDescription": {"text": rules.get(c, {}).get("title", c)},
                        "fullDescription": {"text": rules.get(c, {}).get("description", rules.get(c, {}).get("title", c))},
                        "properties": {"maps_to": rules.get(c, {}).get("maps_to", "")},
                    } for c in controls],
                }},
                "results": results,
            }],
        }
        return json.dumps(doc, indent=2, default=str)
