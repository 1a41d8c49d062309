"""Two harden runs at the same time, as real processes against the emulator (forked by the
zygote of tests/fault_cli.py), made to meet at the worst moment with a barrier or a pause."""

from __future__ import annotations

import json

import botocore.exceptions

from provisioner.baseline import parse_baseline
from provisioner.converge import KEY_TAG
from provisioner.remediate import run_remediation
from tests.test_migrate import _devices, _key, _no_default_amis  # noqa: F401 (autouse)
from tests.test_migrate_faults import REGION, _check_invariants, _config, _two_volume_instance

TOPIC_ALIAS = "alias/harden-security-alarms"


def _keys(aws) -> list[dict]:
    kms = aws.client("kms", REGION)
    out = []
    for key in kms.list_keys()["Keys"]:
        meta = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]
        tags = {t["TagKey"]: t["TagValue"] for t in kms.list_resource_tags(KeyId=key["KeyId"])["Tags"]}
        aliases = [a["AliasName"] for a in kms.list_aliases(KeyId=key["KeyId"])["Aliases"]]
        out.append({"id": key["KeyId"], "state": meta["KeyState"], "tags": tags, "aliases": aliases})
    return out


def _launch_running(aws) -> str:
    return aws.client("ec2", REGION).run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1,
                                                   InstanceType="t3.micro")["Instances"][0]["InstanceId"]


def test_two_remediate_runs_at_once_leave_one_enabled_key_per_alias(aws, tmp_path, zygote):
    _launch_running(aws)
    cfg = _config(tmp_path)
    (tmp_path / "barrier").mkdir()
    remediate = ["remediate", "-c", str(cfg), "--controls", "alarms.cpu", "--apply", "--format", "json"]
    # Both reach CreateKey together: both create a key, then race for the alias.
    both = zygote.run_together([(remediate, {"HARDEN_FAULT_BARRIER": f"CreateKey:{tmp_path / 'barrier'}:2"})] * 2)

    assert [answer for answer, _, _ in both] == [{"code": 0}, {"code": 0}], [err for _, _, err in both]
    keys = _keys(aws)
    assert len(keys) == 2
    enabled = [k for k in keys if k["state"] == "Enabled"]
    assert [k["aliases"] for k in enabled] == [[TOPIC_ALIAS]]           # no enabled key without its alias
    (loser,) = [k for k in keys if k["state"] == "PendingDeletion"]
    assert loser["tags"][KEY_TAG] == TOPIC_ALIAS and loser["aliases"] == []
    said = " ".join(out for _, out, _ in both)
    assert "scheduled the deletion of the redundant new key" in said and loser["id"] in said
    topics = aws.client("sns", REGION).list_topics()["Topics"]
    assert len(topics) == 1


def _baseline():
    return parse_baseline({"regions": [REGION], "home_region": REGION})


def test_a_key_left_without_its_alias_is_adopted_and_a_lookalike_is_not(aws):
    _launch_running(aws)
    kms = aws.client("kms", REGION)
    # Someone's key tagged as if harden had made it, with a policy of their own: never adopted.
    lookalike = kms.create_key(Description="theirs", Tags=[{"TagKey": KEY_TAG, "TagValue": TOPIC_ALIAS}])
    fired = []

    def fail_once(**_kwargs):
        if not fired:
            fired.append(True)
            raise botocore.exceptions.ClientError({"Error": {"Code": "InternalError", "Message": "injected"}},
                                                  "CreateAlias")

    kms.meta.events.register("before-call.kms.CreateAlias", fail_once)
    try:
        first = run_remediation(aws, _baseline(), controls=["alarms.cpu"], apply=True)
    finally:
        kms.meta.events.unregister("before-call.kms.CreateAlias", fail_once)
    failed = [r for r in first.results if r.status == "failed"]
    assert failed and "the key is kept, tagged harden:key-for=" in failed[0].message and "a re-run adopts it" \
        in failed[0].message
    made = [k for k in _keys(aws) if k["id"] != lookalike["KeyMetadata"]["KeyId"]]
    assert len(made) == 1 and made[0]["aliases"] == []

    second = run_remediation(aws, _baseline(), controls=["alarms.cpu"], apply=True)

    assert second.exit_code() == 0, [r.message for r in second.results]
    assert any("adopted" in r.message for r in second.results), [r.message for r in second.results]
    keys = {k["id"]: k for k in _keys(aws)}
    assert len(keys) == 2                                           # nothing new was created
    assert keys[made[0]["id"]]["aliases"] == [TOPIC_ALIAS]
    assert keys[lookalike["KeyMetadata"]["KeyId"]]["aliases"] == []


