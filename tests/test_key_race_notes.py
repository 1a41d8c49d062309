"""Every fix that creates a KMS key says what became of it when another run won the alias race.

converge.ensure_key creates the key, then its alias; when another run (another harden, or
Terraform) created the alias in between, the key just made is redundant: it is scheduled for
deletion and the action's message must give the command that cancels that deletion (a person
reading the run may know the key is wanted after all). The EBS and topic fixes are raced with two
real processes in test_concurrency.py; here the cloudtrail, flow-log and Config fixes are raced
deterministically on the emulator: a hook on CreateAlias plays the other run (it creates the alias,
to a key of its own with harden's policy, just before ours is sent). Each action also lists the
KMS calls ensure_key may make, so the permissions it prints are the ones it needs.
"""

from __future__ import annotations

import json
import re

import botocore.exceptions
import pytest

from provisioner import resources
from provisioner.aws import AwsSession
from provisioner.baseline import parse_baseline
from provisioner.converge import KEY_CALLS, KEY_TAG, PENDING_WINDOW_DAYS
from provisioner.remediate import run_remediation

HOME = "eu-central-1"


def _baseline():
    # A configured window longer than the shortest: the redundant key must not wait for it.
    return parse_baseline({"home_region": HOME, "regions": [HOME], "name_prefix": "race-1",
                           "kms": {"deletion_window_days": 30}})


def _other_run_wins(aws: AwsSession, alias: str, key: resources.Key) -> dict:
    """Before our CreateAlias for `alias` is sent, another session creates that alias to a key of
    its own (same policy and tags, as another harden run would). Returns what it made."""
    other = AwsSession(region=HOME, max_attempts=2).client("kms", HOME)
    made: dict = {}

    def hook(params, **_):
        if params.get("AliasName") == alias and not made:
            winner = other.create_key(Description=key.description, Policy=json.dumps(key.policy),
                                      Tags=[{"TagKey": KEY_TAG, "TagValue": alias}])["KeyMetadata"]
            other.create_alias(AliasName=alias, TargetKeyId=winner["KeyId"])
            made.update(winner)

    aws.client("kms", HOME).meta.events.register("before-parameter-build.kms.CreateAlias", hook)
    return made


def _assert_lost_and_said(aws: AwsSession, run, alias: str, winner: dict) -> None:
    assert winner, "the hook never ran: the fix created no key"
    kms = aws.client("kms", HOME)
    assert kms.describe_key(KeyId=alias)["KeyMetadata"]["KeyId"] == winner["KeyId"]
    messages = " ".join(r.message for r in run.results)
    said = re.search(rf"aws kms cancel-key-deletion --region {HOME} --key-id (\S+) keeps it", messages)
    assert said, messages
    ours = kms.describe_key(KeyId=said.group(1))["KeyMetadata"]
    assert ours["KeyId"] != winner["KeyId"] and ours["KeyState"] == "PendingDeletion"
    # The shortest window, not [kms] deletion_window_days (Terraform's, for a key it destroys): the
    # key was made by this run moments ago and encrypted nothing.
    assert round((ours["DeletionDate"] - ours["CreationDate"]).total_seconds() / 86400) == PENDING_WINDOW_DAYS == 7
    assert f"in {PENDING_WINDOW_DAYS} days" in messages
    tags = {t["TagKey"]: t["TagValue"] for t in kms.list_resource_tags(KeyId=ours["KeyId"])["Tags"]}
    assert tags[KEY_TAG] == alias  # findable later: `harden` and people see whose key it was


@pytest.mark.parametrize("control", ["cloudtrail.multi_region", "config.recorder"])
def test_trail_and_config_fixes_say_how_to_keep_the_key_they_lost(aws, control):
    baseline = _baseline()
    account = aws.account_id()
    key = resources.trail_key(baseline, account)
    winner = _other_run_wins(aws, key.alias, key)

    dry = run_remediation(aws, baseline, controls=[control])
    [action] = [a for a in dry.actions if a.control == control]
    assert set(KEY_CALLS) <= set(action.calls), action.calls

    run = run_remediation(aws, baseline, controls=[control], apply=True)
    assert not run.failed, [r.message for r in run.failed]
    _assert_lost_and_said(aws, run, key.alias, winner)


def test_flow_log_fix_says_how_to_keep_the_key_it_lost(aws):
    baseline = _baseline()
    aws.client("ec2", HOME).create_vpc(CidrBlock="10.8.0.0/16")
    key = resources.flow_log_key(baseline, resources.Site(aws.account_id(), HOME))
    winner = _other_run_wins(aws, key.alias, key)

    dry = run_remediation(aws, baseline, controls=["flow_logs.all_vpcs"])
    assert dry.actions and all(set(KEY_CALLS) <= set(a.calls) for a in dry.actions), [a.calls for a in dry.actions]

    run = run_remediation(aws, baseline, controls=["flow_logs.all_vpcs"], apply=True)
    assert not run.failed, [r.message for r in run.failed]
    _assert_lost_and_said(aws, run, key.alias, winner)


def test_no_key_calls_are_listed_when_the_key_exists(aws):
    baseline = _baseline()
    first = run_remediation(aws, baseline, controls=["cloudtrail.multi_region"], apply=True)
    assert not first.failed, [r.message for r in first.failed]
    aws.client("cloudtrail", HOME).delete_trail(Name=baseline.trail_name)  # the key stays
    again = run_remediation(aws, baseline, controls=["cloudtrail.multi_region"])
    [action] = again.actions
    assert not set(KEY_CALLS) & set(action.calls), action.calls


def test_a_key_the_winner_retired_before_our_alias_is_reported_as_lost_not_failed(aws):
    # The other run set the alias first and, finding our new key tagged for it without an alias
    # (converge.ensure_key step 4), scheduled its deletion before our EnableKeyRotation. AWS then
    # refuses EnableKeyRotation with KMSInvalidStateException; the emulator accepts calls on a key
    # pending deletion, so the hook answers as AWS would after doing what the other run does.
    baseline = _baseline()
    key = resources.flow_log_key(baseline, resources.Site(aws.account_id(), HOME))
    other = AwsSession(region=HOME, max_attempts=2).client("kms", HOME)
    kms = aws.client("kms", HOME)
    winner: dict = {}

    def hook(params, **_):
        if not winner:
            winner.update(other.create_key(Description=key.description, Policy=json.dumps(key.policy),
                                           Tags=[{"TagKey": KEY_TAG, "TagValue": key.alias}])["KeyMetadata"])
            other.create_alias(AliasName=key.alias, TargetKeyId=winner["KeyId"])
            other.schedule_key_deletion(KeyId=params["KeyId"], PendingWindowInDays=7)
        if kms.describe_key(KeyId=params["KeyId"])["KeyMetadata"]["KeyState"] == "PendingDeletion":
            raise botocore.exceptions.ClientError(
                {"Error": {"Code": "KMSInvalidStateException", "Message": f"{params['KeyId']} is pending deletion."}},
                "EnableKeyRotation")

    kms.meta.events.register("before-parameter-build.kms.EnableKeyRotation", hook)
    run = run_remediation(aws, baseline, controls=["flow_logs.all_vpcs"], apply=True)

    assert not run.failed and run.exit_code() == 0, [r.message for r in run.results]
    assert kms.describe_key(KeyId=key.alias)["KeyMetadata"]["KeyId"] == winner["KeyId"]
    said = " ".join(r.message for r in run.results)
    assert f"another run created {key.alias} first and scheduled the deletion of the created key" in said
    assert f"using its key {winner['Arn']}" in said
