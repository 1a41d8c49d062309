"""Render options beyond the example: the S3 state backend, emulator endpoints, CI material."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from provisioner.baseline import parse_baseline
from provisioner.cli import app
from provisioner.render import EMULATED_SERVICES, RenderError, render
from provisioner.terraform import load_check
from tests.hcl import load_hcl

REPO = Path(__file__).resolve().parent.parent


def _backend(root: Path) -> dict | None:
    for block in load_hcl(root)["terraform"]:
        for backend in block.get("backend", []):
            return backend
    return None


def test_s3_state_backend(tmp_path):
    b = parse_baseline({"home_region": "eu-west-1", "regions": ["eu-west-1"],
                        "state": {"backend": "s3", "bucket": "acme-tf-state", "key_prefix": "sec/harden",
                                  "dynamodb_table": "tf-locks"}})
    render(b, tmp_path)
    for root in ("account", "organization"):
        s3 = _backend(tmp_path / root)["s3"]
        assert s3["bucket"] == "acme-tf-state"
        assert s3["key"] == f"sec/harden/{root}/terraform.tfstate"  # one state per root module
        assert s3["region"] == "eu-west-1" and s3["encrypt"] is True
        assert s3["dynamodb_table"] == "tf-locks" and "use_lockfile" not in s3
        assert load_check(tmp_path / root) == []


def test_s3_backend_defaults_to_native_locking_and_local_is_default(tmp_path):
    render(parse_baseline({"state": {"backend": "s3", "bucket": "acme-tf-state"}}), tmp_path / "s3")
    assert _backend(tmp_path / "s3" / "account")["s3"]["use_lockfile"] is True
    render(parse_baseline({}), tmp_path / "local")
    assert _backend(tmp_path / "local" / "account") is None


def test_s3_backend_needs_a_bucket():
    with pytest.raises(Exception, match="needs state.bucket"):
        parse_baseline({"state": {"backend": "s3"}})


def test_emulator_endpoints_in_the_provider_blocks(tmp_path):
    render(parse_baseline({}), tmp_path, endpoint_url="http://127.0.0.1:4566")
    for root in ("account", "organization"):
        provider = load_hcl(tmp_path / root)["provider"]["aws"]
        assert provider["skip_credentials_validation"] is True
        endpoints = provider["endpoints"][0]
        assert set(endpoints) == set(EMULATED_SERVICES)
        assert set(endpoints.values()) == {"http://127.0.0.1:4566"}
        assert load_check(tmp_path / root) == []


@pytest.mark.parametrize("url", ['http://x"}\nresource "a" "b" {', "ftp://host", "http://h/${var.x}", ""])
def test_bad_endpoint_is_rejected(tmp_path, url):
    with pytest.raises(RenderError, match="AWS_ENDPOINT_URL"):
        render(parse_baseline({}), tmp_path, endpoint_url=url)


def test_example_rendering_points_at_real_aws():
    for root in ("account", "organization"):
        assert "endpoints" not in load_hcl(REPO / "terraform" / root)["provider"]["aws"]


def test_ci_examples_parse_and_use_real_commands():
    commands = {c.name or c.callback.__name__ for c in app.registered_commands}
    workflow = yaml.safe_load((REPO / "examples" / "ci" / "github-actions.yml").read_text())
    steps = [s.get("run", "") for job in workflow["jobs"].values() for s in job["steps"]]
    used = {line.split()[1] for run in steps for line in run.splitlines() if line.strip().startswith("harden ")}
    assert used and used <= commands, used - commands
    assert {"scan", "drift"} <= used
    hooks = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    for hook in hooks:
        assert hook["entry"].split()[0] == "harden" and hook["entry"].split()[1] in commands
