"""A small, exact IAM policy evaluator for the tests: the oracle the guardrail case tables run on.

Independent of the product's code on purpose (provisioner/policy_compare.py answers a narrower
question for verify). It covers the operators harden's documents use, with AWS's rules
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html,
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-single-vs-multi-valued-context-keys.html):

* String(Not)Equals(IgnoreCase), String(Not)Like, Arn(Not)Equals, Arn(Not)Like, Bool, Null;
* the ...IfExists suffix: a missing key makes the clause true;
* without it, a missing key makes a positive clause false and a negated one true;
* ForAnyValue: (false on a missing or empty key) and ForAllValues: (true on a missing key);
* several values in one clause: any matches; several keys or operators: all must hold;
* Action / NotAction (case-insensitive), Resource / NotResource, Principal / NotPrincipal.

`decide(policies, request)` is the verdict: "deny" when any statement denies, else "allow" when
any allows, else "implicit" (an implicit deny).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Request:
    principal: str            # aws:PrincipalArn, or a service principal such as events.amazonaws.com
    action: str
    resource: str = "*"
    context: dict[str, Any] = field(default_factory=dict)  # condition keys, case-insensitive
    service: bool = False     # the caller is an AWS service principal


def _wild(pattern: str, value: str, fold: bool = False) -> bool:
    regex = "".join({"*": ".*", "?": "."}.get(c, re.escape(c)) for c in pattern)
    return re.fullmatch(regex, value, re.S | (re.I if fold else 0)) is not None


def _arn(pattern: str, value: str) -> bool:
    p, v = pattern.split(":", 5), value.split(":", 5)
    return len(p) == 6 and len(v) == 6 and all(_wild(a, b) for a, b in zip(p, v))


_BASE = {
    "stringequals": (lambda p, v: p == v, False),
    "stringnotequals": (lambda p, v: p == v, True),
    "stringequalsignorecase": (lambda p, v: p.lower() == v.lower(), False),
    "stringnotequalsignorecase": (lambda p, v: p.lower() == v.lower(), True),
    "stringlike": (_wild, False),
    "stringnotlike": (_wild, True),
    "arnequals": (_arn, False),
    "arnlike": (_arn, False),
    "arnnotequals": (_arn, True),
    "arnnotlike": (_arn, True),
    "bool": (lambda p, v: p.lower() == v.lower(), False),
}


def _list(value: Any) -> list:
    return [] if value is None else list(value) if isinstance(value, (list, tuple)) else [value]


def clause(operator: str, key: str, wanted: Any, context: dict[str, Any]) -> bool:
    ctx = {k.lower(): v for k, v in context.items()}
    name = operator.lower()
    set_op = None
    if name.startswith(("foranyvalue:", "forallvalues:")):
        set_op, name = name.split(":", 1)
    if_exists = name.endswith("ifexists")
    name = name.removesuffix("ifexists")
    values = _list(ctx.get(key.lower()))
    present = key.lower() in ctx and ctx[key.lower()] is not None
    wanted = [str(w) for w in _list(wanted)]
    if name == "null":
        return ("true" if not present else "false") in [w.lower() for w in wanted]
    if name not in _BASE:
        raise ValueError(f"operator {operator} is not known to this evaluator")
    match, negated = _BASE[name]

    def one(value: Any) -> bool:
        hit = any(match(w, str(value)) for w in wanted)
        return not hit if negated else hit

    if set_op == "forallvalues":
        return all(one(v) for v in values)
    if set_op == "foranyvalue":
        return any(one(v) for v in values)
    if not present:
        return if_exists or negated
    return one(values[0])


def _principal_matches(statement: dict, request: Request) -> bool:
    if "Principal" not in statement and "NotPrincipal" not in statement:
        return True  # identity policies and SCPs: the statement applies to its holder
    element = statement.get("Principal", statement.get("NotPrincipal"))
    if element == "*":
        hit = True
    else:
        names = _list(element.get("Service")) if request.service else _list(element.get("AWS"))
        hit = any(n == "*" or n == request.principal or
                  (n.endswith(":root") and not request.service and
                   request.principal.split(":")[4] == n.split(":")[4]) for n in names)
    return hit if "Principal" in statement else not hit


def applies(statement: dict, request: Request) -> bool:
    if "NotAction" in statement:
        if any(_wild(a, request.action, True) for a in _list(statement["NotAction"])):
            return False
    elif not any(_wild(a, request.action, True) for a in _list(statement.get("Action"))):
        return False
    if "NotResource" in statement:
        if any(_wild(r, request.resource) for r in _list(statement["NotResource"])):
            return False
    elif not any(_wild(r, request.resource) for r in _list(statement.get("Resource", "*"))):
        return False
    if not _principal_matches(statement, request):
        return False
    context = {"aws:PrincipalArn": None if request.service else request.principal, **request.context}
    for operator, clauses in (statement.get("Condition") or {}).items():
        for key, wanted in clauses.items():
            if not clause(operator, key, wanted, context):
                return False
    return True


def decide(policies: list[dict], request: Request) -> str:
    statements = [s for p in policies for s in _list(p.get("Statement"))]
    if any(s["Effect"] == "Deny" and applies(s, request) for s in statements):
        return "deny"
    if any(s["Effect"] == "Allow" and applies(s, request) for s in statements):
        return "allow"
    return "implicit"


FULL_AWS_ACCESS = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


def scp_verdict(scps: list[dict], request: Request) -> str:
    """What the SCPs (with FullAWSAccess, as every target has) let through: allow or deny."""
    return "deny" if decide([FULL_AWS_ACCESS, *scps], request) == "deny" else "allow"
