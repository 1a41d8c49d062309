"""Controls, registered by name (the stable ids of DESIGN.md's control table).

A control is a read-only check over the live account that returns findings. Each family lives in
its own module (`cloudtrail.py`, `flow_logs.py`, ...) with its metadata beside its code:

    @control("flow_logs.all_vpcs", title="...", scope="regional", maps_to="CIS 3.7, EC2.6")
    def all_vpcs(ctx: CheckContext) -> list[Finding]:
        ...

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


@dataclass(frozen=True)
class Control:
    id: str
    title: str
    scope: Scope
    maps_to: str
    check: CheckFn
    description: str = ""

    def metadata(self) -> dict[str, str]:
        return {"title": self.title, "description": self.description or self.title,
                "maps_to": self.maps_to, "scope": self.scope}


REGISTRY: dict[str, Control] = {}


def control(control_id: str, *, title: str, scope: Scope, maps_to: str = "", description: str = ""):
    if control_id not in CONTROL_IDS:
        raise ValueError(f"{control_id} is not a control id of DESIGN.md")

    def register(fn: CheckFn) -> CheckFn:
        REGISTRY[control_id] = Control(control_id, title, scope, maps_to, fn,
                                       description or (fn.__doc__ or "").strip())
        return fn

    return register


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
    return [registry[cid] for cid in registry if cid in chosen]
