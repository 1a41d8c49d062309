"""The other report formats of a verify/drift report: CSV for spreadsheets, OCSF for security
data lakes (the format Prowler emits), and one self-contained HTML file for people.

Each reads the same Report and the same control metadata (provisioner/controls) as the JSON,
JUnit and SARIF writers, so severity, mappings and fixes agree across formats.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from provisioner import __version__
from provisioner.aws import parse_arn
from provisioner.findings import Finding, Report, severity_of
from provisioner.sarif import fingerprint
from provisioner.severity import OCSF_SEVERITY_ID, SEVERITIES, rank



# EC2 id prefixes -> the resource type they name (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/resource-ids.html)
_EC2_ID_TYPES = {"vpc": "vpc", "sg": "security-group", "i": "instance", "vol": "volume", "eipalloc": "elastic-ip",
                 "ami": "image", "snap": "snapshot", "subnet": "subnet", "eni": "network-interface", "fl": "vpc-flow-log"}


def resource_type(uid: str, control: str) -> str:
    """What kind of resource a finding names, as service:type: from its ARN (kms:key,
    cloudtrail:trail, s3:bucket ...) or its EC2 id prefix (ec2:vpc, ec2:security-group ...); the
    control's family for a Region-wide setting (a Region name, an account)."""
    if uid.startswith("arn:"):
        try:
            parts = parse_arn(uid)
        except ValueError:
            return control.split(".", 1)[0]
        kind = re.split(r"[/:]", parts["resource"], maxsplit=1)[0] if re.search(r"[/:]", parts["resource"]) else ""
        # An S3 ARN's resource is the bucket's name; others without a separator name a setting.
        return f"{parts['service']}:{kind or ('bucket' if parts['service'] == 's3' else parts['resource'])}"
    prefix = uid.split("-", 1)[0]
    if "-" in uid and prefix in _EC2_ID_TYPES:
        return f"ec2:{_EC2_ID_TYPES[prefix]}"
    return control.split(".", 1)[0]


def _labels(rule: dict[str, Any]) -> list[str]:
    from provisioner.controls import mapping_labels  # controls import findings, which this module reads

    return mapping_labels(rule.get("mappings") or {})


# -- CSV -------------------------------------------------------------------------------------------

CSV_COLUMNS = ("generated_at", "account", "region", "control", "title", "severity", "status", "resource",
               "message", "mappings", "fix", "suppression_reason", "suppression_expires")


