"""scp.*: Service Control Policies that stop Elastic IP abuse and stop the baseline being switched off.

Both controls ask the same question of each target in `baseline.scp.targets` (a root, an OU or an
account): do the SCPs that reach it (attached to it, or to any OU or root above it) deny a set of
actions to everyone but an allow-list, in every Region?

How an SCP "reaches" a target is AWS's inheritance rule: a request is allowed only if every level
from the root down to the account allows it, and an explicit Deny at any level wins. So for each
target we walk up to the root with ListParents (the whole way: at most five OU levels, so at most
six hops), list the SCPs attached at each level, and read each distinct policy once.

The policy-document analysis is in pure functions (the first half of this file), tested on their
own: which statements deny an action, whom their Condition exempts, and in which Regions they
apply. It is deliberately stricter than a "some SCP mentions AllocateAddress" test:

* an exemption counts only if every principal it exempts is inside the allow-list (glob
  containment, so `role/*` does not hide behind an allow-listed `role/NetAdmin`);
* exemptions that cannot be compared with an ARN allow-list (principal tags, org id, account,
  aws:ViaAWSService, ...) make a statement not count, with the reason in the evidence;
* Region conditions are evaluated over every Region of the partition plus one that does not exist
  yet, so "deny only in eu-*" or a list of today's Regions is a gap, not a pass;
* Resource / NotResource must cover the action's resource in every Region and account;
* a level of the hierarchy that allows the action in no SCP (an allow-list strategy without it)
  denies it to everyone, which covers it;
* SCPs must be enabled in the root, and never restrict the management account.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable, Iterable

import boto3
import botocore.exceptions

from provisioner.aws import error_code, paginate
from provisioner.baseline import Baseline
from provisioner.controls import CheckContext, Mappings, control
from provisioner.findings import Finding
from provisioner.policies import (
    allocate_address_policy_name,
    allocate_address_scp,
    baseline_protection_policy_name,
    baseline_protection_scp,
    HardenPolicy,
    eip_actions,
    minified,
    policies_for,
)
from provisioner.policy_compare import weaker_cases
from provisioner.remediate import Action, fix

SCP = "SERVICE_CONTROL_POLICY"

# PutEventSelectors can drop management events from a trail that keeps logging, and
# ResetEbsDefaultKmsKeyId puts aws/ebs back as the default key: each switches off as much as its
# sibling does, so an SCP that leaves them open does not protect the baseline.
PROTECTED_ACTIONS = (
    "cloudtrail:StopLogging", "cloudtrail:DeleteTrail", "cloudtrail:UpdateTrail", "cloudtrail:PutEventSelectors",
    "config:StopConfigurationRecorder", "config:DeleteDeliveryChannel",
    "ec2:DeleteFlowLogs",
    "ec2:DisableEbsEncryptionByDefault", "ec2:ModifyEbsDefaultKmsKeyId", "ec2:ResetEbsDefaultKmsKeyId",
)

# Stands for a Region AWS has not launched yet: a deny limited to today's Regions leaves it open.
FUTURE_REGION = "xx-future-1"
# Two unrelated accounts: a Resource pattern must cover both to cover "any account" of an OU.
SAMPLE_ACCOUNTS = ("111122223333", "444455556666")
# Deepest possible chain: account -> 5 OUs -> root.
MAX_HOPS = 7

# list_parents / list_policies_for_target say "no such target" with these codes.
NOT_FOUND_CODES = frozenset({
    "ChildNotFoundException", "TargetNotFoundException", "AccountNotFoundException",
    "OrganizationalUnitNotFoundException", "RootNotFoundException", "ParentNotFoundException",
})


# =============================================================================================
# Pure policy analysis
# =============================================================================================

# A wildcard pattern as tokens: STAR ("*", any string), ANY ("?", any one character), or the
# set of characters one position accepts (one char; two for a letter under IgnoreCase).
STAR, ANY = "*", "?"
Token = str | frozenset
Pattern = tuple[Token, ...]


def compile_pattern(text: str, *, wildcards: bool = True, ignore_case: bool = False) -> Pattern:
    """`text` as tokens. Without `wildcards` (StringNotEquals), * and ? are literal characters."""
    tokens: list[Token] = []
    for char in text:
        if wildcards and char == "*":
            if not tokens or tokens[-1] != STAR:  # "**" matches what "*" matches
                tokens.append(STAR)
        elif wildcards and char == "?":
            tokens.append(ANY)
        elif ignore_case and char.lower() != char.upper():
            tokens.append(frozenset({char.lower(), char.upper()}))
        else:
            tokens.append(frozenset({char}))
    return tuple(tokens)


def compile_principal(text: str, *, wildcards: bool = True, ignore_case: bool = False) -> Pattern:
    """A principal ARN pattern. Under IgnoreCase only the name is folded: a real principal ARN's
    `arn:aws:iam::<account>:role/` part is always lower case, so its other casings match nothing."""
    prefix, name = text, ""
    if ignore_case:
        match = re.match(r"^(arn:[^:]*:[^:]*:[^:]*:[^:]*:[a-z-]+/)(.*)$", text, re.DOTALL)
        prefix, name = (match.group(1), match.group(2)) if match else ("", text)
    return (compile_pattern(prefix, wildcards=wildcards)
            + compile_pattern(name, wildcards=wildcards, ignore_case=ignore_case))


def glob_match(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """IAM wildcard match: * any run of characters, ? one character, everything else literal."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    flags = re.DOTALL | (re.IGNORECASE if ignore_case else 0)
    return re.fullmatch(regex, value, flags) is not None


