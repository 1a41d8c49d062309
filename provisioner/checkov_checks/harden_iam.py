"""Reading IAM policy documents as checkov hands them over, and judging SCPs on ec2:AllocateAddress.

Not a check: checkov imports this file like the others, it just registers nothing. The SCP checks
(harden_scp_allocate_address.py, harden_scp_readable.py) import it by its bare name, which works
because checkov puts this directory on sys.path. Pure Python, no checkov import, so the product's
own test suite can exercise it directly.

What checkov hands over (checkov 3.3.30): every attribute is wrapped in a one-element list;
``content = jsonencode({...})``, a heredoc of JSON and a plain JSON string all arrive as an
evaluated dict, but anything checkov cannot evaluate stays a string: a data source reference
(``"data.aws_iam_policy_document.x.json"``), ``file(...)``, a whole ``"jsonencode({...})"`` when a
conditional is involved, or a single statement such as ``"merge({...},{...})"``.
"""

from __future__ import annotations

import json
import re
from typing import Any

TARGET_ACTION = "ec2:AllocateAddress"
# A pattern that also matches an action no address policy would name is a broad wildcard
# ("*", "ec2:*"): it covers AllocateAddress without being *about* it.
_UNRELATED_ACTION = "ec2:DescribeInstances"
_ELASTIC_IP_ARN = "arn:aws:ec2:us-east-1:111122223333:elastic-ip/eipalloc-0123456789abcdef0"

SCP_TYPE = "SERVICE_CONTROL_POLICY"

# Negated operators make a Deny apply to everyone *except* the listed values: an exemption.
_EXEMPTION_OPERATORS = {"stringnotequals", "stringnotequalsignorecase", "stringnotlike", "arnnotequals", "arnnotlike"}
# Of those, the ones whose values are wildcard patterns (ArnNotEquals matches like ArnNotLike).
_WILDCARD_OPERATORS = {"stringnotlike", "arnnotlike", "arnnotequals"}
# Exemption keys, each with pairs of unrelated sample values: an exemption pattern matching both
# values of a pair exempts every principal of that kind (or every region), which leaves allocation
# open. aws:PrincipalArn of a role session is the role's ARN, so roles and users are the kinds.
_Samples = tuple[tuple[str, str], ...]
_EXEMPTION_KEYS: dict[str, _Samples] = {
    "aws:principalarn": (
        ("arn:aws:iam::111122223333:role/alpha", "arn:aws:iam::444455556666:role/zulu/path/other"),
        ("arn:aws:iam::111122223333:user/alpha", "arn:aws:iam::444455556666:user/zulu"),
    ),
    "aws:principalaccount": (("111122223333", "444455556666"),),
    "aws:principalorgid": (("o-aaaaaaaaaa", "o-zzzzzzzzzz"),),
    "aws:requestedregion": (("us-east-1", "ap-southeast-2"),),
}
_PRINCIPAL_TAG_SAMPLES: _Samples = (("alpha", "zulu"),)


def unwrap(value: Any) -> Any:
    """checkov wraps each attribute value in a one-element list."""
    if isinstance(value, list) and len(value) == 1:
        return value[0]
    return value


def is_service_control_policy(conf: dict[str, Any]) -> bool:
    """SERVICE_CONTROL_POLICY is the default type; an unresolved expression is given the benefit."""
    policy_type = unwrap(conf.get("type"))
    if policy_type is None:
        return True
    text = str(policy_type)
    return text == SCP_TYPE or not re.fullmatch(r"[A-Z0-9_]+", text)


def load_document(content: Any) -> dict[str, Any] | None:
    """The policy document as a dict, or None when checkov could not evaluate the content."""
    value = unwrap(content)
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    return value if isinstance(value, dict) else None


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def iam_match(pattern: str, value: str) -> bool:
    """IAM wildcard match (* and ?), case-insensitive; every other character is literal."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, flags=re.IGNORECASE | re.DOTALL) is not None


def statement_label(statement: dict[str, Any], index: int) -> str:
    sid = statement.get("Sid")
    return f"statement {sid!r}" if isinstance(sid, str) and sid else f"Statement[{index}]"


def _snippet(value: Any, limit: int = 80) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def read_statements(document: dict[str, Any]) -> tuple[list[tuple[str, dict[str, Any]]], list[str]]:
    """(label, statement) for each statement that can be judged, and one problem per one that can't."""
    raw = document.get("Statement")
    if raw is None:
        return [], ["the policy has no Statement"]
    if isinstance(raw, str):
        return [], [f"Statement is an expression checkov could not evaluate: {_snippet(raw)}"]
    statements: list[tuple[str, dict[str, Any]]] = []
    problems: list[str] = []
    for index, statement in enumerate(as_list(raw)):
        if not isinstance(statement, dict):
            problems.append(f"Statement[{index}] is an expression checkov could not evaluate: {_snippet(statement)}")
            continue
        label = statement_label(statement, index)
        effect = statement.get("Effect")
        actions = statement.get("NotAction", statement.get("Action"))
        if not isinstance(effect, str) or effect.lower() not in ("allow", "deny"):
            problems.append(f"{label} has no Effect Allow or Deny: {_snippet(effect)}")
        elif actions is None or not all(isinstance(a, str) for a in as_list(actions)):
            problems.append(f"{label} has no Action/NotAction list of strings: {_snippet(actions)}")
        elif "Condition" in statement and not isinstance(statement["Condition"], dict):
            problems.append(f"{label} has a Condition checkov could not evaluate: {_snippet(statement['Condition'])}")
        else:
            statements.append((label, statement))
    return statements, problems


