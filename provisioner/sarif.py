"""SARIF 2.1.0 for GitHub code scanning: one rule per control, one result per failed finding.

What GitHub needs beyond the schema
(https://docs.github.com/en/code-security/code-scanning/integrating-with-code-scanning/sarif-support-for-code-scanning):
a result must have a physical location in the repository to become an alert, so each points at
the rendered Terraform resource that declares the fix (`terraform/modules/<module>/main.tf`, the
line of the resource block) or, for controls with no Terraform behind them, at the harden.toml the
run used, else the rendered `account/main.tf`; never at a file the repository does not hold (with
neither, a result has only its logical location);
`partialFingerprints` let it match a result across runs (ours hash the control, account, region
and resource: the same drift stays one alert, whatever its message or line); rules carry
`security-severity` (a number, read only with the `security` tag) and `help` text;
`automationDetails.id` keeps harden's upload apart from checkov's in the same repository.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provisioner import __version__
from provisioner.findings import Finding, Report, severity_of
from provisioner.severity import SECURITY_SEVERITY

SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
FINGERPRINT_KEY = "harden/v1"
# SARIF 2.1.0 §3.27.10: a level other than "none" requires kind "fail"
# (https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/sarif-v2.1.0-errata01-os-complete.html).
# A suppressed finding is still a failure, accepted through its `suppressions` entry (§3.35).
_LEVEL = {"fail": "error", "error": "none", "suppressed": "note", "skipped": "none", "pass": "none"}
_KIND = {"fail": "fail", "error": "review", "suppressed": "fail", "skipped": "notApplicable", "pass": "pass"}


@dataclass(frozen=True)
class Sources:
    """Where results point: the rendered Terraform tree and the harden.toml of the run, and the
    directory the URIs are relative to (the repository root: where CI runs harden)."""

    terraform_dir: Path | None = None
    config_file: Path | None = None
    base: Path = Path(".")


def information_uri() -> str | None:
    """The project's home page from the installed distribution's metadata (Project-URL), or
    None: SARIF and GitHub both accept a driver without one, and a made-up URL helps nobody."""
    from importlib import metadata

    for dist in metadata.packages_distributions().get("provisioner", []):
        try:
            urls = metadata.metadata(dist).get_all("Project-URL") or []
        except metadata.PackageNotFoundError:
            continue
        for entry in urls:
            label, _, url = entry.partition(",")
            if label.strip().lower() in ("homepage", "home", "repository", "source") and url.strip().startswith("https://"):
                return url.strip()
    return None


def _artifact(path: Path, base: Path) -> dict[str, str]:
    try:
        return {"uri": path.resolve().relative_to(base.resolve()).as_posix(), "uriBaseId": "%SRCROOT%"}
    except ValueError:  # outside the repository: an absolute URI, which GitHub shows without code
        return {"uri": path.resolve().as_uri()}


def _line_of(path: Path, pattern: re.Pattern[str]) -> int | None:
    try:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if pattern.search(line):
                return number
    except (OSError, UnicodeDecodeError):
        return None
    return None


def _terraform_location(terraform: str, sources: Sources) -> dict[str, Any] | None:
    if not terraform or sources.terraform_dir is None:
        return None
    module, address = terraform.split("/", 1)
    rtype, name = address.split(".", 1)
    block = re.compile(rf'^\s*resource\s+"{re.escape(rtype)}"\s+"{re.escape(name)}"')
    for tf in sorted((sources.terraform_dir / "modules" / module).glob("*.tf")):
        if line := _line_of(tf, block):
            return {"artifactLocation": _artifact(tf, sources.base), "region": {"startLine": line}}
    return None


def _inside(path: Path, base: Path) -> bool:
    try:
        path.resolve().relative_to(base.resolve())
        return True
    except ValueError:
        return False


def _config_location(control: str, sources: Sources) -> dict[str, Any] | None:
    """Where a result with no rendered resource behind it points, always a file that exists in the
    repository: the harden.toml the run used, at the control family's table (or the first line);
    else (no config, or one outside the repository, where GitHub cannot show it) the rendered root
    module that applies the baseline (`account/main.tf`); else None: the result keeps its logical
    location only, as SARIF 2.1.0 allows (physicalLocation is optional, §3.28.3), rather
    than point at a file the repository does not hold."""
    config = sources.config_file
    if config is not None and config.is_file() and _inside(config, sources.base):
        family = control.split(".", 1)[0]
        table = {"ebs": "ebs", "eip": "allocate_address"}.get(family, family)
        line = _line_of(config, re.compile(rf"^\s*\[{re.escape(table)}\]")) or 1
        return {"artifactLocation": _artifact(config, sources.base), "region": {"startLine": line}}
    root = sources.terraform_dir / "account" / "main.tf" if sources.terraform_dir else None
    if root is not None and root.is_file() and _inside(root, sources.base):
        return {"artifactLocation": _artifact(root, sources.base), "region": {"startLine": 1}}
    return None


def fingerprint(account: str | None, f: Finding) -> str:
    key = "\x1f".join((f.control, account or "", f.region, f.resource))
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _help(rule: dict[str, Any]) -> dict[str, str]:
    from provisioner.controls import mapping_labels

    maps = rule.get("mappings") or {}
    ids = mapping_labels(maps, long=True)
    text = (f"{rule.get('description') or rule.get('title', '')}\n\nFix: {rule.get('fix', '')}\n\n"
            f"Severity {rule.get('severity')}: {rule.get('rationale', '')}\n\n"
            f"Maps to: {', '.join(ids) or maps.get('none', 'none')}")
    markdown = (f"{rule.get('description') or rule.get('title', '')}\n\n**Fix:** {rule.get('fix', '')}\n\n"
                f"**Severity {rule.get('severity')}:** {rule.get('rationale', '')}\n\n"
                f"**Maps to:** {', '.join(ids) or maps.get('none', 'none')}")
    return {"text": text, "markdown": markdown}


def _rule(cid: str, rule: dict[str, Any]) -> dict[str, Any]:
    severity = rule.get("severity")
    properties: dict[str, Any] = {"tags": ["security", "aws", cid.split(".", 1)[0]], "precision": "high"}
    if severity in SECURITY_SEVERITY:
        properties["security-severity"] = SECURITY_SEVERITY[severity]
    return {
        "id": cid,
        "name": "".join(part.capitalize() for part in re.split(r"[._]", cid)),
        "shortDescription": {"text": rule.get("title", cid)},
        "fullDescription": {"text": rule.get("description") or rule.get("title", cid)},
        "help": _help(rule),
        "defaultConfiguration": {"level": "error" if severity in ("critical", "high") else "warning"},
        "properties": properties,
    }


def to_sarif(report: Report, rules: dict[str, dict[str, Any]], sources: Sources = Sources(),
             statuses: tuple[str, ...] = ("fail",)) -> dict[str, Any]:
    """The SARIF log. By default only failures are results (what code scanning should alert on);
    pass `statuses` to include errors, suppressions and passes as well."""
    shown = [f for f in report.sorted_findings() if f.status in statuses]
    rule_ids = sorted(set(rules) | {f.control for f in shown})
    index = {cid: i for i, cid in enumerate(rule_ids)}
    results = []
    for f in shown:
        rule = rules.get(f.control, {})
        physical = _terraform_location(rule.get("terraform", ""), sources) or _config_location(f.control, sources)
        result: dict[str, Any] = {
            "ruleId": f.control,
            "ruleIndex": index[f.control],
            "kind": _KIND[f.status],
            "level": _LEVEL[f.status],
            "message": {"text": f"[{f.region}] {f.resource}: {f.message}"},
            "locations": [{
                **({"physicalLocation": physical} if physical else {}),
                "logicalLocations": [{"name": f.resource, "kind": "resource",
                                      "fullyQualifiedName": f"{report.account or 'account'}/{f.region}/{f.resource}"}],
            }],
            "partialFingerprints": {FINGERPRINT_KEY: fingerprint(report.account, f)},
            "properties": {"region": f.region, "resource": f.resource, "status": f.status,
                           "severity": severity_of(f, rules), "evidence": f.evidence},
        }
        if f.suppression and f.status == "suppressed":
            result["suppressions"] = [{"kind": "external", "status": "accepted",
                                       "justification": f.suppression.get("reason", "")}]
        results.append(result)
    driver: dict[str, Any] = {"name": "harden", "version": __version__, "semanticVersion": __version__,
                              "rules": [_rule(cid, rules.get(cid, {})) for cid in rule_ids]}
    if uri := information_uri():
        driver["informationUri"] = uri
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": driver},
            "automationDetails": {"id": f"harden/verify/{report.account or 'account'}/"},
            "originalUriBaseIds": {"%SRCROOT%": {"uri": sources.base.resolve().as_uri() + "/"}},
            "results": results,
        }],
    }


def sarif_text(report: Report, rules: dict[str, dict[str, Any]], sources: Sources = Sources(),
               statuses: tuple[str, ...] = ("fail",)) -> str:
    return json.dumps(to_sarif(report, rules, sources, statuses), indent=2, default=str)
