"""Incident response for a principal that allocated Elastic IPs it should not have (`harden respond`).

The seed document's steps ("disable or remove the compromised user account or IAM role"), made
exact and reversible:

* an IAM user gets an inline policy `harden-quarantine` that denies every action on every
  resource (this stops its access keys, its console session and the GetSessionToken /
  GetFederationToken sessions it made, at once), then each of its active access keys is made
  Inactive. Nothing is deleted: keys and policies stay for the investigation, and every step
  prints the command that undoes it.
* an IAM role (named by its ARN or by an assumed-role session ARN) gets an inline policy
  `harden-revoke-sessions` that denies every action to sessions issued before now
  (`aws:TokenIssueTime`), which is what the console's "Revoke active sessions" does. Re-running
  moves the cut-off to the new now: sessions started after the first run are revoked too.

Refused (nothing is planned): the account root, a principal of another account, a service-linked
role, a role managed by IAM Identity Center, the identity harden itself runs as, and (unless
--force) a principal the baseline names as an admin or as allowed to allocate addresses.

The principal's recent AllocateAddress / address transfer calls are listed too (best effort, from
CloudTrail event history), with the `harden eip release` command that releases what is still idle.

So are the roles it assumed in the look-back window, with the `harden respond` that revokes their
sessions. Neither policy above reaches them: a role session is authorized by the role's policies,
not by those of the user or role that assumed it, so credentials the principal already obtained
from AssumeRole keep working until they expire (up to 12 hours) unless that role's sessions are
revoked too. Listed rather than revoked: revoking a shared role's sessions signs out every
legitimate user of it, which is the responder's call.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import Any, Callable, Literal

import botocore.exceptions
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from provisioner.aws import AwsSession, describe_error, paginate
from provisioner.aws import parse_arn as split_arn
from provisioner.baseline import Baseline
from provisioner.controls.eip import AddressEvent, arn_like, principal_of
from provisioner.eip import region_events
from provisioner.remediate import Action, ActionResult, execute
from provisioner.tables import print_table

CONTROL = "eip.allocations"
QUARANTINE_POLICY = "harden-quarantine"
REVOKE_POLICY = "harden-revoke-sessions"
POLICY_VERSION = "2012-10-17"

# The principal shapes respond understands; names follow IAM's rules ([\w+=,.@-], paths '/').
_ARN_RE = re.compile(
    r"^arn:(?P<partition>aws|aws-cn|aws-us-gov):(?P<service>iam|sts)::(?P<account>\d{12}):"
    r"(?P<resource>root|user/(?:[\w+=,.@-]+/)*[\w+=,.@-]+|role/(?:[\w+=,.@-]+/)*[\w+=,.@-]+"
    r"|assumed-role/[\w+=,.@-]+/[\w+=,.@-]+|federated-user/[\w+=,.@-]+)$")
_SESSION_PATTERN_RE = re.compile(r"^arn:(?P<p>[^:]+):sts::(?P<account>[^:]+):assumed-role/(?P<role>[^/]+)/.+$")
_ROLE_NAME_RE = re.compile(r"^arn:(?P<p>[^:]+):iam::(?P<account>\d{12}):role/(?:.*/)?(?P<role>[^/]+)$")

Kind = Literal["user", "role"]


class Refused(Exception):
    """respond will not act on this principal; the message (one line) says why and what to do."""


@dataclass(frozen=True)
class Principal:
    kind: Kind
    name: str
    arn: str                   # the IAM ARN, path included (as IAM reports it)
    account: str
    partition: str
    session_arn: str | None    # when an assumed-role session ARN was given
    path: str = "/"


# ---------------------------------------------------------------------------------------------
# Who: parse, look up and refuse

def parse_arn(text: str) -> re.Match:
    match = _ARN_RE.match(text.strip())
    if not match:
        raise Refused(f"--principal {text!r}: expected an IAM user or role ARN "
                      "(arn:aws:iam::123456789012:user/NAME, arn:aws:iam::123456789012:role/NAME) "
                      "or an assumed-role session ARN (arn:aws:sts::123456789012:assumed-role/ROLE/SESSION)")
    return match


def _refuse_by_shape(match: re.Match, account_id: str) -> None:
    resource, account = match["resource"], match["account"]
    if resource == "root":
        raise Refused("the account root cannot be quarantined with a policy: sign in as root, change its "
                      "password, delete its access keys and check its MFA device")
    if account != account_id:
        raise Refused(f"{match.string} is in account {account}, not in this account ({account_id}): "
                      "run respond with credentials of that account")
    if resource.startswith("federated-user/"):
        raise Refused("a federated-user session comes from an IAM user's GetFederationToken: "
                      "respond to that IAM user (its deny-all policy ends the federated sessions too)")


def _lookup(aws: AwsSession, match: re.Match) -> Principal:
    iam = aws.client("iam")
    resource = match["resource"]
    kind: Kind = "user" if resource.startswith("user/") else "role"
    name = resource.split("/")[1] if resource.startswith("assumed-role/") else resource.rsplit("/", 1)[-1]
    try:
        entity = iam.get_user(UserName=name)["User"] if kind == "user" else iam.get_role(RoleName=name)["Role"]
    except iam.exceptions.NoSuchEntityException:
        raise Refused(f"no IAM {kind} named {name!r} in account {match['account']}") from None
    if entity["Arn"] != match.string and not resource.startswith("assumed-role/"):
        # Same name, other path: IAM names are unique per account, so the ARN was mistyped.
        raise Refused(f"{match.string} does not exist; the {kind} named {name!r} is {entity['Arn']}")
    session = match.string if resource.startswith("assumed-role/") else None
    return Principal(kind, name, entity["Arn"], match["account"], match["partition"], session,
                     entity.get("Path") or "/")


def _refuse_by_entity(p: Principal) -> None:
    if p.kind == "role" and p.path.startswith("/aws-service-role/"):
        raise Refused(f"{p.arn} is a service-linked role: AWS does not allow policies on it; "
                      "act on the principal that uses the service instead")
    if p.kind == "role" and p.path.startswith("/aws-reserved/sso.amazonaws.com/"):
        raise Refused(f"{p.arn} is managed by IAM Identity Center, which reverts changes to it: remove the "
                      "user's permission set assignment there (and revoke its sessions)")


def _runs_as(aws: AwsSession, p: Principal) -> bool:
    caller = aws.client("sts").get_caller_identity()["Arn"]
    if p.kind == "user":
        return caller == p.arn
    match = _SESSION_PATTERN_RE.match(caller)
    return bool(match) and match["account"] == p.account and match["role"] == p.name


def listed_in(p: Principal, patterns: list[str]) -> str | None:
    """The first pattern (IAM ArnLike, as aws:PrincipalArn is matched) that names the principal, or
    None. The baseline holds no assumed-role patterns (baseline.py refuses them: aws:PrincipalArn
    is the role's ARN, never a session's), so the role's ARN is what is compared."""
    for pattern in patterns:
        if arn_like(pattern, p.arn):
            return pattern
    return None


