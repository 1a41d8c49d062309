"""Import blocks: the file harden writes before a plan, with the real bundled Terraform on the
provider-free terraform_data fixture (state listing, the plan counting imports, a second plan
after apply importing nothing) and the bootstrap step order. The sandbox story (every resource
remediate made is adopted at the right address) is in tests/test_resource_contract.py."""

from __future__ import annotations

import shutil
from pathlib import Path

import hcl2

from provisioner.adopt import IMPORTS_FILE, Adoption, render_imports, write_imports
from provisioner.bootstrap import bootstrap
from provisioner.findings import Finding, Report
from provisioner.terraform import Terraform

FIXTURE = Path(__file__).parent / "fixtures" / "terraform_data"


def _root(tmp_path: Path) -> Path:
    root = tmp_path / "account"
    shutil.copytree(FIXTURE, root)
    return root


def test_an_existing_resource_is_imported_once_then_left_alone(tmp_path):
    root = _root(tmp_path)
    tf = Terraform(root)
    tf.init()
    assert tf.state_addresses() == set()  # no state yet: not an error
    found = [Adoption("account", "terraform_data.item", "made-by-remediate", "the item"),
             Adoption("organization", "module.scp.x.y", "p-1", "another root's")]
    written = write_imports(root, found, tf.state_addresses())
    assert [a.address for a in written] == ["terraform_data.item"]  # this root's only
    plan = tf.plan()
    assert plan.summary.to_dict()["import"] == 1 and plan.summary.to_dict()["add"] == 0
    [change] = plan.summary.changes
    assert change.importing and change.address == "terraform_data.item"
    tf.apply(plan.plan_file)
    assert tf.state_addresses() == {"terraform_data.item"}
    # Now in state: no block is written again and the file goes.
    assert write_imports(root, found, tf.state_addresses()) == []
    assert not (root / IMPORTS_FILE).exists()
    assert not tf.plan().has_changes


def test_ids_are_escaped_literals():
    hostile = 'x"\n}\nresource "terraform_data" "evil" {\n  input = "${path.root}'
    text = render_imports([Adoption("account", 'module.flow_logs["eu-west-1"].aws_flow_log.this["vpc-1"]',
                                    hostile, "")])
    parsed = hcl2.loads(text)
    assert set(parsed) - {"__comments__"} == {"import"}  # no resource block got in
    [block] = parsed["import"]
    assert block["id"].startswith('"x\\"')  # one string, escaped


def test_bootstrap_writes_import_blocks_after_init_and_before_plan(tmp_path):
    out = tmp_path / "out"
    seen: list[str] = []

    def render() -> Path:
        if not (out / "account").exists():
            shutil.copytree(FIXTURE, out / "account")
        return out

    def adopt(tf: Terraform, root_dir: Path) -> list:
        seen.append(f"adopt:{root_dir.name}:{sorted(tf.state_addresses())}")
        return write_imports(root_dir, [Adoption("account", "terraform_data.item", "existing", "")],
                             tf.state_addresses())

    report = Report(account="123456789012", regions=["us-east-1"],
                    findings=[Finding("c", "us-east-1", "r", "pass", "ok")])
    result = bootstrap(render=render, scan=lambda d: 0, terraform=Terraform, verify=lambda: report,
                       confirm=lambda s: True, log=lambda m: None, adopt=adopt)
    assert result.steps == ["render", "scan", "init", "adopt", "plan", "confirm", "apply", "verify"]
    assert [a.address for a in result.adopted] == ["terraform_data.item"]
    assert result.plan.to_dict()["import"] == 1 and result.plan.to_dict()["destroy"] == 0
    again = bootstrap(render=render, scan=lambda d: 0, terraform=Terraform, verify=lambda: report,
                      confirm=lambda s: True, log=lambda m: None, adopt=adopt)
    assert again.adopted == [] and not again.applied
    assert seen == ["adopt:account:[]", "adopt:account:['terraform_data.item']"]


def test_without_aws_access_the_plan_goes_on_without_import_blocks(tmp_path, monkeypatch, capsys):
    from provisioner import cli
    from provisioner.baseline import parse_baseline

    root = _root(tmp_path)
    (root / IMPORTS_FILE).write_text("# stale\n")
    tf = Terraform(root)  # not initialised: discovery fails first
    # Nothing listens on port 9 of loopback: every AWS call fails at once.
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    from provisioner.aws import AwsSession

    once = AwsSession(region="us-east-1", max_attempts=1)  # the CLI's session retries 8 times
    assert cli._adopt(parse_baseline({"regions": ["us-east-1"]}), tf, root, once) == []
    assert not (root / IMPORTS_FILE).exists()  # a stale file is not left to import by mistake
    assert "planning without import blocks" in " ".join(capsys.readouterr().err.split())

