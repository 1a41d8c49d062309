"""eip.* : idle addresses against the emulator; allocation events through a Stubber.

The emulator has no cloudtrail LookupEvents: the allocation tests put botocore's Stubber on the
session's cached cloudtrail client (it checks each request and response against the real
CloudTrail service model). The check makes no other cloudtrail call.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from botocore.stub import Stubber

from provisioner.baseline import parse_baseline
from provisioner.controls import CheckContext
from provisioner.controls.eip import (
    ADDRESS_EVENT_NAMES,
    allocation_events,
    allocations,
    arn_like,
    unassociated,
)

REGION = "eu-west-1"
ACCOUNT = "123456789012"  # the emulator's account
NOW = datetime(2024, 5, 10, 12, 0, tzinfo=timezone.utc)
SINCE = NOW - timedelta(days=7)


def _ctx(aws, baseline=None, control_id="eip.allocations", region=REGION):
    return CheckContext(aws=aws, baseline=baseline or parse_baseline({}), region=region,
                        account_id=aws.account_id(), control_id=control_id, since=SINCE, now=NOW)


# -- eip.unassociated ----------------------------------------------------------------------------

def _eni(ec2):
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    return ec2.create_network_interface(SubnetId=subnet)["NetworkInterface"]["NetworkInterfaceId"]


def _tag(ec2, allocation_id, key, value):
    ec2.create_tags(Resources=[allocation_id], Tags=[{"Key": key, "Value": value}])


def test_unassociated_addresses_fail_unless_kept(aws):
    ec2 = aws.client("ec2", REGION)
    used, idle, kept, not_kept = (ec2.allocate_address(Domain="vpc") for _ in range(4))
    eni = _eni(ec2)
    ec2.associate_address(AllocationId=used["AllocationId"], NetworkInterfaceId=eni)
    _tag(ec2, idle["AllocationId"], "Name", "old-nat")
    _tag(ec2, kept["AllocationId"], "harden:keep", "partner allow-list entry")
    _tag(ec2, not_kept["AllocationId"], "harden:keep", "false")

    by_id = {f.resource: f for f in unassociated(_ctx(aws, control_id="eip.unassociated"))}

    assert set(by_id) == {a["AllocationId"] for a in (used, idle, kept, not_kept)}
    assert by_id[used["AllocationId"]].status == "pass"
    assert by_id[used["AllocationId"]].evidence["network_interface_id"] == eni
    fail = by_id[idle["AllocationId"]]
    assert fail.status == "fail"
    assert fail.evidence["public_ip"] == idle["PublicIp"] and fail.evidence["tags"] == {"Name": "old-nat"}
    assert fail.evidence["association_id"] is None
    assert idle["PublicIp"] in fail.message and "harden:keep" in fail.message
    note = by_id[kept["AllocationId"]]
    assert note.status == "pass" and note.evidence["kept"] is True
    assert "kept on purpose (harden:keep=partner allow-list entry)" in note.message
    assert by_id[not_kept["AllocationId"]].status == "fail"


def test_no_address_passes_for_the_region(aws):
    findings = unassociated(_ctx(aws, control_id="eip.unassociated"))
    assert [(f.status, f.resource, f.evidence) for f in findings] == [("pass", REGION, {"addresses": 0})]


# -- eip.allocations: CloudTrail records as LookupEvents returns them ----------------------------

def _role_identity(role="NetworkAdmin", path="/", session="alice", issuer=True):
    identity = {"type": "AssumedRole", "principalId": f"AROAEXAMPLE:{session}",
                "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{session}", "accountId": ACCOUNT,
                "accessKeyId": "ASIAEXAMPLE"}
    if issuer:
        identity["sessionContext"] = {"sessionIssuer": {
            "type": "Role", "principalId": "AROAEXAMPLE", "arn": f"arn:aws:iam::{ACCOUNT}:role{path}{role}",
            "accountId": ACCOUNT, "userName": role}}
    return identity


def _user_identity(name="mallory"):
    return {"type": "IAMUser", "principalId": "AIDAEXAMPLE", "arn": f"arn:aws:iam::{ACCOUNT}:user/{name}",
            "accountId": ACCOUNT, "userName": name}


_counter = iter(range(1, 10_000))


def _event(identity, *, name="AllocateAddress", region=REGION, ip="198.51.100.7", error=None,
           when=NOW - timedelta(hours=1), response=None, request=None):
    n = next(_counter)
    record = {
        "eventVersion": "1.09", "userIdentity": identity, "eventTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": "ec2.amazonaws.com", "eventName": name, "awsRegion": region,
        "sourceIPAddress": "203.0.113.99", "userAgent": "aws-cli/2.15.0 Python/3.11",
        "requestParameters": request if request is not None else {"domain": "vpc"},
        "responseElements": None if error else (response or {
            "publicIp": ip, "allocationId": f"eipalloc-{n:017x}", "domain": "vpc"}),
        "eventID": f"00000000-0000-0000-0000-{n:012d}", "readOnly": False, "eventType": "AwsApiCall",
        "managementEvent": True, "recipientAccountId": ACCOUNT, "eventCategory": "Management",
    }
    if error:
        record.update(errorCode=error, errorMessage="explicit deny in a service control policy")
    return {"EventId": record["eventID"], "EventName": name, "ReadOnly": "false", "EventTime": when,
            "EventSource": "ec2.amazonaws.com", "Resources": [], "CloudTrailEvent": json.dumps(record)}


def _lookup_params(name, token=None):
    params = {"LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": name}],
              "StartTime": SINCE, "EndTime": NOW}
    if token:
        params["NextToken"] = token
    return params


def _run(aws, events_by_name, baseline=None, region=REGION):
    """Run eip.allocations with LookupEvents answering events_by_name (a list of pages per name)."""
    ctx = _ctx(aws, baseline, region=region)
    with Stubber(aws.client("cloudtrail", region)) as stub:
        for name in ADDRESS_EVENT_NAMES:
            pages = events_by_name.get(name) or [[]]
            for i, page in enumerate(pages):
                response = {"Events": page}
                if i + 1 < len(pages):
                    response["NextToken"] = f"{name}-page-{i + 1}"
                stub.add_response("lookup_events", response,
                                  _lookup_params(name, f"{name}-page-{i}" if i else None))
        findings = allocations(ctx)
        stub.assert_no_pending_responses()
    return findings


def _baseline(principals=(), regions=()):
    return parse_baseline({"allocate_address": {"allowed_principals": list(principals),
                                                "allowed_regions": list(regions)}})


def test_allowed_role_passes(aws):
    baseline = _baseline([f"arn:aws:iam::{ACCOUNT}:role/network/NetworkAdmin"], [REGION])
    findings = _run(aws, {"AllocateAddress": [[_event(_role_identity(path="/network/"))]]}, baseline)
    assert [(f.status, f.resource) for f in findings] == [("pass", REGION)]
    allowed = findings[0].evidence["allowed_events"]
    assert allowed[0]["principal"] == f"arn:aws:iam::{ACCOUNT}:role/network/NetworkAdmin"
    assert allowed[0]["public_ip"] == "198.51.100.7"


def test_no_event_passes(aws):
    findings = _run(aws, {})
    assert findings[0].status == "pass" and "no call at all" in findings[0].message
    assert findings[0].evidence["window"] == {"start": SINCE.isoformat(), "end": NOW.isoformat()}


def test_unlisted_principal_fails_once_with_all_its_events(aws):
    baseline = _baseline([f"arn:aws:iam::{ACCOUNT}:role/NetworkAdmin"])
    mallory = _user_identity()
    events = {"AllocateAddress": [[_event(mallory, ip="198.51.100.1"), _event(mallory, ip="198.51.100.2"),
                                   _event(_role_identity())]]}
    findings = _run(aws, events, baseline)

    assert [(f.status, f.resource) for f in findings] == [("fail", f"arn:aws:iam::{ACCOUNT}:user/mallory")]
    f = findings[0]
    assert "allocated 2 Elastic IPs (198.51.100.1, 198.51.100.2)" in f.message
    assert f.evidence["reasons"] == ["principal not in allocate_address.allowed_principals"]
    first = f.evidence["events"][0]
    assert first["source_ip"] == "203.0.113.99" and first["user_agent"].startswith("aws-cli/")
    assert first["region"] == REGION and first["public_ip"] == "198.51.100.1"
    assert first["allocation_id"].startswith("eipalloc-") and first["time"].endswith("Z")


def test_empty_allow_list_means_nobody(aws):
    findings = _run(aws, {"AllocateAddress": [[_event(_role_identity())]]})
    assert findings[0].status == "fail"
    assert findings[0].resource == f"arn:aws:iam::{ACCOUNT}:role/NetworkAdmin"
    assert "(empty: nobody may allocate)" in findings[0].message


def test_role_path_must_match_like_the_scp(aws):
    # The SCP compares aws:PrincipalArn, which carries the path: /ops/NetworkAdmin is not
    # /NetworkAdmin, so verify must not let it pass either.
    baseline = _baseline([f"arn:aws:iam::{ACCOUNT}:role/NetworkAdmin"])
    findings = _run(aws, {"AllocateAddress": [[_event(_role_identity(path="/ops/"))]]}, baseline)
    assert findings[0].status == "fail"
    assert findings[0].resource == f"arn:aws:iam::{ACCOUNT}:role/ops/NetworkAdmin"


def test_session_without_issuer_matches_by_role_name(aws):
    # No sessionIssuer: the role ARN is rebuilt from the STS ARN, which has no path.
    baseline = _baseline([f"arn:aws:iam::{ACCOUNT}:role/network/NetworkAdmin"])
    ok = _run(aws, {"AllocateAddress": [[_event(_role_identity(issuer=False))]]}, baseline)
    assert ok[0].status == "pass"
    assert ok[0].evidence["allowed_events"][0]["principal"] == f"arn:aws:iam::{ACCOUNT}:role/NetworkAdmin"


def test_wildcards_are_arnlike(aws):
    baseline = _baseline([f"arn:aws:iam::{ACCOUNT}:role/net-*", f"arn:aws:iam::{ACCOUNT}:user/ops-?"])
    events = {"AllocateAddress": [[_event(_role_identity(role="net-admin")), _event(_user_identity("ops-1")),
                                   _event(_user_identity("ops-12")), _event(_role_identity(role="Net-admin"))]]}
    findings = _run(aws, events, baseline)
    assert sorted(f.resource for f in findings) == [f"arn:aws:iam::{ACCOUNT}:role/Net-admin",
                                                    f"arn:aws:iam::{ACCOUNT}:user/ops-12"]


def test_denied_attempt_is_a_finding(aws):
    findings = _run(aws, {"AllocateAddress": [[_event(_user_identity(), error="Client.UnauthorizedOperation")]]})
    f = findings[0]
    assert f.status == "fail" and "1 attempt that failed (Client.UnauthorizedOperation)" in f.message
    assert f.evidence["events"][0]["error_code"] == "Client.UnauthorizedOperation"
    assert f.evidence["events"][0]["public_ip"] is None


def test_allowed_principal_outside_allowed_regions_fails(aws):
    admin = f"arn:aws:iam::{ACCOUNT}:role/NetworkAdmin"
    baseline = _baseline([admin], ["eu-central-1"])
    findings = _run(aws, {"AllocateAddress": [[_event(_role_identity())]]}, baseline)
    assert [(f.status, f.resource) for f in findings] == [("fail", admin)]
    assert findings[0].evidence["reasons"] == [f"region {REGION} not in allocate_address.allowed_regions"]


def test_transfers_and_pages_are_read(aws):
    accept = _event(_user_identity(), name="AcceptAddressTransfer",
                    request={"AcceptAddressTransferRequest": {"Address": "192.0.2.44"}},
                    response={"AcceptAddressTransferResponse": {"addressTransfer": {
                        "publicIp": "192.0.2.44", "allocationId": "eipalloc-0aaa", "transferAccountId": ACCOUNT,
                        "addressTransferStatus": "accepted"}}})
    enable = _event(_user_identity(), name="EnableAddressTransfer",
                    request={"EnableAddressTransferRequest": {"AllocationId": "eipalloc-0bbb",
                                                              "TransferAccountId": "210987654321"}},
                    response={"EnableAddressTransferResponse": {"addressTransfer": {
                        "publicIp": "192.0.2.55", "allocationId": "eipalloc-0bbb",
                        "transferAccountId": "210987654321", "addressTransferStatus": "pending"}}})
    pages = {"AllocateAddress": [[_event(_user_identity())], [_event(_user_identity(), ip="198.51.100.9")]],
             "EnableAddressTransfer": [[enable]], "AcceptAddressTransfer": [[accept]]}
    findings = _run(aws, pages)
    assert len(findings) == 1
    events = {e["event_name"] + ":" + (e["public_ip"] or ""): e for e in findings[0].evidence["events"]}
    assert set(events) == {"AllocateAddress:198.51.100.7", "AllocateAddress:198.51.100.9",
                           "EnableAddressTransfer:192.0.2.55", "AcceptAddressTransfer:192.0.2.44"}
    assert events["EnableAddressTransfer:192.0.2.55"]["transfer_account_id"] == "210987654321"
    assert "2 address transfer calls" in findings[0].message


def test_allocation_events_is_reusable_and_cached(aws):
    ctx = _ctx(aws)
    with Stubber(aws.client("cloudtrail", REGION)) as stub:
        stub.add_response("lookup_events", {"Events": [_event(_role_identity(issuer=False))]},
                          _lookup_params("AllocateAddress"))
        for name in ADDRESS_EVENT_NAMES[1:]:
            stub.add_response("lookup_events", {"Events": []}, _lookup_params(name))
        first = allocation_events(ctx)
        assert allocation_events(ctx) is first  # a second reader makes no call
        stub.assert_no_pending_responses()
    (event,) = first
    assert event.principal == f"arn:aws:iam::{ACCOUNT}:role/NetworkAdmin" and event.path_known is False
    assert event.session_arn == f"arn:aws:sts::{ACCOUNT}:assumed-role/NetworkAdmin/alice"
    assert event.to_dict()["source_ip"] == "203.0.113.99"


@pytest.mark.parametrize("pattern, value, expected", [
    ("arn:aws:iam::1:role/a*", "arn:aws:iam::1:role/abc", True),
    ("arn:aws:iam::1:role/a?c", "arn:aws:iam::1:role/abc", True),
    ("arn:aws:iam::1:role/a?c", "arn:aws:iam::1:role/abbc", False),
    ("arn:aws:iam::1:role/Admin", "arn:aws:iam::1:role/admin", False),  # case-sensitive
    ("arn:aws:iam::1:role/a.c", "arn:aws:iam::1:role/abc", False),      # '.' is literal
    ("arn:aws:iam::*:root", "arn:aws:iam::1:root", True),
])
def test_arn_like(pattern, value, expected):
    assert arn_like(pattern, value) is expected