def _refuse_listed(p: Principal, baseline: Baseline) -> None:
    if entry := listed_in(p, list(baseline.scp.admin_principals)):
        raise Refused(f"{p.arn} is in scp.admin_principals ({entry}): it applies and repairs the baseline, and "
                      "quarantining it can lock out the pipeline or break-glass access; pass --force if its "
                      "credentials are compromised")
    if entry := listed_in(p, list(baseline.allocate_address.allowed_principals)):
        raise Refused(f"{p.arn} is in allocate_address.allowed_principals ({entry}): it is approved to allocate "
                      "addresses; pass --force if its credentials are compromised, and remove it from the "
                      "allow-list")


def resolve_principal(aws: AwsSession, baseline: Baseline, text: str, *, force: bool = False) -> Principal:
    """The principal to respond to, or Refused with the reason."""
    match = parse_arn(text)
    _refuse_by_shape(match, aws.account_id())
    principal = _lookup(aws, match)
    _refuse_by_entity(principal)
    if _runs_as(aws, principal):
        raise Refused(f"harden is running as {principal.arn}: quarantining it would cut off this run; "
                      "respond with other credentials")
    if not force:
        _refuse_listed(principal, baseline)
    return principal


# ---------------------------------------------------------------------------------------------
# What: the steps

def deny_all_document() -> dict[str, Any]:
    return {"Version": POLICY_VERSION, "Statement": [
        {"Sid": "HardenQuarantineDenyAll", "Effect": "Deny", "Action": "*", "Resource": "*"}]}


