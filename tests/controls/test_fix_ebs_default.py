"""The ebs.default_encryption fix against the emulator.

The emulator has EnableEbsEncryptionByDefault, ModifyEbsDefaultKmsKeyId and KMS, but no
GetEbsDefaultKmsKeyId, which verify (before and after the fix) calls. botocore's Stubber answers
that one operation, validated against the real EC2 model, with what AWS would say: the key the
emulator's ModifyEbsDefaultKmsKeyId last set, or the AWS-managed alias before anyone set one.
Every other call reaches the emulator.
"""

from __future__ import annotations

import json

from tests.stubbing import OperationStubber

from provisioner.baseline import parse_baseline
from provisioner.converge import KEY_CALLS
from provisioner.remediate import run_remediation

REGION = "eu-west-1"
ACCOUNT = "123456789012"
AWS_MANAGED = f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/aws/ebs"
CONTROL = ["ebs.default_encryption"]


class DefaultKeyStub:
    """GetEbsDefaultKmsKeyId (missing in the emulator) answered from the emulator's own
    ModifyEbsDefaultKmsKeyId answers: one queued response per call, made just before it."""

    def __init__(self, aws, initial: str = AWS_MANAGED) -> None:
        self.ec2 = aws.client("ec2", REGION)  # the session's cached client: the one the tool uses
        self.current = initial
        self.stub = OperationStubber(self.ec2, "GetEbsDefaultKmsKeyId")
        self._hooks = [("after-call.ec2.ModifyEbsDefaultKmsKeyId", self._modified),
                       ("provide-client-params.ec2.GetEbsDefaultKmsKeyId", self._queue_answer)]

    def _modified(self, parsed, **_kwargs) -> None:
        self.current = parsed["KmsKeyId"]

    def _queue_answer(self, **_kwargs) -> None:
        self.stub.add_response("get_ebs_default_kms_key_id", {"KmsKeyId": self.current}, expected_params={})

    def __enter__(self) -> "DefaultKeyStub":
        for event, handler in self._hooks:
            self.ec2.meta.events.register(event, handler)
        self.stub.activate()
        return self

    def __exit__(self, *exc) -> None:
        self.stub.deactivate()
        for event, handler in self._hooks:
            self.ec2.meta.events.unregister(event, handler)


def _baseline(**ebs):
    return parse_baseline({"regions": [REGION], "home_region": REGION, "ebs": ebs})


def _state(aws, stub: DefaultKeyStub) -> tuple:
    kms = aws.client("kms", REGION)
    return (aws.client("ec2", REGION).get_ebs_encryption_by_default()["EbsEncryptionByDefault"], stub.current,
            sorted(k["KeyId"] for k in kms.list_keys()["Keys"]),
            sorted(a["AliasName"] for a in kms.list_aliases()["Aliases"]))


def _key(aws, alias=None) -> str:
    kms = aws.client("kms", REGION)
    arn = kms.create_key(Description="a customer key")["KeyMetadata"]["Arn"]
    if alias:
        kms.create_alias(AliasName=alias, TargetKeyId=arn)
    return arn


