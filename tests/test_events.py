"""harden events allocate-address: every region at once, pages followed, a denied region reported
and the others still listed.

The emulator has no cloudtrail LookupEvents, so botocore's Stubber answers it on the session's
cached cloudtrail client of each region (it validates every request and response against the real
CloudTrail model). Everything else (STS, the regions) is the emulator.
"""

from __future__ import annotations

import json
from contextlib import ExitStack, contextmanager
from datetime import datetime, timedelta, timezone
from itertools import count
from pathlib import Path

from botocore.stub import ANY, Stubber
from typer.testing import CliRunner

from provisioner import cli
from provisioner.baseline import parse_baseline
from provisioner.controls.eip import ADDRESS_EVENT_NAMES
from provisioner.eip import list_address_events

REGION, DENIED = "eu-west-1", "us-west-2"
ACCOUNT = "123456789012"  # the emulator's account
NOW = datetime(2024, 5, 10, 12, 0, tzinfo=timezone.utc)
APPROVED = f"arn:aws:iam::{ACCOUNT}:role/NetworkAdmin"

_ids = count(1)


# -- CloudTrail records as LookupEvents returns them (shared with test_respond) -----------------

def user_identity(name: str = "mallory") -> dict:
    return {"type": "IAMUser", "principalId": "AIDAEXAMPLE", "arn": f"arn:aws:iam::{ACCOUNT}:user/{name}",
            "accountId": ACCOUNT, "userName": name}


def role_identity(role: str = "NetworkAdmin", path: str = "/", session: str = "alice", issuer: bool = True) -> dict:
    identity = {"type": "AssumedRole", "principalId": f"AROAEXAMPLE:{session}",
                "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{session}", "accountId": ACCOUNT}
    if issuer:
        identity["sessionContext"] = {"sessionIssuer": {"type": "Role", "principalId": "AROAEXAMPLE",
                                                        "arn": f"arn:aws:iam::{ACCOUNT}:role{path}{role}",
                                                        "accountId": ACCOUNT, "userName": role}}
    return identity


def cloudtrail_event(identity: dict, *, name: str = "AllocateAddress", region: str = REGION,
                     ip: str = "198.51.100.7", allocation_id: str | None = None, error: str | None = None,
                     when: datetime = NOW - timedelta(hours=1), agent: str = "aws-cli/2.15.0",
                     source_ip: str = "203.0.113.99", request: dict | None = None,
                     response: dict | None = None) -> dict:
    n = next(_ids)
    record = {
        "eventVersion": "1.09", "userIdentity": identity, "eventTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": "ec2.amazonaws.com", "eventName": name, "awsRegion": region,
        "sourceIPAddress": source_ip, "userAgent": agent,
        "requestParameters": request if request is not None else {"domain": "vpc"},
        "responseElements": None if error else (response or {
            "publicIp": ip, "allocationId": allocation_id or f"eipalloc-{n:017x}", "domain": "vpc"}),
        "eventID": f"00000000-0000-0000-0000-{n:012d}", "eventType": "AwsApiCall", "recipientAccountId": ACCOUNT,
    }
    if error:
        record.update(errorCode=error, errorMessage="You are not authorized to perform this operation.")
    return {"EventId": record["eventID"], "EventName": name, "EventTime": when,
            "EventSource": "ec2.amazonaws.com", "CloudTrailEvent": json.dumps(record)}


def _params(name: str, token: str | None, start=ANY, end=ANY) -> dict:
    params = {"LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": name}],
              "StartTime": start, "EndTime": end}
    if token:
        params["NextToken"] = token
    return params


def add_history(stub: Stubber, pages_by_name: dict[str, list[list[dict]]], start=ANY, end=ANY,
                names: tuple[str, ...] = ADDRESS_EVENT_NAMES) -> None:
    """Queue one region's answers: for each event name, its pages (NextToken between them)."""
    for name in names:
        pages = pages_by_name.get(name) or [[]]
        for i, page in enumerate(pages):
            response: dict = {"Events": page}
            if i + 1 < len(pages):
                response["NextToken"] = f"{name}-{i + 1}"
            stub.add_response("lookup_events", response, _params(name, f"{name}-{i}" if i else None, start, end))


@contextmanager
def history(aws, by_region: dict[str, dict | None], start=ANY, end=ANY,
            names: dict[str, tuple[str, ...]] | None = None, denials: dict[str, int] | None = None):
    """Stub LookupEvents per region: a dict of pages, or None for a region that denies it. `names`:
    the event names each region is asked for, in order (default: the address events); `denials`:
    how many separate look-ups a denying region answers (default one)."""
    with ExitStack() as stack:
        stubs = []
        for region, pages in by_region.items():
            stub = stack.enter_context(Stubber(aws.client("cloudtrail", region)))
            if pages is None:
                for _ in range((denials or {}).get(region, 1)):
                    stub.add_client_error("lookup_events", "AccessDeniedException",
                                          "User is not authorized to perform: cloudtrail:LookupEvents",
                                          http_status_code=400)
            else:
                add_history(stub, pages, start, end, (names or {}).get(region, ADDRESS_EVENT_NAMES))
            stubs.append(stub)
        yield
        for stub in stubs:
            stub.assert_no_pending_responses()


# -- the listing ----------------------------------------------------------------------------------

