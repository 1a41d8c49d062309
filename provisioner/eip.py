"""Elastic IPs beyond verify: releasing idle addresses (`harden eip release`) and listing who
allocated or transferred addresses (`harden events allocate-address`).

Release is destructive and cannot be undone: a released Amazon-pool address goes back to AWS and
may be handed to another account within minutes, together with any traffic a forgotten DNS record
still sends it. So the rule of what is released is the eip.unassociated check itself (its failed
findings), never a second copy of it; addresses tagged harden:keep, associated addresses and
addresses from a pool of your own (BYOIP, customer-owned) are never released; and every address
is described again right before its release, so one associated or tagged since the plan is left
alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Literal

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from provisioner.aws import AwsSession, describe_error
from provisioner.baseline import Baseline
from provisioner.controls import CheckContext
from provisioner.controls.eip import KEEP_TAG, AddressEvent, addresses, allocation_events, allowed_by, unassociated
from provisioner.findings import Finding
from provisioner.remediate import Action, ActionResult, execute

CONTROL = "eip.unassociated"
AMAZON_POOL = "amazon"

Decision = Literal["release", "keep", "skip"]

IRREVERSIBLE = (
    "A released public IP goes back to Amazon's pool and cannot be reserved back: another account "
    "may get it within minutes (`aws ec2 allocate-address --address <ip>` recovers it only if nobody "
    "has taken it). Before releasing, make sure no DNS record, allow-list or partner configuration "
    "still points at these addresses.")


# ---------------------------------------------------------------------------------------------
# harden eip release

@dataclass(frozen=True)
class Candidate:
    """An Elastic IP the release looked at, and what it decided for it."""

    region: str
    allocation_id: str | None
    public_ip: str
    tags: dict[str, str]
    decision: Decision
    reason: str
    domain: str | None = None
    network_border_group: str | None = None
    public_ipv4_pool: str | None = None

    @property
    def resource(self) -> str:
        return self.allocation_id or self.public_ip

    def to_dict(self) -> dict[str, Any]:
        return {"region": self.region, "allocation_id": self.allocation_id, "public_ip": self.public_ip,
                "tags": dict(self.tags), "action": self.decision, "reason": self.reason, "domain": self.domain,
                "network_border_group": self.network_border_group, "public_ipv4_pool": self.public_ipv4_pool}


def _own_pool(address: dict) -> str | None:
    """The pool of an address that is yours rather than Amazon's, or None.

    BYOIP (PublicIpv4Pool other than "amazon") and customer-owned (Outposts CoIP) addresses are
    not released: they cannot be taken by another account, are not billed as idle Amazon IPv4,
    and are managed with their pool (release returns them there, where nobody can hijack them).
    """
    pool = address.get("PublicIpv4Pool")
    if pool and pool != AMAZON_POOL:
        return f"BYOIP pool {pool}"
    if address.get("CustomerOwnedIp"):
        return f"customer-owned pool {address.get('CustomerOwnedIpv4Pool') or '?'}"
    return None


def _decide(finding: Finding, address: dict) -> tuple[Decision, str]:
    """What to do with one address, given the eip.unassociated finding about it."""
    ev = finding.evidence
    if finding.status == "pass":
        if ev.get("kept"):
            return "keep", f"tagged {KEEP_TAG}={ev['tags'].get(KEEP_TAG)}"
        target = ev.get("instance_id") or ev.get("network_interface_id") or ev.get("association_id")
        return "skip", f"associated with {target}: disassociate it first"
    if (own := _own_pool(address)) is not None:
        return "skip", f"from your {own}: release it there if it is no longer needed"
    reason = "not associated with any instance or network interface"
    nbg = ev.get("network_border_group")
    if nbg and nbg != finding.region:
        reason += f" (network border group {nbg})"
    return "release", reason


def _candidate(region: str, finding: Finding, address: dict) -> Candidate:
    decision, reason = _decide(finding, address)
    ev = finding.evidence
    return Candidate(region=region, allocation_id=ev.get("allocation_id"), public_ip=ev.get("public_ip") or "",
                     tags=dict(ev.get("tags") or {}), decision=decision, reason=reason, domain=ev.get("domain"),
                     network_border_group=ev.get("network_border_group"),
                     public_ipv4_pool=address.get("PublicIpv4Pool"))


def region_candidates(aws: AwsSession, baseline: Baseline, region: str, account_id: str,
                      allocation_ids: set[str] | None = None) -> list[Candidate]:
    """The region's unassociated addresses (and, when ids are named, those ids whatever their
    state), each with its decision. One DescribeAddresses call: the check and this share it."""
    ctx = CheckContext(aws=aws, baseline=baseline, region=region, account_id=account_id, control_id=CONTROL)
    raw = {a.get("AllocationId") or a.get("PublicIp"): a for a in addresses(ctx)}
    found = []
    for finding in unassociated(ctx):
        address = raw.get(finding.resource)
        if address is None:
            continue  # the "no Elastic IP in this region" finding
        if allocation_ids is not None and finding.resource not in allocation_ids:
            continue
        if allocation_ids is None and finding.status == "pass" and not finding.evidence.get("kept"):
            continue  # associated and not asked about: in use, not a candidate
        found.append(_candidate(region, finding, address))
    return found


def _release(aws: AwsSession, baseline: Baseline, account_id: str, candidate: Candidate) -> dict[str, Any]:
    """Decide again from a fresh DescribeAddresses, then release: the plan may be minutes old,
    and an address associated or tagged harden:keep since then must stay."""
    now = region_candidates(aws, baseline, candidate.region, account_id, {candidate.resource})
    if not now:
        return _left_alone(f"no longer allocated in {candidate.region}: nothing to release")
    current = now[0]
    if current.decision != "release":
        return _left_alone(f"changed since the plan, now {current.decision}: {current.reason}; not released")
    if current.allocation_id:
        params: dict[str, Any] = {"AllocationId": current.allocation_id}
        # The group the address itself reports is always right, and AWS needs it for Local Zone
        # and Wavelength addresses.
        if current.network_border_group:
            params["NetworkBorderGroup"] = current.network_border_group
    else:  # EC2-Classic addresses have no allocation id
        params = {"PublicIp": current.public_ip}
    aws.client("ec2", current.region).release_address(**params)
    return {"message": f"released {current.public_ip}", "allocation_id": current.allocation_id,
            "public_ip": current.public_ip}


def _left_alone(message: str) -> dict[str, Any]:
    return {"message": message, "left_alone": True}


def _mark_left_alone(results: list[ActionResult]) -> list[ActionResult]:
    """A release the re-check stopped is `skipped`, not `applied`: nothing was released."""
    return [ActionResult(r.action, "skipped", r.message, r.detail) if r.detail.pop("left_alone", False) else r
            for r in results]


def release_action(aws: AwsSession, baseline: Baseline, account_id: str, candidate: Candidate) -> Action:
    return Action(CONTROL, candidate.region, candidate.resource,
                  f"release {candidate.public_ip} ({candidate.resource}): {candidate.reason}",
                  ["ec2:DescribeAddresses", "ec2:ReleaseAddress"],
                  lambda: _release(aws, baseline, account_id, candidate), destructive=True)


@dataclass
class ReleaseRun:
    account: str
    regions: list[str]
    apply: bool
    candidates: list[Candidate]
    actions: list[Action] = field(default_factory=list)
    results: list[ActionResult] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)  # region -> why it could not be read
    not_found: list[str] = field(default_factory=list)    # --allocation-ids that no region has

    def result_for(self, candidate: Candidate) -> ActionResult | None:
        for r in self.results:
            if (r.action.region, r.action.resource) == (candidate.region, candidate.resource):
                return r
        return None

    @property
    def released(self) -> list[Candidate]:
        return [c for c in self.candidates if (r := self.result_for(c)) is not None and r.status == "applied"]

    def exit_code(self) -> int:
        if self.errors or any(r.status == "failed" for r in self.results):
            return 3
        if not self.apply and self.actions:
            return 1  # like remediate: a dry run with something to do
        return 0

    def to_dict(self) -> dict[str, Any]:
        rows = []
        for c in self.candidates:
            r = self.result_for(c)
            rows.append({**c.to_dict(), "status": r.status if r else None, "message": r.message if r else None})
        return {"account": self.account, "regions": self.regions, "apply": self.apply, "addresses": rows,
                "released": [{"region": c.region, "allocation_id": c.allocation_id, "public_ip": c.public_ip}
                             for c in self.released],
                "not_found": list(self.not_found), "errors": dict(sorted(self.errors.items())),
                "warning": IRREVERSIBLE}


def run_release(aws: AwsSession, baseline: Baseline, *, regions: list[str] | None = None,
                allocation_ids: list[str] | None = None, apply: bool = False,
                progress: Callable[[Action], None] | None = None) -> ReleaseRun:
    """Plan (every region at once), then release (one at a time, each re-checked) with apply."""
    account = aws.account_id()
    run_regions = aws.resolve_regions(regions or baseline.explicit_regions)
    wanted = set(allocation_ids) if allocation_ids else None
    run = ReleaseRun(account, run_regions, apply, [])
    for region, result in aws.map_regions(
            lambda r: region_candidates(aws, baseline, r, account, wanted), run_regions, timeout=aws.timeouts.run):
        if isinstance(result, BaseException):
            run.errors[region] = describe_error(result)
        else:
            run.candidates.extend(result)
    run.candidates.sort(key=lambda c: (c.region, c.decision != "release", c.resource))
    if wanted is not None and not run.errors:  # with a region unread, "not found" would be a guess
        run.not_found = sorted(wanted - {c.resource for c in run.candidates})
    run.actions = [release_action(aws, baseline, account, c) for c in run.candidates if c.decision == "release"]
    run.results = _mark_left_alone(execute(run.actions, apply, progress))
    return run


_DECISION_STYLE = {"release": "bold red", "keep": "green", "skip": "yellow"}
_STATUS_STYLE = {"planned": "cyan", "applied": "green", "failed": "bold red", "skipped": "dim"}


def _tags_text(tags: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(tags.items())) or "-"


def render_release(run: ReleaseRun, console: Console) -> None:
    if run.not_found:
        console.print(f"[yellow]not found[/] (already released, or in another region): {', '.join(run.not_found)}")
    if not run.candidates:
        console.print(f"[green]no unassociated Elastic IP[/] in {', '.join(run.regions) or 'any region'}")
        return
    title = "eip release" + ("" if run.apply else " (dry run: nothing was changed; add --apply to release)")
    table = Table(title=title, title_justify="left")
    for name in ("region", "allocation id", "public IP", "tags", "action"):
        table.add_column(name, overflow="fold", no_wrap=name in ("region", "public IP"))
    for c in run.candidates:
        r = run.result_for(c)
        action = f"[{_DECISION_STYLE[c.decision]}]{c.decision}[/]: {escape(c.reason)}"
        if r is not None and run.apply:
            action += f" -> [{_STATUS_STYLE[r.status]}]{r.status}[/] {escape(r.message)}"
        table.add_row(c.region, escape(c.allocation_id or "-"), c.public_ip, escape(_tags_text(c.tags)), action)
    console.print(table)
    if run.actions:
        console.print(f"[yellow]warning:[/] {escape(IRREVERSIBLE)}", soft_wrap=True)
    if run.apply:
        for c in run.released:
            # One plain line per address, for whoever owns the DNS zones to grep for.
            console.print(f"released {c.allocation_id or '-'} {c.public_ip} ({c.region})", highlight=False)


# ---------------------------------------------------------------------------------------------
# harden events allocate-address

@dataclass(frozen=True)
class EventRow:
    event: AddressEvent
    allowed: bool               # the principal is in allocate_address.allowed_principals
    matched: str | None         # the allow-list entry it matched
    region_allowed: bool        # allocate_address.allowed_regions is empty or holds the region

    def to_dict(self) -> dict[str, Any]:
        return {**self.event.to_dict(), "allow_listed": self.allowed, "allow_list_entry": self.matched,
                "region_allowed": self.region_allowed}


@dataclass
class EventsListing:
    account: str
    regions: list[str]
    start: datetime
    end: datetime
    rows: list[EventRow]
    errors: dict[str, str]

    def exit_code(self) -> int:
        return 3 if self.errors else 0

    def to_dict(self) -> dict[str, Any]:
        return {"account": self.account, "regions": self.regions,
                "window": {"start": self.start.isoformat(), "end": self.end.isoformat()},
                "events": [r.to_dict() for r in self.rows], "errors": dict(sorted(self.errors.items()))}


def region_events(aws: AwsSession, baseline: Baseline, region: str, account_id: str,
                  start: datetime, end: datetime) -> list[AddressEvent]:
    ctx = CheckContext(aws=aws, baseline=baseline, region=region, account_id=account_id,
                       control_id="eip.allocations", since=start, now=end)
    return allocation_events(ctx)


def _row(baseline: Baseline, event: AddressEvent) -> EventRow:
    settings = baseline.allocate_address
    match = allowed_by(event, settings.allowed_principals)
    return EventRow(event, match is not None, match[0] if match else None,
                    not settings.allowed_regions or event.region in settings.allowed_regions)


def list_address_events(aws: AwsSession, baseline: Baseline, *, since: timedelta,
                        regions: list[str] | None = None, now: datetime | None = None) -> EventsListing:
    """AllocateAddress and address-transfer calls of every region, oldest first; a region that
    cannot be read is in `errors` and the others are still listed."""
    end = now or datetime.now(timezone.utc)
    start = end - since
    account = aws.account_id()
    run_regions = aws.resolve_regions(regions or baseline.explicit_regions)
    rows: list[EventRow] = []
    errors: dict[str, str] = {}
    for region, result in aws.map_regions(
            lambda r: region_events(aws, baseline, r, account, start, end), run_regions, timeout=aws.timeouts.run):
        if isinstance(result, BaseException):
            errors[region] = describe_error(result)
        else:
            rows.extend(_row(baseline, e) for e in result)
    rows.sort(key=lambda r: (r.event.time, r.event.region, r.event.event_id))
    return EventsListing(account, run_regions, start, end, rows, errors)


def render_events(listing: EventsListing, console: Console) -> None:
    window = f"{listing.start.isoformat(timespec='seconds')} .. {listing.end.isoformat(timespec='seconds')}"
    if not listing.rows:
        console.print(f"no AllocateAddress or address transfer call in {len(listing.regions)} region(s), {window}")
        return
    table = Table(title=f"Elastic IP allocations and transfers · account {listing.account} · {window}",
                  title_justify="left")
    for name in ("time", "region", "event", "principal", "source IP", "user agent", "address", "error",
                 "allow-listed"):
        table.add_column(name, overflow="fold")
    for row in listing.rows:
        e = row.event
        address = " / ".join(x for x in (e.public_ip, e.allocation_id) if x) or "-"
        if e.transfer_account_id:
            address += f" (transfer account {e.transfer_account_id})"
        allowed = "[green]yes[/]" if row.allowed else "[bold red]no[/]"
        if row.allowed and not row.region_allowed:
            allowed = "[yellow]yes, but not in this region[/]"
        table.add_row(e.time, e.region, e.event_name, escape(e.principal), escape(e.source_ip or "-"),
                      escape(e.user_agent or "-"), escape(address), escape(e.error_code or "-"), allowed)
    console.print(table)
    unlisted = sorted({r.event.principal for r in listing.rows if not r.allowed})
    if unlisted:
        console.print(f"[bold red]{len(unlisted)} principal(s) outside the allow-list[/]: "
                      f"{escape(', '.join(unlisted))} (harden respond --principal ARN quarantines one)",
                      soft_wrap=True)


_ALLOCATION_ID_RE = re.compile(r"^eipalloc-[0-9a-f]{8,17}$")
_IPV4_RE = re.compile(r"^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$")


def check_allocation_ids(values: list[str] | None) -> list[str] | None:
    """--allocation-ids as given, or ValueError naming the first one that is neither an allocation
    id nor (for EC2-Classic addresses) a public IPv4 address."""
    for value in values or []:
        if not (_ALLOCATION_ID_RE.match(value) or _IPV4_RE.match(value)):
            raise ValueError(f"--allocation-ids {value!r}: expected an allocation id such as "
                             "eipalloc-0123456789abcdef0 (or the public IP of an EC2-Classic address)")
    return values
