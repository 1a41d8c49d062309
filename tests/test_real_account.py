"""Issue 11: what the emulator cannot show. Each fix is asserted on the rendered HCL, parsed with
python-hcl2 (tests/hcl.py), for renderings of several baselines, so it stays fixed."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from provisioner.baseline import parse_baseline
from provisioner.cli import app
from provisioner.render import render
from tests.hcl import load_hcl, parse_file

FAMILIES_WITH_KEYS = ("cloudtrail", "flow_logs", "ebs_encryption", "alarms")
# What `terraform destroy` must not remove by accident: the evidence and the keys that read it.
GUARDED = {
    "cloudtrail": {("aws_s3_bucket", "this"), ("aws_kms_key", "this"), ("aws_cloudwatch_log_group", "this")},
    "flow_logs": {("aws_kms_key", "this"), ("aws_cloudwatch_log_group", "this")},
    "ebs_encryption": {("aws_kms_key", "this")},
    "alarms": {("aws_kms_key", "topic")},
}


def _rendered(tmp_path: Path, config: dict, **options) -> Path:
    render(parse_baseline(config), tmp_path, fmt=False, **options)
    return tmp_path


def _prevent_destroy(body: dict):
    values = [block.get("prevent_destroy") for block in body.get("lifecycle", [])]
    return values[0] if values else None


# -- 11.5 AWS Config's role may check the log bucket -----------------------------------------------

def test_config_role_may_check_the_log_bucket_as_awss_guide_lists(tmp_path):
    account = load_hcl(_rendered(tmp_path, {}) / "account")
    statements = account["data"]["aws_iam_policy_document"]["config_delivery"]["statement"]
    on_bucket = [s for s in statements if s["resources"] == ["${module.cloudtrail.bucket_arn}"]]
    assert len(on_bucket) == 1
    assert sorted(on_bucket[0]["actions"]) == ["s3:GetBucketAcl", "s3:GetBucketLocation", "s3:ListBucket"]
    assert on_bucket[0].get("effect", "Allow") == "Allow"
    # Writes stay under Config's own prefix; nothing else on the bucket.
    writes = [s for s in statements if "s3:PutObject" in s["actions"]]
    assert [w["resources"] for w in writes] == [
        ["${module.cloudtrail.bucket_arn}/${local.config_key_prefix}/AWSLogs/${local.account_id}/Config/*"]]


# -- 11.9 [kms] deletion_window_days reaches every key ---------------------------------------------

@pytest.mark.parametrize("window", [7, 19])
def test_deletion_window_reaches_every_key_harden_creates(tmp_path, window):
    out = _rendered(tmp_path, {"kms": {"deletion_window_days": window}})
    account = load_hcl(out / "account")
    for family in FAMILIES_WITH_KEYS:
        module = load_hcl(out / "modules" / family)
        for name, key in module["resource"]["aws_kms_key"].items():
            assert key["deletion_window_in_days"] == "${var.kms_deletion_window_days}", (family, name)
        (block,) = [b for b in account["module"].values() if b["source"] == f"../modules/{family}"]
        assert block["kms_deletion_window_days"] == window, family


# -- 11.8 prevent_destroy on the evidence, lifted only by --allow-destroy ---------------------------

def _guarded(out: Path) -> dict[str, dict[tuple[str, str], object]]:
    found = {}
    for family in GUARDED:
        module = load_hcl(out / "modules" / family)
        found[family] = {(rtype, name): _prevent_destroy(body)
                         for rtype, named in module["resource"].items() for name, body in named.items()
                         if _prevent_destroy(body) is not None}
    return found


def test_bucket_keys_and_log_groups_are_guarded_from_destroy(tmp_path):
    found = _guarded(_rendered(tmp_path, {"flow_logs": {"destination": "cloud-watch-logs"}}))
    assert found == {family: {r: True for r in resources} for family, resources in GUARDED.items()}


def test_allow_destroy_renders_the_guard_off_and_a_plain_render_restores_it(tmp_path):
    runner = CliRunner()
    config = tmp_path / "harden.toml"
    config.write_text('home_region = "eu-west-1"\nregions = ["eu-west-1"]\n', encoding="utf-8")
    out = tmp_path / "tf"
    lifted = runner.invoke(app, ["render", "--config", str(config), "--out", str(out), "--allow-destroy"])
    assert lifted.exit_code == 0, lifted.output
    assert "not protected from destruction" in " ".join(lifted.output.split())
    assert _guarded(out) == {family: {r: False for r in resources} for family, resources in GUARDED.items()}
    again = runner.invoke(app, ["render", "--config", str(config), "--out", str(out)])
    assert again.exit_code == 0, again.output
    assert _guarded(out) == {family: {r: True for r in resources} for family, resources in GUARDED.items()}


# -- 11.6 required_version follows the features each rendering uses --------------------------------

def _required_version(directory: Path) -> str:
    (terraform,) = parse_file(directory / "versions.tf")["terraform"]
    return terraform["required_version"]


def _provider_constraint(directory: Path) -> str:
    (terraform,) = parse_file(directory / "versions.tf")["terraform"]
    return terraform["required_providers"][0]["aws"]["version"]


def _dirs(out: Path) -> list[Path]:
    return sorted([out / "account", out / "organization", *(out / "modules").iterdir()])


@pytest.mark.parametrize("state, roots", [
    ({}, ">= 1.5"),                                                        # local state: no backend
    ({"backend": "s3", "bucket": "acme-tf-state", "dynamodb_table": "locks"}, ">= 1.5"),
    # The S3 backend's own lock file is generally available from Terraform 1.11 on.
    ({"backend": "s3", "bucket": "acme-tf-state"}, ">= 1.11"),
])
def test_state_locking_sets_the_roots_terraform_version(tmp_path, state, roots):
    out = _rendered(tmp_path, {"state": state})
    for directory in _dirs(out):
        expected = roots if directory.parent == out else ">= 1.5"  # modules have no backend
        assert _required_version(directory) == expected, directory.name
        # Per-resource `region` arrived in provider 6.0; every directory says so.
        assert _provider_constraint(directory) == ">= 6.0, < 7.0", directory.name


def _templates_with(tmp_path: Path, extra: dict[str, str]) -> Path:
    import shutil

    from provisioner.render import TEMPLATES_DIR

    templates = tmp_path / "templates"
    shutil.copytree(TEMPLATES_DIR, templates)
    for rel, text in extra.items():
        (templates / rel).write_text(text, encoding="utf-8")
    return templates


@pytest.mark.parametrize("extra, module_version, account_version", [
    # An import block needs 1.5; with for_each 1.7; a removed block 1.7 (Terraform's language docs).
    ({"modules/ebs_encryption/imports.tf.j2":
      'import {\n  to = aws_ebs_encryption_by_default.this\n  id = "default"\n}\n'}, ">= 1.5", ">= 1.5"),
    ({"modules/ebs_encryption/imports.tf.j2":
      'import {\n  for_each = toset([])\n  to       = aws_kms_alias.this[each.key]\n  id       = each.key\n}\n'},
     ">= 1.7", ">= 1.7"),
    ({"account/removed.tf.j2": 'removed {\n  from = module.old\n\n  lifecycle {\n    destroy = false\n  }\n}\n'},
     ">= 1.5", ">= 1.7"),
])
def test_import_and_removed_blocks_raise_the_version_where_they_are_and_in_the_root(
        tmp_path, extra, module_version, account_version):
    templates = _templates_with(tmp_path, extra)
    out = tmp_path / "out"
    render(parse_baseline({}), out, templates=templates, fmt=False)
    assert _required_version(out / "modules" / "ebs_encryption") == module_version
    assert _required_version(out / "account") == account_version        # calls ebs_encryption
    assert _required_version(out / "organization") == ">= 1.5"         # calls only the scp module
    assert _required_version(out / "modules" / "alarms") == ">= 1.5"


# -- 11.7 an organization trail belongs to the management account ----------------------------------

ORG_TRAIL = {"organization_id": "o-a1b2c3d4e5", "cloudtrail": {"organization_trail": True}}


def test_organization_trail_arn_names_the_management_account_read_from_the_organization(tmp_path):
    out = _rendered(tmp_path, ORG_TRAIL)
    trail_module = load_hcl(out / "modules" / "cloudtrail")
    org = trail_module["data"]["aws_organizations_organization"]["this"]
    assert org["count"] == "${var.is_organization_trail ? 1 : 0}"  # always read for an organization trail
    locals_ = trail_module["locals"]
    assert locals_["trail_account"] == ("${var.is_organization_trail ? one(data.aws_organizations_organization"
                                        ".this[*].master_account_id) : local.account_id}")
    assert locals_["trail_arn"] == ("arn:${local.partition}:cloudtrail:${var.region}:${local.trail_account}"
                                    ":trail/${var.trail_name}")
    # Every aws:SourceArn in the bucket and key policies is that ARN, not one built from the caller.
    source_arns = [c["values"] for doc in trail_module["data"]["aws_iam_policy_document"].values()
                   for st in doc.get("statement", []) for c in st.get("condition", [])
                   if c["variable"] == "aws:SourceArn"
                   and st["principals"][0]["identifiers"] == ["cloudtrail.amazonaws.com"]]
    assert len(source_arns) >= 5 and all(v == ["${local.trail_arn}"] for v in source_arns)
    # And the trail refuses to be applied from any other account.
    trail = trail_module["resource"]["aws_cloudtrail"]["this"]
    conditions = [p["condition"] for block in trail["lifecycle"] for p in block["precondition"]]
    assert "${local.applied_where_the_trail_belongs}" in conditions
    assert locals_["applied_where_the_trail_belongs"] == (
        "${var.is_organization_trail ? contains([local.trail_account], local.account_id) : true}")
    account = load_hcl(out / "account")
    assert account["module"]["cloudtrail"]["is_organization_trail"] is True


def _organization(aws) -> dict:
    return aws.client("organizations").create_organization(FeatureSet="ALL")["Organization"]


def test_preflight_passes_in_the_management_account(aws):
    from provisioner.preflight import check_organization_trail

    org = _organization(aws)
    baseline = parse_baseline({**ORG_TRAIL, "organization_id": org["Id"]})
    assert check_organization_trail(aws, baseline) == org["MasterAccountId"] == aws.account_id()


def test_preflight_refuses_a_member_or_delegated_administrator_account(aws):
    # moto keeps one account per server here: the member's view of DescribeOrganization is stubbed
    # (botocore's Stubber checks the response against the real service model).
    from provisioner.preflight import PreflightError, check_organization_trail
    from tests.stubbing import OperationStubber

    management = "210987654321"
    assert aws.account_id() != management
    org = {"Id": "o-a1b2c3d4e5", "Arn": f"arn:aws:organizations::{management}:organization/o-a1b2c3d4e5",
           "FeatureSet": "ALL", "MasterAccountArn": f"arn:aws:organizations::{management}:account/o-a1b2c3d4e5/"
           f"{management}", "MasterAccountId": management, "MasterAccountEmail": "root@example.com"}
    client = aws.client("organizations")
    with OperationStubber(client, "DescribeOrganization") as stub:
        stub.add_response("describe_organization", {"Organization": org}, {})
        with pytest.raises(PreflightError, match=rf"belongs to the management account {management}; these "
                                                 rf"credentials are account {aws.account_id()}"):
            check_organization_trail(aws, parse_baseline(ORG_TRAIL))


def test_preflight_refuses_outside_an_organization_and_a_wrong_organization_id(aws):
    from provisioner.preflight import PreflightError, check_organization_trail

    with pytest.raises(PreflightError, match="not in an AWS Organization"):
        check_organization_trail(aws, parse_baseline(ORG_TRAIL))
    org = _organization(aws)
    with pytest.raises(PreflightError, match=f"belong to organization {org['Id']}"):
        check_organization_trail(aws, parse_baseline(ORG_TRAIL))  # o-a1b2c3d4e5 is not moto's id
    assert check_organization_trail(aws, parse_baseline({})) is None  # no organization trail: no check


def test_plan_refuses_an_organization_trail_before_terraform_runs(aws, tmp_path):
    config = tmp_path / "harden.toml"
    config.write_text('organization_id = "o-a1b2c3d4e5"\n[cloudtrail]\norganization_trail = true\n',
                      encoding="utf-8")
    result = CliRunner().invoke(app, ["plan", "--config", str(config), "--out", str(tmp_path / "tf")])
    assert result.exit_code == 2
    assert " ".join(result.output.split()).endswith("but this account is not in an AWS Organization")
    assert not (tmp_path / "tf" / "account" / ".terraform").exists()  # Terraform never started


# -- 11.4 one topic: every other region reaches it through the home region's bus -------------------

def test_event_forwarding_role_may_only_put_events_on_the_home_bus(tmp_path):
    account = load_hcl(_rendered(tmp_path, {"home_region": "eu-west-1", "regions": ["eu-west-1", "ap-south-1"]})
                       / "account")
    docs = account["data"]["aws_iam_policy_document"]
    (allow,) = docs["event_forwarding"]["statement"]
    assert allow.get("effect", "Allow") == "Allow"
    assert allow["actions"] == ["events:PutEvents"]
    assert allow["resources"] == [
        "arn:${data.aws_partition.current.partition}:events:${var.home_region}:${local.account_id}:event-bus/default"]
    (trust,) = docs["event_forwarding_assume"]["statement"]
    assert trust["principals"] == [{"type": "Service", "identifiers": ["events.amazonaws.com"]}]
    conditions = {(c["test"], c["variable"]): c["values"] for c in trust["condition"]}
    assert conditions[("StringEquals", "aws:SourceAccount")] == ["${local.account_id}"]
    # Only the two forwarding rules (aws:SourceArn of a rule's target role is the rule ARN).
    assert sorted(conditions[("ArnLike", "aws:SourceArn")]) == [
        "arn:${data.aws_partition.current.partition}:events:*:${local.account_id}:rule/${var.name_prefix}-alarm-state-changes",
        "arn:${data.aws_partition.current.partition}:events:*:${local.account_id}:rule/${var.name_prefix}-elastic-ip-api-calls"]
    role = account["resource"]["aws_iam_role"]["event_forwarding"]
    assert role["assume_role_policy"] == "${data.aws_iam_policy_document.event_forwarding_assume.json}"
    assert account["resource"]["aws_iam_role_policy"]["event_forwarding"]["policy"] == \
        "${data.aws_iam_policy_document.event_forwarding.json}"
    alarms = account["module"]["alarms"]
    assert alarms["home_region"] == "${var.home_region}"
    assert alarms["event_bus_role_arn"] == "${aws_iam_role.event_forwarding.arn}"
    assert alarms["subscriptions"] == "${var.alarm_subscriptions}"
    # One topic to subscribe to, named as such.
    assert account["output"]["alarm_topic_arn"]["value"] == "${module.alarms[var.home_region].topic_arn}"
    assert "alarm_topic_arns" not in account["output"]


def test_no_forwarding_role_without_alarms(tmp_path):
    account = load_hcl(_rendered(tmp_path, {"alarms": {"enabled": False}}) / "account")
    assert "event_forwarding" not in account["resource"].get("aws_iam_role", {})
    assert "alarms" not in account["module"]


def test_the_fix_creates_the_forwarding_role_the_account_root_declares(tmp_path):
    from provisioner.controls import CheckContext
    from provisioner.controls.alarms import event_forwarding_policies

    baseline = parse_baseline({"home_region": "eu-west-1", "name_prefix": "acme"})
    account = load_hcl(_rendered(tmp_path, {"home_region": "eu-west-1", "name_prefix": "acme"}) / "account")
    docs = account["data"]["aws_iam_policy_document"]
    ctx = CheckContext(aws=None, baseline=baseline, region="ap-south-1", account_id="123456789012")
    trust, allow = event_forwarding_policies(ctx)

    def concrete(text: str) -> str:
        return (text.replace("${data.aws_partition.current.partition}", "aws")
                .replace("${local.account_id}", "123456789012").replace("${var.name_prefix}", "acme")
                .replace("${var.home_region}", "eu-west-1"))

    (hcl_trust,) = docs["event_forwarding_assume"]["statement"]
    conditions = {c["variable"]: [concrete(v) for v in c["values"]] for c in hcl_trust["condition"]}
    (statement,) = trust["Statement"]
    assert conditions == {"aws:SourceAccount": ["123456789012"],
                          "aws:SourceArn": statement["Condition"]["ArnLike"]["aws:SourceArn"]}
    assert statement["Condition"]["StringEquals"] == {"aws:SourceAccount": "123456789012"}
    (hcl_allow,) = docs["event_forwarding"]["statement"]
    (allowed,) = allow["Statement"]
    assert [concrete(r) for r in hcl_allow["resources"]] == [allowed["Resource"]]
    assert hcl_allow["actions"] == [allowed["Action"]] and hcl_allow["sid"] == allowed["Sid"]
    assert account["resource"]["aws_iam_role"]["event_forwarding"]["name"] == "${var.name_prefix}-events-to-home-region"
