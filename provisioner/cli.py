"""The `harden` command line. Thin: parse options, call the library, print, pick the exit code.

Exit codes (a drift job tells them apart): 0 fine, 1 a check failed, 2 bad usage or
configuration, 3 the checks could not run.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, NoReturn, Optional, Sequence

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperArgument, TyperGroup

from provisioner import __version__
from provisioner.baseline import Baseline, ConfigError, load_baseline
from provisioner.tables import TrimmedStream

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNABLE = 0, 1, 2, 3


# click's usage-error base class: typer >= 0.2x vendors click as typer._click, older typer uses
# click itself; BadParameter (public in both) derives from it.
_ClickException = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


class _Argument(TyperArgument):
    """A positional argument in help as its metavar says it (`FILE...`, `[DIR]`), the way options
    show theirs: typer 0.2x appends the Python type (`FILE <list[Path]>`, `DIR <path>`) and braces
    a required one in the usage line (`{FILE}...`)."""

    def _name(self) -> str:
        return (self.metavar or (self.name or "").upper()) + ("..." if self.nargs != 1 else "")

    def display_type_rich(self, ctx: Any) -> Optional[str]:
        return None

    def _rich_display_name(self) -> str:
        return self._name()

    def _usage_display_name(self) -> str:
        return self._name() if self.required else f"[{self._name()}]"


class _HardenGroup(TyperGroup):
    """harden's command groups: usage errors as one line on stderr (`error: ...`, exit 2), like
    every other error of harden, instead of click's usage block; command lists that wrap the
    summary instead of cutting it with '...' at 80 columns; arguments shown by their metavar."""

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        for param in getattr(command, "params", ()):
            if type(param) is TyperArgument:  # typer builds them; only how help shows them changes
                param.__class__ = _Argument
        return command

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        rows = [(name, command.get_short_help_str(limit=200)) for name in self.list_commands(ctx)
                if (command := self.get_command(ctx, name)) is not None and not command.hidden]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def main(self, args: Optional[Sequence[str]] = None, prog_name: Optional[str] = None,
             complete_var: Optional[str] = None, standalone_mode: bool = True, **extra: Any) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            code = super().main(args, prog_name or "harden", complete_var, standalone_mode=False, **extra)
        except _ClickException as exc:
            if getattr(exc, "possibilities", None) and getattr(exc, "ctx", None):
                # "Did you mean": not the deprecated spellings kept hidden for one release
                hidden = {o for p in exc.ctx.command.params if getattr(p, "hidden", False) for o in p.opts}
                exc.possibilities = [o for o in exc.possibilities if o not in hidden]
            where = f" (see '{exc.ctx.command_path} -h')" if getattr(exc, "ctx", None) else ""
            err.print(f"[bold red]error:[/] {escape(exc.format_message())}{escape(where)}",
                      highlight=False, soft_wrap=True)
            sys.exit(exc.exit_code)
        except typer.Abort:
            err.print("aborted")
            sys.exit(EXIT_FAILED)
        sys.exit(code if isinstance(code, int) else EXIT_OK)


app = typer.Typer(
    name="harden",
    cls=_HardenGroup,
    help="Harden AWS accounts against Elastic IP (ec2:AllocateAddress) abuse and the blind spots "
    "around it: render Terraform for CloudTrail, flow logs, AWS Config, SCPs, EBS encryption and "
    "alarms; scan it with checkov; keep the account that way.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion for bash, zsh, fish, PowerShell
    # Plain click help: wraps at word boundaries to the terminal, never truncates a cell with
    # an ellipsis (rich's option tables did at 80 columns), and keeps `\b` example blocks as written.
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="Examples:\n\n\b\n  harden render -c harden.toml && harden scan terraform\n"
    "  harden verify -c harden.toml --format sarif -o harden.sarif\n"
    "  harden sandbox exec -- harden verify   # offline, on an emulated account\n"
    "  harden COMMAND -h                      # its options and examples",
)
out = Console(file=TrimmedStream("stdout"))
err = Console(file=TrimmedStream("stderr"), stderr=True)


def _print_version(value: bool) -> None:
    if value:
        print(f"harden {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    _version: bool = typer.Option(False, "--version", "-V", callback=_print_version, is_eager=True,
                                  help="Print harden's version and exit."),
) -> None:
    pass


class _StderrHandler(logging.StreamHandler):
    """Writes to sys.stderr as it is at each record (a test runner swaps it between commands)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def _log_level(level: int):
    """--verbose / --debug: harden's log (each AWS call with its region; Terraform's output) on
    stderr; --debug adds botocore's own log (requests, retries, credential lookup)."""
    def set_level(ctx: typer.Context, value: bool) -> bool:
        if value and not ctx.resilient_parsing:
            handler = _StderrHandler()
            handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
            for name in ("harden", *(("botocore", "boto3") if level <= logging.DEBUG else ())):
                logger = logging.getLogger(name)
                logger.setLevel(min(level, logger.level or logging.WARNING))
                if not logger.handlers:
                    logger.addHandler(handler)
        return value
    return set_level


VERBOSE_OPTION = typer.Option(False, "--verbose", "-v", callback=_log_level(logging.INFO),
                              help="Say more on stderr: each AWS call and its region; Terraform's own output.")
DEBUG_OPTION = typer.Option(False, "--debug", callback=_log_level(logging.DEBUG),
                            help="Everything --verbose says, plus botocore's debug log (no secrets: "
                            "botocore does not log credentials).")


class Format(str, Enum):
    table = "table"
    json = "json"


class ReportFormat(str, Enum):
    table = "table"
    json = "json"
    jsonl = "jsonl"
    junit = "junit"
    sarif = "sarif"
    ocsf = "ocsf"
    csv = "csv"
    html = "html"


SEVERITY_OPTION = typer.Option(None, "--severity", metavar="SEVERITY", help="Report only findings of this "
                               "severity or worse: critical, high, medium or low. The exit code still "
                               "counts every failure unless --fail-on says otherwise.")
FAIL_ON_OPTION = typer.Option(None, "--fail-on", metavar="SEVERITY", help="Exit 1 only when a failure of "
                              "this severity or worse is found (critical, high, medium, low). Default: any "
                              "failure. Checks that could not run still exit 3.")


def _severities(severity: Optional[str], fail_on: Optional[str]) -> tuple[Optional[str], Optional[str]]:
    from provisioner.severity import parse_severity

    try:
        return (parse_severity(severity, "--severity") if severity else None,
                parse_severity(fail_on, "--fail-on") if fail_on else None)
    except ValueError as exc:
        fail(str(exc))


FORMAT_OPTION = typer.Option(Format.table, "--format", "-f", help="table for people, json for machines.")
REPORT_FORMAT_OPTION = typer.Option(ReportFormat.table, "--format", "-f",
                                    help="table for people; json (the DESIGN.md contract), junit, sarif (GitHub "
                                    "code scanning), ocsf (Detection Finding, as Prowler), csv, or html (one file).")
OUTPUT_OPTION = typer.Option(None, "--output", "-o", metavar="FILE", dir_okay=False,
                             help="Write the report to this file instead of stdout.")
REGIONS_OPTION = typer.Option([], "--regions", "-r", metavar="REGION[,REGION...]",
                              help="Regions (repeatable or comma-separated). Default: the baseline's "
                              "regions, or every enabled region.")
PROFILE_OPTION = typer.Option(None, "--profile", metavar="NAME", help="AWS profile to use.", envvar="AWS_PROFILE")
ROLE_OPTION = typer.Option(None, "--role-arn", metavar="ARN",
                           help="Assume this role first (its session name starts with harden), e.g. a "
                           "read-only audit role in the target account.")


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


CONFIG_OPTION = typer.Option(
    None, "--config", "-c", metavar="FILE",
    help="harden.toml to read. Default: $HARDEN_CONFIG, else ./harden.toml if present, else the "
    "built-in secure defaults.",
    show_default=False,
)


DIR_OPTION = typer.Option(Path("terraform"), "--dir", "-d", metavar="DIR",
                          help="Directory of the rendered modules (render writes there).")
# The directory flag was --out/-o until 0.1; -o is now the report file everywhere. Kept hidden
# for one release, with a line on stderr.
OLD_DIR_OPTION = typer.Option(None, "--out", "-o", hidden=True)
OLD_DIR_LONG_OPTION = typer.Option(None, "--out", hidden=True)  # where -o is the report file


def _dir(new: Path, old: Optional[Path]) -> Path:
    if old is None:
        return new
    err.print("[yellow]deprecated:[/] --out/-o for the Terraform directory is now --dir/-d "
              "(-o is the report file on every command); the old spelling goes in the next release",
              highlight=False, soft_wrap=True)
    return old


def _examples(*lines: str) -> str:
    """An Examples section for a command's help (click keeps a \\b paragraph as written)."""
    return "Examples:\n\n\b\n" + "\n".join(f"  {line}" for line in lines)


def _config_path(config: Optional[Path]) -> Optional[Path]:
    path = config or (Path(os.environ["HARDEN_CONFIG"]) if os.environ.get("HARDEN_CONFIG") else None)
    if path is None and Path("harden.toml").is_file():
        path = Path("harden.toml")
    return path


def resolve_config(config: Optional[Path]) -> Baseline:
    path = _config_path(config)
    if path is None:
        err.print("[dim]no harden.toml given or found: using the built-in defaults[/]")
    try:
        return load_baseline(path)
    except ConfigError as exc:
        fail(str(exc))


