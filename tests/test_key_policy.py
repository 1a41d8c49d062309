"""provisioner/key_policy.py: which key-policy statements let a principal outside the account in.
Pure policy documents, no AWS: the controls' sandbox tests seed the stripped and widened policies."""

from __future__ import annotations

import pytest

from provisioner.key_policy import outside_principals

ACCOUNT = "111122223333"


def _policy(condition: dict | None, principal="*") -> dict:
    statement = {"Effect": "Allow", "Principal": principal, "Action": "kms:Decrypt", "Resource": "*"}
    if condition is not None:
        statement["Condition"] = condition
    return {"Version": "2012-10-17", "Statement": [statement]}


@pytest.mark.parametrize("condition", [
    {"StringEquals": {"kms:CallerAccount": ACCOUNT}},
    {"StringEquals": {"kms:CallerAccount": ACCOUNT, "kms:ViaService": "ec2.us-east-1.amazonaws.com"}},
    {"StringLike": {"aws:PrincipalAccount": [ACCOUNT]}},
], ids=["caller-account", "with-via-service", "principal-account-like"])
def test_a_star_principal_confined_to_this_account_is_not_outside(condition):
    assert outside_principals(_policy(condition), ACCOUNT) == []


@pytest.mark.parametrize("condition", [
    None,
    # Every account but this one: the opposite of confined.
    {"StringNotEquals": {"kms:CallerAccount": ACCOUNT}},
    # A call by another account's IAM principal carries no aws:SourceAccount: IfExists lets it in.
    {"StringEqualsIfExists": {"aws:SourceAccount": ACCOUNT}},
    {"ForAllValues:StringEquals": {"kms:CallerAccount": ACCOUNT}},
    {"StringEquals": {"kms:CallerAccount": "444455556666"}},
    {"StringLike": {"kms:CallerAccount": "*"}},
], ids=["unconditioned", "negated", "if-exists", "for-all-values", "other-account", "any-account"])
def test_a_star_principal_not_confined_to_this_account_is_outside(condition):
    assert outside_principals(_policy(condition), ACCOUNT) == ["* (a statement)"]


def test_another_accounts_principal_is_outside_and_this_accounts_root_is_not():
    other = "arn:aws:iam::444455556666:root"
    assert outside_principals(_policy(None, {"AWS": [f"arn:aws:iam::{ACCOUNT}:root", other, "444455556666"]}),
                              ACCOUNT) == [other, "444455556666"]
