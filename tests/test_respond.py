"""harden respond against the emulator's IAM: the dry run writes nothing, --apply does exactly
what it printed, a second run has nothing to do (users), refusals touch nothing.

The principal's allocations come from CloudTrail LookupEvents, which the emulator lacks: the
Stubber answers it (validated against the real CloudTrail model), as in test_events.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

import boto3
import pytest
from typer.testing import CliRunner

from provisioner import cli
from provisioner.aws import AwsSession
from provisioner.baseline import parse_baseline
from provisioner.respond import Refused, deny_all_document, respond
from provisioner.controls.eip import ADDRESS_EVENT_NAMES
from tests.test_events import cloudtrail_event, history, role_identity, user_identity

REGION = "eu-west-1"
ACCOUNT = "123456789012"
MALLORY = f"arn:aws:iam::{ACCOUNT}:user/mallory"


GLOBAL = "us-east-1"  # AssumeRole through the global STS endpoint is recorded there


def respond_history(aws, by_region: dict[str, dict | None], assumed: dict[str, dict] | None = None):
    """The event history respond reads: in REGION the address events then AssumeRole, in the
    partition's global STS Region AssumeRole only (`assumed` gives that Region's pages)."""
    return history(aws, {**by_region, GLOBAL: (assumed or {}).get(GLOBAL, {})},
                   names={REGION: (*ADDRESS_EVENT_NAMES, "AssumeRole"), GLOBAL: ("AssumeRole",)},
                   denials={REGION: 2})


def assume_role_event(identity: dict, role_arn: str, *, error: str | None = None, region: str = REGION) -> dict:
    raw = cloudtrail_event(identity, name="AssumeRole", region=region, error=error,
                           request={"roleArn": role_arn, "roleSessionName": "s1"},
                           response={"assumedRoleUser": {"arn": "x", "assumedRoleId": "AROAEXAMPLE:s1"}})
    record = json.loads(raw["CloudTrailEvent"])
    record["eventSource"] = raw["EventSource"] = "sts.amazonaws.com"
    return {**raw, "CloudTrailEvent": json.dumps(record)}


def _baseline(**sections):
    return parse_baseline({"regions": [REGION], "home_region": REGION, **sections})


def _iam_state(aws) -> dict:
    """Everything respond could change: keys and their status, inline policies and their text."""
    iam = aws.client("iam")
    state: dict = {}
    for user in iam.list_users()["Users"]:
        name = user["UserName"]
        state[f"user/{name}"] = {
            "keys": sorted((k["AccessKeyId"], k["Status"]) for k in iam.list_access_keys(UserName=name)["AccessKeyMetadata"]),
            "policies": {p: iam.get_user_policy(UserName=name, PolicyName=p)["PolicyDocument"]
                         for p in iam.list_user_policies(UserName=name)["PolicyNames"]},
        }
    for role in iam.list_roles()["Roles"]:
        name = role["RoleName"]
        state[f"role/{name}"] = {p: iam.get_role_policy(RoleName=name, PolicyName=p)["PolicyDocument"]
                                 for p in iam.list_role_policies(RoleName=name)["PolicyNames"]}
    return state


def _user(aws, name: str, active: int = 2, inactive: int = 0) -> list[str]:
    iam = aws.client("iam")
    iam.create_user(UserName=name)
    keys = [iam.create_access_key(UserName=name)["AccessKey"]["AccessKeyId"] for _ in range(active + inactive)]
    for key in keys[active:]:
        iam.update_access_key(UserName=name, AccessKeyId=key, Status="Inactive")
    return keys


def _role(aws, name: str, path: str = "/") -> str:
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                      "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}}]}
    return aws.client("iam").create_role(RoleName=name, Path=path,
                                         AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]


# -- IAM users ------------------------------------------------------------------------------------

def test_user_dry_run_then_apply_exactly_what_was_printed_then_nothing_to_do(aws):
    active = _user(aws, "mallory", active=2)  # IAM's limit: two keys per user
    _user(aws, "bob", active=1)
    ec2 = aws.client("ec2", REGION)
    taken = ec2.allocate_address(Domain="vpc")
    events = {"AllocateAddress": [[
        cloudtrail_event(user_identity("mallory"), ip=taken["PublicIp"], allocation_id=taken["AllocationId"]),
        cloudtrail_event(user_identity("bob"), ip="198.51.100.77"),
        cloudtrail_event(user_identity("mallory"), error="Client.UnauthorizedOperation"),
    ]]}
    baseline = _baseline()
    before = _iam_state(aws)

    with respond_history(aws, {REGION: events}):
        dry = respond(aws, baseline, MALLORY)
    assert _iam_state(aws) == before  # the dry run wrote nothing
    assert [r.status for r in dry.results] == ["planned"] * 3 and dry.exit_code() == 1
    assert [s.undo for s in dry.steps] == [
        "aws iam delete-user-policy --user-name mallory --policy-name harden-quarantine",
        *(f"aws iam update-access-key --user-name mallory --access-key-id {k} --status Active" for k in active)]
    assert [s.action.calls for s in dry.steps] == [["iam:PutUserPolicy"], ["iam:UpdateAccessKey"],
                                                   ["iam:UpdateAccessKey"]]
    # Its own successful allocation only, with where the address is now and how to release it.
    assert [(a.event.allocation_id, a.state) for a in dry.allocations] == [(taken["AllocationId"], "unassociated")]
    assert dry.to_dict()["release_commands"] == [
        f"harden eip release --regions {REGION} --allocation-ids {taken['AllocationId']}"]

    with respond_history(aws, {REGION: events}):
        applied = respond(aws, baseline, MALLORY, apply=True)
    assert [r.status for r in applied.results] == ["applied"] * 3 and applied.exit_code() == 0
    after = _iam_state(aws)
    assert after["user/mallory"]["policies"] == {"harden-quarantine": deny_all_document()}
    assert deny_all_document() == {"Version": "2012-10-17", "Statement": [
        {"Sid": "HardenQuarantineDenyAll", "Effect": "Deny", "Action": "*", "Resource": "*"}]}
    assert {status for _, status in after["user/mallory"]["keys"]} == {"Inactive"}
    assert after["user/bob"] == before["user/bob"]  # only the principal is touched

    with respond_history(aws, {REGION: {}}):
        again = respond(aws, baseline, MALLORY, apply=True)
    assert again.steps == [] and again.exit_code() == 0
    assert _iam_state(aws) == after


# -- IAM roles ------------------------------------------------------------------------------------

def test_role_named_by_a_session_gets_its_older_sessions_revoked(aws):
    role_arn = _role(aws, "NetworkBot", path="/ops/")
    session = f"arn:aws:sts::{ACCOUNT}:assumed-role/NetworkBot/i-0abc"
    # An event without sessionIssuer: the role ARN is rebuilt without its /ops/ path.
    events = {"AllocateAddress": [[cloudtrail_event(role_identity("NetworkBot", session="i-0abc", issuer=False))]]}
    before = _iam_state(aws)

    with respond_history(aws, {REGION: events}):
        dry = respond(aws, _baseline(), session)
    assert _iam_state(aws) == before
    assert dry.principal.arn == role_arn and dry.principal.session_arn == session
    (step,) = dry.steps
    assert "harden-revoke-sessions on role NetworkBot" in step.action.description
    assert step.undo == "aws iam delete-role-policy --role-name NetworkBot --policy-name harden-revoke-sessions"
    assert len(dry.allocations) == 1 and dry.allocations[0].state == "released"  # never in the emulator

    started = datetime.now(timezone.utc).replace(microsecond=0)
    with respond_history(aws, {REGION: {}}):
        applied = respond(aws, _baseline(), session, apply=True)
    ended = datetime.now(timezone.utc)
    assert [r.status for r in applied.results] == ["applied"]
    document = _iam_state(aws)["role/NetworkBot"]["harden-revoke-sessions"]
    (statement,) = document["Statement"]
    cutoff = datetime.strptime(statement["Condition"]["DateLessThan"]["aws:TokenIssueTime"],
                               "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    assert started <= cutoff <= ended  # "now", taken when applied
    assert {k: statement[k] for k in ("Effect", "Action", "Resource")} == {"Effect": "Deny", "Action": "*",
                                                                         "Resource": "*"}
    assert applied.results[0].detail["policy"] == document  # what it reported is what IAM holds

    # Not a no-op by design: sessions started after the first run are live, so a second run
    # proposes moving the cut-off, and says from where.
    with respond_history(aws, {REGION: {}}):
        again = respond(aws, _baseline(), session)
    assert f"moves the previous cut-off {cutoff:%Y-%m-%dT%H:%M:%SZ}" in again.steps[0].action.description


# -- sessions of roles it assumed ---------------------------------------------------------------

def test_user_response_lists_the_roles_whose_sessions_outlive_the_quarantine(aws, monkeypatch, tmp_path):
    """A role session is authorized by the role's policies: the user's deny-all does not end the
    sessions it already got from AssumeRole. respond lists those roles and how to revoke them."""
    _user(aws, "mallory", active=1)
    admin, other_account = f"arn:aws:iam::{ACCOUNT}:role/Admin", "arn:aws:iam::210987654321:role/OrgAudit"
    events = {"AssumeRole": [[
        assume_role_event(user_identity("mallory"), admin),
        assume_role_event(user_identity("mallory"), f"arn:aws:iam::{ACCOUNT}:role/Prod", error="AccessDenied"),
        assume_role_event(user_identity("bob"), f"arn:aws:iam::{ACCOUNT}:role/Other"),
    ]]}
    # Through the global STS endpoint: recorded in us-east-1, outside the baseline's Regions.
    global_events = {GLOBAL: {"AssumeRole": [[assume_role_event(user_identity("mallory"), other_account,
                                                                region=GLOBAL)]]}}
    with respond_history(aws, {REGION: events}, global_events):
        resp = respond(aws, _baseline(), MALLORY, apply=True)
    assert [r.status for r in resp.results] == ["applied", "applied"]
    assert sorted(r.role_arn for r in resp.assumed_roles) == [admin, other_account]  # not the failed one, not bob's
    assert {r.role_arn: r.regions for r in resp.assumed_roles} == {admin: (REGION,), other_account: (GLOBAL,)}
    doc = resp.to_dict()
    # Only a role of this account can be revoked from here; the user itself is never in the list.
    assert doc["revoke_commands"] == [f"harden respond --principal {admin}"]
    assert "not the sessions of roles it assumed" in doc["note"]

    monkeypatch.setattr(cli, "_aws_session", lambda *a, **k: aws)
    config = tmp_path / "harden.toml"
    config.write_text(f'home_region = "{REGION}"\nregions = ["{REGION}"]\n')
    with respond_history(aws, {REGION: events}, global_events):
        shown = CliRunner().invoke(cli.app, ["respond", "-c", str(config), "--principal", MALLORY])
    text = " ".join(shown.stdout.split())
    assert "roles it assumed (their sessions are still live)" in text
    assert f"to revoke its sessions: harden respond --principal {admin}" in text


def test_role_response_lists_the_roles_its_sessions_chained_into(aws):
    _role(aws, "NetworkBot", path="/ops/")
    db_admin = f"arn:aws:iam::{ACCOUNT}:role/DbAdmin"
    # A chained AssumeRole whose record lost the issuer: matched by the role's name.
    events = {"AssumeRole": [[assume_role_event(role_identity("NetworkBot", session="i-0abc", issuer=False), db_admin),
                              assume_role_event(role_identity("SomeoneElse"), f"arn:aws:iam::{ACCOUNT}:role/X")]]}
    with respond_history(aws, {REGION: events}):
        resp = respond(aws, _baseline(), f"arn:aws:iam::{ACCOUNT}:role/ops/NetworkBot")
    assert [r.role_arn for r in resp.assumed_roles] == [db_admin]
    assert resp.to_dict()["revoke_commands"] == [f"harden respond --principal {db_admin}"]


# -- refusals -------------------------------------------------------------------------------------

REFUSED_SHAPES = [
    (f"arn:aws:iam::{ACCOUNT}:root", "the account root cannot be quarantined"),
    ("arn:aws:iam::210987654321:user/mallory", "is in account 210987654321, not in this account"),
    (f"arn:aws:sts::{ACCOUNT}:federated-user/mallory", "respond to that IAM user"),
    (f"arn:aws:iam::{ACCOUNT}:user/nobody", "no IAM user named 'nobody'"),
    (f"arn:aws:iam::{ACCOUNT}:user/team/mallory", "the user named 'mallory' is " + MALLORY),
    (f"arn:aws:iam::{ACCOUNT}:group/admins", "expected an IAM user or role ARN"),
    ("mallory", "expected an IAM user or role ARN"),
]


def test_refused_shapes_touch_nothing(aws):
    # One emulated account for all cases: each reset reloads IAM's managed policies (~1 s).
    _user(aws, "mallory", active=1)
    before = _iam_state(aws)
    for principal, reason in REFUSED_SHAPES:
        with pytest.raises(Refused, match=reason):
            respond(aws, _baseline(), principal, apply=True)
    assert _iam_state(aws) == before


def test_service_linked_role_is_refused(aws):
    arn = aws.client("iam").create_service_linked_role(AWSServiceName="elasticloadbalancing.amazonaws.com")["Role"]["Arn"]
    with pytest.raises(Refused, match="is a service-linked role"):
        respond(aws, _baseline(), arn, apply=True)


@pytest.mark.parametrize("section, pattern", [
    ("scp", {"admin_principals": [f"arn:aws:iam::{ACCOUNT}:role/pipeline/*"]}),
    ("allocate_address", {"allowed_principals": [f"arn:aws:iam::{ACCOUNT}:role/*/Deployer"]}),
])
def test_listed_principals_need_force(aws, section, pattern):
    _role(aws, "Deployer", path="/pipeline/")
    role = f"arn:aws:iam::{ACCOUNT}:role/pipeline/Deployer"
    baseline = _baseline(**{section: pattern})
    before = _iam_state(aws)
    # Named by its ARN, or by a session's ARN (what a CloudTrail event shows): the role is matched
    # against the allow-list, as aws:PrincipalArn is.
    for given in (role, f"arn:aws:sts::{ACCOUNT}:assumed-role/Deployer/ci-run-77"):
        with pytest.raises(Refused, match=f"is in {section}.*pass --force"):
            respond(aws, baseline, given, apply=True)
    assert _iam_state(aws) == before
    with respond_history(aws, {REGION: {}}):
        forced = respond(aws, baseline, role, apply=True, force=True)
    assert [r.status for r in forced.results] == ["applied"]
    assert "harden-revoke-sessions" in _iam_state(aws)["role/Deployer"]


def test_the_identity_harden_runs_as_is_refused(aws):
    _role(aws, "Responder")
    creds = aws.client("sts").assume_role(RoleArn=f"arn:aws:iam::{ACCOUNT}:role/Responder",
                                          RoleSessionName="me")["Credentials"]
    as_role = AwsSession(region="us-east-1", max_attempts=2, session=boto3.Session(
        aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"], region_name="us-east-1"))
    with pytest.raises(Refused, match="harden is running as .*role/Responder"):
        respond(as_role, _baseline(), f"arn:aws:iam::{ACCOUNT}:role/Responder", apply=True)


# -- best effort and the command ------------------------------------------------------------------

def test_unreadable_event_history_does_not_stop_the_response(aws):
    _user(aws, "mallory", active=1)
    with respond_history(aws, {REGION: None}):
        resp = respond(aws, _baseline(), MALLORY, apply=True)
    assert [r.status for r in resp.results] == ["applied", "applied"]
    assert "access denied calling LookupEvents" in resp.lookup_errors[REGION]
    assert "access denied calling LookupEvents" in resp.role_lookup_errors[REGION]
    assert resp.exit_code() == 0


def _invoke(aws, monkeypatch, tmp_path, *args: str):
    monkeypatch.setattr(cli, "_aws_session", lambda *a, **k: aws)  # so the Stubber answers
    config = tmp_path / "harden.toml"
    config.write_text(f'home_region = "{REGION}"\nregions = ["{REGION}"]\n'
                      f'[allocate_address]\nallowed_principals = ["{MALLORY}"]\n')
    return CliRunner().invoke(cli.app, ["respond", "-c", str(config), *args])


def test_command_prints_the_plan_and_the_undo_commands(aws, monkeypatch, tmp_path):
    key, _ = _user(aws, "eve", active=1, inactive=1)  # the inactive key is not a step
    eve = f"arn:aws:iam::{ACCOUNT}:user/eve"
    before = _iam_state(aws)
    with respond_history(aws, {REGION: None}):
        dry = _invoke(aws, monkeypatch, tmp_path, "--principal", eve)
    assert dry.exit_code == 1, dry.stderr
    assert "dry run: nothing was changed" in " ".join(dry.stdout.split())
    assert f"aws iam update-access-key --user-name eve --access-key-id {key} --status Active" in dry.stdout
    assert "aws iam delete-user-policy --user-name eve --policy-name harden-quarantine" in dry.stdout
    assert f"allocations unknown (event history unreadable) in {REGION}" in dry.stderr
    assert _iam_state(aws) == before

    with respond_history(aws, {REGION: {}}):
        applied = _invoke(aws, monkeypatch, tmp_path, "--principal", eve, "--apply", "--format", "json")
    assert applied.exit_code == 0, applied.stderr
    doc = json.loads(applied.stdout)
    assert [(s["calls"], s["status"]) for s in doc["steps"]] == [(["iam:PutUserPolicy"], "applied"),
                                                                 (["iam:UpdateAccessKey"], "applied")]
    assert doc["steps"][1]["undo"].endswith(f"--access-key-id {key} --status Active")


def test_command_refusal_is_one_line_and_exit_2(aws, monkeypatch, tmp_path):
    _user(aws, "mallory", active=1)
    before = _iam_state(aws)
    result = _invoke(aws, monkeypatch, tmp_path, "--principal", MALLORY, "--apply")
    assert result.exit_code == 2 and result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: respond: {MALLORY} is in allocate_address.allowed_principals")
    assert _iam_state(aws) == before


def test_the_revocation_cut_off_is_aws_time_not_this_machines(aws):
    """aws:TokenIssueTime is AWS's clock: a local clock running behind would leave the sessions
    issued in the gap alive."""
    from botocore.stub import Stubber

    from provisioner.respond import aws_now

    with Stubber(aws.client("iam")) as stub:
        stub.add_response("get_account_summary", {
            "SummaryMap": {}, "ResponseMetadata": {"HTTPHeaders": {"date": "Tue, 01 Jan 2030 00:00:05 GMT"}}})
        assert aws_now(aws) == datetime(2030, 1, 1, 0, 0, 5, tzinfo=timezone.utc)
    with Stubber(aws.client("iam")) as stub:  # no answer from IAM: this machine's clock
        stub.add_client_error("get_account_summary", "AccessDenied", http_status_code=403)
        before = datetime.now(timezone.utc)
        assert before <= aws_now(aws) <= datetime.now(timezone.utc)