def test_creates_the_key_then_makes_it_the_default(aws):
    baseline = _baseline()
    with DefaultKeyStub(aws) as stub:
        before = _state(aws, stub)
        dry = run_remediation(aws, baseline, controls=CONTROL)
        assert [a.calls for a in dry.actions] == [
            KEY_CALLS,
            ["ec2:ModifyEbsDefaultKmsKeyId", "ec2:EnableEbsEncryptionByDefault"]]
        assert dry.actions[0].resource == f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/harden-ebs"
        assert dry.actions[1].resource == f"arn:aws:ec2:{REGION}:{ACCOUNT}:ebs-default-encryption"
        assert {r.status for r in dry.results} == {"planned"} and dry.exit_code() == 1
        assert _state(aws, stub) == before  # the dry run changed nothing

        applied = run_remediation(aws, baseline, controls=CONTROL, apply=True)
        assert [r.status for r in applied.results] == ["applied", "applied"], [r.message for r in applied.results]
        assert applied.after is not None and applied.after.exit_code() == 0
        kms = aws.client("kms", REGION)
        key = kms.describe_key(KeyId="alias/harden-ebs")["KeyMetadata"]
        assert stub.current == key["Arn"]  # the default key is the new key
        assert aws.client("ec2", REGION).get_ebs_encryption_by_default()["EbsEncryptionByDefault"] is True
        assert kms.get_key_rotation_status(KeyId=key["KeyId"])["KeyRotationEnabled"] is True
        assert key["Description"] == f"Default EBS encryption key of {REGION} (harden)"
        tags = {t["TagKey"]: t["TagValue"] for t in kms.list_resource_tags(KeyId=key["KeyId"])["Tags"]}
        # The module's tags, and the one that lets a re-run find a key left without its alias.
        assert tags == {"ManagedBy": "harden", "Name": f"harden-ebs-{REGION}", "harden:key-for": "alias/harden-ebs"}
        policy = json.loads(kms.get_key_policy(KeyId=key["KeyId"], PolicyName="default")["Policy"])
        by_sid = {s["Sid"]: s for s in policy["Statement"]}
        assert by_sid["AccountRootAdministers"]["Principal"] == {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}
        use = by_sid["AccountPrincipalsUseThroughEc2Only"]
        assert use["Condition"] == {"StringEquals": {"kms:ViaService": f"ec2.{REGION}.amazonaws.com",
                                                     "kms:CallerAccount": ACCOUNT}}
        assert "kms:*" not in use["Action"] and "kms:CreateGrant" not in use["Action"]
        grant = by_sid["AccountPrincipalsGrantToAwsResourcesThroughEc2Only"]
        assert grant["Action"] == "kms:CreateGrant"
        assert grant["Condition"]["Bool"] == {"kms:GrantIsForAWSResource": "true"}

        again = run_remediation(aws, baseline, controls=CONTROL, apply=True)
        assert again.actions == [] and again.exit_code() == 0
        stub.stub.assert_no_pending_responses()


def test_an_existing_alias_key_is_used_and_only_the_missing_step_runs(aws):
    aws.client("ec2", REGION).enable_ebs_encryption_by_default()
    key = _key(aws, alias="alias/harden-ebs")
    keys_before = aws.client("kms", REGION).list_keys()["Keys"]
    with DefaultKeyStub(aws) as stub:
        run = run_remediation(aws, _baseline(), controls=CONTROL, apply=True)
        (action,) = run.actions  # no key created, encryption is already on
        assert action.calls == ["ec2:ModifyEbsDefaultKmsKeyId"] and key in action.description
        assert run.after.exit_code() == 0 and stub.current == key
    assert aws.client("kms", REGION).list_keys()["Keys"] == keys_before


def test_encryption_off_with_the_right_key_only_turns_it_on(aws):
    key = _key(aws, alias="alias/harden-ebs")
    with DefaultKeyStub(aws, initial=key) as stub:
        run = run_remediation(aws, _baseline(), controls=CONTROL, apply=True)
        (action,) = run.actions
        assert action.calls == ["ec2:EnableEbsEncryptionByDefault"]
        assert run.after.exit_code() == 0 and stub.current == key


def test_the_baseline_key_replaces_another_customer_key(aws):
    aws.client("ec2", REGION).enable_ebs_encryption_by_default()
    wanted, other = _key(aws), _key(aws, alias="alias/harden-ebs")  # the baseline key wins over the alias
    with DefaultKeyStub(aws, initial=other) as stub:
        run = run_remediation(aws, _baseline(kms_key_arns={REGION: wanted}), controls=CONTROL, apply=True)
        (action,) = run.actions
        assert action.calls == ["ec2:ModifyEbsDefaultKmsKeyId"] and wanted in action.description
        assert run.after.exit_code() == 0 and stub.current == wanted


def test_a_disabled_baseline_key_is_reported_not_worked_around(aws):
    key = _key(aws)
    aws.client("kms", REGION).disable_key(KeyId=key.split("/")[-1])
    with DefaultKeyStub(aws) as stub:
        before = _state(aws, stub)
        run = run_remediation(aws, _baseline(kms_key_arns={REGION: key}), controls=CONTROL, apply=True)
        assert run.actions == [] and run.exit_code() == 3
        (error,) = run.plan_errors
        assert f"the baseline key (ebs.kms_key_arns) {key} is Disabled" in error.message
        assert _state(aws, stub) == before