def pattern_within(inner: Pattern, outer: Pattern) -> bool:
    """True when every string `inner` matches is also matched by `outer`.

    Sound, not complete: a True is always right; a few exotic pairs (such as `*x` inside `?*`)
    answer False, which can only make an exemption look broader than it is, never hide one.
    """
    return _within(inner, outer)


@lru_cache(maxsize=4096)
def _within(inner: Pattern, outer: Pattern) -> bool:
    if not outer:
        return not inner
    head = outer[0]
    if head == STAR:
        # The outer * absorbs nothing more, or the next inner token (whatever that token is).
        return _within(inner, outer[1:]) or (bool(inner) and _within(inner[1:], outer))
    if not inner:
        return False
    token = inner[0]
    if token == STAR:
        return False  # inner * yields any length; a fixed-width outer token cannot follow it
    if head == ANY:
        return _within(inner[1:], outer[1:])
    if token == ANY:
        return False  # inner ? yields any character; an outer character set does not
    return token <= head and _within(inner[1:], outer[1:])


def as_list(value: Any) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def statement_label(statement: dict, index: int) -> str:
    sid = statement.get("Sid")
    return f"statement {sid!r}" if isinstance(sid, str) and sid else f"Statement[{index}]"


def statements_of(document: Any) -> list[dict]:
    """The statements of a policy document (Statement may be one object or a list)."""
    if not isinstance(document, dict):
        return []
    return [s for s in as_list(document.get("Statement")) if isinstance(s, dict)]


def covers_action(statement: dict, action: str) -> bool:
    """Does the statement's Action (or NotAction) include `action`? Actions are case-insensitive."""
    if "NotAction" in statement:
        return not any(glob_match(str(p), action, ignore_case=True) for p in as_list(statement["NotAction"]))
    return any(glob_match(str(p), action, ignore_case=True) for p in as_list(statement.get("Action")))


def covers_resource(statement: dict, arn: str) -> bool:
    """Does the statement's Resource (or NotResource) include `arn`? ("*" for action-only APIs.)"""
    if "NotResource" in statement:
        return not any(glob_match(str(p), arn) for p in as_list(statement["NotResource"]))
    return any(glob_match(str(p), arn) for p in as_list(statement.get("Resource", "*")))


# -- conditions --------------------------------------------------------------------------------

# Negated operators exempt the listed values from a Deny; positive ones confine it to them.
_NEGATED = {"stringnotequals", "stringnotequalsignorecase", "stringnotlike", "arnnotequals", "arnnotlike"}
_POSITIVE = {"stringequals", "stringequalsignorecase", "stringlike", "arnequals", "arnlike"}
# Operators whose values are patterns (AWS treats ArnEquals like ArnLike).
_WILDCARD_OPS = {"stringnotlike", "stringlike", "arnnotequals", "arnnotlike", "arnequals", "arnlike"}


@dataclass(frozen=True)
class Conditions:
    """What a Deny's Condition means for us: whom it exempts and where it applies.

    `unsupported` is set when the Condition narrows the Deny in a way that cannot be checked
    against an allow-list of principal ARNs; such a statement does not count."""

    exempt: tuple[str, ...] = ()                      # principal ARN patterns, as written
    exempt_patterns: tuple[Pattern, ...] = ()         # the same, compiled
    region_tests: tuple[tuple[str, str, tuple[str, ...]], ...] = ()  # (operator, key, values)
    unsupported: str | None = None

    def applies_in(self, region: str) -> bool:
        return all(_region_clause_holds(op, values, region) for op, _key, values in self.region_tests)


def _base_operator(operator: str) -> str:
    op = operator.lower()
    return op[: -len("ifexists")] if op.endswith("ifexists") else op


def _region_clause_holds(op: str, values: tuple[str, ...], region: str) -> bool:
    ignore_case = op.endswith("ignorecase")
    wildcards = op in _WILDCARD_OPS
    hit = any(glob_match(v, region, ignore_case=ignore_case) if wildcards
              else (v.lower() == region.lower() if ignore_case else v == region) for v in values)
    return not hit if op in _NEGATED else hit


def parse_conditions(condition: Any, partition: str = "aws") -> Conditions:
    """Read a Deny's Condition block (all clauses must hold for the Deny to apply)."""
    if not condition:
        return Conditions()
    if not isinstance(condition, dict):
        return Conditions(unsupported="its Condition is not an object")
    exempt: list[str] = []
    patterns: list[Pattern] = []
    regions: list[tuple[str, str, tuple[str, ...]]] = []
    for operator, clauses in condition.items():
        op = _base_operator(str(operator))
        if ":" in op:  # ForAnyValue:/ForAllValues: on single-valued keys: not an exemption we can read
            return Conditions(unsupported=f"its condition operator {operator} is a set operator")
        if not isinstance(clauses, dict):
            return Conditions(unsupported=f"its condition {operator} is not an object")
        for key, raw in clauses.items():
            values = tuple(str(v) for v in as_list(raw))
            k = str(key).lower()
            if k == "aws:principalisawsservice" and op == "bool" and values and all(v.lower() == "false" for v in values):
                continue  # exempts only service principals, which SCPs never restrict anyway
            if k == "aws:requestedregion" and op in (_NEGATED | _POSITIVE) - {"arnnotequals", "arnnotlike", "arnequals", "arnlike"}:
                regions.append((op, str(key), values))
                continue
            if k in ("aws:principalarn", "aws:principalaccount") and op in _NEGATED:
                for value in values:
                    text = value if k == "aws:principalarn" else f"arn:{partition}:iam::{value}:*"
                    wild = op in _WILDCARD_OPS or k == "aws:principalaccount"
                    exempt.append(text if k == "aws:principalarn" else f"{text} (aws:PrincipalAccount {value})")
                    patterns.append(compile_principal(text, wildcards=wild, ignore_case=op.endswith("ignorecase")))
                continue
            if k in ("aws:principalarn", "aws:principalaccount"):
                return Conditions(unsupported=f"its condition {operator} on {key} confines the deny to some principals")
            return Conditions(unsupported=f"its condition {operator} on {key} exempts requests that an "
                                          "allow-list of principal ARNs cannot describe")
    return Conditions(tuple(exempt), tuple(patterns), tuple(regions))


