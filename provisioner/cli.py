"""The `harden` command line. Thin: parse options, call the library, print, pick the exit code.

Exit codes (a drift job tells them apart): 0 fine, 1 a check failed, 2 bad usage or
configuration, 3 the checks could not run.
"""

from __future__ import annotations

import json
import os
from enum import Enum
from pathlib import Path
from typing import NoReturn, Optional

import typer
from rich.console import Console
from rich.markup import escape

from provisioner import __version__
from provisioner.baseline import Baseline, ConfigError, load_baseline

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNABLE = 0, 1, 2, 3

app = typer.Typer(
    name="harden",
    help="Harden AWS accounts against Elastic IP (ec2:AllocateAddress) abuse and the blind spots "
    "around it: render Terraform for CloudTrail, flow logs, AWS Config, SCPs, EBS encryption and "
    "alarms; scan it with checkov; keep the account that way.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
out = Console()
err = Console(stderr=True)


class Format(str, Enum):
    table = "table"
    json = "json"


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


CONFIG_OPTION = typer.Option(
    None, "--config", "-c",
    help="harden.toml to read. Default: $HARDEN_CONFIG, else ./harden.toml if present, else the "
    "built-in secure defaults.",
    show_default=False,
)


def resolve_config(config: Optional[Path]) -> Baseline:
    path = config or (Path(os.environ["HARDEN_CONFIG"]) if os.environ.get("HARDEN_CONFIG") else None)
    if path is None and Path("harden.toml").is_file():
        path = Path("harden.toml")
    if path is None:
        err.print("[dim]no harden.toml given or found: using the built-in defaults[/]")
    try:
        return load_baseline(path)
    except ConfigError as exc:
        fail(str(exc))


@app.command()
def render(
    config: Optional[Path] = CONFIG_OPTION,
    out_dir: Path = typer.Option(Path("terraform"), "--out", "-o",
                                 help="Directory to write the modules to (created if missing)."),
) -> None:
    """Render the Terraform modules of the baseline.

    Writes modules/<family> for cloudtrail, flow_logs, config, scp, ebs_encryption and alarms, a
    root module `account/` that instantiates them in every region of the baseline, and a root
    module `organization/` for the SCPs (applied from the management account). Rendering is
    deterministic and all-or-nothing: on an error the previous output is left as it was.
    """
    from provisioner.render import RenderError, render as do_render
    from provisioner.terraform import TerraformError

    baseline = resolve_config(config)
    try:
        written = do_render(baseline, out_dir)
    except (RenderError, TerraformError) as exc:
        fail(f"render: {exc}")
    except OSError as exc:
        fail(f"render: cannot write {out_dir}: {exc.strerror or exc}")
    roots = sorted({p.parent.relative_to(out_dir).as_posix() for p in written})
    out.print(f"[green]rendered[/] {len(written)} files into {escape(str(out_dir))}: {', '.join(roots)}")


@app.command()
def scan(
    directory: Path = typer.Argument(Path("terraform"), help="Terraform directory to scan (recursively)."),
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="table for people, json for machines."),
    custom_checks: bool = typer.Option(True, "--custom-checks/--no-custom-checks",
                                       help="Also run harden's own checks (flow logs capture ALL, "
                                       "SCP denies AllocateAddress, trail multi-region + validation)."),
    skip_check: list[str] = typer.Option([], "--skip-check", help="A checkov check id to skip (repeatable)."),
) -> None:
    """Scan Terraform with checkov, offline, plus harden's custom checks.

    Works on the rendered modules or on any Terraform directory. Exit 1 when a check fails,
    3 when checkov could not run. checkov lives in an environment of its own ($HARDEN_CHECKOV
    names an existing one; otherwise it is installed on first use).
    """
    from provisioner.scan import ScanError, render_table, run_scan

    if not directory.exists():
        fail(f"scan: {directory}: no such directory")
    try:
        result = run_scan(directory, external_checks=custom_checks, skip_checks=skip_check or None)
    except ScanError as exc:
        fail(f"scan: {exc}", EXIT_UNABLE)
    if fmt is Format.json:
        out.print_json(json.dumps(result.to_dict()))
    else:
        render_table(result, out)
    raise typer.Exit(EXIT_OK if result.ok else EXIT_FAILED)


@app.command()
def version() -> None:
    """Print harden's version."""
    out.print(f"harden {__version__}")


def main() -> None:
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
