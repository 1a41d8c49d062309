"""provisioner/key_policy.py: does the service that needs a key still have it, and which statements
let a principal outside the account in. Pure policy documents, no AWS: the controls' sandbox tests
seed the stripped and widened policies."""

from __future__ import annotations

import pytest

from provisioner.key_policy import Caller, allows, outside_principals

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


# -- does the service that needs the key still have it? -----------------------------------------

ROOT = f"arn:aws:iam::{ACCOUNT}:root"
CLOUDTRAIL = Caller("cloudtrail.amazonaws.com", service=True,
                    context={"aws:SourceAccount": ACCOUNT,
                             "aws:SourceArn": f"arn:aws:cloudtrail:us-east-1:{ACCOUNT}:trail/harden-trail"})
TRAIL_KEY = {"Version": "2012-10-17", "Statement": [
    {"Sid": "Root", "Effect": "Allow", "Principal": {"AWS": ROOT}, "Action": "kms:*", "Resource": "*"},
    {"Sid": "CloudTrail", "Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
     "Action": "kms:GenerateDataKey*", "Resource": "*",
     "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}}},
]}


def _with(statement: dict) -> dict:
    return {**TRAIL_KEY, "Statement": TRAIL_KEY["Statement"] + [statement]}


def test_the_service_keeps_the_key_it_is_granted():
    assert allows(TRAIL_KEY, CLOUDTRAIL, "kms:GenerateDataKey")
    # A Deny that spares the service (it is named by NotPrincipal, or its action by NotAction) takes nothing.
    assert allows(_with({"Effect": "Deny", "NotPrincipal": {"Service": "cloudtrail.amazonaws.com"},
                         "Action": "kms:*", "Resource": "*"}), CLOUDTRAIL, "kms:GenerateDataKey")
    assert allows(_with({"Effect": "Deny", "Principal": "*", "NotAction": "kms:GenerateDataKey*",
                         "Resource": "*"}), CLOUDTRAIL, "kms:GenerateDataKey")


@pytest.mark.parametrize("deny", [
    # "Everyone but the account's own principals": the account root names no service principal.
    {"Effect": "Deny", "NotPrincipal": {"AWS": ROOT}, "Action": "kms:*", "Resource": "*"},
    # "Every action but reading the key": GenerateDataKey is not among them.
    {"Effect": "Deny", "Principal": "*", "NotAction": ["kms:Describe*", "kms:Get*"], "Resource": "*"},
    {"Effect": "Deny", "Principal": {"Service": "cloudtrail.amazonaws.com"}, "NotAction": "kms:Decrypt",
     "Resource": "*"},
], ids=["not-principal-root", "not-action", "service-not-action"])
def test_a_deny_with_not_principal_or_not_action_cuts_the_service_off(deny):
    assert not allows(_with(deny), CLOUDTRAIL, "kms:GenerateDataKey")