@app.command(epilog=_examples(
    "harden render --config harden.toml --dir terraform",
    "harden render -c harden.toml -d infra/harden",
))
def render(
    config: Optional[Path] = CONFIG_OPTION,
    out_dir: Path = DIR_OPTION,
    old_dir: Optional[Path] = OLD_DIR_OPTION,
    allow_destroy: bool = typer.Option(False, "--allow-destroy", help="Render prevent_destroy = false "
                                       "on the log bucket, keys and log groups (deliberate teardown)."),
    verbose: bool = VERBOSE_OPTION,
    debug: bool = DEBUG_OPTION,
) -> None:
    """Render the Terraform modules of the baseline.

    Writes modules/<family> for cloudtrail, flow_logs, config, scp, ebs_encryption and alarms, a
    root module `account/` that instantiates them in every region of the baseline, and a root
    module `organization/` for the SCPs (applied from the management account). Rendering is
    deterministic and all-or-nothing: on an error the previous output is left as it was.
    """
    from provisioner.render import RenderError, render as do_render
    from provisioner.terraform import TerraformError

    out_dir = _dir(out_dir, old_dir)
    baseline = resolve_config(config)
    endpoint = os.environ.get("AWS_ENDPOINT_URL") or None
    if endpoint:
        err.print(f"AWS_ENDPOINT_URL is set: the provider blocks point every service at {escape(endpoint)}")
    try:
        written = do_render(baseline, out_dir, endpoint_url=endpoint, allow_destroy=allow_destroy)
    except (RenderError, TerraformError) as exc:
        fail(f"render: {exc}")
    except OSError as exc:
        fail(f"render: cannot write {out_dir}: {exc.strerror or exc}")
    roots = sorted({p.parent.relative_to(out_dir).as_posix() for p in written})
    out.print(f"[green]rendered[/] {len(written)} files into {escape(str(out_dir))}: {', '.join(roots)}")
    if allow_destroy:
        err.print("[yellow]--allow-destroy: the log bucket, keys and log groups are not protected from "
                  "destruction in this rendering; render again without it to restore the guard[/]")


@app.command(epilog=_examples("harden validate terraform", "make validate"))
def validate(
    directory: Path = typer.Argument(Path("terraform"), metavar="DIR",
                                     help="Rendered modules (or any Terraform tree)."),
    verbose: bool = VERBOSE_OPTION,
    debug: bool = DEBUG_OPTION,
) -> None:
    """Check Terraform offline against the AWS provider's own schema (hashicorp/aws 6.25.0).

    Catches what `terraform validate` would, without downloading the provider: unknown or
    missing arguments and blocks, wrong literal types, references to undeclared things or to
    attributes a resource does not have, variables without type or description. Then
    Terraform's own loader reads each root and module. Exit 1 when a problem is found.
    """
    from provisioner.terraform import TerraformError, load_check
    from provisioner.validate import validate_tree

    if not directory.is_dir():
        fail(f"validate: {directory}: no such directory")
    try:
        problems = [str(p) for p in validate_tree(directory)]
    except FileNotFoundError as exc:
        fail(f"validate: {exc}", EXIT_UNABLE)
    roots = sorted({p.parent for p in directory.rglob("*.tf") if ".terraform" not in p.parts})
    try:
        for root in roots:
            problems += [f"{root.relative_to(directory)}: {d}" for d in load_check(root)]
    except TerraformError as exc:
        fail(f"validate: {exc}", EXIT_UNABLE)
    for line in problems:
        out.print(escape(line), highlight=False)
    if problems:
        out.print(f"[red]{len(problems)} problem(s)[/] in {escape(str(directory))}")
        raise typer.Exit(EXIT_FAILED)
    out.print(f"[green]valid[/]: {len(roots)} module directories in {escape(str(directory))} "
              "match the hashicorp/aws 6.25.0 schema and load in Terraform")


class ScanFormat(str, Enum):
    table = "table"
    json = "json"
    junit = "junit"
    sarif = "sarif"