def revoke_sessions_document(cutoff: datetime) -> dict[str, Any]:
    return {"Version": POLICY_VERSION, "Statement": [{
        "Sid": "HardenRevokeOlderSessions", "Effect": "Deny", "Action": "*", "Resource": "*",
        "Condition": {"DateLessThan": {"aws:TokenIssueTime": iso(cutoff)}}}]}


def aws_now(aws: AwsSession) -> datetime:
    """Now, by IAM's clock (the Date header of a cheap IAM call), which is the clock
    aws:TokenIssueTime is compared with; this machine's clock when the header is missing."""
    try:
        response = aws.client("iam").get_account_summary()
        header = response["ResponseMetadata"]["HTTPHeaders"]["date"]
        return parsedate_to_datetime(header).astimezone(timezone.utc)
    except Exception:  # noqa: BLE001 - the local clock is the fallback, never a reason to stop
        return datetime.now(timezone.utc)


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _cli(*args: str) -> str:
    return " ".join(shlex.quote(a) for a in ("aws", "iam", *args))


@dataclass
class Step:
    action: Action
    undo: str   # the exact command that reverses it


def _inline_policy(aws: AwsSession, p: Principal, policy: str) -> dict | None:
    iam = aws.client("iam")
    try:
        if p.kind == "user":
            return iam.get_user_policy(UserName=p.name, PolicyName=policy)["PolicyDocument"]
        return iam.get_role_policy(RoleName=p.name, PolicyName=policy)["PolicyDocument"]
    except iam.exceptions.NoSuchEntityException:
        return None


def _as_dict(document: Any) -> dict:
    # boto3 decodes inline policy documents; some emulators hand back the JSON text.
    return json.loads(document) if isinstance(document, str) else document


def _quarantine_step(aws: AwsSession, p: Principal) -> Step | None:
    document = deny_all_document()
    existing = _inline_policy(aws, p, QUARANTINE_POLICY)
    if existing is not None and _as_dict(existing) == document:
        return None

    def run() -> dict[str, Any]:
        aws.client("iam").put_user_policy(UserName=p.name, PolicyName=QUARANTINE_POLICY,
                                          PolicyDocument=json.dumps(document))
        return {"message": f"{QUARANTINE_POLICY} attached: every action denied", "policy": document}

    replaces = " (replaces the different policy of that name)" if existing is not None else ""
    action = Action(CONTROL, "global", p.arn,
                    f"put inline policy {QUARANTINE_POLICY} on user {p.name}: Deny * on *{replaces} "
                    "(stops its access keys, console and token sessions; not roles it assumed)",
                    ["iam:PutUserPolicy"], run, destructive=True)
    return Step(action, _cli("delete-user-policy", "--user-name", p.name, "--policy-name", QUARANTINE_POLICY))


def _last_used(aws: AwsSession, key_id: str) -> str:
    try:
        used = aws.client("iam").get_access_key_last_used(AccessKeyId=key_id).get("AccessKeyLastUsed", {})
    except Exception:  # noqa: BLE001 - context for the responder only, never a reason to stop
        return "last use unknown"
    when = used.get("LastUsedDate")
    if not when:
        return "never used"
    return f"last used {iso(when)} ({used.get('ServiceName', '?')} in {used.get('Region', '?')})"


