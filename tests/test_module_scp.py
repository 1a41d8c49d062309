"""Module `scp`: the Elastic IP allocation and baseline protection SCPs, attached to each target.

The module takes the policy documents as JSON (harden computes them: see tests/test_policies.py,
which also evaluates the organization root that passes them). Here: the module's shape, read from
the rendered HCL, and its variable validations, run by the real bundled Terraform on
variables.tf alone (no AWS provider needed).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from provisioner.baseline import parse_baseline
from provisioner.policies import allocate_address_scp, baseline_protection_scp, minified
from tests.hcl import load_hcl
from tests.module_checks import (
    assert_outputs_described, assert_pins_aws_provider_v6, assert_standard_files, assert_variables_documented,
)
from tests.terraform_helpers import assert_accepted, plan_error, variables_root

SCP_MAX_CHARS = 5120


@pytest.fixture(scope="module")
def module_dir(rendered: Path) -> Path:
    return rendered / "modules" / "scp"


@pytest.fixture(scope="module")
def scp(module_dir: Path) -> dict:
    return load_hcl(module_dir)


# ---------------------------------------------------------------------------
# Layout, providers
# ---------------------------------------------------------------------------

def test_module_has_the_standard_files_and_no_submodule(module_dir: Path, scp: dict):
    assert_standard_files(module_dir)
    assert not [p for p in module_dir.iterdir() if p.is_dir()]
    # The documents are computed by harden, not here: nothing to call, nothing to look up.
    assert scp["module"] == {} and scp["data"] == {} and scp["locals"] == {}


def test_scp_module_pins_aws_provider_v6(scp: dict):
    assert_pins_aws_provider_v6(scp)


# ---------------------------------------------------------------------------
# Resources
# ---------------------------------------------------------------------------

def test_policies_are_service_control_policies_with_the_given_content(scp: dict):
    pols = scp["resource"]["aws_organizations_policy"]
    assert set(pols) == {"allocate_address", "baseline_protection", "overflow"}
    eip, protection = pols["allocate_address"], pols["baseline_protection"]
    overflow = pols["overflow"]
    assert overflow["for_each"] == "${var.overflow_policies}"
    assert (overflow["name"], overflow["content"]) == ("${each.key}", "${each.value.content}")
    assert eip["name"] == "${var.name_prefix}-deny-eip-allocation"
    assert protection["name"] == "${var.name_prefix}-protect-baseline"
    assert eip["content"] == "${var.allocate_address_policy_json}"
    assert protection["content"] == "${var.baseline_protection_policy_json}"
    # A bool switches it (checkov drops a resource whose count it evaluates to 0; it cannot
    # evaluate a comparison with null, and would report a policy that is not created).
    assert protection["count"] == "${var.protect_baseline ? 1 : 0}"
    (pre,) = protection["lifecycle"][0]["precondition"]
    assert pre["condition"] == "${var.baseline_protection_policy_json != null}"
    assert "count" not in eip and "for_each" not in eip
    for body in pols.values():
        assert body["type"] == "SERVICE_CONTROL_POLICY"
        assert body["tags"] == "${var.tags}"
    for body in (eip, protection):
        assert body["description"].startswith("harden scp.")


def test_each_policy_is_attached_to_every_target(scp: dict):
    att = scp["resource"]["aws_organizations_policy_attachment"]
    assert set(att) == {"allocate_address", "baseline_protection", "overflow"}
    # Every overflow policy on every target.
    assert "setproduct(keys(var.overflow_policies), var.target_ids)" in att["overflow"]["for_each"]
    assert att["overflow"]["policy_id"] == "${aws_organizations_policy.overflow[each.value[0]].id}"
    assert att["allocate_address"]["for_each"] == "${toset(var.target_ids)}"
    assert att["allocate_address"]["policy_id"] == "${aws_organizations_policy.allocate_address.id}"
    assert att["allocate_address"]["target_id"] == "${each.value}"
    assert att["baseline_protection"]["for_each"] == "${var.protect_baseline ? toset(var.target_ids) : toset([])}"
    assert att["baseline_protection"]["policy_id"] == "${aws_organizations_policy.baseline_protection[0].id}"
    assert att["baseline_protection"]["target_id"] == "${each.value}"


def test_organizations_is_global_no_region_argument(scp: dict):
    for rtype, named in scp["resource"].items():
        for name, body in named.items():
            assert "region" not in body, f"{rtype}.{name}"
    assert "region" not in scp["variable"]


# ---------------------------------------------------------------------------
# Variables and outputs
# ---------------------------------------------------------------------------

VALIDATED = {"name_prefix", "target_ids", "allocate_address_policy_json", "baseline_protection_policy_json",
             "overflow_policies"}


def test_variables_have_type_description_and_validations(scp: dict):
    assert_variables_documented(scp, VALIDATED, {"tags", "protect_baseline"})
    for name in ("allocate_address_policy_json", "baseline_protection_policy_json"):
        conditions = " ".join(v["condition"] for v in scp["variable"][name]["validation"])
        assert "jsondecode(" in conditions and "<= 5120" in conditions, name


def test_variable_defaults_are_secure(scp: dict):
    v = scp["variable"]
    for required in ("target_ids", "name_prefix", "allocate_address_policy_json"):
        assert "default" not in v[required], required
    assert v["allocate_address_policy_json"]["nullable"] is False
    assert v["protect_baseline"]["default"] is True  # opting out is explicit
    assert v["baseline_protection_policy_json"]["default"] is None
    assert v["tags"]["default"] == {}


def test_outputs(scp: dict):
    out = scp["output"]
    assert set(out) == {"allocate_address_policy_id", "allocate_address_policy_json", "baseline_protection_policy_id",
                        "baseline_protection_policy_json", "attachment_ids", "overflow_policy_ids"}
    assert_outputs_described(scp)
    assert out["allocate_address_policy_id"]["value"] == "${aws_organizations_policy.allocate_address.id}"
    assert out["baseline_protection_policy_id"]["value"] == \
        "${one(aws_organizations_policy.baseline_protection[*].id)}"
    assert out["allocate_address_policy_json"]["value"] == "${var.allocate_address_policy_json}"
    assert out["baseline_protection_policy_json"]["value"] == "${var.baseline_protection_policy_json}"
    assert "aws_organizations_policy_attachment.allocate_address" in out["attachment_ids"]["value"]
    assert "aws_organizations_policy_attachment.baseline_protection" in out["attachment_ids"]["value"]
    assert "aws_organizations_policy_attachment.overflow" in out["attachment_ids"]["value"]


# ---------------------------------------------------------------------------
# Variable validations, evaluated by the real Terraform (variables.tf alone needs no provider)
# ---------------------------------------------------------------------------

ODD_PRINCIPAL = "arn:aws:iam::123456789012:role/team+=,.@_-net/Odd+Name=1,2.x@y_z-admin"
_BASELINE = parse_baseline({"allocate_address": {"allowed_principals": [ODD_PRINCIPAL]},
                            "scp": {"admin_principals": [ODD_PRINCIPAL]}})
EIP_JSON = minified(allocate_address_scp(_BASELINE))
PROTECTION_JSON = minified(baseline_protection_scp(_BASELINE))
# Valid JSON with a Statement, one character over the limit.
TOO_LONG = json.dumps({"Statement": [], "Padding": "x" * SCP_MAX_CHARS}, separators=(",", ":"))

GOOD = {
    "name_prefix": "harden",
    "target_ids": ["r-ab12", "ou-ab12-cdef3456", "123456789012"],
    "allocate_address_policy_json": EIP_JSON,
    "baseline_protection_policy_json": PROTECTION_JSON,
}

ALSO_GOOD = [
    {**GOOD, "baseline_protection_policy_json": None, "protect_baseline": False},
    {key: value for key, value in GOOD.items() if key != "baseline_protection_policy_json"},
    {**GOOD, "target_ids": []},
    {**GOOD, "allocate_address_policy_json": json.dumps({"Statement": [], "Padding": "x" * (SCP_MAX_CHARS - 29)},
                                                        separators=(",", ":"))},  # exactly at the limit
]

BAD = [
    ("target_ids", ["o-ab12cd34ef"], "Each target id must be"),
    ("target_ids", ["12345678901"], "Each target id must be"),
    ("target_ids", ["r-ab12", "r-ab12"], "must not contain duplicates"),
    ("name_prefix", "harden_prefix", "name_prefix must be"),
    ("allocate_address_policy_json", "not json", "allocate_address_policy_json must be a JSON policy document"),
    ("allocate_address_policy_json", "[]", "allocate_address_policy_json must be a JSON policy document"),
    ("allocate_address_policy_json", '{"Version":"2012-10-17"}', "allocate_address_policy_json must be a JSON"),
    ("allocate_address_policy_json", TOO_LONG, "allocate_address_policy_json exceeds AWS's 5,120-character"),
    ("allocate_address_policy_json", None, "required variable may not be set to null"),  # nullable = false
    ("baseline_protection_policy_json", "{", "baseline_protection_policy_json must be null or a JSON policy"),
    ("baseline_protection_policy_json", TOO_LONG, "baseline_protection_policy_json exceeds AWS's 5,120"),
    ("overflow_policies", {"harden-protect-baseline-2": {"description": "d", "content": TOO_LONG}},
     "Each overflow policy must be a JSON policy document"),
    ("overflow_policies", {"harden-protect-baseline-2": {"description": "d", "content": "[]"}},
     "Each overflow policy must be a JSON policy document"),
]


def test_at_the_limit_case_is_exactly_at_the_limit():
    assert len(ALSO_GOOD[-1]["allocate_address_policy_json"]) == SCP_MAX_CHARS
    assert len(TOO_LONG) > SCP_MAX_CHARS


@pytest.fixture(scope="module")
def validation_root(module_dir: Path, tmp_path_factory) -> Path:
    return variables_root(module_dir, tmp_path_factory, "scp")


@pytest.mark.parametrize("values", [GOOD, *ALSO_GOOD], ids=["good", "unprotected", "default-null", "no-targets",
                                                             "at-limit"])
def test_validations_accept_good_values(validation_root: Path, values: dict):
    assert_accepted(validation_root, values)


@pytest.mark.parametrize("name,value,message", BAD, ids=[f"{n}={str(v)[:20]}" for n, v, _ in BAD])
def test_validations_reject_bad_values(validation_root: Path, name: str, value, message: str):
    assert message in plan_error(validation_root, {**GOOD, name: value})
