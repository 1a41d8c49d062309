"""tests/policy_eval.py: the evaluator the guardrail case tables trust, checked on its own,
especially where IAM is counter-intuitive (missing keys under negated, IfExists and set operators)."""

from __future__ import annotations

import pytest

from tests.policy_eval import Request, clause, decide, scp_verdict

ROLE = "arn:aws:iam::111122223333:role/NetworkAdmin"


@pytest.mark.parametrize("operator, wanted, context, expected", [
    # Missing key: positive false, negated true, IfExists true either way.
    ("StringEquals", "a", {}, False),
    ("StringNotEquals", "a", {}, True),
    ("StringEqualsIfExists", "a", {}, True),
    ("StringNotEqualsIfExists", "a", {}, True),
    ("ArnNotLike", "arn:aws:iam::*:role/x", {}, True),
    ("BoolIfExists", "false", {}, True),
    ("Bool", "false", {}, False),
    # Present key.
    ("StringNotEqualsIfExists", "a", {"k": "a"}, False),
    ("StringNotEqualsIfExists", "a", {"k": "b"}, True),
    ("StringLike", "alias/harden-*", {"k": "alias/harden-ebs"}, True),
    ("StringLike", "alias/harden-*", {"k": "alias/app"}, False),
    ("StringEqualsIgnoreCase", "ABC", {"k": "abc"}, True),
    ("StringEquals", ["x", "a"], {"k": "a"}, True),          # any of the values
    ("StringNotEquals", ["x", "a"], {"k": "a"}, False),      # none of the values
    ("Bool", "false", {"k": "FALSE"}, True),
    # Set operators: ForAnyValue false on a missing or empty key, ForAllValues true.
    ("ForAnyValue:StringLike", "alias/harden-*", {}, False),
    ("ForAnyValue:StringLike", "alias/harden-*", {"k": []}, False),
    ("ForAnyValue:StringLike", "alias/harden-*", {"k": ["alias/app", "alias/harden-ebs"]}, True),
    ("ForAllValues:StringLike", "alias/harden-*", {}, True),
    ("ForAllValues:StringLike", "alias/harden-*", {"k": ["alias/app", "alias/harden-ebs"]}, False),
    ("ForAnyValue:StringNotLike", "alias/harden-*", {"k": ["alias/app", "alias/harden-ebs"]}, True),
    # Null: true means "the key is absent".
    ("Null", "true", {}, True),
    ("Null", "true", {"k": "v"}, False),
    ("Null", "false", {"k": "v"}, True),
])
def test_clause(operator, wanted, context, expected):
    assert clause(operator, "k", wanted, context) is expected


def test_arn_like_is_field_by_field():
    # '*' in ArnLike does not cross the colon-separated fields.
    assert clause("ArnLike", "k", "arn:aws:iam::*:role/*", {"k": ROLE})
    assert not clause("ArnLike", "k", "arn:aws:iam::*:role/*", {"k": "arn:aws:sts::111122223333:assumed-role/x/y"})
    assert not clause("ArnLike", "k", "arn:aws:iam::*", {"k": ROLE})


def test_unknown_operator_is_an_error_not_a_guess():
    with pytest.raises(ValueError):
        clause("NumericLessThan", "k", "1", {"k": "0"})


def test_decide_deny_wins_and_actions_are_case_insensitive():
    allow = {"Statement": [{"Effect": "Allow", "Action": "ec2:*", "Resource": "*"}]}
    deny = {"Statement": [{"Effect": "Deny", "Action": "EC2:allocateaddress", "Resource": "*",
                           "Condition": {"ArnNotLike": {"aws:PrincipalArn": ROLE}}}]}
    assert decide([allow, deny], Request("arn:aws:iam::111122223333:role/Dev", "ec2:AllocateAddress")) == "deny"
    assert decide([allow, deny], Request(ROLE, "ec2:AllocateAddress")) == "allow"
    assert decide([deny], Request(ROLE, "ec2:AllocateAddress")) == "implicit"


def test_not_action_not_resource_and_principals():
    statement = {"Effect": "Deny", "NotAction": "s3:Get*", "NotResource": "arn:aws:s3:::open/*",
                 "Principal": {"AWS": "arn:aws:iam::111122223333:root"}}
    policy = {"Statement": [statement]}
    assert decide([policy], Request(ROLE, "s3:PutObject", "arn:aws:s3:::closed/x")) == "deny"
    assert decide([policy], Request(ROLE, "s3:GetObject", "arn:aws:s3:::closed/x")) == "implicit"
    assert decide([policy], Request(ROLE, "s3:PutObject", "arn:aws:s3:::open/x")) == "implicit"
    # Another account's principal is not this account's root.
    assert decide([policy], Request("arn:aws:iam::444455556666:role/x", "s3:PutObject", "arn:aws:s3:::c/x")) \
        == "implicit"
    service = {"Statement": [{"Effect": "Allow", "Action": "sns:Publish", "Resource": "*",
                              "Principal": {"Service": "events.amazonaws.com"}}]}
    assert decide([service], Request("events.amazonaws.com", "sns:Publish", service=True)) == "allow"
    assert decide([service], Request(ROLE, "sns:Publish")) == "implicit"


def test_scp_verdict_has_full_aws_access_underneath():
    assert scp_verdict([], Request(ROLE, "ec2:RunInstances")) == "allow"