def _key_steps(aws: AwsSession, p: Principal) -> list[Step]:
    steps = []
    for key in paginate(aws.client("iam"), "list_access_keys", "AccessKeyMetadata", UserName=p.name):
        if key.get("Status") != "Active":
            continue
        key_id = key["AccessKeyId"]

        def run(key_id: str = key_id) -> dict[str, Any]:
            aws.client("iam").update_access_key(UserName=p.name, AccessKeyId=key_id, Status="Inactive")
            return {"message": f"{key_id} is Inactive", "access_key_id": key_id}

        action = Action(CONTROL, "global", f"{p.arn}#{key_id}",
                        f"deactivate access key {key_id} of user {p.name} ({_last_used(aws, key_id)})",
                        ["iam:UpdateAccessKey"], run, destructive=True)
        steps.append(Step(action, _cli("update-access-key", "--user-name", p.name, "--access-key-id", key_id,
                                       "--status", "Active")))
    return steps


def _revoke_step(aws: AwsSession, p: Principal, planned_at: datetime) -> Step:
    existing = _inline_policy(aws, p, REVOKE_POLICY)
    previous = ""
    if existing is not None:
        condition = (_as_dict(existing).get("Statement") or [{}])[0].get("Condition", {})
        cutoff = condition.get("DateLessThan", {}).get("aws:TokenIssueTime")
        previous = f"; moves the previous cut-off {cutoff}" if cutoff else "; replaces the policy of that name"

    def run() -> dict[str, Any]:
        # The cut-off is the moment of the call, not of the plan: sessions started in between
        # are revoked too. And it is AWS's moment, not this machine's: with a clock running
        # behind, sessions issued in the gap would survive.
        document = revoke_sessions_document(aws_now(aws))
        aws.client("iam").put_role_policy(RoleName=p.name, PolicyName=REVOKE_POLICY,
                                          PolicyDocument=json.dumps(document))
        cutoff = document["Statement"][0]["Condition"]["DateLessThan"]["aws:TokenIssueTime"]
        return {"message": f"sessions issued before {cutoff} are revoked", "policy": document}

    action = Action(CONTROL, "global", p.arn,
                    f"put inline policy {REVOKE_POLICY} on role {p.name}: Deny * on * to sessions issued before "
                    f"now (aws:TokenIssueTime < {iso(planned_at)}, taken at --apply){previous}",
                    ["iam:PutRolePolicy"], run, destructive=True)
    return Step(action, _cli("delete-role-policy", "--role-name", p.name, "--policy-name", REVOKE_POLICY))


def plan_steps(aws: AwsSession, p: Principal, now: datetime | None = None) -> list[Step]:
    """User: deny-all first (one call stops every credential), then each active key. Role: revoke."""
    if p.kind == "role":
        return [_revoke_step(aws, p, now or datetime.now(timezone.utc))]
    quarantine = _quarantine_step(aws, p)
    return ([quarantine] if quarantine else []) + _key_steps(aws, p)


# ---------------------------------------------------------------------------------------------
# The addresses it allocated (best effort)

@dataclass(frozen=True)
class Allocation:
    event: AddressEvent
    state: str   # "unassociated", "associated with X", "released", "unknown"

    def to_dict(self) -> dict[str, Any]:
        e = self.event
        return {"region": e.region, "time": e.time, "event_name": e.event_name, "public_ip": e.public_ip,
                "allocation_id": e.allocation_id, "session_arn": e.session_arn, "source_ip": e.source_ip,
                "error_code": e.error_code, "state": self.state}


def _caller_is(caller: str, path_known: bool, p: Principal) -> bool:
    if caller == p.arn:
        return True
    # An event without sessionIssuer carries the role ARN rebuilt without its path.
    match = _ROLE_NAME_RE.match(caller) if p.kind == "role" and not path_known else None
    return bool(match) and (match["account"], match["role"]) == (p.account, p.name)


def _is_by(event: AddressEvent, p: Principal) -> bool:
    return _caller_is(event.principal, event.path_known, p)


