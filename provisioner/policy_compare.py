"""Is a deployed SCP as strong as the one harden computes? A semantic comparison, by probes.

Text comparison would fail an equivalent policy (other Sids, another order, a statement split in
two) and a statement-by-statement one misses a weakening spread across statements. Instead, each
Deny statement of harden's computed document is turned into the requests it denies (probes): its
actions (a wildcard instantiated), its resources (same), principals outside its exemption
(including each principal the deployed policies would exempt but harden does not), every Region
that matters, and the condition values that make it apply. A probe the computed policy denies and
the deployed statements do not is a case no longer denied, and is named in verify's message.

The evaluator below answers only "does this Deny statement deny this request", for the condition
operators IAM defines
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html).
Unknown operators make a statement deny nothing: a doubt counts as a gap, never as protection.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Iterable

# Stands for a Region AWS has not launched yet: a deny limited to today's Regions leaves it open.
FUTURE_REGION = "xx-future-1"
PROBE_ACCOUNT = "111122223333"
PROBE_NAME = "harden-probe"


@dataclass(frozen=True)
class Probe:
    action: str
    resource: str
    principal: str
    region: str
    context: tuple[tuple[str, Any], ...] = field(default=())

    def context_dict(self) -> dict[str, Any]:
        base = {"aws:principalarn": self.principal, "aws:requestedregion": self.region}
        base.update({k.lower(): v for k, v in self.context})
        return base

    def describe(self) -> str:
        extra = "".join(f", {k}={v}" for k, v in self.context if v is not None)
        return f"{self.action} on {self.resource} by {self.principal} in {self.region}{extra}"


# -- matching ----------------------------------------------------------------------------------

@lru_cache(maxsize=8192)
def _glob(pattern: str, ignore_case: bool) -> re.Pattern:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(regex, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def glob(pattern: str, value: str, ignore_case: bool = False) -> bool:
    return _glob(pattern, ignore_case).fullmatch(value) is not None


def _values(value: Any) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _action_matches(statement: dict, action: str) -> bool:
    if "NotAction" in statement:
        return not any(glob(str(p), action, True) for p in _values(statement["NotAction"]))
    return any(glob(str(p), action, True) for p in _values(statement.get("Action")))


def _resource_matches(statement: dict, resource: str) -> bool:
    if "NotResource" in statement:
        return not any(glob(str(p), resource) for p in _values(statement["NotResource"]))
    return any(glob(str(p), resource) for p in _values(statement.get("Resource", "*")))


_NEGATED = {"stringnotequals", "stringnotequalsignorecase", "stringnotlike", "arnnotequals", "arnnotlike"}
_MATCHERS = {
    "stringequals": lambda p, v: p == v,
    "stringequalsignorecase": lambda p, v: p.lower() == v.lower(),
    "stringlike": lambda p, v: glob(p, v),
    "arnequals": lambda p, v: _arn_like(p, v),
    "arnlike": lambda p, v: _arn_like(p, v),
    "bool": lambda p, v: p.lower() == v.lower(),
}


def _arn_like(pattern: str, value: str) -> bool:
    # ArnLike compares the six colon-separated parts; * and ? work within each part.
    p_parts, v_parts = pattern.split(":", 5), value.split(":", 5)
    return len(p_parts) == len(v_parts) == 6 and all(glob(p, v) for p, v in zip(p_parts, v_parts))


def _positive(op: str) -> str | None:
    """The positive matcher of an operator (StringNotLike -> stringlike), None when unknown."""
    if op in _MATCHERS:
        return op
    if op in _NEGATED:
        return {"stringnotequals": "stringequals", "stringnotequalsignorecase": "stringequalsignorecase",
                "stringnotlike": "stringlike", "arnnotequals": "arnequals", "arnnotlike": "arnlike"}[op]
    return None


def clause_holds(operator: str, key: str, wanted: list, context: dict[str, Any]) -> bool:
    op = operator.lower()
    qualifier = ""
    if ":" in op:
        qualifier, op = op.split(":", 1)
    if_exists = op.endswith("ifexists")
    op = op[: -len("ifexists")] if if_exists else op
    present = key.lower() in context and context[key.lower()] is not None
    if op == "null":
        return any(str(w).lower() == ("false" if present else "true") for w in wanted)
    base = _positive(op)
    if base is None:
        return False
    match = _MATCHERS[base]
    negated = op in _NEGATED
    wanted = [str(w) for w in wanted]
    if not present:
        if qualifier == "forallvalues":
            return True
        if qualifier == "foranyvalue":
            return False
        return if_exists or negated
    values = [str(v) for v in _values(context[key.lower()])]

    def one(value: str) -> bool:
        hit = any(match(w, value) for w in wanted)
        return not hit if negated else hit

    if qualifier == "forallvalues":
        return all(one(v) for v in values)
    if qualifier == "foranyvalue":
        return any(one(v) for v in values)
    return one(values[0]) if len(values) == 1 else False


def statement_denies(statement: dict, probe: Probe) -> bool:
    """Does this statement, if it is a Deny, deny the probe's request?"""
    if str(statement.get("Effect", "")).lower() != "deny":
        return False
    if "Principal" in statement or "NotPrincipal" in statement:
        return False  # not valid in an SCP: AWS rejects it; it protects nothing
    if not (_action_matches(statement, probe.action) and _resource_matches(statement, probe.resource)):
        return False
    condition = statement.get("Condition") or {}
    if not isinstance(condition, dict):
        return False
    context = probe.context_dict()
    for operator, clauses in condition.items():
        if not isinstance(clauses, dict):
            return False
        for key, wanted in clauses.items():
            if not clause_holds(str(operator), str(key), _values(wanted), context):
                return False
    return True