def to_csv(report: Report, rules: dict[str, dict[str, Any]]) -> str:
    """One row per finding (the stdlib csv writer quotes commas, quotes and newlines in messages)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    generated = report.generated_at.isoformat(timespec="seconds")
    for f in report.sorted_findings():
        rule = rules.get(f.control, {})
        suppression = f.suppression or {}
        writer.writerow({
            "generated_at": generated, "account": report.account or "", "region": f.region,
            "control": f.control, "title": rule.get("title", ""), "severity": severity_of(f, rules) or "",
            "status": f.status, "resource": f.resource, "message": f.message,
            "mappings": "; ".join(_labels(rule)), "fix": rule.get("fix", ""),
            "suppression_reason": suppression.get("reason", ""), "suppression_expires": suppression.get("expires", ""),
        })
    return buffer.getvalue()


# -- OCSF --------------------------------------------------------------------------------------------

OCSF_VERSION = "1.5.0"  # the schema version py-ocsf-models 0.10 implements (tests validate with it)
_DETECTION_FINDING = 2004  # https://schema.ocsf.io/1.5.0/classes/detection_finding (as Prowler emits)
_OCSF_STATUS = {"suppressed": (3, "Suppressed")}  # status_id; everything else is (1, "New")


def _ocsf_finding(report: Report, f: Finding, rules: dict[str, dict[str, Any]]) -> dict[str, Any]:
    rule = rules.get(f.control, {})
    severity = severity_of(f, rules)
    severity_id = OCSF_SEVERITY_ID.get(severity or "", 0)
    status_id, status = _OCSF_STATUS.get(f.status, (1, "New"))
    epoch_ms = int(report.generated_at.timestamp() * 1000)
    when = report.generated_at.isoformat(timespec="seconds")
    account = report.account or f.evidence.get("account") or "unknown"
    maps = rule.get("mappings") or {}
    finding: dict[str, Any] = {
        "activity_id": 1, "activity_name": "Create",
        "category_uid": 2, "category_name": "Findings",
        "class_uid": _DETECTION_FINDING, "class_name": "Detection Finding",
        "type_uid": _DETECTION_FINDING * 100 + 1, "type_name": "Detection Finding: Create",
        "time": epoch_ms, "time_dt": when,
        "severity_id": severity_id, "severity": (severity or "unknown").capitalize(),
        "status_id": status_id, "status": status,
        "status_code": f.status.upper(), "status_detail": f.message,
        "message": f.message,
        "metadata": {
            "version": OCSF_VERSION, "event_code": f.control, "profiles": ["cloud", "datetime"],
            "product": {"name": "harden", "uid": "harden", "vendor_name": "harden", "version": __version__},
        },
        "finding_info": {
            "uid": fingerprint(report.account, f), "title": rule.get("title", f.control),
            "desc": rule.get("description") or rule.get("title", f.control),
            "types": [f.control.split(".", 1)[0]], "created_time": epoch_ms, "created_time_dt": when,
        },
        "cloud": {"provider": "aws", "region": f.region,
                  "account": {"uid": account, "name": account, "type_id": 10, "type": "AWS Account"}},
        "resources": [{"uid": f.resource, "name": f.resource, "region": f.region,
                       "type": resource_type(f.resource, f.control), "data": {"evidence": f.evidence}}],
        "unmapped": {"compliance": {"CIS-3.0.0": maps.get("cis_aws_v3.0.0", []),
                                    "CIS-4.0.1": maps.get("cis_aws_v4.0.1", []),
                                    "AWS-Security-Hub": maps.get("aws_securityhub", [])}},
    }
    if rule.get("fix"):
        finding["remediation"] = {"desc": rule["fix"]}
    if rule.get("rationale"):
        finding["risk_details"] = rule["rationale"]
    if f.suppression:
        finding["unmapped"]["suppression"] = f.suppression
    return finding


def to_ocsf(report: Report, rules: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """OCSF 1.5.0 Detection Findings (class 2004), one per finding, as a JSON array like Prowler's
    json-ocsf output; compliance mappings in `unmapped.compliance` as Prowler puts them."""
    return [_ocsf_finding(report, f, rules) for f in report.sorted_findings()]


def ocsf_text(report: Report, rules: dict[str, dict[str, Any]]) -> str:
    return json.dumps(to_ocsf(report, rules), indent=2, default=str)


# -- HTML --------------------------------------------------------------------------------------------

def html_text(report: Report, rules: dict[str, dict[str, Any]]) -> str:
    """One HTML file with its CSS inline and no script: summary, a control x region matrix, and
    every failing resource with its fix. Rendered by Jinja2 with autoescaping (resource names and
    messages come from the account)."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    from provisioner.report_table import worst_status

    env = Environment(loader=PackageLoader("provisioner", "report_templates"),
                      autoescape=select_autoescape(["html", "j2"]), trim_blocks=True, lstrip_blocks=True)
    findings = report.sorted_findings()
    regions = sorted({f.region for f in findings})
    cells: dict[str, dict[str, list[Finding]]] = defaultdict(lambda: defaultdict(list))
    for f in findings:
        cells[f.control][f.region].append(f)
    order = list(rules)
    matrix = []
    for control in sorted(cells, key=lambda c: (order.index(c) if c in order else len(order), c)):
        row = []
        for region in regions:
            items = cells[control].get(region, [])
            worst = worst_status(items) if items else None
            bad = sum(1 for i in items if i.status in ("fail", "error"))
            row.append({"status": worst, "bad": bad})
        matrix.append({"control": control, "title": rules.get(control, {}).get("title", ""),
                       "severity": rules.get(control, {}).get("severity") or "", "cells": row})
    failing = sorted((f for f in findings if f.status in ("fail", "error")),
                     key=lambda f: (rank(severity_of(f, rules)), f.control, f.region, f.resource))
    by_severity = Counter(severity_of(f, rules) for f in findings if f.status == "fail")
    return env.get_template("report.html.j2").render(
        report=report, summary=report.summary(), regions=regions, matrix=matrix, rules=rules,
        failing=failing, suppressed=[f for f in findings if f.status == "suppressed"],
        severities=[(s, by_severity.get(s, 0)) for s in SEVERITIES], severity_of=severity_of,
        labels=_labels, version=__version__, generated=report.generated_at.isoformat(timespec="seconds"))


def write(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
