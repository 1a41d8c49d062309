"""One desired state, three consumers: what the templates declare is what verify requires (and
what remediate creates). Each test reads the rendered Terraform and runs verify's own logic on it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from provisioner.controls.alarms import (_as_eventbridge_event, detection_samples, event_pattern_matches,
                                         filter_pattern_matches)
from provisioner.policies import allocate_address_scp, baseline_protection_scp
from tests.hcl import load_hcl
from tests.terraform_helpers import apply_and_read_outputs

ACCOUNT, REGION = "123456789012", "eu-west-1"


@pytest.fixture(scope="module")
def modules(rendered: Path) -> dict[str, dict]:
    return {d.name: load_hcl(d) for d in (rendered / "modules").iterdir() if d.is_dir()}


def test_the_rendered_detection_catches_every_allocation_and_move_verify_tests_with(modules, rendered, tmp_path):
    """alarms.allocate_address runs sample CloudTrail records (allocations and address moves)
    through a rule's pattern; the rule and the metric filter Terraform declares must catch every one."""
    alarms = modules["alarms"]
    samples = detection_samples(ACCOUNT, REGION)
    filter_pattern = alarms["locals"]["address_event_filter_pattern"]
    assert all(filter_pattern_matches(filter_pattern, record) for record in samples.values())

    expr = alarms["resource"]["aws_cloudwatch_event_rule"]["address_api_calls"]["event_pattern"]
    (local,) = re.findall(r"^\s*address_event_pattern\s*=.*$", (rendered / "modules" / "alarms" / "main.tf").read_text(),
                          re.MULTILINE)
    (tmp_path / "main.tf").write_text(f"locals {{\n{local}\n}}\n" f'output "pattern" {{\n  value = {expr[2:-1]}\n}}\n')
    pattern = json.loads(apply_and_read_outputs(tmp_path)["pattern"])  # evaluated by real Terraform
    assert all(event_pattern_matches(pattern, _as_eventbridge_event(r, ACCOUNT, REGION)) for r in samples.values())


def test_the_rendered_trail_is_what_cloudtrail_checks_require(modules, rendered, example_baseline):
    trail = modules["cloudtrail"]["resource"]["aws_cloudtrail"]
    (body,) = trail.values()
    assert body["is_multi_region_trail"] is True           # cloudtrail.multi_region
    assert body["include_global_service_events"] is True
    assert body["enable_logging"] is True
    assert body["enable_log_file_validation"] is True      # cloudtrail.log_validation
    assert body["kms_key_id"].startswith("${aws_kms_key.")  # cloudtrail.kms (customer key)
    assert body["cloud_watch_logs_group_arn"] and body["cloud_watch_logs_role_arn"]  # cloudtrail.cloudwatch_logs
    call = load_hcl(rendered / "account")["module"]["cloudtrail"]
    assert call["trail_name"] == example_baseline.trail_name  # the name verify and remediate look for


def test_the_rendered_recorder_is_what_config_recorder_requires(modules):
    config = modules["config"]
    (body,) = config["resource"]["aws_config_configuration_recorder"].values()
    assert body["name"] == "${local.recorder_name}"
    assert config["locals"]["recorder_name"] == "default"  # remediate puts the recorder under this name
    group = body["recording_group"][0]
    assert group["all_supported"] is True
    mode = body["recording_mode"][0]
    assert mode["recording_frequency"] == "CONTINUOUS"


def test_flow_logs_capture_all_traffic_by_default(modules, rendered):
    variables = modules["flow_logs"]["variable"]
    assert variables["traffic_type"]["default"] == "ALL"
    assert load_hcl(rendered / "account")["module"]["flow_logs"]["traffic_type"] == "ALL"


def test_rendered_scps_are_the_documents_verify_and_remediate_use(rendered, example_baseline):
    text = (rendered / "organization" / "main.tf").read_text()
    # Evaluate the jsonencode literals with Terraform and compare with policies.py.
    exprs = {name: _expression(text, name) for name in ("allocate_address_policy_json",
                                                        "baseline_protection_policy_json")}
    root = Path(rendered.parent / "scp-contract")
    root.mkdir(exist_ok=True)
    (root / "main.tf").write_text("".join(f'output "{n}" {{\n  value = {e}\n}}\n' for n, e in exprs.items()))
    out = apply_and_read_outputs(root)
    assert json.loads(out["allocate_address_policy_json"]) == allocate_address_scp(example_baseline)
    assert json.loads(out["baseline_protection_policy_json"]) == baseline_protection_scp(example_baseline)


def _expression(text: str, name: str) -> str:
    """The expression assigned to `name` (a multi-line jsonencode(...) call)."""
    start = text.index(name)
    start = text.index("=", start) + 1
    depth, i = 0, text.index("jsonencode(", start)
    j = i
    while True:
        depth += {"(": 1, ")": -1}.get(text[j], 0)
        if depth == 0 and text[j] == ")":
            return text[i:j + 1]
        j += 1