# -- one statement against one action ----------------------------------------------------------

@dataclass(frozen=True)
class PolicyRef:
    """Where a statement comes from: the policy and the level of the hierarchy it is attached to."""

    policy_id: str
    policy_name: str
    attached_to: str


@dataclass(frozen=True)
class DenyRule:
    """A Deny statement whose Action covers the action in question."""

    ref: PolicyRef
    label: str
    statement: dict = field(compare=False, hash=False)
    conditions: Conditions = field(compare=False, hash=False)

    def describe(self) -> dict[str, Any]:
        return {"policy_id": self.ref.policy_id, "policy_name": self.ref.policy_name,
                "attached_to": self.ref.attached_to, "statement": self.label,
                "exempt_principals": list(self.conditions.exempt),
                "region_condition": [f"{op} {key} {list(values)}" for op, key, values in self.conditions.region_tests]}


def deny_rules(statements: Iterable[tuple[PolicyRef, str, dict]], action: str, partition: str) -> list[DenyRule]:
    """The Deny statements among `statements` whose Action/NotAction covers `action`."""
    rules = []
    for ref, label, statement in statements:
        if str(statement.get("Effect", "")).lower() != "deny" or not covers_action(statement, action):
            continue
        conditions = parse_conditions(statement.get("Condition"), partition)
        if conditions.unsupported is None and ("Principal" in statement or "NotPrincipal" in statement):
            conditions = Conditions(unsupported="it names a Principal, which SCPs do not support")
        rules.append(DenyRule(ref, label, statement, conditions))
    return rules


def allows_action(statements: Iterable[dict], action: str) -> bool:
    """Does any Allow among `statements` cover `action`? Conditions and resources are ignored on
    purpose: a conditional or partial Allow still lets some requests through."""
    return any(str(s.get("Effect", "")).lower() == "allow" and covers_action(s, action) for s in statements)


# -- the decision: is `action` denied to everyone outside the allow-list, everywhere? ----------

ResourceFn = Callable[[str, str], str]  # (region, account) -> the action's resource ARN, or "*"


@dataclass
class Coverage:
    action: str
    covered: bool
    used: list[DenyRule] = field(default_factory=list)
    implicit_deny_at: str | None = None  # a level where no SCP allows the action at all
    gap_regions: list[str] = field(default_factory=list)
    near_misses: list[str] = field(default_factory=list)
    regions: list[str] = field(default_factory=list)  # the Regions it was evaluated in

    def gaps_text(self) -> str:
        return describe_regions(self.gap_regions, self.regions)


def rule_applies(rule: DenyRule, region: str, accounts: Iterable[str], resource_for: ResourceFn) -> bool:
    """Does the Deny hit requests in `region` (its Region condition and its Resource)?"""
    return rule.conditions.applies_in(region) and all(
        covers_resource(rule.statement, resource_for(region, account)) for account in accounts)


def exemption_fits(rule: DenyRule, allow: list[Pattern]) -> bool:
    """Every principal the rule exempts is inside the allow-list."""
    return all(any(pattern_within(p, a) for a in allow) for p in rule.conditions.exempt_patterns)


def why_not(rule: DenyRule, allow: list[Pattern], restricted: bool, region: str,
            accounts: list[str], resource_for: ResourceFn, allow_name: str) -> str:
    """Why a Deny that names the action does not close the gap in `region` (one line; worded
    without the Region so that one reason is reported once, not once per Region)."""
    where = f"{rule.ref.policy_id} {rule.ref.policy_name!r} {rule.label}"
    if rule.conditions.unsupported:
        return f"{where}: {rule.conditions.unsupported}"
    if not rule.conditions.applies_in(region):
        return f"{where}: its aws:RequestedRegion condition leaves Regions out"
    if not all(covers_resource(rule.statement, resource_for(region, a)) for a in accounts):
        return f"{where}: its Resource does not cover {resource_for('<region>', accounts[0])}"
    if restricted:
        return f"{where}: exempts {', '.join(rule.conditions.exempt)} in Regions outside allowed_regions"
    outside = [text for text, p in zip(rule.conditions.exempt, rule.conditions.exempt_patterns)
               if not any(pattern_within(p, a) for a in allow)]
    return f"{where}: exempts {', '.join(outside)}, which {allow_name} does not cover"