def _states(aws: AwsSession, region: str) -> dict[str, str]:
    """allocation id -> what the address is now, from one DescribeAddresses."""
    states = {}
    for a in aws.client("ec2", region).describe_addresses()["Addresses"]:
        target = a.get("InstanceId") or a.get("NetworkInterfaceId")
        states[a.get("AllocationId") or a.get("PublicIp")] = (
            f"associated with {target}" if a.get("AssociationId") else "unassociated")
    return states


def _region_allocations(aws: AwsSession, baseline: Baseline, p: Principal, region: str,
                        start: datetime, end: datetime) -> list[Allocation]:
    events = [e for e in region_events(aws, baseline, region, p.account, start, end)
              if _is_by(e, p) and e.succeeded and (e.allocation_id or e.public_ip)]
    if not events:
        return []
    try:
        states = _states(aws, region)
    except Exception:  # noqa: BLE001 - the list is still useful without the current state
        states = None
    result = []
    for e in events:
        key = e.allocation_id or e.public_ip or ""
        state = "unknown" if states is None else states.get(key, "released")
        if e.event_name == "EnableAddressTransfer":
            state = f"offered to account {e.transfer_account_id or '?'}; {state}"
        result.append(Allocation(e, state))
    return result


def recent_allocations(aws: AwsSession, baseline: Baseline, p: Principal, regions: list[str], *,
                       since: timedelta, now: datetime | None = None) -> tuple[list[Allocation], dict[str, str]]:
    end = now or datetime.now(timezone.utc)
    found: list[Allocation] = []
    errors: dict[str, str] = {}
    for region, result in aws.map_regions(
            lambda r: _region_allocations(aws, baseline, p, r, end - since, end), regions, timeout=aws.timeouts.run):
        if isinstance(result, BaseException):
            errors[region] = describe_error(result)
        else:
            found.extend(result)
    found.sort(key=lambda a: (a.event.time, a.event.region))
    return found, errors


def release_commands(allocations: list[Allocation]) -> list[str]:
    """Per region, the `harden eip release` (a dry run) for the addresses the principal left idle."""
    by_region: dict[str, list[str]] = {}
    for a in allocations:
        if a.state == "unassociated" and a.event.allocation_id:
            by_region.setdefault(a.event.region, []).append(a.event.allocation_id)
    return [f"harden eip release --regions {region} --allocation-ids {','.join(sorted(set(ids)))}"
            for region, ids in sorted(by_region.items())]


# ---------------------------------------------------------------------------------------------
# The roles it assumed (best effort): their sessions outlive the quarantine

def _account_of(arn: str) -> str:
    try:
        return split_arn(arn)["account"] or "?"
    except ValueError:
        return "?"


# AssumeRole through the global STS endpoint is recorded in this Region of the partition.
GLOBAL_STS_REGION = {"aws": "us-east-1", "aws-cn": "cn-north-1", "aws-us-gov": "us-gov-west-1"}


@dataclass(frozen=True)
class AssumedRole:
    role_arn: str
    account: str
    last_time: str
    count: int
    regions: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"role_arn": self.role_arn, "account": self.account, "last_time": self.last_time,
                "count": self.count, "regions": list(self.regions)}


def _role_calls(aws: AwsSession, p: Principal, region: str, start: datetime, end: datetime) -> list[tuple[str, str]]:
    """(target role ARN, time) of the principal's successful AssumeRole calls recorded in `region`."""
    found = []
    for raw in paginate(aws.client("cloudtrail", region), "lookup_events", "Events",
                        LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "AssumeRole"}],
                        StartTime=start, EndTime=end):
        record = json.loads(raw.get("CloudTrailEvent") or "{}")
        if record.get("errorCode"):
            continue
        caller, _session, path_known = principal_of(record.get("userIdentity") or {})
        target = (record.get("requestParameters") or {}).get("roleArn")
        if not target:
            continue
        if _caller_is(caller, path_known, p):
            found.append((target, record.get("eventTime") or ""))
    return found


