"""eip.*: no Elastic IP left idle; no allocation by a principal outside the allow-list.

`allocation_events(ctx)` reads the region's AllocateAddress and address-transfer events from
CloudTrail event history; the `harden events allocate-address` command can reuse it as is.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from provisioner.aws import paginate
from provisioner.controls import CheckContext, Mappings, control
from provisioner.findings import Finding

# The tag that marks an unassociated address as kept on purpose (a DNS record, an allow-list
# entry at a partner points at it). Its value says why; "false", "no" or "0" do not keep.
KEEP_TAG = "harden:keep"
_NOT_KEPT = frozenset({"false", "no", "0", ""})

# The calls that give the account an address: the SCP denies the same three.
ADDRESS_EVENT_NAMES = ("AllocateAddress", "EnableAddressTransfer", "AcceptAddressTransfer")

_ASSUMED_ROLE_RE = re.compile(r"^arn:(?P<p>[^:]+):sts::(?P<account>\d{12}):assumed-role/(?P<role>[^/]+)/.+$")
_ROLE_RE = re.compile(r"^arn:(?P<p>[^:]+):iam::(?P<account>[^:]+):role/(?:.*/)?(?P<role>[^/]+)$")


# ---------------------------------------------------------------------------------------------
# eip.unassociated

def addresses(ctx: CheckContext) -> list[dict]:
    # DescribeAddresses is not paginated: one call returns every address of the region.
    return ctx.cached("ec2:addresses", lambda: ctx.client("ec2").describe_addresses()["Addresses"])


def _is_associated(address: dict) -> bool:
    # VPC addresses carry an AssociationId; EC2-Classic ("standard") ones only an InstanceId.
    # Empty strings count as absent (some SDKs and emulators return them).
    return bool(address.get("AssociationId")) or (address.get("Domain") == "standard"
                                                  and bool(address.get("InstanceId")))


def _address_evidence(address: dict) -> dict[str, Any]:
    return {
        "allocation_id": address.get("AllocationId"),
        "public_ip": address.get("PublicIp"),
        "domain": address.get("Domain"),
        "association_id": address.get("AssociationId") or None,
        "instance_id": address.get("InstanceId") or None,
        "network_interface_id": address.get("NetworkInterfaceId") or None,
        "network_border_group": address.get("NetworkBorderGroup"),
        "tags": {t["Key"]: t["Value"] for t in address.get("Tags") or []},
    }


def _address_finding(ctx: CheckContext, address: dict) -> Finding:
    evidence = _address_evidence(address)
    resource = evidence["allocation_id"] or evidence["public_ip"]
    ip = evidence["public_ip"]
    if _is_associated(address):
        target = evidence["instance_id"] or evidence["network_interface_id"]
        return ctx.passed(resource, f"{ip} is associated with {target}", **evidence)
    keep = evidence["tags"].get(KEEP_TAG)
    if keep is not None and keep.strip().lower() not in _NOT_KEPT:
        return ctx.passed(resource, f"{ip} is not associated but kept on purpose ({KEEP_TAG}={keep})",
                          kept=True, **evidence)
    return ctx.failed(resource, f"{ip} is not associated with any instance or network interface: an idle "
                      "address costs money and, once released while DNS still points at it, can be taken "
                      f"by someone else; associate or release it, or tag it {KEEP_TAG}=<reason> if it is "
                      "kept on purpose", **evidence)


@control("eip.unassociated", title="No Elastic IP left unassociated", scope="regional",
         severity="low",
         rationale="an idle address costs money and, if DNS still points at it, can be released and "
         "re-allocated by someone else; no data is exposed by itself",
         mappings=Mappings(securityhub=("EC2.12",)),
         fix="associate the address, tag it harden:keep=<reason>, or release it (`harden eip release --apply`)")
def unassociated(ctx: CheckContext) -> list[Finding]:
    """Every Elastic IP of the region is associated with an instance or a network interface,
    or tagged harden:keep=<reason>."""
    found = sorted(addresses(ctx), key=lambda a: a.get("AllocationId") or a.get("PublicIp", ""))
    findings = [_address_finding(ctx, a) for a in found]
    if not findings:
        findings.append(ctx.passed(ctx.region, "no Elastic IP in this region", addresses=0))
    return findings


# ---------------------------------------------------------------------------------------------
# Reading AllocateAddress events (shared with `harden events allocate-address`)

@dataclass(frozen=True)
class AddressEvent:
    """One AllocateAddress / EnableAddressTransfer / AcceptAddressTransfer call, as CloudTrail
    recorded it."""

    event_id: str
    event_name: str
    time: str
    region: str
    principal: str  # IAM ARN of the caller; for an assumed role, the role (not the session)
    identity_type: str
    session_arn: str | None  # the STS assumed-role ARN, when there is one
    path_known: bool  # False when the role ARN was rebuilt from the STS ARN (paths are lost there)
    source_ip: str | None
    user_agent: str | None
    public_ip: str | None
    allocation_id: str | None
    transfer_account_id: str | None
    error_code: str | None
    error_message: str | None

    @property
    def succeeded(self) -> bool:
        return self.error_code is None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def role_arn_from_session(session_arn: str) -> str | None:
    """arn:aws:sts::ACC:assumed-role/ROLE/session -> arn:aws:iam::ACC:role/ROLE (path unknown)."""
    match = _ASSUMED_ROLE_RE.match(session_arn or "")
    return f"arn:{match['p']}:iam::{match['account']}:role/{match['role']}" if match else None


def principal_of(identity: dict) -> tuple[str, str | None, bool]:
    """(principal ARN, STS session ARN or None, whether the ARN's path is known)."""
    kind, arn = identity.get("type"), identity.get("arn") or ""
    if kind == "AssumedRole":
        issuer = (identity.get("sessionContext") or {}).get("sessionIssuer") or {}
        if issuer.get("type") == "Role" and issuer.get("arn"):
            return issuer["arn"], arn or None, True  # the issuer's ARN keeps the role's path
        rebuilt = role_arn_from_session(arn)
        if rebuilt:
            return rebuilt, arn, False
    if arn:
        return arn, None, True
    if kind == "AWSService":
        return identity.get("invokedBy") or "AWSService", None, True
    # AWSAccount (a caller from another account) and others may carry no ARN at all.
    return identity.get("principalId") or identity.get("accountId") or "unknown", None, True


def _find(value: Any, *keys: str) -> str | None:
    """The first string under any of `keys` (case-insensitive), searching nested objects: the
    transfer calls wrap their fields (addressTransfer, ...Request) where AllocateAddress does not."""
    wanted = {k.lower() for k in keys}
    if isinstance(value, dict):
        for k, v in value.items():
            if k.lower() in wanted and isinstance(v, str) and v:
                return v
        for v in value.values():
            if (found := _find(v, *keys)) is not None:
                return found
    elif isinstance(value, list):
        for v in value:
            if (found := _find(v, *keys)) is not None:
                return found
    return None


def parse_event(raw: dict) -> AddressEvent | None:
    """A LookupEvents entry -> AddressEvent (None for an event of another service)."""
    record = json.loads(raw.get("CloudTrailEvent") or "{}")
    if record.get("eventSource", "ec2.amazonaws.com") != "ec2.amazonaws.com":
        return None
    principal, session, path_known = principal_of(record.get("userIdentity") or {})
    request, response = record.get("requestParameters") or {}, record.get("responseElements") or {}
    when = raw.get("EventTime")
    return AddressEvent(
        event_id=record.get("eventID") or raw.get("EventId", ""),
        event_name=record.get("eventName") or raw.get("EventName", ""),
        time=record.get("eventTime") or (when.isoformat() if isinstance(when, datetime) else str(when)),
        region=record.get("awsRegion", ""),
        principal=principal,
        identity_type=(record.get("userIdentity") or {}).get("type", ""),
        session_arn=session,
        path_known=path_known,
        source_ip=record.get("sourceIPAddress"),
        user_agent=record.get("userAgent"),
        public_ip=_find(response, "publicIp") or _find(request, "publicIp", "address"),
        allocation_id=_find(response, "allocationId") or _find(request, "allocationId"),
        transfer_account_id=_find(request, "transferAccountId") or _find(response, "transferAccountId"),
        error_code=record.get("errorCode"),
        error_message=record.get("errorMessage"),
    )


def allocation_events(ctx: CheckContext) -> list[AddressEvent]:
    """The region's AllocateAddress and address-transfer calls between ctx.since and ctx.now,
    oldest first. LookupEvents takes one attribute per call: one call (paginated) per event name."""
    def fetch() -> list[AddressEvent]:
        cloudtrail = ctx.client("cloudtrail")
        parsed = []
        for name in ADDRESS_EVENT_NAMES:
            for raw in paginate(cloudtrail, "lookup_events", "Events",
                                LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": name}],
                                StartTime=ctx.since, EndTime=ctx.now):
                if (event := parse_event(raw)) is not None:
                    parsed.append(event)
        return sorted(parsed, key=lambda e: (e.time, e.event_id))

    return ctx.cached("cloudtrail:address_events", fetch)


# ---------------------------------------------------------------------------------------------
# eip.allocations

def arn_like(pattern: str, value: str) -> bool:
    """IAM ArnLike: case-sensitive, '*' any run of characters, '?' exactly one."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.DOTALL) is not None


def _role_name_matches(pattern: str, role_arn: str) -> bool:
    # Used only when the event lost the role's path: compare partition, account and name.
    want, got = _ROLE_RE.match(pattern), _ROLE_RE.match(role_arn)
    return bool(want and got) and all(arn_like(want[k], got[k]) for k in ("p", "account", "role"))


def allowed_by(event: AddressEvent, allowed: list[str]) -> tuple[str, str] | None:
    """(allow-list entry, how it matched) when the event's caller is allowed, else None."""
    for pattern in allowed:
        if arn_like(pattern, event.principal):
            return pattern, "arn"
        if event.session_arn and arn_like(pattern, event.session_arn):
            return pattern, "session arn"
        if not event.path_known and _role_name_matches(pattern, event.principal):
            return pattern, "role name (the event does not carry the role's path)"
    return None


def _violations(ctx: CheckContext, event: AddressEvent) -> list[str]:
    settings = ctx.baseline.allocate_address
    reasons = []
    if allowed_by(event, settings.allowed_principals) is None:
        reasons.append("principal not in allocate_address.allowed_principals"
                       + ("" if settings.allowed_principals else " (empty: nobody may allocate)"))
    if settings.allowed_regions and event.region not in settings.allowed_regions:
        reasons.append(f"region {event.region} not in allocate_address.allowed_regions")
    return reasons


def _event_evidence(event: AddressEvent, reasons: list[str]) -> dict[str, Any]:
    return {"time": event.time, "event_name": event.event_name, "event_id": event.event_id,
            "source_ip": event.source_ip, "user_agent": event.user_agent, "region": event.region,
            "public_ip": event.public_ip, "allocation_id": event.allocation_id,
            "transfer_account_id": event.transfer_account_id, "session_arn": event.session_arn,
            "error_code": event.error_code, "reasons": reasons}


def _what_happened(events: list[AddressEvent]) -> str:
    done = [e for e in events if e.succeeded]
    allocated = [e for e in done if e.event_name == "AllocateAddress"]
    transfers = [e for e in done if e.event_name != "AllocateAddress"]
    failed = [e for e in events if not e.succeeded]
    parts = []
    if allocated:
        ips = ", ".join(e.public_ip or e.allocation_id or "?" for e in allocated)
        parts.append(f"allocated {len(allocated)} Elastic IP{'s' if len(allocated) > 1 else ''} ({ips})")
    if transfers:
        parts.append(f"made {len(transfers)} address transfer call{'s' if len(transfers) > 1 else ''} "
                     f"({', '.join(sorted({e.event_name for e in transfers}))})")
    if failed:
        codes = ", ".join(sorted({e.error_code or "" for e in failed}))
        parts.append(f"made {len(failed)} attempt{'s' if len(failed) > 1 else ''} that failed ({codes})")
    return " and ".join(parts)


def _principal_finding(ctx: CheckContext, principal: str, offending: list[tuple[AddressEvent, list[str]]]) -> Finding:
    events = [e for e, _ in offending]
    reasons = sorted({r for _, rs in offending for r in rs})
    return ctx.failed(
        principal,
        f"{principal} {_what_happened(events)} in {ctx.region} since {ctx.since.isoformat(timespec='seconds')}: "
        f"{'; '.join(reasons)}. If it is approved, add it to allocate_address (and the SCP follows); "
        f"otherwise treat its credentials as compromised: harden respond --principal {principal}",
        principal=principal, identity_type=events[0].identity_type, reasons=reasons,
        events=[_event_evidence(e, rs) for e, rs in offending])


@control("eip.allocations", title="No Elastic IP allocation outside the allow-list", scope="regional",
         severity="critical",
         rationale="not a missing setting but evidence: a principal outside the allow-list called "
         "AllocateAddress or accepted an address transfer, so the abuse may be under way",
         mappings=Mappings(none="from the seed document (the AllocateAddress event); harden's own control"),
         fix="contain the principal (`harden respond --principal ARN --apply`) and release what it "
         "allocated (`harden eip release --allocation-ids ... --apply`)")
def allocations(ctx: CheckContext) -> list[Finding]:
    """In the look-back window, every AllocateAddress / EnableAddressTransfer /
    AcceptAddressTransfer call of the region came from an allowed principal (ArnLike) in an
    allowed region. Failed calls count too: a denied attempt is still an attempt."""
    events = allocation_events(ctx)
    by_principal: dict[str, list[tuple[AddressEvent, list[str]]]] = {}
    allowed_events = []
    for event in events:
        if reasons := _violations(ctx, event):
            by_principal.setdefault(event.principal, []).append((event, reasons))
        else:
            allowed_events.append(event)
    findings = [_principal_finding(ctx, p, by_principal[p]) for p in sorted(by_principal)]
    if not findings:
        settings = ctx.baseline.allocate_address
        seen = f"{len(events)} call(s), all allowed" if events else "no call at all"
        findings.append(ctx.passed(
            ctx.region, f"no Elastic IP allocation or address transfer outside the allow-list in {ctx.region} "
            f"since {ctx.since.isoformat(timespec='seconds')} ({seen})",
            window={"start": ctx.since.isoformat(), "end": ctx.now.isoformat()},
            allowed_principals=list(settings.allowed_principals), allowed_regions=list(settings.allowed_regions),
            allowed_events=[{"time": e.time, "event_name": e.event_name, "principal": e.principal,
                             "public_ip": e.public_ip, "error_code": e.error_code} for e in allowed_events]))
    return findings


# ---------------------------------------------------------------------------------------------
# eip.pool

# Service Quotas: "EC2-VPC Elastic IPs", per region, default 5
# (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/elastic-ip-addresses-eip.html#using-instance-addressing-limit).
EIP_QUOTA_SERVICE = "ec2"
EIP_QUOTA_CODE = "L-0263D0A3"


def address_quota(ctx: CheckContext) -> dict:
    """The region's Elastic IP quota as Service Quotas reports it: the applied value, or AWS's
    default when the account never had it changed (GetServiceQuota then answers NoSuchResource).
    `UsageMetric` is present only when AWS publishes a CloudWatch usage metric for the quota
    (https://docs.aws.amazon.com/servicequotas/2019-06-24/apireference/API_MetricInfo.html)."""
    def fetch() -> dict:
        quotas = ctx.client("service-quotas")
        try:
            return quotas.get_service_quota(ServiceCode=EIP_QUOTA_SERVICE, QuotaCode=EIP_QUOTA_CODE)["Quota"]
        except quotas.exceptions.NoSuchResourceException:
            return quotas.get_aws_default_service_quota(ServiceCode=EIP_QUOTA_SERVICE,
                                                        QuotaCode=EIP_QUOTA_CODE)["Quota"]

    return ctx.cached("service-quotas:eip", fetch)


def _counts_against_quota(address: dict) -> bool:
    # The quota counts VPC addresses; EC2-Classic ("standard") ones had their own limit.
    # UNVERIFIED on real AWS: whether BYOIP and IPAM-pool addresses (PublicIpv4Pool other than
    # "amazon") count against L-0263D0A3 is not documented; they are counted, which can only
    # overstate the pool's use (an early warning, never a missed one).
    return address.get("Domain", "vpc") == "vpc"


@control("eip.pool", title="The region's Elastic IP pool is not close to its quota", scope="regional",
         severity="medium",
         rationale="a full pool denies every new allocation in the region (the seed's denial of service); it "
         "hurts availability, and the allocations that filled it are what eip.allocations investigates",
         mappings=Mappings(none="from the seed document (exhausting the address pool); no public baseline "
                           "tracks the Elastic IP quota"),
         fix="release idle addresses (`harden eip release --apply`), find and contain who allocated them "
         "(`harden events allocate-address`, `harden respond`), or raise the quota",
         terraform="alarms/aws_cloudwatch_metric_alarm.eip_pool")
def pool(ctx: CheckContext) -> list[Finding]:
    """Allocated Elastic IPs stay below eip.pool_max_share (80% by default) of the region's
    Service Quotas value; the allocation rate in the look-back window (CloudTrail event history)
    is reported beside it, with how long the rest of the pool lasts at that rate."""
    quota = address_quota(ctx)
    limit = float(quota.get("Value") or 0)
    allocated = [a for a in addresses(ctx) if _counts_against_quota(a)]
    events = [e for e in allocation_events(ctx) if e.event_name == "AllocateAddress" and e.succeeded]
    days = max((ctx.now - ctx.since).total_seconds() / 86400, 1 / 24)
    per_day = len(events) / days
    share = ctx.baseline.eip.pool_max_share
    used = len(allocated) / limit if limit > 0 else 1.0
    left = max(limit - len(allocated), 0)
    evidence = {
        "allocated": len(allocated), "quota": limit, "quota_code": quota.get("QuotaCode", EIP_QUOTA_CODE),
        "quota_name": quota.get("QuotaName"), "quota_adjustable": quota.get("Adjustable"),
        "usage_metric": quota.get("UsageMetric") or None, "used_share": round(used, 4), "max_share": share,
        "allocations_in_window": len(events), "allocations_per_day": round(per_day, 3),
        "window": {"start": ctx.since.isoformat(), "end": ctx.now.isoformat()},
        "allocated_by": sorted({e.principal for e in events}),
        "days_until_full_at_this_rate": round(left / per_day, 1) if per_day > 0 else None,
    }
    lasts = ("" if per_day <= 0 else "; no address left" if left <= 0
             else f"; the rest lasts about {left / per_day:.1f} days at that rate")
    rate = f"{len(events)} allocation(s) since {ctx.since.isoformat(timespec='seconds')} ({per_day:.2f}/day{lasts})"
    summary = f"{len(allocated)} of {limit:g} Elastic IPs allocated ({used:.0%})"
    if limit <= 0 or used >= share:
        return [ctx.failed(ctx.region, f"{summary}, at or above eip.pool_max_share {share:.0%}: the next allocations "
                           f"fail with AddressLimitExceeded for everyone in {ctx.region}; {rate}. Release idle "
                           "addresses (harden eip release), find who allocated them (harden events allocate-address), "
                           "or raise the quota", **evidence)]
    return [ctx.passed(ctx.region, f"{summary}, below {share:.0%}; {rate}", **evidence)]