@app.command(epilog=_examples(
    "harden scan terraform",
    "harden scan terraform --format sarif --output checkov.sarif",
    "harden scan infra/ --skip-check CKV_AWS_144 --format junit -o checkov.xml",
))
def scan(
    directory: Path = typer.Argument(Path("terraform"), metavar="DIR",
                                     help="Terraform directory to scan (recursively)."),
    fmt: ScanFormat = typer.Option(ScanFormat.table, "--format", "-f",
                                   help="table for people, json for machines; sarif and junit are "
                                   "checkov's own reports (harden's custom checks included)."),
    output: Optional[Path] = OUTPUT_OPTION,
    custom_checks: bool = typer.Option(True, "--custom-checks/--no-custom-checks",
                                       help="Also run harden's own checks (flow logs capture ALL, "
                                       "SCP denies AllocateAddress, trail multi-region + validation)."),
    skip_check: list[str] = typer.Option([], "--skip-check", metavar="CHECK_ID",
                                         help="A checkov check id to skip (repeatable)."),
    verbose: bool = VERBOSE_OPTION,
    debug: bool = DEBUG_OPTION,
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
        result = run_scan(directory, external_checks=custom_checks, skip_checks=skip_check or None,
                          checkov_report=fmt.value if fmt in (ScanFormat.sarif, ScanFormat.junit) else None)
    except ScanError as exc:
        fail(f"scan: {exc}", EXIT_UNABLE)
    if fmt is ScanFormat.table:
        _write_table(output, lambda console: render_table(result, console))
    else:
        _write_text(output, result.checkov_report if result.checkov_report is not None
                    else json.dumps(result.to_dict(), indent=2))
    if output:
        err.print(f"report written to {escape(str(output))}: {len(result.failed)} failed, {result.passed} passed",
                  soft_wrap=True)
    raise typer.Exit(EXIT_OK if result.ok else EXIT_FAILED)


def _write_report(output: Path, write) -> None:
    """Write beside the target, then rename into place: a write that fails half-way (disk full)
    leaves the previous report as it was, and says so in one line (exit 3: the checks ran, the
    report could not be delivered)."""
    # A symlink is followed (the rename replaces the file it points at, not the link); what is
    # not a regular file (/dev/stdout, a pipe, a device) is written in place: renaming over it
    # would replace the device node or the pipe itself (as root, /dev/stdout or /dev/null).
    if output.exists() and not output.is_file():  # stat follows links, /proc's magic ones included
        try:
            with output.open("w", encoding="utf-8") as handle:
                write(handle)
        except OSError as exc:
            fail(f"--output {output}: cannot write the report: {exc.strerror or exc}", EXIT_UNABLE)
        return
    target = Path(os.path.realpath(output))
    staging = target.with_name(f".{target.name}.harden-partial")
    try:
        with staging.open("w", encoding="utf-8") as handle:
            write(handle)
        os.replace(staging, target)
    except OSError as exc:
        if staging.is_file():
            staging.unlink()
        fail(f"--output {output}: cannot write the report: {exc.strerror or exc}", EXIT_UNABLE)


def _write_text(output: Optional[Path], text: str) -> None:
    """A machine-readable report to stdout, or to --output (one line and exit 2 if it cannot be written)."""
    if output is None:
        print(text.rstrip("\n"))
        return
    _write_report(_output_file(output), lambda handle: handle.write(text if text.endswith("\n") else text + "\n"))


def _write_table(output: Optional[Path], draw) -> None:
    """A report for people to the terminal, or to --output as plain text (no colour codes)."""
    if output is None:
        draw(out)
        return
    _write_report(_output_file(output),
                  lambda handle: draw(Console(file=TrimmedStream(handle), width=160, no_color=True, highlight=False)))


def _emit(data: Any, fmt: "Format", output: Optional[Path], draw) -> None:
    """table (draw(console)) or json (data) to stdout or --output: the reporting commands' one path."""
    if fmt is Format.json:
        _write_text(output, json.dumps(data, indent=2, default=str))
    else:
        _write_table(output, draw)
    if output:
        err.print(f"report written to {escape(str(output))}", soft_wrap=True)


def _emit_report(report, fmt: "ReportFormat", output: Optional[Path], *, min_severity: Optional[str] = None,
                 sources=None) -> None:
    """A verify (or drift) report in the chosen format, to stdout or a file; `min_severity`
    leaves out less severe findings, `sources` is where SARIF results point."""
    from provisioner.controls import rule_metadata
    from provisioner.report_formats import html_text, ocsf_text, to_csv
    from provisioner.report_table import render_report

    rules = rule_metadata()
    report = report.filtered(min_severity)
    if fmt is ReportFormat.jsonl:  # one account's stream: header, the account, the summary
        from provisioner.report_stream import Sink, header

        sink = Sink("jsonl", output, header(None), emit=lambda _r: None)
        sink.add(report)
        sink.close()
    elif fmt is ReportFormat.table:
        _write_table(output, lambda console: render_report(report, console, rules))
    else:
        text = {ReportFormat.json: lambda: report.to_json(rules), ReportFormat.junit: lambda: report.to_junit(rules),
                ReportFormat.sarif: lambda: report.to_sarif(rules, sources),
                ReportFormat.ocsf: lambda: ocsf_text(report, rules), ReportFormat.csv: lambda: to_csv(report, rules),
                ReportFormat.html: lambda: html_text(report, rules)}[fmt]()
        _write_text(output, text)
    if output:
        summary = report.summary()
        err.print(f"report written to {escape(str(output))}: {summary['fail']} fail, "
                  f"{summary['error']} error, {summary['pass']} pass", soft_wrap=True)


@dataclass(frozen=True)
class OrgRunOptions:
    """How an organization run is split and resumed (verify --organization-role)."""
    accounts: list[str] | None = None
    shard: Optional[tuple[int, int]] = None
    resume: Optional[Path] = None
    processes: Optional[int] = None
    account_workers: Optional[int] = None
    sequential: bool = False
    profile: Optional[str] = None
    role_arn: Optional[str] = None


def _organization_sink(fmt: "ReportFormat", output: Optional[Path], head: dict, resume=None, *,
                       min_severity: Optional[str] = None, fail_on: Optional[str] = None, sources=None):
    """The Sink that writes an organization report in `fmt` (see provisioner.report_stream)."""
    from provisioner.controls import rule_metadata
    from provisioner.report_stream import Sink
    from provisioner.report_table import render_report

    rules = rule_metadata()
    consoles: dict[int, Console] = {}

    def table(report, file) -> None:  # file: the Sink's (staged, locked) report file; None: stdout
        console = out if file is None else consoles.setdefault(id(file), Console(file=file, width=160))
        render_report(report, console, rules)

    return Sink(fmt.value, output, head, resume=resume, min_severity=min_severity, fail_on=fail_on,
                emit=lambda report: _emit_report(report, fmt, output, sources=sources),
                table=table if fmt is ReportFormat.table else None)


def _verify_organization(aws, baseline: Baseline, role_name: str, regions: list[str] | None,
                         controls: list[str] | None, window, fmt: "ReportFormat", output: Optional[Path],
                         opts: OrgRunOptions, min_severity: Optional[str] = None,
                         fail_on: Optional[str] = None, sources=None) -> NoReturn:
    import re

    import botocore.exceptions

    from provisioner.aws import describe_error
    from provisioner.organization import ROLE_NAME_RE, Parallelism, plan_run, run_organization
    from provisioner.report_stream import ReportWriteError, StreamError, check_resumable, header, scan_locked

    if not re.match(ROLE_NAME_RE, role_name):
        fail(f"--organization-role {role_name!r}: expected an IAM role name (letters, digits, +=,.@_-)")
    for account in opts.accounts or []:
        if not re.fullmatch(r"[0-9]{12}", account):
            fail(f"--accounts {account!r}: expected a 12-digit account id")
    resume_state = None
    if opts.resume:
        if fmt is not ReportFormat.jsonl:
            fail("--resume needs --format jsonl (the stream is what a run resumes from)")
        if not opts.resume.is_file():
            fail(f"--resume {opts.resume}: no such file (start the run without --resume, with --output)")
        try:
            resume_state = scan_locked(opts.resume)  # locked, then read: see scan_locked
        except ReportWriteError as exc:  # another run is writing it
            fail(str(exc), EXIT_UNABLE)
        except StreamError as exc:
            fail(str(exc))
        output = opts.resume
    try:
        plan = plan_run(aws, accounts=opts.accounts, controls=controls, shard=opts.shard,
                        skip=resume_state.done if resume_state else ())
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        fail(f"verify --organization-role: {describe_error(exc)}", EXIT_UNABLE)
    if resume_state:
        try:
            check_resumable(resume_state, plan.organization_id, opts.shard)
        except StreamError as exc:
            fail(str(exc))
        err.print(f"resuming {escape(str(opts.resume))}: {len(resume_state.done)} accounts already reported, "
                  f"{len(plan.accounts)} to go", soft_wrap=True)
    par = Parallelism.auto(len(plan.accounts), opts.processes, opts.account_workers, opts.sequential)
    head = header(plan.organization_id, shard=opts.shard, role=role_name, regions=regions, controls=controls)
    try:
        sink = _organization_sink(fmt, output, head, resume=resume_state, min_severity=min_severity,
                                  fail_on=fail_on, sources=sources)
    except ReportWriteError as exc:
        fail(str(exc), EXIT_UNABLE)

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(TextColumn("[bold]verify[/] accounts"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.description}"), TimeElapsedColumn(),
                        console=err, transient=True, disable=not err.is_terminal)
    task = progress.add_task("", total=len(plan.accounts))

    def on_report(report) -> None:
        sink.add(report)
        s = sink.totals
        progress.update(task, advance=1, description=f"{report.account}: {s.accounts_failing} with drift, "
                        f"{s.accounts_unable} not fully checked")

    try:
        with progress:
            run_organization(aws, baseline, role_name, plan, on_report, regions=regions, since=window,
                             parallelism=par, base_spec={"profile": opts.profile, "role_arn": opts.role_arn})
        code = sink.close()
    except ReportWriteError as exc:  # a full disk: the run cannot deliver its report
        fail(str(exc), EXIT_UNABLE)
    s = sink.totals
    if fmt is ReportFormat.table or output:
        err.print(f"organization {escape(str(plan.organization_id))}: {s.accounts} accounts, "
                  f"{s.accounts_failing} with drift, {s.accounts_unable} not fully checked"
                  + (f"; report written to {escape(str(output))}" if output else ""), soft_wrap=True)
    raise typer.Exit(code)


def _sources(terraform_dir: Optional[Path], config: Optional[Path]):
    """Where SARIF results point: the rendered Terraform and the harden.toml of this run."""
    from provisioner.sarif import Sources

    path = _config_path(config)
    return Sources(terraform_dir=terraform_dir if terraform_dir and terraform_dir.is_dir() else None,
                   config_file=path, base=Path.cwd())


def _check_role_arn(role_arn: str) -> None:
    """--role-arn is usage: a value that is not an IAM role ARN is exit 2 here, not exit 3 from
    STS's parameter validation once the run has started."""
    from provisioner.aws import parse_arn

    try:
        arn = parse_arn(role_arn)
    except ValueError:
        arn = {}
    if arn.get("service") != "iam" or not arn.get("resource", "").startswith("role/") or not arn.get("account"):
        fail(f"--role-arn {role_arn!r}: expected an IAM role ARN such as arn:aws:iam::123456789012:role/NAME")


def _aws_session(baseline: Baseline, profile: Optional[str], role_arn: Optional[str], workers: int = 8):
    import botocore.exceptions

    from provisioner.aws import AwsSession, describe_error

    if role_arn is not None:
        _check_role_arn(role_arn)
    try:
        return AwsSession(profile=profile, role_arn=role_arn, region=baseline.home_region, max_workers=workers)
    except botocore.exceptions.ProfileNotFound as exc:
        fail(str(exc))
    except ValueError as exc:  # a HARDEN_*_TIMEOUT that is not a number of seconds
        fail(str(exc))
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        fail(f"cannot start an AWS session: {describe_error(exc)}", EXIT_UNABLE)


CONTROLS_OPTION = typer.Option([], "--controls", metavar="CONTROL[,CONTROL...]",
                               help="Control ids or families (repeatable or comma-separated), e.g. "
                               "flow_logs,cloudtrail.kms. Default: all.")
SINCE_OPTION = typer.Option("7d", "--since", metavar="DURATION", help="Look-back window in CloudTrail event "
                            "history: 30m, 12h, 7d, 2w; at most 90d.")
WORKERS_OPTION = typer.Option(8, "--workers", min=1, max=64, metavar="N", help="Regions read at the same time.")


@app.command(epilog=_examples(
    "harden verify --config harden.toml",
    "harden verify -r eu-west-1,us-east-1 --controls flow_logs,cloudtrail.kms",
    "harden verify --format sarif --output harden.sarif",
    "harden verify --role-arn arn:aws:iam::123456789012:role/audit -o out.json",
    "harden verify --organization-role harden-audit --accounts 111111111111",
))
def verify(
    config: Optional[Path] = CONFIG_OPTION,
    regions: list[str] = REGIONS_OPTION,
    controls: list[str] = CONTROLS_OPTION,
    fmt: ReportFormat = REPORT_FORMAT_OPTION,
    output: Optional[Path] = OUTPUT_OPTION,
    since: str = typer.Option("7d", "--since", metavar="DURATION", help="Look-back window for eip.allocations "
                              "and eip.pool (CloudTrail event history): 30m, 12h, 7d, 2w; at most 90d."),
    profile: Optional[str] = PROFILE_OPTION,
    role_arn: Optional[str] = ROLE_OPTION,
    workers: int = WORKERS_OPTION,
    organization_role: Optional[str] = typer.Option(
        None, "--organization-role", metavar="ROLE_NAME",
        help="Verify every active account of the organization by assuming this "
        "role name in each (run from the management or delegated-admin account; a read-only audit role is "
        "enough). The SCP controls run once, from the caller's account."),
    accounts: list[str] = typer.Option([], "--accounts", metavar="ACCOUNT_ID[,ACCOUNT_ID...]",
                                       help="With --organization-role: only these account ids."),
    shard: Optional[str] = typer.Option(None, "--shard", metavar="I/N", help="With --organization-role: verify "
                                        "only slice I of N (a stable hash of the account id), for N workers of a "
                                        "CI matrix or batch array job; `harden report merge` combines their outputs."),
    resume: Optional[Path] = typer.Option(None, "--resume", metavar="FILE", help="With --organization-role and "
                                          "--format jsonl: continue an interrupted run, appending to FILE and "
                                          "skipping the accounts it already holds."),
    processes: Optional[int] = typer.Option(None, "--processes", min=1, max=64, metavar="N", help="With --organization-role: "
                                            "worker processes (default: one per 100 accounts, at most one per CPU)."),
    account_workers: Optional[int] = typer.Option(None, "--account-workers", min=1, max=64, metavar="N", help="With "
                                                  "--organization-role: accounts verified at once per process "
                                                  "(default 8). In flight at most: processes x this x --workers."),
    sequential: bool = typer.Option(False, "--sequential", help="With --organization-role: one account after "
                                    "the other in this process (the pre-0.2 behaviour, for comparison)."),
    severity: Optional[str] = SEVERITY_OPTION,
    fail_on: Optional[str] = FAIL_ON_OPTION,
    tf_dir: Path = typer.Option(Path("terraform"), "--dir", "-d", metavar="DIR", help="The rendered Terraform: SARIF results "
                                "point at the resource that fixes each failure there (else at harden.toml)."),
    verbose: bool = VERBOSE_OPTION,
    debug: bool = DEBUG_OPTION,
) -> None:
    """Verify the live account against the baseline: the drift-verification job.

    Runs every control in every region (read-only) and reports pass/fail/error/skipped per
    resource. Exit 0 when nothing fails, 1 when a control fails (drift), 2 on bad usage or
    configuration, 3 when some checks could not run (access denied, region unreachable).
    AWS_ENDPOINT_URL points it at an emulator such as `harden sandbox serve`.
    """
    import botocore.exceptions

    from provisioner.aws import describe_error
    from provisioner.controls import UnknownControl, select
    from provisioner.verify import parse_since, run_verify

    baseline = resolve_config(config)
    min_severity, fail_on = _severities(severity, fail_on)
    sources = _sources(tf_dir, config)
    try:
        window = parse_since(since)
        select(controls or None)
    except (ValueError, UnknownControl) as exc:
        fail(str(exc))
    wanted_regions = _regions(regions, baseline)
    output = _output_file(output)
    aws = _aws_session(baseline, profile, role_arn, workers)

    if organization_role:
        from provisioner.organization import parse_shard

        try:
            shard_slice = parse_shard(shard) if shard else None
        except ValueError as exc:
            fail(str(exc))
        _verify_organization(aws, baseline, organization_role, wanted_regions, controls or None, window, fmt,
                             output, OrgRunOptions(accounts=_split(accounts), shard=shard_slice, resume=resume,
                                                   processes=processes, account_workers=account_workers,
                                                   sequential=sequential, profile=profile, role_arn=role_arn),
                             min_severity, fail_on, sources)
    for flag, value in (("--accounts", accounts), ("--shard", shard), ("--resume", resume),
                        ("--processes", processes), ("--account-workers", account_workers),
                        ("--sequential", sequential)):
        if value:
            fail(f"{flag} needs --organization-role")

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(TextColumn("[bold]verify[/]"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.description}"), TimeElapsedColumn(),
                        console=err, transient=True, disable=not err.is_terminal)
    task = progress.add_task("", total=None)

    def on_regions(found: list[str]) -> None:
        progress.update(task, total=len(found) + 1, description=f"{len(found)} regions")

    def on_done(unit: str) -> None:
        progress.update(task, advance=1, description=f"{unit} done")

    try:
        with progress:
            report = run_verify(aws, baseline, regions=wanted_regions, controls=controls or None,
                                since=window, progress=on_done, on_regions=on_regions)
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        fail(f"verify could not start: {describe_error(exc)}", EXIT_UNABLE)

    _emit_report(report, fmt, output, min_severity=min_severity, sources=sources)
    raise typer.Exit(report.exit_code(fail_on))


# -- remediation --------------------------------------------------------------------------------

APPLY_OPTION = typer.Option(False, "--apply", help="Make the changes. Without it nothing is changed: "
                            "the actions are only printed (dry run).")


def _split(values: list[str]) -> list[str] | None:
    return [v.strip() for raw in values for v in raw.split(",") if v.strip()] or None


def _regions(values: list[str], baseline: Baseline) -> list[str] | None:
    """--regions, each one a region botocore knows in the home region's partition (exit 2 with the
    nearest names otherwise): a typo fails here, not as an AWS error in every check."""
    from provisioner.aws import partition_for
    from provisioner.naming import region_problem

    chosen = _split(values)
    if values and not chosen:  # `-r "$REGION"` with REGION unset must not widen to every region
        fail(f"--regions {','.join(values)!r} names no region")
    for region in chosen or []:
        if why := region_problem(region, partition_for(baseline.home_region)):
            fail(f"--regions: {why}")
    return chosen


def _output_file(output: Optional[Path]) -> Optional[Path]:
    """--output, refused before any AWS call when it cannot take the report: nothing is written."""
    if output is None:
        return None
    if output.is_dir():
        fail(f"--output {output}: is a directory, expected the path of a file to write the report to")
    if not output.parent.is_dir():
        fail(f"--output {output}: folder {output.parent} does not exist")
    if not os.access(output.parent, os.W_OK) or (output.exists() and not os.access(output, os.W_OK)):
        fail(f"--output {output}: not writable")
    return output


@app.command(epilog=_examples(
    "harden remediate                       # dry run: what would be fixed",
    "harden remediate --apply --controls flow_logs,config",
    "harden remediate -r eu-west-1 --format json --output fixes.json",
))
def remediate(
    config: Optional[Path] = CONFIG_OPTION,
    controls: list[str] = typer.Option([], "--controls", metavar="CONTROL[,CONTROL...]",
                                       help="Controls or families to fix (repeatable or "
                                       "comma-separated). Default: every control that has a fix."),
    regions: list[str] = REGIONS_OPTION,
    apply: bool = APPLY_OPTION,
    fmt: Format = FORMAT_OPTION,
    output: Optional[Path] = OUTPUT_OPTION,
    profile: Optional[str] = PROFILE_OPTION,
    role_arn: Optional[str] = ROLE_OPTION,
    verbose: bool = VERBOSE_OPTION,
    debug: bool = DEBUG_OPTION,
) -> None:
    """Fix what verify finds, with boto3: dry run unless --apply.

    Plans one action per failed finding of a control that has a fix (create/start the trail and
    turn on validation, create missing flow logs, put and start the Config recorder and channel,
    attach the SCPs, turn on default EBS encryption with the baseline key, create missing CPU
    alarms, revoke each security group rule that opens admin ports or all traffic to the world and
    each rule of a default security group, printing the command that restores it) and prints them. With --apply it takes them, reports each result, and verifies the
    controls it touched. A failed action is reported and the others go on. Idempotent: a second
    run finds nothing to do. Destructive fixes have their own commands (ebs migrate, eip release,
    respond).
    """
    import botocore.exceptions

    from provisioner.aws import describe_error
    from provisioner.controls import UnknownControl
    from provisioner.remediate import run_remediation
    from provisioner.report_table import render_remediation

    baseline = resolve_config(config)
    if controls and not _split(controls):  # `--controls ""` must not widen to every fix
        fail(f"--controls {','.join(controls)!r} names no control")
    aws = _aws_session(baseline, profile, role_arn)
    try:
        with err.status("verifying, then planning fixes") as status:
            run = run_remediation(aws, baseline, controls=_split(controls), regions=_regions(regions, baseline),
                                  apply=apply,
                                  progress=lambda a: status.update(f"{'applying' if apply else 'planning'}: "
                                                                   f"{escape(a.description[:90])}"))
    except (UnknownControl, ValueError) as exc:
        fail(str(exc))
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        fail(f"remediate could not start: {describe_error(exc)}", EXIT_UNABLE)
    _emit(run.to_dict(), fmt, output, lambda console: render_remediation(run, console, apply))
    if fmt is Format.json and run.unchecked:
        err.print(f"[yellow]{escape(run.unchecked_summary())}[/]", highlight=False, soft_wrap=True)
    raise typer.Exit(run.exit_code())


# -- Elastic IPs and incident response: eip release, events allocate-address, respond ------------

eip_app = typer.Typer(cls=_HardenGroup, epilog=_examples('harden eip release --regions eu-west-1'), help="Elastic IPs: release the idle ones (dry run unless --apply).", no_args_is_help=True)
app.add_typer(eip_app, name="eip")
events_app = typer.Typer(cls=_HardenGroup, epilog=_examples('harden events allocate-address --since 1d'), help="CloudTrail event history, read for Elastic IP abuse.", no_args_is_help=True)
app.add_typer(events_app, name="events")



def _aws_unable(what: str, exc: BaseException) -> NoReturn:
    from provisioner.aws import describe_error

    fail(f"{what}: {describe_error(exc)}", EXIT_UNABLE)


def _warn_regions(errors: dict[str, str], what: str) -> None:
    for region, message in sorted(errors.items()):
        err.print(f"[yellow]{what}[/] {escape(region)}: {escape(message)}", highlight=False, soft_wrap=True)


def _since(text: str):
    from provisioner.verify import parse_since

    try:
        return parse_since(text)
    except ValueError as exc:
        fail(str(exc))


@eip_app.command("release", epilog=_examples(
    "harden eip release                     # dry run: the idle addresses",
    "harden eip release --apply -r eu-west-1",
    "harden eip release --allocation-ids eipalloc-0abc,eipalloc-0def --apply",
))
def eip_release(
    config: Optional[Path] = CONFIG_OPTION,
    regions: list[str] = REGIONS_OPTION,
    allocation_ids: list[str] = typer.Option([], "--allocation-ids", metavar="ID[,ID...]",
                                             help="Only these addresses (repeatable "
                                             "or comma-separated), e.g. the ones `harden respond` lists."),
    apply: bool = APPLY_OPTION,
    fmt: Format = FORMAT_OPTION,
    output: Optional[Path] = OUTPUT_OPTION,
    profile: Optional[str] = PROFILE_OPTION,
    role_arn: Optional[str] = ROLE_OPTION,
    verbose: bool = VERBOSE_OPTION,
    debug: bool = DEBUG_OPTION,
) -> None:
    """Release unassociated Elastic IPs: dry run unless --apply.

    Releases what eip.unassociated fails: addresses with no association, except those tagged
    harden:keep=<reason> (false/no/0/empty do not keep) and those from your own BYOIP or
    customer-owned pool. Each address is described again right before its release; one associated
    or tagged since the plan is left alone. A released public IP cannot be got back: --apply
    prints every released allocation id and IP so DNS owners can look for dangling records.
    Exit 0 done or nothing to do, 1 a dry run with addresses to release, 2 usage, 3 a region could
    not be read or a release failed.
    """
    import botocore.exceptions

    from provisioner.eip import check_allocation_ids, render_release, run_release

    try:
        wanted = check_allocation_ids(_split(allocation_ids))
    except ValueError as exc:
        fail(str(exc))
    baseline = resolve_config(config)
    aws = _aws_session(baseline, profile, role_arn)
    try:
        with err.status("reading Elastic IPs") as status:
            run = run_release(aws, baseline, regions=_regions(regions, baseline), allocation_ids=wanted, apply=apply,
                              progress=lambda a: status.update(escape(a.description[:90])))
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        _aws_unable("eip release could not start", exc)
    _warn_regions(run.errors, "could not read")
    _emit(run.to_dict(), fmt, output, lambda console: render_release(run, console))
    raise typer.Exit(run.exit_code())


@events_app.command("allocate-address", epilog=_examples(
    "harden events allocate-address --since 12h",
    "harden events allocate-address -r eu-west-1,us-east-1 -f json -o ev.json",
))
def events_allocate_address(
    config: Optional[Path] = CONFIG_OPTION,
    since: str = SINCE_OPTION,
    regions: list[str] = REGIONS_OPTION,
    fmt: Format = FORMAT_OPTION,
    output: Optional[Path] = OUTPUT_OPTION,
    profile: Optional[str] = PROFILE_OPTION,
    role_arn: Optional[str] = ROLE_OPTION,
    workers: int = WORKERS_OPTION,
    verbose: bool = VERBOSE_OPTION,
    debug: bool = DEBUG_OPTION,
) -> None:
    """List AllocateAddress and address transfer calls of every region (CloudTrail event history).

    One row per call: time, region, event, principal, source IP, user agent, address, error code,
    and whether the principal is in allocate_address.allowed_principals. A region that cannot be
    read (access denied, unreachable) is reported on stderr and the others still print; exit 3
    then, else 0.
    """
    import botocore.exceptions

    from provisioner.eip import list_address_events, render_events

    window = _since(since)
    baseline = resolve_config(config)
    aws = _aws_session(baseline, profile, role_arn, workers)
    try:
        with err.status("reading CloudTrail event history"):
            listing = list_address_events(aws, baseline, since=window, regions=_regions(regions, baseline))
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        _aws_unable("events could not start", exc)
    _warn_regions(listing.errors, "could not read")
    _emit(listing.to_dict(), fmt, output, lambda console: render_events(listing, console))
    raise typer.Exit(listing.exit_code())


ec2_app = typer.Typer(cls=_HardenGroup, epilog=_examples("harden ec2 amis --regions eu-west-1"),
                      help="EC2 instances: the images they run (read-only).", no_args_is_help=True)
app.add_typer(ec2_app, name="ec2")


@ec2_app.command("amis", epilog=_examples(
    "harden ec2 amis",
    "harden ec2 amis -r eu-west-1,us-east-1 -f json -o amis.json",
))
def ec2_amis(
    config: Optional[Path] = CONFIG_OPTION,
    regions: list[str] = REGIONS_OPTION,
    fmt: Format = FORMAT_OPTION,
    output: Optional[Path] = OUTPUT_OPTION,
    profile: Optional[str] = PROFILE_OPTION,
    role_arn: Optional[str] = ROLE_OPTION,
    verbose: bool = VERBOSE_OPTION,
    debug: bool = DEBUG_OPTION,
) -> None:
    """List every running instance with its AMI: the seed document's describe-instances view.

    One row per instance: region, instance (Name tag), AMI id, AMI name, owner, age in days,
    deprecation, and what ec2.ami_currency finds wrong (missing, deprecated, older than
    ami.max_age_days, owner not in ami.allowed_owners). Report-only. Exit 0 all current, 1 some
    image is not, 3 a region could not be read.
    """
    import botocore.exceptions

    from provisioner.aws import describe_error
    from provisioner.report_table import render_ami_table
    from provisioner.verify import run_verify

    baseline = resolve_config(config)
    aws = _aws_session(baseline, profile, role_arn)
    try:
        with err.status("reading instances and their images"):
            report = run_verify(aws, baseline, regions=_regions(regions, baseline), controls=["ec2.ami_currency"])
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        fail(f"ec2 amis could not start: {describe_error(exc)}", EXIT_UNABLE)
    _warn_regions({f.region: f.message for f in report.findings if f.status == "error"}, "could not read")
    rows = [{"region": f.region, "status": f.status, **f.evidence}
            for f in report.sorted_findings() if f.status in ("pass", "fail") and "instance_id" in f.evidence]
    _emit({"account": report.account, "regions": report.regions, "instances": rows}, fmt, output,
          lambda console: render_ami_table(rows, console))
    raise typer.Exit(report.exit_code())


@app.command(epilog=_examples(
    "harden respond --principal arn:aws:iam::123456789012:user/mallory",
    "harden respond -p arn:aws:iam::123456789012:role/ci --apply -o r.json",
))
def respond(
    principal: str = typer.Option(..., "--principal", "-p", metavar="ARN",
                                  help="The IAM user or role ARN (or an assumed-role "
                                  "session ARN) that allocated addresses it should not have."),
    config: Optional[Path] = CONFIG_OPTION,
    apply: bool = APPLY_OPTION,
    force: bool = typer.Option(False, "--force", help="Also act on a principal the baseline lists in "
                               "scp.admin_principals or allocate_address.allowed_principals."),
    since: str = SINCE_OPTION,
    regions: list[str] = REGIONS_OPTION,
    fmt: Format = FORMAT_OPTION,
    output: Optional[Path] = OUTPUT_OPTION,
    profile: Optional[str] = PROFILE_OPTION,
    role_arn: Optional[str] = ROLE_OPTION,
    verbose: bool = VERBOSE_OPTION,
    debug: bool = DEBUG_OPTION,
) -> None:
    """Quarantine a principal that allocated Elastic IPs: dry run unless --apply.

    IAM user: inline policy harden-quarantine (Deny * on *), then every active access key made
    Inactive. Role: inline policy harden-revoke-sessions denying every session issued before now
    (aws:TokenIssueTime). Nothing is deleted; each step prints the command that undoes it. Refused
    (exit 2): the account root, another account's principal, a service-linked or Identity Center
    role, harden's own identity, and without --force an admin or allow-listed principal. Also lists
    the addresses it allocated in the look-back window (best effort) and the `harden eip release`
    that frees the idle ones, and the roles it assumed, whose sessions neither policy ends, with the
    `harden respond` that revokes them. Exit 0 done or nothing to do, 1 a dry run with steps, 3 a step
    failed.
    """
    import botocore.exceptions

    from provisioner.respond import Refused, render_response, respond as run_respond

    window = _since(since)
    baseline = resolve_config(config)
    aws = _aws_session(baseline, profile, role_arn)
    try:
        with err.status("planning the response") as status:
            resp = run_respond(aws, baseline, principal, apply=apply, force=force, regions=_regions(regions, baseline),
                               since=window, progress=lambda a: status.update(escape(a.description[:90])))
    except Refused as exc:
        fail(f"respond: {exc}")
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        _aws_unable("respond could not run", exc)
    _warn_regions(resp.lookup_errors, "allocations unknown (event history unreadable) in")
    _warn_regions(resp.role_lookup_errors, "roles it assumed unknown (event history unreadable) in")
    _emit(resp.to_dict(), fmt, output, lambda console: render_response(resp, console))
    raise typer.Exit(resp.exit_code())


# -- EBS: encrypting volumes that are already in use --------------------------------------------

ebs_app = typer.Typer(cls=_HardenGroup, epilog=_examples('harden ebs migrate --apply'), help="EBS volumes: encrypt the ones already in use (dry run unless --apply).",
                      no_args_is_help=True)
app.add_typer(ebs_app, name="ebs")


@ebs_app.command("migrate", epilog=_examples(
    "harden ebs migrate                     # dry run: what would be migrated",
    "harden ebs migrate --apply --instance i-0123456789abcdef0 -r eu-west-1",
    "harden ebs migrate --cleanup --apply   # delete what migrations kept",
))
def ebs_migrate(
    config: Optional[Path] = CONFIG_OPTION,
    instances: list[str] = typer.Option([], "--instance", "-i", metavar="INSTANCE_ID[,INSTANCE_ID...]",
                                        help="Only these instances (repeatable or "
                                        "comma-separated). Default: every instance with an unencrypted volume."),
    regions: list[str] = REGIONS_OPTION,
    apply: bool = APPLY_OPTION,
    force: bool = typer.Option(False, "--force", help="Also migrate instances of Auto Scaling groups (suspend "
                               "the group's HealthCheck and ReplaceUnhealthy processes first)."),
    cleanup: bool = typer.Option(False, "--cleanup", help="Instead of migrating: delete the original volumes "
                                 "and intermediate snapshots of COMPLETED migrations (harden-tagged only; "
                                 "dry run unless --apply)."),
    timeout: float = typer.Option(3600, "--timeout", min=1, metavar="SECONDS",
                                  help="Seconds to wait for each step (stop, "
                                  "snapshot, encrypted copy, volume, detach, attach, start)."),
    fmt: Format = FORMAT_OPTION,
    output: Optional[Path] = OUTPUT_OPTION,
    profile: Optional[str] = PROFILE_OPTION,
    role_arn: Optional[str] = ROLE_OPTION,
    verbose: bool = VERBOSE_OPTION,
    debug: bool = DEBUG_OPTION,
) -> None:
    """Encrypt EBS volumes that are in use: dry run unless --apply.

    For each instance with an unencrypted attached volume (what ebs.unencrypted_volumes finds):
    stop it, snapshot each such volume, copy the snapshot encrypted with the baseline's EBS key,
    create a volume from the copy (same AZ, type, size, IOPS, throughput, tags), swap it in on the
    same device with the same DeleteOnTermination, and start the instance again if it was
    running. The original volume and the snapshots are kept and tagged harden:migration; progress
    is recorded in tags, so a re-run after an interruption or a failure continues where it
    stopped. A failed swap puts the original back. Instances of Auto Scaling groups are refused
    unless --force (fix the launch template instead). --cleanup --apply deletes what completed
    migrations kept. Exit 0 done or nothing to do, 1 a dry run with work to do or a refused
    instance, 2 usage or no customer-managed key, 3 a step failed.
    """
    import botocore.exceptions

    from provisioner.aws import describe_error
    from provisioner.migrate import MigrateOptions, MigrationError, render_table, run_cleanup, run_migration

    baseline = resolve_config(config)
    aws = _aws_session(baseline, profile, role_arn)
    options = MigrateOptions(apply=apply, force=force, instance_ids=tuple(_split(instances) or ()), timeout=timeout)
    verb = "cleanup" if cleanup else "migrate"

    with err.status(f"ebs {verb}: looking for {'completed migrations' if cleanup else 'unencrypted volumes in use'}") \
            as status:
        def on_progress(p) -> None:
            where = " ".join(x for x in (p.region, p.instance_id, p.volume_id) if x)
            err.print(f"[dim]{escape(where)}[/] [bold]{escape(p.step)}[/] {escape(p.detail)}",
                      highlight=False, soft_wrap=True)
            status.update(f"ebs {verb}: {escape(where)} {escape(p.step)}")

        try:
            report = (run_cleanup if cleanup else run_migration)(
                aws, baseline, regions=_regions(regions, baseline), options=options, progress=on_progress)
        except MigrationError as exc:
            fail(str(exc))
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            fail(f"ebs {verb}: {describe_error(exc)}", EXIT_UNABLE)
    _emit(report.to_dict(), fmt, output, lambda console: render_table(report, console))
    raise typer.Exit(report.exit_code())


# -- Terraform: plan, apply, bootstrap, drift -------------------------------------------------

class Root(str, Enum):
    account = "account"
    organization = "organization"


ROOT_OPTION = typer.Option(Root.account, "--root", help="Root module: account (every region of one "
                           "account) or organization (the SCPs, from the management account).")
TF_BIN_OPTION = typer.Option(None, "--terraform-bin", envvar="HARDEN_TERRAFORM_BIN", metavar="PATH",
                             help="A terraform or tofu executable to use instead of the bundled Terraform.")
TF_REGIONS_OPTION = typer.Option([], "--regions", "-r", metavar="REGION[,REGION...]",
                                 help="Render for these regions instead of the baseline's (repeatable or "
                                 "comma-separated; the home region must be one of them).")


def _terraform(root_dir: Path, terraform_bin: Optional[str], verbose: bool, status=None):
    from provisioner.terraform import Terraform, engine_from

    def on_line(line: str) -> None:
        if verbose:
            err.print(escape(line), highlight=False)
        elif status is not None and line.strip():
            status.update(f"terraform: {escape(line.strip()[:100])}")

    return Terraform(root_dir, engine=engine_from(terraform_bin), on_line=on_line)


def _with_regions(baseline: Baseline, regions: list[str]) -> Baseline:
    """The baseline with --regions in place of its own regions (validated like harden.toml)."""
    from provisioner.baseline import parse_baseline

    wanted = _split(regions)
    if regions and not wanted:  # an unset variable in `-r "$REGION"`: not every region
        fail(f"--regions {','.join(regions)!r} names no region")
    if not wanted:
        return baseline
    try:
        return parse_baseline({**baseline.model_dump(mode="json", exclude_unset=True), "regions": wanted},
                              "--regions")
    except ConfigError as exc:
        fail(str(exc))


def _terraform_credentials(baseline: Baseline, profile: Optional[str], role_arn: Optional[str],
                           aws=None) -> None:
    """Terraform runs as a child process and reads credentials from its environment: --profile
    becomes AWS_PROFILE; --role-arn is assumed here (as for verify; `aws`, when the command
    already has that session) and its temporary keys passed on."""
    if role_arn:
        aws = aws or _aws_session(baseline, profile, role_arn)
        creds = aws.session.get_credentials().get_frozen_credentials()
        os.environ.pop("AWS_PROFILE", None)
        os.environ.update(AWS_ACCESS_KEY_ID=creds.access_key, AWS_SECRET_ACCESS_KEY=creds.secret_key,
                          AWS_SESSION_TOKEN=creds.token or "")
    elif profile:
        os.environ["AWS_PROFILE"] = profile


def _render_into(baseline: Baseline, out_dir: Path, allow_destroy: bool = False) -> Baseline:
    from provisioner.render import RenderError, render as do_render
    from provisioner.terraform import TerraformError

    try:
        do_render(baseline, out_dir, endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None,
                  allow_destroy=allow_destroy)
    except (RenderError, TerraformError, OSError) as exc:
        fail(f"render: {exc}")
    return baseline


def _adopt(baseline: Baseline, tf, root_dir: Path, aws=None) -> list:
    """Import blocks for the harden resources the account has and this root's state lacks (made
    by `harden remediate` or by hand), so the plan imports them instead of failing."""
    import botocore.exceptions

    from provisioner.adopt import IMPORTS_FILE, adopt
    from provisioner.aws import AwsSession, describe_error

    try:
        return adopt(tf, aws or AwsSession(region=baseline.home_region), baseline, root_dir)
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        (root_dir / IMPORTS_FILE).unlink(missing_ok=True)
        err.print(f"[yellow]could not look for existing harden resources to import[/] "
                  f"({escape(describe_error(exc))}): planning without import blocks")
        return []


def _print_adopted(adopted: list, root_dir: Path) -> None:
    if adopted:
        from provisioner.adopt import IMPORTS_FILE

        out.print(f"import blocks: {escape(str(root_dir / IMPORTS_FILE))} ({len(adopted)} existing resource(s) "
                  "Terraform adopts instead of creating)")


def _preflight(baseline: Baseline, root: "Root") -> None:
    """Before Terraform plans the account root: an organization trail is applied from the
    management account only (provisioner/preflight.py). Exit 2 elsewhere, 3 when AWS cannot say."""
    import botocore.exceptions

    from provisioner.aws import AwsSession, describe_error
    from provisioner.preflight import PreflightError, check_organization_trail

    if root is not Root.account or not baseline.cloudtrail.organization_trail:
        return
    try:
        check_organization_trail(AwsSession(region=baseline.home_region), baseline)
    except PreflightError as exc:
        fail(str(exc))
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        fail(f"cloudtrail.organization_trail: cannot check the caller's account: {describe_error(exc)}", EXIT_UNABLE)


def _print_plan(summary) -> None:
    from rich.table import Table

    from provisioner.tables import print_table

    if summary.empty:
        out.print("[green]no changes[/]: the infrastructure matches the configuration")
        return
    table = Table(title="plan", title_justify="left")
    table.add_column("action")
    table.add_column("resource", overflow="fold")
    colour = {"create": "green", "update": "yellow", "replace": "magenta", "delete": "red", "import": "cyan"}
    for c in summary.changes:
        table.add_row(f"[{colour[c.action]}]{c.action}[/]", escape(c.address))
    print_table(out, table)
    d = summary.to_dict()
    out.print(f"{d['import']} to import, {d['add']} to add, {d['change']} to change, {d['replace']} to replace, "
              f"{d['destroy']} to destroy")


@app.command(epilog=_examples(
    "harden plan --config harden.toml",
    "harden plan --root organization --profile management",
    "harden plan --no-render --dir infra/harden --terraform-bin tofu",
))
def plan(
    config: Optional[Path] = CONFIG_OPTION,
    out_dir: Path = DIR_OPTION,
    old_dir: Optional[Path] = OLD_DIR_OPTION,
    root: Root = ROOT_OPTION,
    no_render: bool = typer.Option(False, "--no-render", help="Plan the modules as they are on disk."),
    regions: list[str] = TF_REGIONS_OPTION,
    profile: Optional[str] = PROFILE_OPTION,
    role_arn: Optional[str] = ROLE_OPTION,
    allow_destroy: bool = typer.Option(False, "--allow-destroy", help="Render without prevent_destroy so "
                                       "the plan may destroy or replace the log bucket, keys, log groups."),
    terraform_bin: Optional[str] = TF_BIN_OPTION,
    verbose: bool = VERBOSE_OPTION,
    debug: bool = DEBUG_OPTION,
) -> None:
    """Render (unless --no-render), init and plan one root module; save the plan for `harden apply`."""
    from provisioner.terraform import TerraformError

    out_dir = _dir(out_dir, old_dir)
    baseline = _with_regions(resolve_config(config), regions)
    if not no_render:
        _render_into(baseline, out_dir, allow_destroy)
    _terraform_credentials(baseline, profile, role_arn)
    _preflight(baseline, root)
    try:
        with err.status("terraform init") as status:
            tf = _terraform(out_dir / root.value, terraform_bin, verbose, status)
            tf.init()
            status.update("looking for harden resources to import")
            adopted = _adopt(baseline, tf, out_dir / root.value)
            status.update("terraform plan")
            result = tf.plan()
    except TerraformError as exc:
        fail(str(exc))
    _print_adopted(adopted, out_dir / root.value)
    _print_plan(result.summary)
    if result.has_changes:
        out.print(f"saved plan: {escape(str(result.plan_file))} (apply it with `harden apply`)")


@app.command(epilog=_examples(
    "harden plan && harden apply            # apply the saved plan",
    "harden apply --auto-approve --role-arn arn:aws:iam::123456789012:role/deploy",
    "harden apply --root organization --profile management",
))
def apply(
    config: Optional[Path] = CONFIG_OPTION,
    out_dir: Path = DIR_OPTION,
    old_dir: Optional[Path] = OLD_DIR_OPTION,
    root: Root = ROOT_OPTION,
    auto_approve: bool = typer.Option(False, "--auto-approve", help="Apply without asking (pipelines)."),
    allow_destroy: bool = typer.Option(False, "--allow-destroy", help="Allow a plan that destroys or "
                                       "replaces a trail, bucket, key, log group, recorder or SCP."),
    regions: list[str] = TF_REGIONS_OPTION,
    profile: Optional[str] = PROFILE_OPTION,
    role_arn: Optional[str] = ROLE_OPTION,
    terraform_bin: Optional[str] = TF_BIN_OPTION,
    verbose: bool = VERBOSE_OPTION,
    debug: bool = DEBUG_OPTION,
) -> None:
    """Apply the plan saved by `harden plan`; without one, render, plan and ask for confirmation.

    A saved plan is applied as it is: --config and --regions only matter when there is none.
    """
    from provisioner.bootstrap import BootstrapStopped, check_destructive
    from provisioner.terraform import TerraformError

    out_dir = _dir(out_dir, old_dir)
    root_dir = out_dir / root.value
    saved = root_dir / "harden.tfplan"
    baseline = _with_regions(resolve_config(config), regions)
    _terraform_credentials(baseline, profile, role_arn)
    _preflight(baseline, root)
    try:
        with err.status("terraform") as status:
            if not saved.is_file():
                _render_into(baseline, out_dir, allow_destroy)
            tf = _terraform(root_dir, terraform_bin, verbose, status)
            if saved.is_file():
                summary, has_changes = tf.show(saved), True
            else:
                tf.init()
                _print_adopted(_adopt(baseline, tf, root_dir), root_dir)
                result = tf.plan()
                summary, has_changes = result.summary, result.has_changes
        _print_plan(summary)
        if not has_changes or summary.empty:
            saved.unlink(missing_ok=True)
            return
        check_destructive(summary, allow_destroy)
        if not auto_approve and not _confirm("Apply this plan?"):
            fail("not applied: the plan was not confirmed", EXIT_FAILED)
        with err.status("terraform apply") as status:
            tf = _terraform(root_dir, terraform_bin, verbose, status)
            tf.apply(saved)
        saved.unlink(missing_ok=True)
    except BootstrapStopped as exc:
        fail(str(exc), exc.exit_code)
    except TerraformError as exc:
        fail(str(exc))
    out.print("[green]applied[/]")


def _confirm(question: str) -> bool:
    if not sys.stdin.isatty():
        fail("no terminal to confirm on: pass --auto-approve to apply non-interactively", EXIT_USAGE)
    return typer.confirm(question, default=False)


@app.command(epilog=_examples(
    "harden bootstrap --config harden.toml",
    "harden bootstrap --auto-approve --profile new-account -f json -o b.json",
))
def bootstrap(
    config: Optional[Path] = CONFIG_OPTION,
    out_dir: Path = DIR_OPTION,
    old_dir: Optional[Path] = OLD_DIR_LONG_OPTION,
    auto_approve: bool = typer.Option(False, "--auto-approve", help="Apply without asking (pipelines)."),
    allow_destroy: bool = typer.Option(False, "--allow-destroy", help="Allow destroying or replacing "
                                       "a trail, bucket, key, log group, recorder or SCP."),
    verify_timeout: int = typer.Option(300, "--verify-timeout", min=0, metavar="SECONDS",
                                       help="Seconds to keep re-verifying "
                                       "while controls still fail (trails and recorders take a moment)."),
    skip_scan: bool = typer.Option(False, "--skip-scan", help="Do not stop on checkov findings (not recommended)."),
    regions: list[str] = TF_REGIONS_OPTION,
    profile: Optional[str] = PROFILE_OPTION,
    role_arn: Optional[str] = ROLE_OPTION,
    fmt: ReportFormat = REPORT_FORMAT_OPTION,
    output: Optional[Path] = OUTPUT_OPTION,
    terraform_bin: Optional[str] = TF_BIN_OPTION,
    verbose: bool = VERBOSE_OPTION,
    debug: bool = DEBUG_OPTION,
) -> None:
    """Harden an account in one command: render, scan, init, plan, confirm, apply, verify.

    Stops before applying when checkov finds a failed check or when the plan would destroy or
    replace a trail, bucket, key, log group, recorder or SCP (unless --allow-destroy). After
    applying it verifies the live account, retrying until every control passes or
    --verify-timeout passes, and prints the verify report (--format, --output). Idempotent: a
    second run finds nothing to change and says so. The SCPs are a separate root: `harden apply
    --root organization` from the management account.
    """
    import botocore.exceptions

    from provisioner.aws import describe_error
    from provisioner.bootstrap import BootstrapStopped, bootstrap as run_bootstrap
    from provisioner.scan import ScanError, run_scan
    from provisioner.terraform import TerraformError
    from provisioner.aws import Timeouts
    from provisioner.verify import run_verify

    out_dir = _dir(out_dir, old_dir)
    baseline = _with_regions(resolve_config(config), regions)
    aws = _aws_session(baseline, profile, role_arn)
    _terraform_credentials(baseline, profile, role_arn, aws)
    try:
        Timeouts.from_env()  # the verify at the end reads them: refuse a bad one before applying
    except ValueError as exc:
        fail(str(exc))
    _preflight(baseline, Root.account)

    def do_render() -> Path:
        _render_into(baseline, out_dir, allow_destroy)
        out.print(f"[green]rendered[/] {escape(str(out_dir))}")
        return out_dir

    def do_scan(directory: Path) -> int:
        if skip_scan:
            err.print("[yellow]scan skipped (--skip-scan)[/]")
            return 0
        with err.status("checkov scan"):
            result = run_scan(directory)
        out.print(f"scan: {len(result.failed)} failed, {result.passed} passed")
        return len(result.failed)

    def do_verify():
        return run_verify(aws, baseline)

    def confirm(summary) -> bool:
        _print_plan(summary)
        return auto_approve or _confirm("Apply this plan?")

    try:
        result = run_bootstrap(
            render=do_render, scan=do_scan,
            terraform=lambda root_dir: _terraform(root_dir, terraform_bin, verbose),
            verify=do_verify, confirm=confirm, log=lambda m: err.print(escape(m)),
            allow_destroy=allow_destroy, verify_timeout=verify_timeout,
            adopt=lambda tf, root_dir: _adopt(baseline, tf, root_dir),
        )
    except BootstrapStopped as exc:
        fail(str(exc), exc.exit_code)
    except (TerraformError, ScanError) as exc:
        fail(str(exc), EXIT_UNABLE if isinstance(exc, ScanError) else EXIT_USAGE)
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        fail(f"bootstrap: verify could not run: {describe_error(exc)}", EXIT_UNABLE)
    _print_adopted(result.adopted, out_dir / "account")
    if not result.applied:
        out.print("[green]nothing to change[/]: a second bootstrap is a no-op")
    assert result.report is not None
    _emit_report(result.report, fmt, output)
    raise typer.Exit(result.report.exit_code())


@app.command(epilog=_examples(
    "harden drift --config harden.toml --format sarif --output harden.sarif",
    "harden drift --role-arn arn:aws:iam::123456789012:role/drift -o d.json",
    "harden drift --no-verify --dir terraform   # Terraform drift only",
))
def drift(
    config: Optional[Path] = CONFIG_OPTION,
    out_dir: Path = DIR_OPTION,
    old_dir: Optional[Path] = OLD_DIR_LONG_OPTION,
    root: Root = ROOT_OPTION,
    fmt: ReportFormat = REPORT_FORMAT_OPTION,
    output: Optional[Path] = OUTPUT_OPTION,
    no_verify: bool = typer.Option(False, "--no-verify", help="Terraform drift only."),
    regions: list[str] = REGIONS_OPTION,
    profile: Optional[str] = PROFILE_OPTION,
    role_arn: Optional[str] = ROLE_OPTION,
    severity: Optional[str] = SEVERITY_OPTION,
    fail_on: Optional[str] = FAIL_ON_OPTION,
    terraform_bin: Optional[str] = TF_BIN_OPTION,
    verbose: bool = VERBOSE_OPTION,
    debug: bool = DEBUG_OPTION,
) -> None:
    """Nightly drift job: Terraform drift (a non-empty plan) plus `harden verify`, one report.

    Plans the modules as they are in --dir (render and commit them first; with the S3 backend the
    state is read from the bucket). Exit 0 no drift, 1 drift (Terraform or live account), 2
    usage/config, 3 checks could not run (Terraform could not init or plan, AWS unreachable):
    the report is still written with what could be checked.
    """
    import botocore.exceptions

    from provisioner.aws import describe_error
    from provisioner.bootstrap import drift_report
    from provisioner.terraform import TerraformError
    from provisioner.verify import run_verify

    out_dir = _dir(out_dir, old_dir)
    baseline = resolve_config(config)
    output = _output_file(output)
    min_severity, fail_on = _severities(severity, fail_on)
    wanted = _regions(regions, baseline)
    aws = None if no_verify else _aws_session(baseline, profile, role_arn)
    _terraform_credentials(baseline, profile, role_arn, aws)
    try:
        with err.status("terraform plan") as status:
            tf = _terraform(out_dir / root.value, terraform_bin, verbose, status)
            report = drift_report(tf, (lambda: run_verify(aws, baseline, regions=wanted)) if aws else None,
                                  root.value, init=True,
                                  # what remediate made shows as "to import", not as "to create"
                                  adopt=(lambda tf: _adopt(baseline, tf, out_dir / root.value, aws)) if aws else None)
    except TerraformError as exc:  # no such directory / no .tf files: usage; init and plan errors are findings
        fail(str(exc))
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        fail(f"drift: verify could not run: {describe_error(exc)}", EXIT_UNABLE)
    _emit_report(report, fmt, output, min_severity=min_severity, sources=_sources(out_dir, config))
    raise typer.Exit(report.exit_code(fail_on))


# -- reports ------------------------------------------------------------------------------------

report_app = typer.Typer(cls=_HardenGroup, epilog=_examples("harden report merge shard-*.jsonl -f sarif -o org.sarif"),
                         help="Work with saved reports: merge the shards of an organization run.",
                         no_args_is_help=True)
app.add_typer(report_app, name="report")


@report_app.command("merge", epilog=_examples(
    "harden verify --organization-role audit --shard 2/4 -f jsonl -o s2.jsonl",
    "harden report merge shard-*.jsonl --format sarif -o organization.sarif",
))
def report_merge(
    files: list[Path] = typer.Argument(..., metavar="FILE", help="A shard's JSONL report."),
    fmt: ReportFormat = typer.Option(ReportFormat.jsonl, "--format", "-f", help="Output format of the "
                                     "combined report."),
    output: Optional[Path] = OUTPUT_OPTION,
    verbose: bool = VERBOSE_OPTION,
    debug: bool = DEBUG_OPTION,
) -> None:
    """Combine the reports of a sharded organization run into one report.

    Each FILE is a stream written by `harden verify --organization-role --shard I/N --format
    jsonl` (one per shard). The result is one report, with the same exit-code rules as a single run: 0 clean, 1 drift, 3 some
    account could not be checked or a shard's stream ended without its summary (interrupted).
    The examples: a CI matrix of four workers, each verifying its shard, then one job that merges.
    """
    from provisioner.report_stream import ReportWriteError, StreamError, merge

    for path in files:
        if not path.is_file():
            fail(f"report merge: {path}: no such file")
    if output is not None and output.resolve() in {f.resolve() for f in files}:
        fail(f"report merge: --output {output} is one of the inputs")
    try:
        code = merge(files, lambda head: _organization_sink(fmt, output, head),
                     warn=lambda line: err.print(f"[yellow]warning:[/] {escape(line)}", soft_wrap=True))
    except ReportWriteError as exc:
        fail(str(exc), EXIT_UNABLE)
    except StreamError as exc:
        fail(str(exc))
    raise typer.Exit(code)


# -- the sandbox ---------------------------------------------------------------------------------

sandbox_app = typer.Typer(cls=_HardenGroup, epilog=_examples('harden sandbox exec -- harden verify'), help="A local AWS emulator seeded with an insecure account: try harden offline.",
                          no_args_is_help=True)
app.add_typer(sandbox_app, name="sandbox")


def _sandbox_module():
    try:
        import moto.server  # noqa: F401
    except ImportError:
        fail("the sandbox needs moto: pip install 'harden-aws[sandbox]'")
    from provisioner import sandbox

    return sandbox


@sandbox_app.command("serve", epilog=_examples(
    "harden sandbox serve --port 5000   # then use the printed export lines",
))
def sandbox_serve(
    port: Optional[int] = typer.Option(None, "--port", min=1, max=65535, metavar="PORT",
                                       help="Port on 127.0.0.1 (default: a free one)."),
    seed: bool = typer.Option(True, "--seed/--no-seed", help="Seed the insecure demo account."),
    verbose: bool = VERBOSE_OPTION,
    debug: bool = DEBUG_OPTION,
) -> None:
    """Run the emulator in the foreground and print the `export AWS_ENDPOINT_URL=...` lines to
    use it from another shell (harden, the AWS CLI, Terraform). Ctrl-C stops it."""
    serve = _sandbox_module().serve
    serve(seed=seed, port=port)


@sandbox_app.command("exec", context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
                     epilog=_examples(
                         "harden sandbox exec -- harden verify",
                         "harden sandbox exec --config-out sb.toml -- bash examples/demo.sh sb.toml",
                     ))
def sandbox_exec(
    ctx: typer.Context,
    seed: bool = typer.Option(True, "--seed/--no-seed", help="Seed the insecure demo account first."),
    config_out: Optional[Path] = typer.Option(None, "--config-out", metavar="FILE",
                                              help="Write a harden.toml that fits the "
                                              "seeded account (its regions, organization, allow-list) here."),
    verbose: bool = VERBOSE_OPTION,
    debug: bool = DEBUG_OPTION,
) -> None:
    """Run a command against a fresh sandbox: `harden sandbox exec -- harden verify`.

    Starts and seeds the emulator, points the command's environment at it (AWS_ENDPOINT_URL and
    dummy credentials), runs it, stops the emulator and exits with the command's exit code.
    """
    import subprocess

    import tomli_w

    sandbox = _sandbox_module()
    running_sandbox, suggested_config = sandbox.running_sandbox, sandbox.suggested_config
    command = list(ctx.args)
    if not command:
        fail("sandbox exec: name a command to run, e.g. `harden sandbox exec -- harden verify`")
    with running_sandbox(seed=seed) as (sandbox, summary):
        if config_out and summary:
            config_out.write_text("# harden.toml for the sandbox account (written by harden sandbox exec)\n"
                                  + tomli_w.dumps(suggested_config(summary)), encoding="utf-8")
        err.print(f"[dim]sandbox at {sandbox.endpoint_url}[/]")
        try:
            code = subprocess.call(command, env=os.environ.copy())
        except FileNotFoundError:
            fail(f"sandbox exec: command not found: {command[0]}")
    raise typer.Exit(code)


@app.command("controls", epilog=_examples("harden controls", "harden controls --format json -o controls.json"))
def list_controls(
    fmt: Format = FORMAT_OPTION,
    output: Optional[Path] = OUTPUT_OPTION,
    verbose: bool = VERBOSE_OPTION,
    debug: bool = DEBUG_OPTION,
) -> None:
    """List every control: id, title, severity, scope, what it maps to, and how it is fixed.

    `remediate`: `harden remediate` has a boto3 fix; `terraform`: a resource of the rendered
    modules declares it (`--format json` names it, with the fix in words). Mappings: CIS AWS Foundations Benchmark v3.0.0 and
    v4.0.1 recommendation numbers, AWS Security Hub (FSBP) control ids.
    """
    from rich.table import Table

    from provisioner.controls import catalog, mapping_labels
    from provisioner.tables import print_table

    rows = catalog()
    table = Table(title=f"{len(rows)} controls", title_justify="left", show_edge=False)
    # Wide enough for the longest id, so ids are never split; titles and the rest wrap at words.
    table.add_column("control", min_width=max(len(r["id"]) for r in rows))
    table.add_column("severity")
    table.add_column("maps to")
    table.add_column("fixed by")
    for r in rows:
        how = ["remediate"] * r["remediate"] + ["terraform"] * bool(r["terraform"]) or ["command"]
        table.add_row(f"[bold]{r['id']}[/]\n{escape(r['title'])}", f"{r['severity'] or '?'}\n[dim]{r['scope']}[/]",
                      escape(", ".join(mapping_labels(r["mappings"])) or "—"), ", ".join(how))
    _emit(rows, fmt, output, lambda console: print_table(console, table))


@app.command(epilog=_examples("harden version", "harden --version"))
def version(verbose: bool = VERBOSE_OPTION, debug: bool = DEBUG_OPTION) -> None:
    """Print harden's version (the same as `harden --version`)."""
    out.print(f"harden {__version__}")


def main() -> None:
    app(prog_name="harden")


if __name__ == "__main__":  # pragma: no cover
    main()