def evaluate_action(action: str, levels: list[tuple[str, list[dict]]], rules: list[DenyRule], *,
                    allow: list[str], allowed_regions: list[str], regions: list[str],
                    accounts: list[str], resource_for: ResourceFn,
                    allow_name: str = "the allow-list") -> Coverage:
    """Is `action` denied, in every Region of `regions`, to every principal outside `allow` (and,
    when `allowed_regions` is set, to everyone outside those Regions)?

    `levels` are (target id, statements of the SCPs attached there) from the target to the root;
    `rules` the Deny statements that reach the target and cover the action.
    """
    for level_id, statements in levels:
        # A level with no SCP cannot exist while SCPs are enabled; with none read, assume it allows.
        if statements and not allows_action(statements, action):
            return Coverage(action, True, implicit_deny_at=level_id, regions=regions)
    allow_patterns = [compile_pattern(a) for a in allow]
    coverage = Coverage(action, True, regions=regions)
    misses: dict[str, None] = {}
    for region in regions:
        restricted = bool(allowed_regions) and region not in allowed_regions
        good = [r for r in rules if r.conditions.unsupported is None
                and rule_applies(r, region, accounts, resource_for)
                and (not r.conditions.exempt_patterns or (not restricted and exemption_fits(r, allow_patterns)))]
        if good:
            if good[0] not in coverage.used:  # the evidence names the first statement that holds
                coverage.used.append(good[0])
            continue
        coverage.covered = False
        coverage.gap_regions.append(region)
        for rule in rules:
            misses[why_not(rule, allow_patterns, restricted, region, accounts, resource_for, allow_name)] = None
    coverage.near_misses = list(misses)[:10]
    return coverage


def describe_regions(gaps: list[str], regions: list[str]) -> str:
    if set(gaps) >= set(regions):
        return "in every Region"
    named = [r for r in gaps if r != FUTURE_REGION]
    parts = [", ".join(named[:6]) + (f" and {len(named) - 6} more" if len(named) > 6 else "")] if named else []
    if FUTURE_REGION in gaps:
        parts.append("Regions AWS has not launched yet")
    return "in " + " and ".join(parts)


# =============================================================================================
# Reading the organization (cached per run: both controls share it)
# =============================================================================================

@dataclass
class Organization:
    id: str
    arn: str
    master_account_id: str
    feature_set: str
    roots: list[dict]

    @property
    def partition(self) -> str:
        return self.arn.split(":")[1] if self.arn.count(":") >= 2 else "aws"

    def scp_enabled(self, root_id: str) -> bool:
        root = next((r for r in self.roots if r["Id"] == root_id), None)
        return bool(root) and any(pt.get("Type") == SCP and pt.get("Status") == "ENABLED"
                                  for pt in root.get("PolicyTypes", []))


def _org_client(ctx: CheckContext):
    # Organizations is a global service: any Region of the partition reaches its one endpoint.
    return ctx.client("organizations", ctx.baseline.home_region)


def organization(ctx: CheckContext) -> Organization | None:
    """The organization these credentials see, or None when the account is in none."""
    def fetch() -> Organization | None:
        client = _org_client(ctx)
        try:
            org = client.describe_organization()["Organization"]
        except botocore.exceptions.ClientError as exc:
            if error_code(exc) == "AWSOrganizationsNotInUseException":
                return None
            raise
        roots = paginate(client, "list_roots", "Roots")
        return Organization(org["Id"], org.get("Arn", ""), org.get("MasterAccountId", ""),
                            org.get("FeatureSet", ""), roots)

    return ctx.cached("organizations:organization", fetch)


class TargetNotFound(Exception):
    pass


def parent_of(ctx: CheckContext, child_id: str) -> str:
    def fetch() -> str:
        try:
            parents = paginate(_org_client(ctx), "list_parents", "Parents", ChildId=child_id)
        except botocore.exceptions.ClientError as exc:
            if error_code(exc) in NOT_FOUND_CODES:
                raise TargetNotFound(child_id) from None
            raise
        if not parents:
            raise TargetNotFound(child_id)
        return parents[0]["Id"]

    return ctx.cached(f"organizations:parent:{child_id}", fetch)


def chain_to_root(ctx: CheckContext, target: str, org: Organization) -> list[str]:
    """[target, its parent, ..., root]: every level whose SCPs reach the target."""
    chain = [target]
    root_ids = {r["Id"] for r in org.roots}
    while chain[-1] not in root_ids:
        if chain[-1].startswith("r-") or len(chain) > MAX_HOPS:
            raise TargetNotFound(target)
        chain.append(parent_of(ctx, chain[-1]))
    return chain


def policies_at(ctx: CheckContext, target_id: str) -> list[dict]:
    def fetch() -> list[dict]:
        try:
            return paginate(_org_client(ctx), "list_policies_for_target", "Policies",
                            TargetId=target_id, Filter=SCP)
        except botocore.exceptions.ClientError as exc:
            if error_code(exc) in NOT_FOUND_CODES:
                raise TargetNotFound(target_id) from None
            raise

    return ctx.cached(f"organizations:policies_for:{target_id}", fetch)


def policy_document(ctx: CheckContext, policy_id: str) -> dict | None:
    """The policy's content, parsed; None when it is not JSON (then it cannot count)."""
    def fetch() -> dict | None:
        content = _org_client(ctx).describe_policy(PolicyId=policy_id)["Policy"].get("Content", "")
        try:
            document = json.loads(content)
        except ValueError:
            return None
        return document if isinstance(document, dict) else None

    return ctx.cached(f"organizations:policy:{policy_id}", fetch)


# =============================================================================================
# The two controls
# =============================================================================================

ASSUME_ALLOWS_ALL = {"Effect": "Allow", "Action": "*", "Resource": "*"}