def _condition_problem(condition: Any) -> str | None:
    """Why a Deny's Condition leaves allocation open, or None when it only exempts principals/regions."""
    if not condition:
        return None
    if not isinstance(condition, dict):
        return "its Condition could not be evaluated"
    for operator, clauses in condition.items():
        op = str(operator).lower()
        base = op[: -len("ifexists")] if op.endswith("ifexists") else op
        if base not in _EXEMPTION_OPERATORS:
            # ForAnyValue:/ForAllValues: and positive operators narrow the Deny to some requests.
            return f"its condition {operator} narrows the deny beyond exempting principals or regions"
        if not isinstance(clauses, dict):
            return f"its condition {operator} could not be evaluated"
        for key, values in clauses.items():
            key_lower = str(key).lower()
            if key_lower.startswith("aws:principaltag/"):
                samples = _PRINCIPAL_TAG_SAMPLES
            elif key_lower in _EXEMPTION_KEYS:
                samples = _EXEMPTION_KEYS[key_lower]
            else:
                return f"its condition on {key} is not a principal or region exemption"
            if base in _WILDCARD_OPERATORS:
                for value in as_list(values):
                    if any(all(iam_match(str(value), sample) for sample in pair) for pair in samples):
                        return f"its {operator} {key} = {value!r} exempts everyone"
    return None


def _resource_problem(statement: dict[str, Any]) -> str | None:
    if "NotResource" in statement:
        if any(iam_match(str(p), _ELASTIC_IP_ARN) for p in as_list(statement["NotResource"])):
            return "its NotResource leaves Elastic IPs out"
        return None
    if any(iam_match(str(p), _ELASTIC_IP_ARN) for p in as_list(statement.get("Resource", "*"))):
        return None
    return "its Resource does not cover Elastic IPs (elastic-ip/*)"


def judge_allocate_address(document: dict[str, Any]) -> tuple[str, list[str]]:
    """("pass" | "fail" | "unrelated", reasons) for an SCP document and ec2:AllocateAddress.

    pass: a Deny covers ec2:AllocateAddress (exact or wildcard, or via NotAction) on Elastic IPs,
    and its Condition, if any, only exempts principals or regions. A Deny wins over any Allow in
    the same policy. fail: no such Deny, and the policy names address allocation (an action
    pattern matching it that is not a broad wildcard) in an Allow, in a Deny that leaves it open,
    or in a Deny's NotAction. unrelated: the policy does not name it.
    """
    statements, _ = read_statements(document)
    passes: list[str] = []
    failures: list[str] = []
    for label, statement in statements:
        negated = "NotAction" in statement
        patterns = [str(p) for p in as_list(statement["NotAction"] if negated else statement.get("Action"))]
        matching = [p for p in patterns if iam_match(p, TARGET_ACTION)]
        named = [p for p in matching if not iam_match(p, _UNRELATED_ACTION)]
        covers = not matching if negated else bool(matching)

        if statement["Effect"].lower() == "allow":
            if named and not negated:
                failures.append(f"{label} allows {', '.join(named)}")
            continue
        if negated and named:
            failures.append(f"{label} exempts {', '.join(named)} from its deny (NotAction)")
            continue
        if not covers:
            continue
        problem = _resource_problem(statement) or _condition_problem(statement.get("Condition"))
        if problem is None:
            passes.append(f"{label} denies {TARGET_ACTION}")
        elif named:
            failures.append(f"{label} denies {', '.join(named)} but {problem}")
    if passes:
        return "pass", passes
    if failures:
        return "fail", failures
    return "unrelated", []
