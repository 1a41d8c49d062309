"""What a KMS key policy lets happen: does the service that needs the key still have it, and has a
principal outside the account been let in? For verify's checks of harden's keys.

A key policy is a resource policy: a statement applies to a caller its Principal names (a service
principal, "*", an account root meaning every principal of that account, or one ARN) and whose
conditions hold. Condition operators are provisioner/policy_compare.py's. Key policies are the
only authority for a key unless they delegate to IAM through the account root
(https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-overview.html).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from provisioner.policy_compare import clause_holds, glob

# Condition keys that confine a "*" principal (or an account root) to this account.
_ACCOUNT_KEYS = ("kms:calleraccount", "aws:principalaccount", "aws:sourceaccount")
_CONFINING = ("stringequals", "stringlike", "stringequalsignorecase")


@dataclass(frozen=True)
class Caller:
    principal: str             # a service principal, or an IAM principal ARN
    service: bool = False
    context: dict[str, Any] = field(default_factory=dict)


def _list(value: Any) -> list:
    return [] if value is None else list(value) if isinstance(value, (list, tuple)) else [value]


def _names(statement: dict, caller: Caller, element: str = "Principal") -> bool:
    principal = statement.get(element)
    if principal == "*":
        return True
    if not isinstance(principal, dict):
        return False
    if caller.service:
        return caller.principal in _list(principal.get("Service"))
    account = caller.principal.split(":")[4] if caller.principal.count(":") >= 5 else ""
    for name in _list(principal.get("AWS")):
        name = str(name)
        if name == "*" or name == caller.principal or name == account or name.endswith(f"::{account}:root"):
            return True
    return False


def _applies(statement: dict, caller: Caller, action: str) -> bool:
    # NotPrincipal and NotAction turn a Deny on everyone and everything they do not name: a Deny
    # with NotPrincipal the account root cuts every service principal off the key
    # (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_notprincipal.html).
    # An Allow with NotPrincipal is counted as granting nothing: a doubt must not pass as access.
    if "NotPrincipal" in statement:
        if str(statement.get("Effect")).lower() != "deny" or _names(statement, caller, "NotPrincipal"):
            return False
    elif not _names(statement, caller):
        return False
    if "NotAction" in statement:
        if any(glob(str(a), action, True) for a in _list(statement.get("NotAction"))):
            return False
    elif not any(glob(str(a), action, True) for a in _list(statement.get("Action"))):
        return False
    context = {"aws:principalarn": None if caller.service else caller.principal,
               "aws:principalisawsservice": "true" if caller.service else "false",
               **{k.lower(): v for k, v in caller.context.items()}}
    return all(clause_holds(str(op), str(key), _list(wanted), context)
               for op, clauses in (statement.get("Condition") or {}).items() if isinstance(clauses, dict)
               for key, wanted in clauses.items())


def allows(policy: dict | None, caller: Caller, action: str) -> bool:
    """Does the key policy itself allow the caller this action (and deny it nowhere)?"""
    statements = [s for s in _list((policy or {}).get("Statement")) if isinstance(s, dict)]
    if any(str(s.get("Effect")).lower() == "deny" and _applies(s, caller, action) for s in statements):
        return False
    return any(str(s.get("Effect")).lower() == "allow" and _applies(s, caller, action) for s in statements)


def outside_principals(policy: dict | None, account_id: str) -> list[str]:
    """Principals of other accounts an Allow names, and "*" Allows that no condition confines to
    this account: each is a way in for someone outside it."""
    found: list[str] = []
    for statement in _list((policy or {}).get("Statement")):
        if not isinstance(statement, dict) or str(statement.get("Effect")).lower() != "allow":
            continue
        principal = statement.get("Principal")
        names = ["*"] if principal == "*" else _list(principal.get("AWS")) if isinstance(principal, dict) else []
        # Only an operator that requires the key to equal this account confines: a negated one
        # (StringNotEquals kms:CallerAccount) lets in every other account, an ...IfExists one (or
        # ForAllValues) every request that lacks the key, as calls by IAM principals lack
        # aws:SourceAccount (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html).
        conditions = {str(k).lower(): _list(v) for op, clauses in (statement.get("Condition") or {}).items()
                      if isinstance(clauses, dict) and str(op).lower() in _CONFINING
                      for k, v in clauses.items()}
        confined = any(values and all(str(v) == account_id for v in values)
                       for key, values in conditions.items() if key in _ACCOUNT_KEYS)
        for name in map(str, names):
            if name == "*":
                if not confined:
                    found.append(f"* ({statement.get('Sid') or 'a statement'})")
            elif (name.split(":")[4] if name.startswith("arn:") and name.count(":") >= 5 else name) != account_id:
                found.append(name)
    return found
