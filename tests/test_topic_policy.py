"""The alarm topic's policy, as `harden render` writes it (evaluated by the real Terraform) and as
remediate attaches it (provisioner/policies.py): only harden's alarms and its Elastic IP rule may
publish; an identity-policy sns:Publish in the account is not enough (issue 9)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from provisioner.baseline import parse_baseline
from provisioner.policies import Place, alarm_topic_policy
from provisioner.render import render_files
from tests.policy_eval import Request, decide
from tests.terraform_helpers import apply_and_read_outputs

ACCOUNT, REGION = "111122223333", "eu-west-1"
TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT}:harden-security-alarms"
RULE = f"arn:aws:events:{REGION}:{ACCOUNT}:rule/harden-elastic-ip-api-calls"
ALARM = f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:harden-elastic-ip-api-calls"
PUBLISH_ANYWHERE = {"Statement": [{"Effect": "Allow", "Action": "sns:*", "Resource": "*"}]}
TLS = {"aws:SecureTransport": "true"}

# (why, caller, service?, context, identity policies of the caller, expected)
CASES = [
    ("IAM admin with sns:* in its identity policy", f"arn:aws:iam::{ACCOUNT}:role/Admin", False,
     {**TLS, "aws:PrincipalIsAWSService": "false"}, [PUBLISH_ANYWHERE], "deny"),
    ("the account root", f"arn:aws:iam::{ACCOUNT}:root", False,
     {**TLS, "aws:PrincipalIsAWSService": "false"}, [PUBLISH_ANYWHERE], "deny"),
    ("CloudWatch for a harden alarm", "cloudwatch.amazonaws.com", True,
     {**TLS, "aws:PrincipalIsAWSService": "true", "aws:SourceAccount": ACCOUNT, "aws:SourceArn": ALARM}, [], "allow"),
    ("CloudWatch for another account's alarm", "cloudwatch.amazonaws.com", True,
     {**TLS, "aws:PrincipalIsAWSService": "true", "aws:SourceAccount": "444455556666",
      "aws:SourceArn": ALARM.replace(ACCOUNT, "444455556666")}, [], "implicit"),
    ("CloudWatch for a non-harden alarm", "cloudwatch.amazonaws.com", True,
     {**TLS, "aws:PrincipalIsAWSService": "true", "aws:SourceAccount": ACCOUNT,
      "aws:SourceArn": ALARM.replace("harden-", "app-")}, [], "implicit"),
    ("EventBridge for harden's rule", "events.amazonaws.com", True,
     {**TLS, "aws:PrincipalIsAWSService": "true", "aws:SourceAccount": ACCOUNT, "aws:SourceArn": RULE}, [], "allow"),
    ("EventBridge for harden's alarm state-change rule", "events.amazonaws.com", True,
     {**TLS, "aws:PrincipalIsAWSService": "true", "aws:SourceAccount": ACCOUNT,
      "aws:SourceArn": RULE.replace("elastic-ip-api-calls", "alarm-state-changes")}, [], "allow"),
    ("EventBridge for another rule", "events.amazonaws.com", True,
     {**TLS, "aws:PrincipalIsAWSService": "true", "aws:SourceAccount": ACCOUNT,
      "aws:SourceArn": RULE.replace("elastic-ip-api-calls", "mine")}, [], "implicit"),
    ("another service", "s3.amazonaws.com", True,
     {**TLS, "aws:PrincipalIsAWSService": "true", "aws:SourceAccount": ACCOUNT}, [], "implicit"),
    ("harden's alarm without TLS", "cloudwatch.amazonaws.com", True,
     {"aws:SecureTransport": "false", "aws:PrincipalIsAWSService": "true", "aws:SourceAccount": ACCOUNT,
      "aws:SourceArn": ALARM}, [], "deny"),
]


def _verdicts(policy: dict) -> list[tuple[str, str, str]]:
    wrong = []
    for why, caller, service, context, identity, expected in CASES:
        got = decide([policy, *identity], Request(caller, "sns:Publish", TOPIC, context, service=service))
        if got != expected:
            wrong.append((why, got, expected))
    return wrong


def test_computed_topic_policy_decides_every_case():
    policy = alarm_topic_policy(parse_baseline({}), Place("aws", ACCOUNT, REGION))
    assert _verdicts(policy) == []
    # Without the explicit Deny the admin's identity policy would be enough: the case table can fail.
    weakened = {**policy, "Statement": [s for s in policy["Statement"] if s["Sid"] != "DenyPublishByAnyoneButServices"]}
    assert ("IAM admin with sns:* in its identity policy", "allow", "deny") in _verdicts(weakened)


def test_rendered_topic_policy_is_the_computed_one_and_decides_every_case(tmp_path: Path):
    """The document harden render writes into the account root for the alarms module, evaluated
    by Terraform with the root's references (partition, account, for_each's Region) set to one
    account and Region."""
    baseline = parse_baseline({})
    text = next(f.content for f in render_files(baseline) if f.path.as_posix() == "account/main.tf")
    block = re.search(r"^  topic_policy_json = jsonencode\(\{.*?^  \}\)$", text, re.S | re.M).group(0)
    block = block.replace("topic_policy_json", "topic_policy").replace("data.aws_partition.current.partition",
                                                                        "local.partition")
    block = block.replace("each.key", "var.region")
    (tmp_path / "main.tf").write_text(
        f'variable "region" {{\n  default = "{REGION}"\n}}\n'
        f'locals {{\n  partition  = "aws"\n  account_id = "{ACCOUNT}"\n{block}\n}}\n'
        'output "policy" {\n  value = local.topic_policy\n}\n', encoding="utf-8")
    rendered = json.loads(apply_and_read_outputs(tmp_path)["policy"])
    assert rendered == alarm_topic_policy(baseline, Place("aws", ACCOUNT, REGION))
    assert _verdicts(rendered) == []


@pytest.mark.parametrize("hostile", ['a"b', "${x}", "%{if}"])
def test_reference_markers_cannot_be_forged_by_values(hostile):
    from provisioner.render import RenderError, _policy_literal

    assert "${" not in _policy_literal(f"x{hostile}").replace("$${", "")
    with pytest.raises(RenderError):
        _policy_literal("\ue000var.other\ue001")