def test_two_migrations_at_once_never_both_act_on_an_instance(aws, tmp_path, zygote):
    _key(aws)
    cfg = _config(tmp_path)
    instance_id = _two_volume_instance(aws)
    before = _devices(aws, instance_id)
    (tmp_path / "barrier").mkdir()
    migrate = ["ebs", "migrate", "-c", str(cfg), "--apply", "--format", "json"]
    # Both take the instance's lock at the same moment (their first CreateTags is the lock).
    both = zygote.run_together([(migrate, {"HARDEN_FAULT_BARRIER": f"CreateTags:{tmp_path / 'barrier'}:2"})] * 2)

    reports = [json.loads(out) for _, out, _ in both]
    outcomes = sorted({v["status"] for v in r["volumes"]}.pop() for r in reports)
    assert outcomes in (["busy", "busy"], ["busy", "migrated"]), reports   # never both
    for report in reports:
        for v in report["volumes"]:
            if v["status"] == "busy":
                assert "another harden run is migrating this instance" in v["message"]
                assert "backed off, nothing changed" in v["message"]
    if outcomes == ["busy", "busy"]:  # both stepped back: nothing was made; a re-run goes ahead
        assert zygote.run(*migrate)[0] == {"code": 0}
    _check_invariants(aws, instance_id, before, "running")


def test_a_migration_backs_off_an_instance_another_run_holds(aws, tmp_path, zygote):
    _key(aws)
    cfg = _config(tmp_path)
    instance_id = _two_volume_instance(aws)
    before = _devices(aws, instance_id)
    hold = tmp_path / "hold"
    migrate = ["ebs", "migrate", "-c", str(cfg), "--apply", "--format", "json"]
    # The first run swaps every volume, then waits before starting the instance again (holding
    # its lock) until the second run, which starts only then, has finished.
    first, second = zygote.run_together([
        (migrate, {"HARDEN_FAULT_PAUSE": f"StartInstances:{hold}"}),
        (migrate, {"HARDEN_FAULT_PAUSE": f"GetCallerIdentity:{hold}.reached", "HARDEN_FAULT_DONE": str(hold)}),
    ])

    assert first[0] == {"code": 0}, first[2]
    assert second[0] == {"code": 1}, second[2]
    (busy,) = json.loads(second[1])["volumes"]
    assert busy["status"] == "busy" and busy["instance"] == instance_id
    assert "another harden run is migrating this instance: run " in busy["message"]
    assert {v["status"] for v in json.loads(first[1])["volumes"]} == {"migrated"}
    _check_invariants(aws, instance_id, before, "running")


def test_a_lock_is_taken_over_only_from_a_run_that_is_provably_gone():
    import os
    import socket
    from datetime import datetime, timedelta, timezone

    from provisioner.instance_lock import LOCK_PREFIX, Holder

    now = datetime.now(timezone.utc)
    me = socket.gethostname()
    recent = (now - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    old = (now - timedelta(hours=7)).strftime("%Y-%m-%dT%H:%M:%SZ")

    def dead(value: str):
        return Holder.parse(LOCK_PREFIX + "abc", value).dead(now, 6 * 3600)

    assert dead(f"{me} {os.getpid()} {recent}") is None                  # this very process: alive
    assert dead(f"other-host 1 {recent}") is None                          # elsewhere, recent: live
    assert "no longer running" in dead(f"{me} 4194304 {recent}")           # no such pid here
    assert "has not renewed its lock" in dead(f"other-host 1 {old}")
