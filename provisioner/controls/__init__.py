"""Controls, registered by name (the stable ids of DESIGN.md's control table).

A control is a read-only check over the live account that returns findings. Each family lives in
its own module (`cloudtrail.py`, `flow_logs.py`, ...) with its metadata beside its code:

    @control("flow_logs.all_vpcs", title="...", scope="regional", severity="medium",
             rationale="why this severity", mappings=Mappings(cis_v3=("3.7",), ...),
             fix="what makes it pass", terraform="flow_logs/aws_flow_log.this")
    def all_vpcs(ctx: CheckContext) -> list[Finding]:
        ...

Every field of the decorator is the control's metadata, in one place: reports (every format),
`harden controls`, SARIF rules and OCSF findings read it from here. tests/test_control_metadata.py
fails when a control lacks a severity, its rationale, its mappings (or the reason it has none)
or its fix.

Scopes: "regional" runs once per region of the run; "account" runs once, in the home region
(the trail, account-wide settings); "organization" runs once against the Organizations API.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Literal

from provisioner.aws import AwsSession
from provisioner.baseline import Baseline
from provisioner.findings import Finding, Status
from provisioner.severity import Severity

Scope = Literal["regional", "account", "organization"]

# The families, in report order. Importing them fills REGISTRY.
FAMILY_MODULES = ("cloudtrail", "flow_logs", "config", "scp", "ebs", "alarms", "eip", "network", "ec2")

CONTROL_IDS = (
    "cloudtrail.multi_region", "cloudtrail.log_validation", "cloudtrail.kms",
    "cloudtrail.cloudwatch_logs", "cloudtrail.bucket",
    "flow_logs.all_vpcs",
    "config.recorder", "config.delivery",
    "scp.allocate_address", "scp.baseline_protection",
    "ebs.default_encryption", "ebs.unencrypted_volumes",
    "alarms.cpu", "alarms.allocate_address",
    "eip.unassociated", "eip.allocations", "eip.pool",
    "network.admin_ports", "network.default_security_group",
    "ec2.ami_currency",
)


@dataclass
class CheckContext:
    """What one check sees: the session, the desired state, where it runs, and a cache that the
    checks of one region share (so two checks needing the instances list make one call)."""

    aws: AwsSession
    baseline: Baseline
    region: str
    account_id: str
    control_id: str = ""
    since: datetime = field(default_factory=lambda: datetime.now(timezone.utc) - timedelta(days=7))
    now: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    regions: tuple[str, ...] = ()  # every region of the run (account-scope checks need them)
    cache: dict[str, Any] = field(default_factory=dict)

    def client(self, service: str, region: str | None = None):
        return self.aws.client(service, region or self.region)

    def cached(self, key: str, fetch: Callable[[], Any]) -> Any:
        if key not in self.cache:
            self.cache[key] = fetch()
        return self.cache[key]

    def finding(self, status: Status, resource: str, message: str, **evidence: Any) -> Finding:
        return Finding(self.control_id, self.region, resource, status, message, evidence)

    def passed(self, resource: str, message: str, **evidence: Any) -> Finding:
        return self.finding("pass", resource, message, **evidence)

    def failed(self, resource: str, message: str, **evidence: Any) -> Finding:
        return self.finding("fail", resource, message, **evidence)

    def skipped(self, resource: str, message: str, **evidence: Any) -> Finding:
        return self.finding("skipped", resource, message, **evidence)

    def errored(self, resource: str, message: str, **evidence: Any) -> Finding:
        return self.finding("error", resource, message, **evidence)


CheckFn = Callable[[CheckContext], list[Finding]]


# The mapping keys of reports, with a short label (tables, CSV) and a long one (SARIF help).
_MAPPING_LABELS = (("cis_aws_v3.0.0", "CIS-v3.0.0", "CIS AWS Foundations Benchmark v3.0.0"),
                   ("cis_aws_v4.0.1", "CIS-v4.0.1", "CIS AWS Foundations Benchmark v4.0.1"),
                   ("aws_securityhub", "SecurityHub", "AWS Security Hub"))


def mapping_labels(mappings: dict[str, Any], long: bool = False) -> list[str]:
    """'CIS-v3.0.0 3.1', 'SecurityHub CloudTrail.1' (or the long names) from a mappings dict."""
    return [f"{full if long else short} {i}" for key, short, full in _MAPPING_LABELS for i in mappings.get(key, [])]


@dataclass(frozen=True)
class Mappings:
    """Where a control sits in the public baselines, as ids a compliance team can look up.

    cis_v3 / cis_v4: recommendation numbers of the CIS AWS Foundations Benchmark v3.0.0 and
    v4.0.1 (the numbering moved between them: EBS encryption is 2.2.1 in v3 and 5.1.1 in v4).
    securityhub: AWS Security Hub CSPM control ids (the ids of the AWS Foundational Security
    Best Practices standard, e.g. CloudTrail.1). `none` says why a control has no mapping (the
    Elastic IP controls are this tool's own); a control must have ids or that reason.
    Sources: the "Related requirements" of each control in
    https://docs.aws.amazon.com/securityhub/latest/userguide/cloudtrail-controls.html (and the
    ec2-, config-, s3-, kms- pages beside it) and the standard's list in
    https://docs.aws.amazon.com/securityhub/latest/userguide/cis-aws-foundations-benchmark.html for
    CIS v3.0.0 and the Security Hub ids; CIS v4.0.1, which Security Hub does not carry, from
    Prowler's prowler/compliance/aws/cis_4.0_aws.json (github.com/prowler-cloud/prowler), whose
    cis_3.0_aws.json and aws_foundational_security_best_practices_aws.json agree with the ids here.
    """

    cis_v3: tuple[str, ...] = ()
    cis_v4: tuple[str, ...] = ()
    securityhub: tuple[str, ...] = ()
    none: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"cis_aws_v3.0.0": list(self.cis_v3), "cis_aws_v4.0.1": list(self.cis_v4),
                "aws_securityhub": list(self.securityhub), **({"none": self.none} if self.none else {})}

    def labels(self) -> list[str]:
        return mapping_labels(self.to_dict())

    def __bool__(self) -> bool:
        return bool(self.cis_v3 or self.cis_v4 or self.securityhub or self.none)


@dataclass(frozen=True)
class Control:
    id: str
    title: str
    scope: Scope
    check: CheckFn
    severity: Severity | None = None
    rationale: str = ""             # why this severity, for the person deciding what to fix first
    mappings: Mappings = Mappings()
    fix: str = ""                   # what makes the control pass (shown beside failures)
    terraform: str = ""             # "<module>/<type>.<name>": the resource that declares the fix
    description: str = ""

    def metadata(self) -> dict[str, Any]:
        return {"title": self.title, "description": self.description or self.title,
                "scope": self.scope, "severity": self.severity, "rationale": self.rationale,
                "mappings": self.mappings.to_dict(), "fix": self.fix, "terraform": self.terraform}


REGISTRY: dict[str, Control] = {}


def control(control_id: str, *, title: str, scope: Scope, severity: Severity | None = None,
            rationale: str = "", mappings: Mappings = Mappings(), fix: str = "", terraform: str = "",
            description: str = ""):
    if control_id not in CONTROL_IDS:
        raise ValueError(f"{control_id} is not a control id of DESIGN.md")

    def register(fn: CheckFn) -> CheckFn:
        REGISTRY[control_id] = Control(control_id, title, scope, fn, severity, rationale, mappings, fix,
                                       terraform, description or (fn.__doc__ or "").strip())
        return fn

    return register


# Findings that come from the tool itself rather than a control: their metadata, in the same shape.
def _no_check(ctx: CheckContext) -> list[Finding]:  # pragma: no cover - never selected or run
    return []


PSEUDO_CONTROLS: dict[str, Control] = {
    "verify": Control(
        "verify", "harden could check the account or region", "account", _no_check, "high",
        "a region or account that could not be checked is a blind spot: nothing is known there",
        Mappings(none="about the run itself, not the account"),
        "give the verify role read access (SecurityAudit) in that account and region, then run again"),
    "terraform.plan": Control(
        "terraform.plan", "Terraform state matches the rendered configuration", "account", _no_check,
        "medium", "someone changed what Terraform manages outside Terraform: the controls may still "
        "pass, but the next apply will undo or fight the change",
        Mappings(none="about Terraform state, not a public baseline"),
        "review the plan (`harden plan`) and apply it, or change harden.toml to the new intent"),
}


def rule_metadata() -> dict[str, dict[str, Any]]:
    """Every control's metadata and the tool's own pseudo-controls, by id (what writers read)."""
    return {cid: c.metadata() for cid, c in {**load_controls(), **PSEUDO_CONTROLS}.items()}


def load_controls() -> dict[str, Control]:
    for name in FAMILY_MODULES:
        importlib.import_module(f"provisioner.controls.{name}")
    return {cid: REGISTRY[cid] for cid in CONTROL_IDS if cid in REGISTRY}


# What switching a family off (`[family] enabled = false`) leaves out of the desired state. The
# families without the switch (cloudtrail: the foundation; eip, ec2: no Terraform behind them)
# always run.
SWITCHED_OFF = {
    "flow_logs": "VPC flow logs are",
    "config": "AWS Config is",
    "scp": "the service control policies are",
    "ebs": "EBS encryption by default is",
    "alarms": "alarms are",
    "network": "security group rules are",
}
# Checked whatever its family's switch says: no Terraform behind it, and the data at risk is
# there either way (ebs.enabled switches the ebs_encryption module, not the volumes' contents).
ALWAYS_CHECKED = frozenset({"ebs.unencrypted_volumes"})


def disabled_reason(baseline: Baseline, control_id: str) -> str | None:
    """Why the baseline turns this control off (its family's `enabled` is false), or None when
    it is to be checked. verify reports a disabled control as one `skipped` finding per region
    and runs no check, so remediation never sees a failure to plan for."""
    family = control_id.split(".", 1)[0]
    if family not in SWITCHED_OFF or control_id in ALWAYS_CHECKED:
        return None
    if getattr(baseline, family).enabled:
        return None
    return f"{family}.enabled = false in the baseline: {SWITCHED_OFF[family]} not part of the desired state"


class UnknownControl(ValueError):
    pass


def select(ids: list[str] | None) -> list[Control]:
    """Controls by id or family prefix ("cloudtrail" selects every cloudtrail.* control)."""
    registry = load_controls()
    if not ids:
        return list(registry.values())
    chosen: dict[str, Control] = {}
    for raw in ids:
        for wanted in filter(None, (part.strip() for part in raw.split(","))):
            matches = [c for cid, c in registry.items() if cid == wanted or cid.startswith(wanted + ".")]
            if not matches:
                raise UnknownControl(f"unknown control {wanted!r} (known: {', '.join(registry)})")
            chosen.update((c.id, c) for c in matches)
    if not chosen:  # `--controls ""` (an unset variable): checking nothing must not pass as clean
        raise UnknownControl(f"--controls {','.join(ids)!r} names no control (known: {', '.join(registry)})")
    return [registry[cid] for cid in registry if cid in chosen]


def catalog() -> list[dict[str, Any]]:
    """Every control as `harden controls` lists it: metadata plus whether remediate can fix it."""
    from provisioner.remediate import FIXES  # importing the families (load_controls) registers the fixes

    controls = load_controls()
    return [{"id": c.id, "title": c.title, "severity": c.severity, "scope": c.scope,
             "mappings": c.mappings.to_dict(), "remediate": c.id in FIXES, "terraform": c.terraform or None,
             "fix": c.fix, "rationale": c.rationale} for c in controls.values()]