def _incident() -> dict:
    mallory = user_identity()
    return {
        "AllocateAddress": [
            [cloudtrail_event(mallory, ip="198.51.100.1", when=NOW - timedelta(hours=3), agent="python-requests/2.31"),
             cloudtrail_event(role_identity(), ip="198.51.100.2", when=NOW - timedelta(hours=5))],
            [cloudtrail_event(mallory, error="Client.AddressLimitExceeded", when=NOW - timedelta(hours=2))],
        ],
        "EnableAddressTransfer": [[cloudtrail_event(
            mallory, name="EnableAddressTransfer", when=NOW - timedelta(hours=1),
            request={"EnableAddressTransferRequest": {"AllocationId": "eipalloc-0bbb",
                                                      "TransferAccountId": "210987654321"}},
            response={"EnableAddressTransferResponse": {"addressTransfer": {
                "publicIp": "198.51.100.1", "allocationId": "eipalloc-0bbb", "transferAccountId": "210987654321",
                "addressTransferStatus": "pending"}}})]],
    }


def _baseline(**allocate_address):
    return parse_baseline({"regions": [REGION, DENIED], "home_region": REGION,
                           "allocate_address": {"allowed_principals": [APPROVED], **allocate_address}})


def test_every_page_of_every_region_and_a_denied_region(aws):
    start = NOW - timedelta(days=7)
    with history(aws, {REGION: _incident(), DENIED: None}, start, NOW):
        listing = list_address_events(aws, _baseline(), since=timedelta(days=7), now=NOW)

    assert listing.regions == [REGION, DENIED]
    assert set(listing.errors) == {DENIED}
    assert "access denied calling LookupEvents (AccessDeniedException)" in listing.errors[DENIED]
    assert listing.exit_code() == 3
    rows = [(r.event.event_name, r.event.principal.rsplit(":", 1)[1], r.event.public_ip, r.event.error_code,
             r.allowed) for r in listing.rows]
    assert rows == [  # oldest first, across pages and event names
        ("AllocateAddress", "role/NetworkAdmin", "198.51.100.2", None, True),
        ("AllocateAddress", "user/mallory", "198.51.100.1", None, False),
        ("AllocateAddress", "user/mallory", None, "Client.AddressLimitExceeded", False),
        ("EnableAddressTransfer", "user/mallory", "198.51.100.1", None, False),
    ]
    first = listing.rows[1].to_dict()
    assert first["source_ip"] == "203.0.113.99" and first["user_agent"] == "python-requests/2.31"
    assert first["region"] == REGION and first["allow_list_entry"] is None
    assert listing.rows[0].to_dict()["allow_list_entry"] == APPROVED
    assert listing.rows[3].event.transfer_account_id == "210987654321"
    assert listing.to_dict()["window"] == {"start": start.isoformat(), "end": NOW.isoformat()}


def test_allowed_principal_outside_the_allowed_regions_is_flagged(aws):
    with history(aws, {REGION: {"AllocateAddress": [[cloudtrail_event(role_identity())]]}}):
        listing = list_address_events(aws, _baseline(allowed_regions=["eu-central-1"]), since=timedelta(days=1),
                                      regions=[REGION], now=NOW)
    (row,) = listing.rows
    assert row.allowed is True and row.region_allowed is False
    assert listing.exit_code() == 0


# -- the command ----------------------------------------------------------------------------------

def _invoke(aws, monkeypatch, tmp_path: Path, *args: str):
    # The command's session is the test's, so the Stubbers on its cached clients answer.
    monkeypatch.setattr(cli, "_aws_session", lambda *a, **k: aws)
    config = tmp_path / "harden.toml"
    config.write_text(f'home_region = "{REGION}"\nregions = ["{REGION}", "{DENIED}"]\n'
                      f'[allocate_address]\nallowed_principals = ["{APPROVED}"]\n')
    return CliRunner().invoke(cli.app, ["events", "allocate-address", "-c", str(config), *args])


def test_command_json_lists_the_readable_regions_and_exits_3(aws, monkeypatch, tmp_path):
    with history(aws, {REGION: _incident(), DENIED: None}):
        result = _invoke(aws, monkeypatch, tmp_path, "--format", "json", "--since", "2d")
    assert result.exit_code == 3, result.stderr
    doc = json.loads(result.stdout)
    assert [e["allow_listed"] for e in doc["events"]] == [True, False, False, False]
    assert list(doc["errors"]) == [DENIED]
    end = datetime.fromisoformat(doc["window"]["end"])
    assert end - datetime.fromisoformat(doc["window"]["start"]) == timedelta(days=2)
    assert f"could not read {DENIED}: access denied calling LookupEvents" in result.stderr


def test_command_table_names_who_is_outside_the_allow_list(aws, monkeypatch, tmp_path):
    with history(aws, {REGION: _incident(), DENIED: {}}):
        result = _invoke(aws, monkeypatch, tmp_path)
    assert result.exit_code == 0, result.stderr
    assert "Elastic IP allocations and transfers" in result.stdout
    assert f"1 principal(s) outside the allow-list: arn:aws:iam::{ACCOUNT}:user/mallory" in result.stdout


def test_bad_since_is_one_line_and_exit_2(aws, monkeypatch, tmp_path):
    result = _invoke(aws, monkeypatch, tmp_path, "--since", "1y")
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == ["error: --since '1y': expected a number and a unit, such as "
                                                  "30m, 12h, 7d or 2w"]