def roles_assumed(aws: AwsSession, p: Principal, regions: list[str], *, since: timedelta,
                  now: datetime | None = None) -> tuple[list[AssumedRole], dict[str, str]]:
    """The roles the principal assumed in the window, newest first, and the Regions whose event
    history could not be read."""
    end = now or datetime.now(timezone.utc)
    lookup = sorted(set(regions) | ({GLOBAL_STS_REGION[p.partition]} if p.partition in GLOBAL_STS_REGION else set()))
    calls: dict[str, list[tuple[str, str]]] = {}
    errors: dict[str, str] = {}
    for region, result in aws.map_regions(lambda r: _role_calls(aws, p, r, end - since, end), lookup,
                                          timeout=aws.timeouts.run):
        if isinstance(result, BaseException):
            errors[region] = describe_error(result)
            continue
        for role_arn, when in result:
            calls.setdefault(role_arn, []).append((when, region))
    roles = [AssumedRole(arn, _account_of(arn), max(t for t, _ in uses),
                         len(uses), tuple(sorted({r for _, r in uses}))) for arn, uses in calls.items()]
    roles.sort(key=lambda r: (r.last_time, r.role_arn), reverse=True)
    return roles, errors


def revoke_commands(p: Principal, roles: list[AssumedRole]) -> list[str]:
    """`harden respond` for each role of this account it assumed (a dry run; add --apply)."""
    return [f"harden respond --principal {shlex.quote(r.role_arn)}" for r in roles
            if r.account == p.account and r.role_arn != p.arn]


# ---------------------------------------------------------------------------------------------
# The run

NOTES = {
    "user": "The user's console password, MFA devices and keys are kept for the investigation: once it is "
            "over, delete what is compromised. Its GetSessionToken and federation sessions are denied by the "
            "policy too, but not the sessions of roles it assumed: revoke those roles' sessions (listed below).",
    "role": "Revoking sessions does not stop new ones: whoever may assume the role can get a fresh session. "
            "Fix the role's trust policy, or respond to the principal that assumed it. Sessions of roles it "
            "assumed in turn (listed below) are not revoked by this.",
}


@dataclass
class Response:
    principal: Principal
    apply: bool
    steps: list[Step]
    results: list[ActionResult]
    allocations: list[Allocation] = field(default_factory=list)
    lookup_errors: dict[str, str] = field(default_factory=dict)
    assumed_roles: list[AssumedRole] = field(default_factory=list)
    role_lookup_errors: dict[str, str] = field(default_factory=dict)

    def exit_code(self) -> int:
        if any(r.status == "failed" for r in self.results):
            return 3
        return 1 if self.steps and not self.apply else 0

    def to_dict(self) -> dict[str, Any]:
        p = self.principal
        return {
            "principal": {"arn": p.arn, "kind": p.kind, "name": p.name, "account": p.account,
                          "session_arn": p.session_arn},
            "apply": self.apply,
            "steps": [{**r.to_dict(), "undo": s.undo} for s, r in zip(self.steps, self.results)],
            "allocations": [a.to_dict() for a in self.allocations],
            "release_commands": release_commands(self.allocations),
            "lookup_errors": dict(sorted(self.lookup_errors.items())),
            "assumed_roles": [r.to_dict() for r in self.assumed_roles],
            "revoke_commands": revoke_commands(p, self.assumed_roles),
            "role_lookup_errors": dict(sorted(self.role_lookup_errors.items())),
            "note": NOTES[p.kind],
        }