@dataclass
class TargetView:
    """Everything about one target: its chain, the SCPs reaching it, their statements."""

    target: str
    chain: list[str]
    policies: list[dict]  # {"id", "name", "attached_to"}
    levels: list[tuple[str, list[dict]]]
    statements: list[tuple[PolicyRef, str, dict]]
    unreadable: list[str]
    partition: str = "aws"


def target_view(ctx: CheckContext, target: str, org: Organization) -> TargetView:
    chain = chain_to_root(ctx, target, org)
    policies, levels, statements, unreadable = [], [], [], []
    for level in chain:
        level_statements: list[dict] = []
        for summary in policies_at(ctx, level):
            ref = PolicyRef(summary["Id"], summary.get("Name", ""), level)
            policies.append({"id": ref.policy_id, "name": ref.policy_name, "attached_to": level})
            document = policy_document(ctx, ref.policy_id)
            if document is None:
                unreadable.append(ref.policy_id)
                # It may allow anything: never conclude an implicit deny at this level.
                level_statements.append(ASSUME_ALLOWS_ALL)
                continue
            for index, statement in enumerate(statements_of(document)):
                statements.append((ref, statement_label(statement, index), statement))
                level_statements.append(statement)
        levels.append((level, level_statements))
    return TargetView(target, chain, policies, levels, statements, unreadable, org.partition)


@lru_cache(maxsize=8)
def partition_regions(partition: str) -> frozenset[str]:
    """Every Region botocore knows in the partition (its endpoint data; no API call)."""
    return frozenset(boto3.session.Session().get_available_regions("ec2", partition_name=partition))


def sample_regions(ctx: CheckContext, partition: str, extra: Iterable[str]) -> list[str]:
    """The Regions a deny must hold in: every Region of the partition, the run's and the
    baseline's, any the policies name, and one that does not exist yet."""
    known = set(partition_regions(partition))
    known |= set(ctx.regions) | set(ctx.baseline.explicit_regions or []) | set(extra)
    known.discard("global")
    return sorted(known) + [FUTURE_REGION]


def region_literals(statements: Iterable[tuple[PolicyRef, str, dict]]) -> set[str]:
    """Region names the policies mention: they must be in the sample to be evaluated."""
    found: set[str] = set()
    for _ref, _label, statement in statements:
        condition = statement.get("Condition")
        if not isinstance(condition, dict):
            continue
        for clauses in condition.values():
            if isinstance(clauses, dict):
                for key, values in clauses.items():
                    if str(key).lower() == "aws:requestedregion":
                        found |= {str(v) for v in as_list(values) if "*" not in str(v) and "?" not in str(v)}
    return found


@dataclass
class Requirement:
    """What one control needs denied, and to whom it may stay open."""

    actions: tuple[str, ...]
    allow: list[str]
    allow_name: str
    allowed_regions: list[str]
    resource_for: Callable[[str, str, str, str], str]  # (action, partition, region, account)


def eip_resource(action: str, partition: str, region: str, account: str) -> str:
    return f"arn:{partition}:ec2:{region}:{account}:elastic-ip/eipalloc-0123456789abcdef0"


def baseline_resource(trail_name: str) -> Callable[[str, str, str, str], str]:
    def resource(action: str, partition: str, region: str, account: str) -> str:
        if action.startswith("cloudtrail:"):
            return f"arn:{partition}:cloudtrail:{region}:{account}:trail/{trail_name}"
        if action == "ec2:DeleteFlowLogs":
            return f"arn:{partition}:ec2:{region}:{account}:vpc-flow-log/fl-0123456789abcdef0"
        return "*"  # Config and EBS default-encryption calls name no resource

    return resource


def check_targets(ctx: CheckContext, need: Requirement, summary: Callable[[str, list[Coverage], TargetView], Finding]
                  ) -> list[Finding]:
    """The shared flow of both controls: applicability, the organization, then each target."""
    baseline = ctx.baseline
    org_label = baseline.organization_id or "organization"
    targets = list(dict.fromkeys(baseline.scp.targets))
    org = organization(ctx)
    if org is None:
        if baseline.organization_id or targets:
            named = f"organization_id {baseline.organization_id}" if baseline.organization_id else "scp.targets"
            return [ctx.errored(org_label, f"this account is not in an AWS Organization, but the baseline names "
                                           f"{named}: run verify with the management (or delegated "
                                           "administrator) account's credentials",
                                organization_id=baseline.organization_id, targets=targets)]
        return [ctx.skipped(org_label, "this account is not in an AWS Organization and the baseline names none "
                                       "(organization_id, scp.targets): SCPs cannot apply to a standalone account")]
    if baseline.organization_id and baseline.organization_id != org.id:
        return [ctx.errored(org.id, f"these credentials reach organization {org.id}, but the baseline names "
                                    f"{baseline.organization_id}", organization_id=org.id,
                            expected_organization_id=baseline.organization_id)]
    if not targets:
        return [ctx.failed(org.id, "scp.targets is empty: no root, OU or account is required to carry the SCP, so "
                                   "the organization has no guardrail; set scp.targets (e.g. the root "
                                   f"{org.roots[0]['Id'] if org.roots else 'r-...'})",
                           organization_id=org.id, targets=[])]
    return [check_one_target(ctx, org, target, need, summary) for target in targets]