def _open_clauses(statement: dict, probe: Probe) -> dict[str, list[Any]]:
    """The condition keys of `statement` that the probe leaves undefined, each with the values the
    caller could bring: absent, each value the clause names (a pattern instantiated) and one it
    does not. Who calls decides these (a principal tag, aws:userid, aws:SourceVpc, ...), so a
    Deny holds against the probe's caller only if it holds for every such choice."""
    defined = probe.context_dict()
    partition = probe.principal.split(":")[1] if probe.principal.count(":") >= 5 else "aws"
    found: dict[str, list[Any]] = {}
    condition = statement.get("Condition")
    for clauses in (condition.values() if isinstance(condition, dict) else []):
        for key, wanted in (clauses.items() if isinstance(clauses, dict) else []):
            if str(key).lower() in defined:
                continue
            options = found.setdefault(str(key), [None, f"{PROBE_NAME}-other"])
            options.extend(_instantiate(str(v), partition, probe.region, PROBE_ACCOUNT) for v in _values(wanted))
    return found


def escape(statement: dict, probe: Probe) -> dict[str, Any] | None:
    """None when `statement` denies the probe's request whatever the caller sets the condition keys
    the probe leaves open to; otherwise the caller's choice (key -> value, None for absent) by
    which it escapes. A deployed Deny that exempts by another key than aws:PrincipalArn (a
    StringNotEquals on a principal tag, a Null or ...IfExists clause) is a wider exemption."""
    open_keys = _open_clauses(statement, probe)
    keys = sorted(open_keys)
    for combo in itertools.product(*(open_keys[k] for k in keys)):
        choice = dict(zip(keys, combo))
        trial = Probe(probe.action, probe.resource, probe.principal, probe.region,
                      probe.context + tuple(sorted(choice.items())))
        if not statement_denies(statement, trial):
            return choice
    return None


def allows(statement: dict, action: str) -> bool:
    return str(statement.get("Effect", "")).lower() == "allow" and _action_matches(statement, action)


# -- probes from a computed statement ----------------------------------------------------------

def _instantiate(pattern: str, partition: str, region: str, account: str) -> str:
    """A concrete string the pattern matches: ARN fields get realistic values, other wildcards a
    probe name, '?' a digit."""
    if pattern == "*":
        return "*"
    if pattern.startswith("arn:"):
        parts = pattern.split(":", 5)
        defaults = ["arn", partition, None, region, account]
        for i in (1, 3, 4):
            if i < len(parts) and parts[i] in ("*", "?"):
                parts[i] = defaults[i]
        pattern = ":".join(parts)
    return pattern.replace("*", PROBE_NAME).replace("?", "0")


def _outsider(exempt: list[str], partition: str) -> list[str]:
    """Principals no exemption pattern of the computed statement covers."""
    candidates = [f"arn:{partition}:iam::{PROBE_ACCOUNT}:role/{PROBE_NAME}-outsider",
                  f"arn:{partition}:iam::{PROBE_ACCOUNT}:user/{PROBE_NAME}-outsider",
                  f"arn:{partition}:iam::{PROBE_ACCOUNT}:root"]
    return [c for c in candidates if not any(_arn_like(e, c) for e in exempt)][:1]


def _exemptions(statement: dict) -> list[str]:
    condition = statement.get("Condition") or {}
    found: list[str] = []
    if isinstance(condition, dict):
        for operator, clauses in condition.items():
            if str(operator).lower().replace("ifexists", "") in ("arnnotlike", "arnnotequals", "stringnotlike",
                                                                 "stringnotequals") and isinstance(clauses, dict):
                for key, values in clauses.items():
                    if str(key).lower() == "aws:principalarn":
                        found.extend(str(v) for v in _values(values))
    return found


