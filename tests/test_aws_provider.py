"""Plan and apply the real modules against the sandbox with the real hashicorp/aws provider.

The provider cannot be downloaded on every machine (it cannot on the one harden is developed
on), so these tests run only where a provider mirror is configured:
    HARDEN_AWS_PROVIDER_MIRROR=/path/to/mirror   (a `terraform providers mirror` directory)
Elsewhere they are skipped with that reason.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.aws_provider

MIRROR = os.environ.get("HARDEN_AWS_PROVIDER_MIRROR")
if not MIRROR or not (Path(MIRROR) / "registry.terraform.io" / "hashicorp" / "aws").is_dir():
    pytest.skip("needs the hashicorp/aws provider: set HARDEN_AWS_PROVIDER_MIRROR to a "
                "`terraform providers mirror` directory that holds it", allow_module_level=True)


@pytest.fixture()
def mirror_config(tmp_path, monkeypatch):
    cfg = tmp_path / "terraformrc"
    cfg.write_text('provider_installation {\n  filesystem_mirror {\n'
                   f'    path    = "{MIRROR}"\n    include = ["registry.terraform.io/hashicorp/*"]\n  }}\n'
                   '  direct {\n    exclude = ["registry.terraform.io/hashicorp/*"]\n  }\n}\n')
    monkeypatch.setenv("TF_CLI_CONFIG_FILE", str(cfg))
    return cfg


def test_bootstrap_the_sandbox_then_nothing_to_change(tmp_path, mirror_config):
    from provisioner.aws import AwsSession
    from provisioner.baseline import parse_baseline
    from provisioner.render import render
    from provisioner.sandbox import running_sandbox, suggested_config
    from provisioner.terraform import Terraform
    from provisioner.verify import run_verify

    with running_sandbox(seed=True) as (sandbox, summary):
        baseline = parse_baseline(suggested_config(summary))
        render(baseline, tmp_path, endpoint_url=sandbox.endpoint_url)
        tf = Terraform(tmp_path / "account")
        tf.init()
        plan = tf.plan()
        assert plan.has_changes and plan.summary.to_dict()["destroy"] == 0
        tf.apply(plan.plan_file)
        assert tf.drift() is False  # a second plan is empty: bootstrap is idempotent
        report = run_verify(AwsSession(region=baseline.home_region), baseline,
                            controls=["flow_logs", "ebs.default_encryption", "config.recorder"])
        assert not [f for f in report.findings if f.status == "fail"], report.to_json()