def check_one_target(ctx: CheckContext, org: Organization, target: str, need: Requirement,
                     summary: Callable[[str, list[Coverage], TargetView], Finding]) -> Finding:
    if target == org.master_account_id:
        return ctx.failed(target, f"{target} is the management account of {org.id}: SCPs never restrict it, so "
                                  "no SCP can protect it; keep workloads out of it and target member accounts, OUs "
                                  "or the root instead", organization_id=org.id, management_account=True)
    try:
        view = target_view(ctx, target, org)
    except TargetNotFound:
        return ctx.failed(target, f"{target} is not a root, OU or account of organization {org.id}; fix scp.targets",
                          organization_id=org.id)
    root = view.chain[-1]
    if not org.scp_enabled(root):
        return ctx.failed(target, f"service control policies are not enabled in root {root}, so no SCP has any "
                                  f"effect; enable the {SCP} policy type (organizations enable-policy-type)",
                          organization_id=org.id, root=root, feature_set=org.feature_set,
                          policy_types=next((r.get("PolicyTypes", []) for r in org.roots if r["Id"] == root), []))
    regions = sample_regions(ctx, org.partition, list(need.allowed_regions) + sorted(region_literals(view.statements)))
    accounts = [target] if re.fullmatch(r"[0-9]{12}", target) else list(SAMPLE_ACCOUNTS)
    results = []
    for action in need.actions:
        rules = deny_rules(view.statements, action, org.partition)
        results.append(evaluate_action(
            action, view.levels, rules, allow=need.allow, allowed_regions=need.allowed_regions,
            regions=regions, accounts=accounts, allow_name=need.allow_name,
            resource_for=lambda region, account, a=action: need.resource_for(a, org.partition, region, account)))
    return summary(target, results, view)


def evidence(view: TargetView, results: list[Coverage], regions_note: dict | None = None) -> dict[str, Any]:
    matched: list[dict] = []
    for result in results:
        for rule in result.used:
            entry = rule.describe()
            existing = next((m for m in matched if m["policy_id"] == entry["policy_id"]
                             and m["statement"] == entry["statement"]), None)
            if existing:
                existing["actions"].append(result.action)
            else:
                matched.append({**entry, "actions": [result.action]})
    return {
        "path": view.chain,
        "policies": view.policies,
        "matched_statements": matched,
        "implicitly_denied": {r.action: r.implicit_deny_at for r in results if r.implicit_deny_at},
        "uncovered": {r.action: {"regions": "all" if set(r.gap_regions) >= set(r.regions) else r.gap_regions,
                                 "near_misses": r.near_misses} for r in results if not r.covered},
        "unreadable_policies": view.unreadable,
        **(regions_note or {}),
    }


def _where(view: TargetView) -> str:
    above = view.chain[1:]
    return view.target + (f" or its parents ({', '.join(above)})" if above else "")


def _satisfied_by(results: list[Coverage]) -> str:
    names: dict[str, None] = {}
    for r in results:
        if r.implicit_deny_at:
            names[f"no SCP at {r.implicit_deny_at} allows {r.action}"] = None
        for rule in r.used:
            names[f"{rule.ref.policy_id} {rule.ref.policy_name!r} (attached to {rule.ref.attached_to})"] = None
    return "; ".join(names)


def weaker_than_computed(view: TargetView, computed: dict[str, Any], regions: list[str]) -> list[str]:
    """The requests harden's computed document denies that the SCPs reaching the target do not."""
    return weaker_cases(computed, [st for _ref, _label, st in view.statements],
                        [statements for _level, statements in view.levels], partition=view.partition, regions=regions)


def _weaker_finding(ctx: CheckContext, target: str, view: TargetView, weaker: list[str], policy_name: str,
                    proof: dict[str, Any]) -> Finding:
    proof["no_longer_denied"] = weaker
    more = f" (and {len(weaker) - 1} more shown in the evidence)" if len(weaker) > 1 else ""
    return ctx.failed(target, f"the SCPs reaching {_where(view)} are weaker than harden's {policy_name!r} computed "
                              f"from harden.toml: {weaker[0]} is no longer denied{more}; run harden remediate (or "
                              "harden apply) to restore it", **proof)


# -- scp.allocate_address ----------------------------------------------------------------------

@control("scp.allocate_address",
         title="An SCP denies Elastic IP allocation and address transfer to all but the approved principals",
         scope="organization", severity="high",
         rationale="the preventive control this tool exists for: without it any principal with ec2:* "
         "can allocate addresses or accept address transfers in any region",
         mappings=Mappings(none="no public baseline restricts ec2:AllocateAddress; harden's own control"),
         fix="attach the allocate-address SCP to every scp.targets entry (`harden remediate --controls "
         "scp.allocate_address`, or `harden apply --root organization`)",
         terraform="scp/aws_organizations_policy.allocate_address")