def region_literals(statements: Iterable[dict]) -> set[str]:
    found: set[str] = set()
    for statement in statements:
        condition = statement.get("Condition")
        if isinstance(condition, dict):
            for clauses in condition.values():
                if isinstance(clauses, dict):
                    for key, values in clauses.items():
                        if str(key).lower() == "aws:requestedregion":
                            found |= {str(v) for v in _values(values) if not set("*?") & set(str(v))}
    return found


def _context_choices(statement: dict, partition: str, region: str) -> list[dict[str, Any]]:
    """Values of the statement's condition keys (other than principal and Region) that make it
    apply, plus 'absent' where that makes it apply too: each combination is a probe."""
    condition = statement.get("Condition") or {}
    per_key: dict[str, list[Any]] = {}
    for operator, clauses in condition.items() if isinstance(condition, dict) else []:
        op = str(operator).lower()
        for key, wanted in (clauses.items() if isinstance(clauses, dict) else []):
            k = str(key)
            if k.lower() in ("aws:principalarn", "aws:requestedregion"):
                continue
            options = per_key.setdefault(k, [None])
            for value in _values(wanted):
                concrete = _instantiate(str(value), partition, region, PROBE_ACCOUNT)
                if op.startswith("foranyvalue:") or op.startswith("forallvalues:"):
                    options.append([concrete])
                else:
                    options.append(concrete)
            if "not" in op or op.startswith("bool") or op.startswith("null"):
                options.append(f"{PROBE_NAME}-other")
    keys = sorted(per_key)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(per_key[k] for k in keys))] or [{}]


def probes(statement: dict, partition: str, regions: list[str], extra_principals: list[str]) -> list[Probe]:
    """The requests `statement` (a Deny of harden's) denies, one per combination that matters."""
    exempt = _exemptions(statement)
    principals = _outsider(exempt, partition) + [
        p for p in extra_principals if not any(_arn_like(e, p) for e in exempt)]
    found: list[Probe] = []
    for region in regions:
        contexts = _context_choices(statement, partition, region)
        for action in _values(statement.get("Action")):
            concrete_action = str(action).replace("*", "HardenProbe")
            for resource in _values(statement.get("Resource", "*")):
                concrete = _instantiate(str(resource), partition, region, PROBE_ACCOUNT)
                for principal in dict.fromkeys(principals):
                    for ctx in contexts:
                        probe = Probe(concrete_action, concrete, principal, region,
                                      tuple(sorted(ctx.items())))
                        if statement_denies(statement, probe):
                            found.append(probe)
    return found


def weaker_cases(computed: dict, deployed: list[dict], levels: list[list[dict]] | None = None, *,
                 partition: str = "aws", regions: Iterable[str] = (), limit: int = 5) -> list[str]:
    """The requests harden's `computed` document denies that the `deployed` statements (every SCP
    statement reaching a target) do not: at most `limit`, described. `levels` are the statements
    per level of the hierarchy: a level that allows an action in no statement denies it too."""
    statements = [s for s in _values(computed.get("Statement")) if isinstance(s, dict)]
    deny_statements = [s for s in deployed if str(s.get("Effect", "")).lower() == "deny"]
    wide = sorted({p for s in deny_statements for p in _exemptions(s)})
    extra = [_instantiate(p, partition, "us-east-1", PROBE_ACCOUNT) for p in wide]
    sample = sorted({"us-east-1", *regions, *region_literals(statements), *region_literals(deployed)}) + [FUTURE_REGION]
    missing: list[str] = []
    seen_actions: dict[str, bool] = {}
    for statement in statements:
        for probe in probes(statement, partition, sample, extra):
            if probe.action not in seen_actions:
                seen_actions[probe.action] = any(level and not any(allows(s, probe.action) for s in level)
                                                 for level in (levels or []))
            if seen_actions[probe.action]:
                continue
            relevant = [s for s in deny_statements
                        if _action_matches(s, probe.action) and _resource_matches(s, probe.resource)]
            escapes = [escape(s, probe) for s in relevant]
            if any(e is None for e in escapes):
                continue
            # The deployed statements that cover the request but for a key the caller sets: name the way out.
            ways = sorted({f"{k}={'(absent)' if v is None else v}" for e in escapes if e for k, v in e.items()
                           if k.lower() not in probe.context_dict()})
            missing.append(probe.describe() + (f" (a caller with {' or '.join(ways)} escapes the deny)" if ways else ""))
            if len(missing) >= limit:
                return missing
    return missing
