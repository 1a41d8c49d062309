"""A call that AWS ran but whose answer never came back (the connection cut on the way back:
tests/faultproxy.py's "drop" forwards the request to the emulator, then resets the connection).
botocore retries it, so a call that is not idempotent runs twice: KMS CreateKey makes a second
key, CreateFlowLogs meets the flow log it made. `harden remediate --apply` must still end with
exactly one enabled key per harden alias and one flow log per VPC, and its exit code must say
what happened."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.parse

import pytest

from provisioner.baseline import parse_baseline
from provisioner.converge import KEY_TAG
from provisioner.remediate import run_remediation

REGION = "eu-west-1"


def _baseline():
    return parse_baseline({"regions": [REGION], "home_region": REGION})


def _second_vpc(aws) -> None:
    aws.client("ec2", REGION).create_vpc(CidrBlock="10.9.0.0/16")


def _harden_keys(aws) -> dict[str, list[str]]:
    """alias harden tagged the key for -> the states of those keys, the one behind the alias first."""
    kms = aws.client("kms", REGION)
    out: dict[str, list[str]] = {}
    for listed in kms.list_keys()["Keys"]:
        tags = {t["TagKey"]: t["TagValue"] for t in kms.list_resource_tags(KeyId=listed["KeyId"])["Tags"]}
        if KEY_TAG not in tags:
            continue
        state = kms.describe_key(KeyId=listed["KeyId"])["KeyMetadata"]["KeyState"]
        aliases = [a["AliasName"] for a in kms.list_aliases(KeyId=listed["KeyId"])["Aliases"]]
        states = out.setdefault(tags[KEY_TAG], [])
        if aliases == [tags[KEY_TAG]]:
            states.insert(0, f"{state} with its alias")
        else:
            states.append(state if not aliases else f"{state} aliased {aliases}")
    return out


def _flow_logs_per_vpc(aws) -> dict[str, int]:
    ec2 = aws.client("ec2", REGION)
    counts = {v["VpcId"]: 0 for v in ec2.describe_vpcs()["Vpcs"]}
    for fl in ec2.describe_flow_logs()["FlowLogs"]:
        counts[fl["ResourceId"]] += 1
    return counts


def _assert_converged(aws) -> None:
    for alias, states in _harden_keys(aws).items():
        assert states[0] == "Enabled with its alias" and set(states[1:]) <= {"PendingDeletion"}, (alias, states)
    assert _harden_keys(aws), "no key was made: the test did not exercise ensure_key"
    per_vpc = _flow_logs_per_vpc(aws)
    assert len(per_vpc) == 2 and set(per_vpc.values()) == {1}, per_vpc


@pytest.mark.parametrize("action,service", [("CreateKey", "kms"), ("CreateAlias", "kms"), ("CreateFlowLogs", "ec2")])
def test_remediate_whose_answer_is_lost_still_converges_and_exits_0(aws, fault_proxy, action, service):
    _second_vpc(aws)
    fault_proxy.add("drop", service=service, action=action, times=1)

    run = run_remediation(aws, _baseline(), controls=["flow_logs"], apply=True)

    counts = fault_proxy.count()
    assert counts[(service, action, "drop")] == 1 and counts[(service, action, "ok")] >= 1, counts  # retried
    assert {r.status for r in run.results} == {"applied"}, [r.message for r in run.results]
    assert run.exit_code() == 0 and run.after is not None and run.after.exit_code() == 0
    _assert_converged(aws)
    said = " ".join(r.message for r in run.results)
    if action == "CreateKey":  # the key the lost call made is retired, with the command that keeps it
        assert "scheduled the deletion of the duplicate key for alias/harden-flow-logs" in said, said
        assert f"aws kms cancel-key-deletion --region {REGION} --key-id" in said
        assert _harden_keys(aws)["alias/harden-flow-logs"] == ["Enabled with its alias", "PendingDeletion"]
    if action == "CreateFlowLogs":
        assert "already in place (a CreateFlowLogs retried after its answer was lost" in said, said


def test_a_retried_create_flow_logs_carries_the_token_of_the_call_it_repeats(aws, fault_proxy):
    # With the same ClientToken AWS answers the retry with the first call's flow log (the emulator
    # ignores the token, so what is checked here is what goes on the wire).
    fault_proxy.add("drop", service="ec2", action="CreateFlowLogs", times=1)

    run_remediation(aws, _baseline(), controls=["flow_logs"], apply=True)

    sent = [urllib.parse.parse_qs(c.body.decode()) for c in fault_proxy.calls if c.action == "CreateFlowLogs"]
    assert len(sent) == 2, sent
    tokens = [s.get("ClientToken", [""])[0] for s in sent]
    assert tokens[0] and tokens[0] == tokens[1], tokens


def test_the_cli_whose_create_key_answer_is_lost_exits_0_with_one_enabled_key(aws, fault_proxy, tmp_path):
    _second_vpc(aws)
    cfg = tmp_path / "harden.toml"
    cfg.write_text(f'home_region = "{REGION}"\nregions = ["{REGION}"]\n')
    fault_proxy.add("drop", service="kms", action="CreateKey", times=1)

    done = subprocess.run([sys.executable, "-m", "provisioner.cli", "remediate", "-c", str(cfg), "--controls",
                           "flow_logs", "--apply"], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "300"})

    assert done.returncode == 0, done.stdout + done.stderr
    assert fault_proxy.count()[("kms", "CreateKey", "drop")] == 1
    assert "cancel-key-deletion" in " ".join(done.stdout.split())
    _assert_converged(aws)