def allocate_address(ctx: CheckContext) -> list[Finding]:
    """Each scp.targets entry is reached by SCPs that deny ec2:AllocateAddress, EnableAddressTransfer
    and AcceptAddressTransfer to every principal outside allocate_address.allowed_principals (and,
    when allowed_regions is set, to everyone outside those Regions), in every Region."""
    baseline = ctx.baseline
    settings = baseline.allocate_address
    need = Requirement(eip_actions(baseline), list(settings.allowed_principals), "allocate_address.allowed_principals",
                       list(settings.allowed_regions), eip_resource)
    policy_name = allocate_address_policy_name(baseline)
    computed = allocate_address_scp(baseline)

    def summary(target: str, results: list[Coverage], view: TargetView) -> Finding:
        proof = evidence(view, results, {"allowed_principals": need.allow, "allowed_regions": need.allowed_regions})
        missing = [r for r in results if not r.covered]
        if not missing and (weaker := weaker_than_computed(view, computed, need.allowed_regions)):
            return _weaker_finding(ctx, target, view, weaker, policy_name, proof)
        if not missing:
            # Secure, but the approved automation cannot allocate either: worth saying.
            blanket = bool(need.allow) and any(r.implicit_deny_at or (r.used and not any(u.conditions.exempt for u in r.used))
                                               for r in results)
            note = " (allow-listed principals are denied too)" if blanket else ""
            return ctx.passed(target, f"Elastic IP allocation and address transfer are denied outside the allow-list "
                                      f"by {_satisfied_by(results)}{note}", **proof)
        by_gap: dict[str, list[str]] = {}
        for r in missing:
            by_gap.setdefault(r.gaps_text(), []).append(r.action)
        gaps = "; ".join(f"{', '.join(actions)} {where}" for where, actions in by_gap.items())
        why = f" ({' | '.join(dict.fromkeys(m for r in missing for m in r.near_misses))})" \
            if any(r.near_misses for r in missing) else ""
        return ctx.failed(target, f"no SCP reaching {_where(view)} denies {gaps} to principals outside "
                                  f"allocate_address.allowed_principals{why}; attach an SCP such as harden's "
                                  f"{policy_name!r} to {target} or a parent", **proof)

    return check_targets(ctx, need, summary)


# -- scp.baseline_protection -------------------------------------------------------------------

@control("scp.baseline_protection",
         title="An SCP denies turning off CloudTrail, Config, flow logs and EBS default encryption",
         scope="organization", severity="high",
         rationale="without it a compromised principal switches off the trail, Config, flow logs or EBS "
         "defaults first, and every other control goes quiet",
         mappings=Mappings(none="AWS Landing Zone Accelerator guardrails; no CIS or Security Hub id"),
         fix="attach the baseline-protection SCP to every scp.targets entry (`harden remediate --controls "
         "scp.baseline_protection`, or `harden apply --root organization`)",
         terraform="scp/aws_organizations_policy.baseline_protection")
def baseline_protection(ctx: CheckContext) -> list[Finding]:
    """Each scp.targets entry is reached by SCPs that deny StopLogging, DeleteTrail, UpdateTrail,
    PutEventSelectors, StopConfigurationRecorder, DeleteDeliveryChannel, DeleteFlowLogs,
    DisableEbsEncryptionByDefault, ModifyEbsDefaultKmsKeyId and ResetEbsDefaultKmsKeyId to everyone
    but scp.admin_principals, in every Region."""
    baseline = ctx.baseline
    if not baseline.scp.protect_baseline:
        return [ctx.skipped(baseline.organization_id or "organization",
                            "scp.protect_baseline is false in the baseline")]
    need = Requirement(PROTECTED_ACTIONS, list(baseline.scp.admin_principals), "scp.admin_principals", [],
                       baseline_resource(baseline.trail_name))
    policy_name = baseline_protection_policy_name(baseline)
    computed = baseline_protection_scp(baseline)

    def summary(target: str, results: list[Coverage], view: TargetView) -> Finding:
        proof = evidence(view, results, {"admin_principals": need.allow, "trail_name": baseline.trail_name})
        missing = [r.action for r in results if not r.covered]
        if not missing and (weaker := weaker_than_computed(view, computed, [])):
            return _weaker_finding(ctx, target, view, weaker, policy_name, proof)
        if not missing:
            return ctx.passed(target, f"turning the baseline off is denied to all but scp.admin_principals by "
                                      f"{_satisfied_by(results)}", **proof)
        proof["uncovered_actions"] = missing
        return ctx.failed(target, f"no SCP reaching {_where(view)} denies {', '.join(missing)} to everyone but "
                                  f"scp.admin_principals in every Region; attach an SCP such as harden's "
                                  f"{policy_name!r} to {target} or a parent", **proof)

    return check_targets(ctx, need, summary)


# =============================================================================================
# Fixes: create or update harden's SCP, and attach it to each failing target
# =============================================================================================
# Name, description and content are the scp module's (templates/modules/scp/main.tf.j2), and the
# content is sent minified() as Terraform's jsonencode() writes it, so a policy created here shows
# no drift to Terraform. Other policies are never detached, changed or deleted: a fix only adds.

@dataclass(frozen=True)
class HardenScp(HardenPolicy):
    """One of harden's SCPs (provisioner/policies.py) and what it does, for the action descriptions."""

    summary: str = ""  # what it denies, to whom it stays open


def allocate_address_scp_specs(baseline: Baseline) -> list[HardenScp]:
    settings = baseline.allocate_address
    open_to = ", ".join(settings.allowed_principals) or "nobody"
    where = f"; denied to everyone outside {', '.join(settings.allowed_regions)}" if settings.allowed_regions else ""
    what = "allocation, release, " + ("association, " if settings.deny_association else "") + "address transfer"
    return [HardenScp(p.name, p.control, p.description, p.document,
                      f"denies Elastic IP {what} and other public IPv4 sources except to {open_to}{where}")
            for p in policies_for(baseline, "scp.allocate_address")]