def respond(aws: AwsSession, baseline: Baseline, principal_arn: str, *, apply: bool = False, force: bool = False,
            regions: list[str] | None = None, since: timedelta = timedelta(days=7),
            progress: Callable[[Action], None] | None = None) -> Response:
    """Refuse, or plan and (with apply) take the steps; then list the principal's allocations."""
    principal = resolve_principal(aws, baseline, principal_arn, force=force)
    steps = plan_steps(aws, principal)
    # Each containment step is tried even after another timed out (aws.must_try): one lost
    # answer must not leave the principal's access keys active untried.
    results = execute([s.action for s in steps], apply, progress, each=aws.must_try)
    try:
        run_regions = aws.resolve_regions(regions or baseline.explicit_regions)
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        # The steps are taken: report them (and their undo commands) whatever the listing does.
        unknown = {"every region": f"could not list the enabled regions: {describe_error(exc)}"}
        return Response(principal, apply, steps, results, [], unknown, [], dict(unknown))
    allocations, errors = recent_allocations(aws, baseline, principal, run_regions, since=since)
    roles, role_errors = roles_assumed(aws, principal, run_regions, since=since)
    return Response(principal, apply, steps, results, allocations, errors, roles, role_errors)


_STATUS_STYLE = {"planned": "cyan", "applied": "green", "failed": "bold red", "skipped": "dim"}


def render_response(resp: Response, console: Console) -> None:
    p = resp.principal
    header = f"respond · {p.kind} {p.arn}" + (f" (session {p.session_arn})" if p.session_arn else "")
    if not resp.steps:
        console.print(f"{escape(header)}: [green]nothing to do[/], already quarantined")
    else:
        title = header + ("" if resp.apply else " · dry run: nothing was changed; add --apply to do this")
        table = Table(title=escape(title), title_justify="left")
        for name in ("status", "step", "API call", "result"):
            table.add_column(name, overflow="fold", no_wrap=name in ("status", "API call"))
        for step, r in zip(resp.steps, resp.results):
            table.add_row(f"[{_STATUS_STYLE[r.status]}]{r.status}[/]", escape(step.action.description),
                          ", ".join(step.action.calls), escape(r.message))
        print_table(console, table)
        done = [s for s, r in zip(resp.steps, resp.results) if r.status == "applied"]
        if done:
            console.print("[bold]to undo[/] (after the investigation):")
            for s in done:
                console.print(f"  {escape(s.undo)}", highlight=False, soft_wrap=True)
        elif not resp.apply:
            console.print("[bold]undo, once applied[/]:")
            for s in resp.steps:
                console.print(f"  {escape(s.undo)}", highlight=False, soft_wrap=True)
    console.print(f"[dim]{escape(NOTES[p.kind])}[/]", soft_wrap=True)
    _render_allocations(resp, console)
    _render_assumed_roles(resp, console)


def _render_assumed_roles(resp: Response, console: Console) -> None:
    if not resp.assumed_roles:
        if not resp.role_lookup_errors:
            console.print("no role assumed by this principal in the look-back window")
        return
    table = Table(title="roles it assumed (their sessions are still live)", title_justify="left")
    for name in ("role", "last assumed", "times", "recorded in"):
        table.add_column(name, overflow="fold")
    for r in resp.assumed_roles:
        table.add_row(escape(r.role_arn), r.last_time, str(r.count), ", ".join(r.regions))
    print_table(console, table)
    for command in revoke_commands(resp.principal, resp.assumed_roles):
        console.print(f"to revoke its sessions: {escape(command)} (a dry run; then add --apply)",
                      highlight=False, soft_wrap=True)
    if any(r.account != resp.principal.account for r in resp.assumed_roles):
        console.print("roles of other accounts: run harden respond with that account's credentials",
                      highlight=False)


def _render_allocations(resp: Response, console: Console) -> None:
    if not resp.allocations:
        if not resp.lookup_errors:
            console.print("no address allocated or transferred by this principal in the look-back window")
        return
    table = Table(title="addresses it allocated or transferred", title_justify="left")
    for name in ("time", "region", "event", "public IP", "allocation id", "now"):
        table.add_column(name, overflow="fold")
    for a in resp.allocations:
        e = a.event
        table.add_row(e.time, e.region, e.event_name, e.public_ip or "-", escape(e.allocation_id or "-"),
                      escape(a.state))
    print_table(console, table)
    for command in release_commands(resp.allocations):
        console.print(f"to release the idle ones: {escape(command)} (a dry run; then add --apply)",
                      highlight=False, soft_wrap=True)
