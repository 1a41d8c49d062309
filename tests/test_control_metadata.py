"""Every control carries its metadata in one place (the @control decorator), and `harden controls`
lists it. A new control (network.*, ec2.ami_currency, ...) without a severity, its rationale,
mappings (or the reason it has none) or a fix fails here."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from provisioner.cli import app
from provisioner.controls import CONTROL_IDS, PSEUDO_CONTROLS, load_controls
from provisioner.severity import SEVERITIES

CONTROLS = load_controls()
CIS_ID = re.compile(r"^[1-9][0-9]?(\.[0-9]{1,2}){1,2}$")
SECURITYHUB_ID = re.compile(r"^[A-Za-z0-9]+\.[0-9]{1,3}$")


def test_every_declared_id_is_registered():
    assert list(CONTROLS) == list(CONTROL_IDS)


@pytest.mark.parametrize("cid", [*CONTROL_IDS, *PSEUDO_CONTROLS])
def test_control_has_complete_metadata(cid):
    c = CONTROLS.get(cid) or PSEUDO_CONTROLS[cid]
    assert c.severity in SEVERITIES, f"{cid}: severity must be one of {SEVERITIES}"
    assert len(c.rationale) > 30, f"{cid}: say why it has this severity (rationale=...)"
    assert c.mappings, f"{cid}: mappings (CIS/Security Hub ids) or Mappings(none='why none')"
    for cis in (*c.mappings.cis_v3, *c.mappings.cis_v4):
        assert CIS_ID.match(cis), f"{cid}: {cis!r} is not a CIS recommendation number"
    for sh in c.mappings.securityhub:
        assert SECURITYHUB_ID.match(sh), f"{cid}: {sh!r} is not a Security Hub control id"
    assert c.fix, f"{cid}: say what makes it pass (fix=...)"


def test_terraform_locations_name_rendered_resources(rendered):
    """Each control's `terraform` names a resource that exists in the committed rendering: SARIF
    points there, so a renamed resource must not leave a dangling location."""
    for c in CONTROLS.values():
        if not c.terraform:
            continue
        module, address = c.terraform.split("/", 1)
        rtype, name = address.split(".", 1)
        text = "".join(p.read_text() for p in (rendered / "modules" / module).glob("*.tf"))
        assert f'resource "{rtype}" "{name}"' in text, c.terraform


def test_known_mappings_from_the_documentation():
    """Spot checks against the cited pages (Security Hub control reference, Prowler's CIS v4.0.1)."""
    assert CONTROLS["cloudtrail.multi_region"].mappings.cis_v3 == ("3.1",)
    assert "CloudTrail.1" in CONTROLS["cloudtrail.multi_region"].mappings.securityhub
    assert CONTROLS["ebs.default_encryption"].mappings.cis_v3 == ("2.2.1",)
    assert CONTROLS["ebs.default_encryption"].mappings.cis_v4 == ("5.1.1",)  # renumbered in v4
    assert CONTROLS["flow_logs.all_vpcs"].mappings.securityhub == ("EC2.6",)


def test_controls_command_json_lists_every_control():
    result = CliRunner().invoke(app, ["controls", "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["id"] for r in rows] == list(CONTROL_IDS)
    by_id = {r["id"]: r for r in rows}
    assert by_id["flow_logs.all_vpcs"]["remediate"] is True
    assert by_id["cloudtrail.kms"]["remediate"] is False  # Terraform's, on purpose
    assert by_id["cloudtrail.kms"]["terraform"] == "cloudtrail/aws_kms_key.this"
    assert by_id["eip.allocations"]["severity"] == "critical"
    assert by_id["eip.allocations"]["mappings"]["none"]


def test_controls_command_table_shows_severity_and_mappings():
    result = CliRunner().invoke(app, ["controls"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "flow_logs.all_vpcs" in result.stdout and "SecurityHub EC2.6" in result.stdout
    assert "critical" in result.stdout


def test_network_mappings_follow_the_cis_renumbering():
    """Checked against Prowler's cis_3.0_aws.json, cis_4.0_aws.json and its FSBP mapping: the
    security-group recommendations moved by one between CIS v3.0.0 and v4.0.1."""
    admin = CONTROLS["network.admin_ports"].mappings
    assert (admin.cis_v3, admin.cis_v4, admin.securityhub) == (("5.2", "5.3"), ("5.3", "5.4"), ("EC2.13", "EC2.14"))
    default = CONTROLS["network.default_security_group"].mappings
    assert (default.cis_v3, default.cis_v4, default.securityhub) == (("5.4",), ("5.5",), ("EC2.2",))
    assert CONTROLS["eip.pool"].mappings.none and CONTROLS["ec2.ami_currency"].mappings.none