def baseline_protection_scp_specs(baseline: Baseline) -> list[HardenScp]:
    admins = ", ".join(baseline.scp.admin_principals) or "nobody"
    return [HardenScp(p.name, p.control, p.description, p.document,
                      f"denies turning off CloudTrail, Config, flow logs, EBS default encryption and the harden "
                      f"detections, changing harden's keys and taking over exempt principals, except to {admins}")
            for p in policies_for(baseline, "scp.baseline_protection")]


def find_policy(ctx: CheckContext, name: str) -> dict | None:
    """The SCP named `name` (Organizations keeps policy names unique), read now: never cached,
    because an attach action must see the policy an earlier action created."""
    policies = paginate(_org_client(ctx), "list_policies", "Policies", Filter=SCP)
    return next((p for p in policies if p.get("Name") == name), None)


def _attached_targets(ctx: CheckContext, policy_id: str) -> set[str]:
    return {t["TargetId"] for t in paginate(_org_client(ctx), "list_targets_for_policy", "Targets",
                                            PolicyId=policy_id)}


def _fixable_targets(failed: list[Finding]) -> list[Finding]:
    """Findings an attachment can fix: a target that was read and evaluated (its evidence has the
    path to the root). Not: an empty scp.targets, an unknown target, the management account (no
    SCP restricts it), or a root without SCPs enabled (enabling a policy type for the whole
    organization is a decision for a person, not a side effect of remediate)."""
    return [f for f in failed if "path" in f.evidence and not f.evidence.get("management_account")]


def _policy_action(ctx: CheckContext, spec: HardenScp, existing: dict | None, attached: set[str]) -> Action | None:
    """Create the policy when missing; update it when its content is not the document (drift).
    An update changes the policy wherever it is attached (`attached`): the description says where."""
    org = _org_client(ctx)
    content = minified(spec.document)
    if existing is None:
        def create() -> dict:
            policy = org.create_policy(Name=spec.name, Description=spec.description, Type=SCP, Content=content,
                                       Tags=[{"Key": k, "Value": v} for k, v in ctx.baseline.tags.items()])
            summary = policy["Policy"]["PolicySummary"]
            return {"message": f"created {summary['Id']}", "policy_id": summary["Id"]}

        return Action(ctx.control_id, ctx.region, spec.name,
                      f"create SCP {spec.name!r} ({len(content)} characters): {spec.summary}",
                      ["organizations:CreatePolicy"], create)
    # Compared as parsed JSON: whitespace or key order is not drift (Terraform compares the same way).
    if policy_document(ctx, existing["Id"]) == spec.document:
        return None

    def update(policy_id: str = existing["Id"]) -> dict:
        org.update_policy(PolicyId=policy_id, Content=content)
        return {"message": f"updated {policy_id}", "policy_id": policy_id}

    return Action(ctx.control_id, ctx.region, existing["Id"],
                  f"update SCP {spec.name!r} ({existing['Id']}) to the baseline's document (its content has "
                  f"drifted): {spec.summary}; applies wherever it is attached "
                  f"({', '.join(sorted(attached)) or 'nowhere yet'})", ["organizations:UpdatePolicy"], update)


def _attach_action(ctx: CheckContext, spec: HardenScp, target: str) -> Action:
    org = _org_client(ctx)

    def attach() -> dict:
        policy = find_policy(ctx, spec.name)  # the create action before this one may have made it
        if policy is None:
            raise RuntimeError(f"SCP {spec.name!r} does not exist (its creation failed): nothing to attach")
        try:
            org.attach_policy(PolicyId=policy["Id"], TargetId=target)
        except botocore.exceptions.ClientError as exc:
            if error_code(exc) != "DuplicatePolicyAttachmentException":
                raise
            return {"message": f"{policy['Id']} was already attached to {target}"}
        return {"message": f"attached {policy['Id']} to {target}", "policy_id": policy["Id"]}

    kind = "root" if target.startswith("r-") else "OU" if target.startswith("ou-") else "account"
    return Action(ctx.control_id, ctx.region, target, f"attach SCP {spec.name!r} to {kind} {target}",
                  ["organizations:ListPolicies", "organizations:AttachPolicy"], attach)


def plan_scp(ctx: CheckContext, failed: list[Finding], specs: list[HardenScp]) -> list[Action]:
    """For each of the control's policies: the policy action (create or update) first, then one
    attach per failing target that the policy does not reach yet. A target under a level that
    already carries the policy needs only the update (inheritance); every other failing target
    gets its own attachment, as the module attaches each policy to each of scp.targets."""
    targets = _fixable_targets(failed)
    if not specs or not targets:
        return []
    actions: list[Action] = []
    for spec in specs:
        existing = find_policy(ctx, spec.name)
        attached = _attached_targets(ctx, existing["Id"]) if existing else set()
        actions.extend(a for a in [_policy_action(ctx, spec, existing, attached)] if a)
        for finding in targets:
            if attached.intersection(finding.evidence["path"]):
                continue
            actions.append(_attach_action(ctx, spec, finding.resource))
    return actions


@fix("scp.allocate_address")
def fix_allocate_address(ctx: CheckContext, failed: list[Finding]) -> list[Action]:
    """Create (or update) harden's Elastic IP SCPs and attach them to each failing target."""
    return plan_scp(ctx, failed, allocate_address_scp_specs(ctx.baseline))


@fix("scp.baseline_protection")
def fix_baseline_protection(ctx: CheckContext, failed: list[Finding]) -> list[Action]:
    """Create (or update) harden's baseline-protection SCPs and attach them to each failing target."""
    return plan_scp(ctx, failed, baseline_protection_scp_specs(ctx.baseline))
