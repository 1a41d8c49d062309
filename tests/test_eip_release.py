"""harden eip release against the emulator: the dry run changes nothing, --apply releases exactly
the idle addresses (harden:keep and associated ones stay), verify passes after, a second run
has nothing to do, and an address that changed since the plan is left alone."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from provisioner import cli
from provisioner.baseline import parse_baseline
from provisioner.eip import IRREVERSIBLE, run_release
from provisioner.verify import run_verify
from tests.stubbing import OperationStubber

REGION, OTHER = "eu-west-1", "us-west-2"


def _baseline(*regions: str):
    regions = regions or (REGION, OTHER)
    return parse_baseline({"regions": list(regions), "home_region": regions[0]})


def _eni(ec2) -> str:
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    return ec2.create_network_interface(SubnetId=subnet)["NetworkInterface"]["NetworkInterfaceId"]


def _allocate(ec2, **tags: str) -> dict:
    spec = [{"ResourceType": "elastic-ip", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}] if tags else []
    return ec2.allocate_address(Domain="vpc", TagSpecifications=spec)


def _seed(aws) -> dict[str, dict]:
    ec2, other = aws.client("ec2", REGION), aws.client("ec2", OTHER)
    seeded = {
        "used": _allocate(ec2, Name="web"),
        "idle": _allocate(ec2, Name="old-nat"),
        "kept": _allocate(ec2, **{"harden:keep": "dns for partner.example"}),
        "not_kept": _allocate(ec2, **{"harden:keep": "No"}),
        "idle_other": _allocate(other),
    }
    ec2.associate_address(AllocationId=seeded["used"]["AllocationId"], NetworkInterfaceId=_eni(ec2))
    return seeded


def _state(aws) -> list[tuple]:
    """Every address of both regions, with what matters: association and tags."""
    rows = []
    for region in (REGION, OTHER):
        for a in aws.client("ec2", region).describe_addresses()["Addresses"]:
            tags = sorted((t["Key"], t["Value"]) for t in a.get("Tags") or [])
            rows.append((region, a["AllocationId"], a["PublicIp"], a.get("AssociationId") or None, tuple(tags)))
    return sorted(rows)


def _ids(seeded: dict, *names: str) -> set[str]:
    return {seeded[n]["AllocationId"] for n in names}


def test_dry_run_changes_nothing_then_apply_releases_the_idle_ones_then_nothing_to_do(aws):
    seeded = _seed(aws)
    baseline = _baseline()
    before = _state(aws)

    dry = run_release(aws, baseline)
    decisions = {c.resource: c.decision for c in dry.candidates}
    assert decisions == {seeded["idle"]["AllocationId"]: "release", seeded["not_kept"]["AllocationId"]: "release",
                         seeded["idle_other"]["AllocationId"]: "release", seeded["kept"]["AllocationId"]: "keep"}
    assert {r.status for r in dry.results} == {"planned"} and len(dry.results) == 3
    assert all(a.destructive and a.calls == ["ec2:DescribeAddresses", "ec2:ReleaseAddress"] for a in dry.actions)
    assert _state(aws) == before  # the dry run wrote nothing
    assert dry.exit_code() == 1 and dry.released == []

    applied = run_release(aws, baseline, apply=True)
    assert {r.status for r in applied.results} == {"applied"}
    released = {(c["allocation_id"], c["public_ip"]) for c in applied.to_dict()["released"]}
    assert released == {(seeded[n]["AllocationId"], seeded[n]["PublicIp"]) for n in ("idle", "not_kept", "idle_other")}
    left = {row[1] for row in _state(aws)}
    assert left == _ids(seeded, "used", "kept")  # released ones are gone, kept and associated stay
    assert applied.exit_code() == 0

    report = run_verify(aws, baseline, controls=["eip.unassociated"])
    assert report.exit_code() == 0, [f.message for f in report.findings if f.status != "pass"]

    again = run_release(aws, baseline, apply=True)
    assert again.actions == [] and again.exit_code() == 0
    assert [c.decision for c in again.candidates] == ["keep"]


def test_an_address_associated_or_kept_since_the_plan_is_left_alone(aws):
    ec2 = aws.client("ec2", REGION)
    first, second = _allocate(ec2), _allocate(ec2)
    eni = _eni(ec2)

    def change_it_first(action) -> None:
        # Runs just before each release: the account changes between plan and release.
        if action.resource == first["AllocationId"]:
            ec2.associate_address(AllocationId=first["AllocationId"], NetworkInterfaceId=eni)
        else:
            ec2.create_tags(Resources=[action.resource], Tags=[{"Key": "harden:keep", "Value": "on call"}])

    run = run_release(aws, _baseline(REGION), apply=True, progress=change_it_first)

    assert [r.status for r in run.results] == ["skipped", "skipped"]
    messages = {r.action.resource: r.message for r in run.results}
    assert f"now skip: associated with {eni}" in messages[first["AllocationId"]]
    assert "now keep: tagged harden:keep=on call" in messages[second["AllocationId"]]
    assert {row[1] for row in _state(aws)} == {first["AllocationId"], second["AllocationId"]}
    assert run.released == [] and run.exit_code() == 0


def test_allocation_ids_limit_the_release(aws):
    seeded = _seed(aws)
    wanted = [seeded["idle"]["AllocationId"], seeded["used"]["AllocationId"], "eipalloc-00000000000000000"]

    run = run_release(aws, _baseline(), allocation_ids=wanted, apply=True)

    decisions = {c.resource: (c.decision, c.reason) for c in run.candidates}
    assert set(decisions) == _ids(seeded, "idle", "used")
    assert decisions[seeded["used"]["AllocationId"]][0] == "skip"
    assert "disassociate it first" in decisions[seeded["used"]["AllocationId"]][1]
    assert run.not_found == ["eipalloc-00000000000000000"]
    assert {row[1] for row in _state(aws)} == _ids(seeded, "used", "kept", "not_kept", "idle_other")


def test_own_pools_are_not_released_and_the_border_group_is_passed(aws):
    # The emulator cannot hold BYOIP or customer-owned addresses (no ProvisionByoipCidr, no
    # Outposts) and reports no NetworkBorderGroup, so DescribeAddresses and ReleaseAddress are
    # answered by the Stubber (validated against the real EC2 model). The region is OTHER.
    ec2 = aws.client("ec2", OTHER)
    answer = {"Addresses": [
        {"AllocationId": "eipalloc-0aaaaaaaaaaaaaaa1", "PublicIp": "192.0.2.10", "Domain": "vpc",
         "PublicIpv4Pool": "ipv4pool-ec2-0123456789abcdef0", "NetworkBorderGroup": OTHER},
        {"AllocationId": "eipalloc-0aaaaaaaaaaaaaaa2", "PublicIp": "192.0.2.11", "Domain": "vpc",
         "CustomerOwnedIp": "10.0.0.5", "CustomerOwnedIpv4Pool": "ipv4pool-coip-0123456789abcdef0"},
        {"AllocationId": "eipalloc-0aaaaaaaaaaaaaaa3", "PublicIp": "192.0.2.12", "Domain": "vpc",
         "PublicIpv4Pool": "amazon", "NetworkBorderGroup": "us-west-2-lax-1"},
    ]}
    with OperationStubber(ec2, "DescribeAddresses", "ReleaseAddress") as stub:
        stub.add_response("describe_addresses", answer, {})   # the plan
        stub.add_response("describe_addresses", answer, {})   # the re-check before the release
        stub.add_response("release_address", {}, {"AllocationId": "eipalloc-0aaaaaaaaaaaaaaa3",
                                                  "NetworkBorderGroup": "us-west-2-lax-1"})
        run = run_release(aws, _baseline(OTHER), apply=True)
        stub.assert_no_pending_responses()

    decisions = {c.public_ip: (c.decision, c.reason) for c in run.candidates}
    assert decisions["192.0.2.10"] == ("skip", "from your BYOIP pool ipv4pool-ec2-0123456789abcdef0: release it "
                                                "there if it is no longer needed")
    assert decisions["192.0.2.11"][0] == "skip" and "customer-owned pool" in decisions["192.0.2.11"][1]
    assert decisions["192.0.2.12"] == ("release", "not associated with any instance or network interface "
                                                  "(network border group us-west-2-lax-1)")
    assert [r.status for r in run.results] == ["applied"]


# -- the command ----------------------------------------------------------------------------------

def _invoke(tmp_path, *args: str):
    config = tmp_path / "harden.toml"
    config.write_text(f'home_region = "{REGION}"\nregions = ["{REGION}", "{OTHER}"]\n')
    return CliRunner().invoke(cli.app, ["eip", "release", "-c", str(config), *args])


def test_command_dry_run_json_then_apply_prints_every_released_address(aws, tmp_path):
    seeded = _seed(aws)
    before = _state(aws)

    dry = _invoke(tmp_path, "--format", "json")
    assert dry.exit_code == 1, dry.stderr
    doc = json.loads(dry.stdout)
    assert doc["apply"] is False and doc["released"] == [] and doc["warning"] == IRREVERSIBLE
    assert {a["allocation_id"]: a["action"] for a in doc["addresses"]} == {
        **{i: "release" for i in _ids(seeded, "idle", "not_kept", "idle_other")}, seeded["kept"]["AllocationId"]: "keep"}
    assert _state(aws) == before

    applied = _invoke(tmp_path, "--apply")
    assert applied.exit_code == 0, applied.stderr
    assert "cannot be reserved back" in applied.stdout
    for name, region in (("idle", REGION), ("not_kept", REGION), ("idle_other", OTHER)):
        assert f"released {seeded[name]['AllocationId']} {seeded[name]['PublicIp']} ({region})" in applied.stdout
    assert {row[1] for row in _state(aws)} == _ids(seeded, "used", "kept")


def test_command_rejects_a_malformed_allocation_id(aws, tmp_path):
    result = _invoke(tmp_path, "--allocation-ids", "eipalloc-123,i-0abc")
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "error: --allocation-ids 'eipalloc-123': expected an allocation id such as eipalloc-0123456789abcdef0 "
        "(or the public IP of an EC2-Classic address)"]
