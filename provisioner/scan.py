"""`harden scan` backend: run checkov (in its own environment) on Terraform and read its report.

checkov cannot be imported here: it pins boto3 1.35 and its bc-python-hcl2 overwrites the
`hcl2` package the product uses. It runs as a subprocess, found by `find_checkov`, with harden's
custom checks (provisioner/checkov_checks) loaded through --external-checks-dir.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from rich.console import Console
from rich.table import Table
from rich.text import Text

# The one place the checkov version is pinned for environments harden creates itself
# (the Makefile's CHECKOV_VERSION must match).
CHECKOV_VERSION = "3.3.30"

CHECKS_DIR = Path(__file__).resolve().parent / "checkov_checks"
REPO_CHECKOV_VENV = Path(__file__).resolve().parent.parent / ".venv-checkov"

FLOW_LOG_CHECK_ID = "CKV_HARDEN_1"
SCP_ALLOCATE_CHECK_ID = "CKV_HARDEN_2"
CLOUDTRAIL_CHECK_ID = "CKV_HARDEN_3"
SCP_READABLE_CHECK_ID = "CKV_HARDEN_4"
SCP_SET_CHECK_ID = "CKV_HARDEN_SCP_SET"
SCP_SET_CHECK_NAME = "harden: no SCP in this configuration denies ec2:AllocateAddress to non-approved principals"

# Offline and quiet: no Prisma mapping download, no PyPI version check.
_CHECKOV_ENV = {"BC_SKIP_MAPPING": "TRUE", "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true"}
# checkov reads files and needs no account: it gets only what a process needs to run (and its
# own CKV_* settings), never AWS credentials, session tokens, profiles or other secrets.
_CHECKOV_PASSED = frozenset({"PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "LC_CTYPE", "TZ",
                             "TMPDIR", "TEMP", "TMP", "SYSTEMROOT", "PYTHONIOENCODING"})


def checkov_environment(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The whole environment checkov runs with: an allow-list of the caller's, plus harden's."""
    environ = dict(os.environ if environ is None else environ)
    kept = {k: v for k, v in environ.items() if k in _CHECKOV_PASSED or k.startswith("CKV_")}
    return {**kept, **_CHECKOV_ENV}


class ScanError(Exception):
    """The scan could not run or its report could not be read; the message is one line."""


@dataclass(frozen=True)
class CheckFailure:
    check_id: str
    check_name: str
    resource: str
    file: str  # relative to the scanned directory, '/'-separated
    lines: tuple[int, int]
    guideline: str | None = None
    details: tuple[str, ...] = ()  # why, when the check says (harden's checks do)


@dataclass(frozen=True)
class CheckSkip:
    check_id: str
    resource: str
    file: str
    reason: str


@dataclass(frozen=True)
class CheckPass:
    check_id: str
    resource: str
    file: str
    lines: tuple[int, int]


@dataclass
class ScanResult:
    directory: Path
    passed: int
    failed: list[CheckFailure]
    skipped: list[CheckSkip]
    checkov_version: str
    # Every passed record, for callers that need to know *what* passed (the set-level rule,
    # tests); left out of to_dict(), where it would bury the failures.
    passed_checks: list[CheckPass] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed

    def to_dict(self) -> dict[str, Any]:
        return {
            "directory": str(self.directory),
            "checkov_version": self.checkov_version,
            "summary": {"passed": self.passed, "failed": len(self.failed), "skipped": len(self.skipped)},
            "failed": [
                {
                    "check_id": f.check_id,
                    "check_name": f.check_name,
                    "resource": f.resource,
                    "file": f.file,
                    "lines": list(f.lines),
                    "guideline": f.guideline,
                    "details": list(f.details),
                }
                for f in self.failed
            ],
            "skipped": [
                {"check_id": s.check_id, "resource": s.resource, "file": s.file, "reason": s.reason}
                for s in self.skipped
            ],
        }


# --- finding checkov -------------------------------------------------------------------------


def _venv_executable(venv: Path, name: str) -> Path:
    if os.name == "nt":
        return venv / "Scripts" / f"{name}.exe"
    return venv / "bin" / name


def managed_env_dir() -> Path:
    """Where harden keeps the checkov it installs itself, the way pre-commit keeps hook envs."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "harden" / f"checkov-{CHECKOV_VERSION}"


def _module_command(python: Path) -> list[str]:
    # The env is built elsewhere and renamed into place, so its console scripts carry a stale
    # shebang: run checkov as a module of the env's interpreter instead. SyntaxWarnings are
    # silenced as checkov's own console script does.
    return [str(python), "-W", "ignore::SyntaxWarning", "-m", "checkov.main"]


def find_checkov(install: bool = True) -> list[str]:
    """The command that runs checkov: $HARDEN_CHECKOV, else the repo's .venv-checkov, else
    harden's managed environment (created on first use unless install is False)."""
    override = os.environ.get("HARDEN_CHECKOV")
    if override:
        found = shutil.which(override) if os.sep not in override else override
        path = Path(found or override).expanduser()
        if not path.is_file():
            raise ScanError(f"HARDEN_CHECKOV={override}: no such file (point it at a checkov executable, or unset it)")
        if not os.access(path, os.X_OK):
            raise ScanError(f"HARDEN_CHECKOV={override}: not executable")
        return [str(path)]

    repo_checkov = _venv_executable(REPO_CHECKOV_VENV, "checkov")
    if repo_checkov.is_file():
        return [str(repo_checkov)]

    managed = managed_env_dir()
    python = _venv_executable(managed, "python")
    if python.is_file():
        return _module_command(python)
    if not install:
        raise ScanError(
            f"checkov not found: set HARDEN_CHECKOV, run `make checkov`, or let harden install it into {managed}"
        )
    _create_managed_env(managed)
    return _module_command(python)


def _install_steps(build: Path) -> list[list[str]]:
    python = str(_venv_executable(build, "python"))
    return [
        [sys.executable, "-m", "venv", str(build)],
        [python, "-m", "pip", "install", "--disable-pip-version-check", f"checkov=={CHECKOV_VERSION}"],
        # Proves the install imports before it is put in place.
        [python, "-W", "ignore::SyntaxWarning", "-m", "checkov.main", "--version"],
    ]


def _create_managed_env(target: Path, steps: Callable[[Path], list[list[str]]] = _install_steps) -> None:
    """Build the environment in a temporary sibling directory and rename it into place, so an
    interrupted install never leaves a half-built env at `target`."""
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_builds(target)
    print(f"harden: installing checkov {CHECKOV_VERSION} into {target} (first use)", file=sys.stderr)
    build = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
    log = build / "install.log"
    code = 0
    try:
        with log.open("w") as out:
            for command in steps(build):
                out.write(f"$ {' '.join(command)}\n")
                out.flush()
                code = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL).returncode
                if code != 0:
                    break
        if code != 0:
            kept = target.parent / f"{target.name}-install.log"
            shutil.copyfile(log, kept)
            raise ScanError(f"installing checkov {CHECKOV_VERSION} failed (exit {code}); see {kept}")
        try:
            build.rename(target)
        except OSError:
            # Another harden process finished first: use its environment, if it is one.
            if not _venv_executable(target, "python").is_file():
                raise ScanError(f"{target} exists but holds no checkov environment; remove it and retry") from None
    finally:
        shutil.rmtree(build, ignore_errors=True)


def _remove_stale_builds(target: Path, max_age_seconds: float = 24 * 3600) -> None:
    # Left by a killed install; an hour-old build could still be running in another process.
    for partial in target.parent.glob(f".{target.name}.*.partial"):
        try:
            if time.time() - partial.stat().st_mtime > max_age_seconds:
                shutil.rmtree(partial, ignore_errors=True)
        except OSError:
            pass


# --- running checkov -------------------------------------------------------------------------


def _has_tf_files(directory: Path) -> bool:
    return any(path.is_file() for path in directory.rglob("*.tf"))


def _run(command: list[str], timeout: int, directory: Path) -> tuple[int, str, str]:
    env = checkov_environment()
    # Own process group: checkov forks parser workers, and a timeout must stop them all.
    try:
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env=env,
            encoding="utf-8",
            errors="replace",
            start_new_session=True,
        )
    except OSError as error:
        raise ScanError(f"could not run checkov ({command[0]}): {error.strerror or error}") from None
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.communicate()
        raise ScanError(f"checkov timed out after {timeout}s scanning {directory}") from None
    except BaseException:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        raise
    return process.returncode, stdout, stderr


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


def _check_stderr(stderr: str, directory: Path) -> None:
    """checkov logs a broken custom check and carries on; harden treats it as an error, because
    a check that did not run looks exactly like a check with nothing to report."""
    not_loaded = re.search(r"Cannot load external check '([^']+)' from (\S+)", stderr)
    if not_loaded:
        raise ScanError(
            f"checkov could not load custom check {not_loaded.group(1)} ({not_loaded.group(2)}) "
            f"scanning {directory}: {_last_line(stderr)}"
        )
    crashed = re.search(r"Failed to run check (CKV_HARDEN_\w+) on (\S+)", stderr)
    if crashed:
        raise ScanError(f"custom check {crashed.group(1)} crashed on {crashed.group(2)} scanning {directory}")


def _reports(stdout: str, directory: Path) -> tuple[list[dict[str, Any]], str]:
    """checkov's reports (one per framework) and its version."""
    try:
        data = json.loads(stdout)
    except ValueError:
        raise ScanError(
            f"checkov printed no JSON report scanning {directory}: {_last_line(stdout)[:200]}"
        ) from None
    reports = data if isinstance(data, list) else [data]
    if not all(isinstance(report, dict) for report in reports):
        raise ScanError(f"checkov printed an unexpected JSON report scanning {directory}")
    # With no resources at all checkov prints only a summary: {"passed": 0, ..., "checkov_version"}.
    if len(reports) == 1 and "results" not in reports[0] and "resource_count" in reports[0]:
        return [], str(reports[0].get("checkov_version", "unknown"))
    for report in reports:
        if "results" not in report or "passed_checks" not in report["results"]:
            # --quiet (e.g. from a .checkov.yaml) drops passed checks, which the set-level rule needs.
            raise ScanError(
                f"checkov's report for {directory} has no passed checks (is `quiet` set in a .checkov.yaml?)"
            )
    versions = [str(r["summary"]["checkov_version"]) for r in reports if "checkov_version" in r.get("summary", {})]
    return reports, versions[0] if versions else "unknown"


def _relative(record: dict[str, Any], root: Path) -> str:
    absolute = record.get("file_abs_path")
    if absolute:
        return Path(os.path.relpath(absolute, root)).as_posix()
    return str(record.get("file_path", "")).lstrip("/")


def _lines(record: dict[str, Any]) -> tuple[int, int]:
    line_range = record.get("file_line_range") or [0, 0]
    return int(line_range[0]), int(line_range[-1])


def _skipped_by(check_id: str, skip_checks: list[str]) -> bool:
    # Same matching as checkov's --skip-check: fnmatch patterns, an optional ":path-regex" suffix.
    return any(fnmatch.fnmatch(check_id, pattern.split(":", 1)[0]) for pattern in skip_checks)


def _scp_set_failure(
    failures: list[CheckFailure], skips: list[CheckSkip], passes: list[CheckPass]
) -> CheckFailure | None:
    """The set-level rule over checkov's results: SCPs exist (CKV_HARDEN_4 reports every SCP,
    CKV_HARDEN_2 the ones about AllocateAddress) but none passed CKV_HARDEN_2."""
    scp_ids = (SCP_ALLOCATE_CHECK_ID, SCP_READABLE_CHECK_ID)
    if any(p.check_id == SCP_ALLOCATE_CHECK_ID for p in passes):
        return None
    # (file, lines, resource) of every SCP record; a skip carries no line numbers.
    scps = [(r.file, r.lines, r.resource) for r in [*failures, *passes] if r.check_id in scp_ids]
    scps += [(r.file, (0, 0), r.resource) for r in skips if r.check_id in scp_ids]
    if not scps:
        return None
    first_file, first_lines, _ = min(scps)
    names = sorted({resource for _, _, resource in scps})
    return CheckFailure(
        check_id=SCP_SET_CHECK_ID,
        check_name=SCP_SET_CHECK_NAME,
        resource="aws_organizations_policy.*",
        file=first_file,
        lines=first_lines,
        guideline=None,
        details=(f"SCPs in this configuration: {', '.join(names)}",),
    )


def run_scan(
    directory: Path,
    *,
    external_checks: bool = True,
    skip_checks: list[str] | None = None,
    timeout: int = 600,
) -> ScanResult:
    """Scan a Terraform tree with checkov (and harden's checks unless external_checks is False).

    checkov exits 1 when checks fail; that is a result, not an error. ScanError when the scan
    cannot run or its report cannot be trusted (parse errors, a broken custom check).
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise ScanError(f"{directory}: no such directory to scan")
    root = directory.resolve()
    if not _has_tf_files(root):
        raise ScanError(f"{directory}: no .tf files to scan")
    skip_checks = list(skip_checks or [])

    command = [*find_checkov(), "-d", str(root), "--framework", "terraform", "--skip-download", "-o", "json"]
    if external_checks:
        # --run-all-external-checks: a --check list from a .checkov.yaml or $CKV_CHECK must not
        # silently drop harden's own checks.
        command += ["--external-checks-dir", str(CHECKS_DIR), "--run-all-external-checks"]
    if skip_checks:
        command += ["--skip-check", ",".join(skip_checks)]

    code, stdout, stderr = _run(command, timeout, directory)
    if code not in (0, 1):
        raise ScanError(f"checkov failed scanning {directory} (exit {code}): {_last_line(stderr)[:200]}")
    _check_stderr(stderr, directory)
    reports, version = _reports(stdout, directory)

    passes: list[CheckPass] = []
    failures: list[CheckFailure] = []
    skips: list[CheckSkip] = []
    unparsed: list[str] = []
    for report in reports:
        results = report["results"]
        unparsed += [Path(os.path.relpath(p, root)).as_posix() for p in results.get("parsing_errors", [])]
        for record in results.get("passed_checks", []):
            passes.append(CheckPass(record["check_id"], record["resource"], _relative(record, root), _lines(record)))
        for record in results.get("failed_checks", []):
            failures.append(
                CheckFailure(
                    check_id=record["check_id"],
                    check_name=record.get("check_name") or "",
                    resource=record["resource"],
                    file=_relative(record, root),
                    lines=_lines(record),
                    guideline=record.get("guideline"),
                    details=tuple(str(d) for d in record.get("details") or ()),
                )
            )
        for record in results.get("skipped_checks", []):
            reason = (record.get("check_result") or {}).get("suppress_comment") or ""
            skips.append(CheckSkip(record["check_id"], record["resource"], _relative(record, root), reason))
    if unparsed:
        # checkov skips a file it cannot parse and still exits 0: a clean report would be a lie.
        raise ScanError(f"checkov could not parse {len(unparsed)} file(s) in {directory}: {', '.join(sorted(unparsed))}")

    if external_checks and not any(_skipped_by(i, skip_checks) for i in (SCP_SET_CHECK_ID, SCP_ALLOCATE_CHECK_ID)):
        set_failure = _scp_set_failure(failures, skips, passes)
        if set_failure:
            failures.append(set_failure)

    return ScanResult(
        directory=root,
        passed=len(passes),
        failed=sorted(set(failures), key=lambda f: (f.file, f.lines, f.check_id, f.resource)),
        skipped=sorted(set(skips), key=lambda s: (s.file, s.check_id, s.resource, s.reason)),
        checkov_version=version,
        passed_checks=sorted(set(passes), key=lambda p: (p.file, p.lines, p.check_id, p.resource)),
    )


# --- output ----------------------------------------------------------------------------------


def render_table(result: ScanResult, console: Console) -> None:
    """Failed checks as a table and a summary line; a green one-liner when nothing failed."""
    counts = f"{result.passed} passed, {len(result.failed)} failed, {len(result.skipped)} skipped"
    if result.ok:
        console.print(Text(f"✓ checkov {result.checkov_version}: {counts} in {result.directory}", style="green"))
        return
    table = Table(title=f"checkov: failed checks in {result.directory}", title_justify="left")
    table.add_column("check", style="bold red", no_wrap=True)
    table.add_column("name")
    table.add_column("resource", overflow="fold")
    table.add_column("file:lines", overflow="fold")
    for failure in result.failed:
        # Text, not markup: resource addresses like this["a"] contain brackets.
        name = Text(failure.check_name)
        for detail in failure.details:
            name.append(f"\n  {detail}", style="dim")
        start, end = failure.lines
        location = f"{failure.file}:{start}-{end}" if start else failure.file
        table.add_row(Text(failure.check_id), name, Text(failure.resource), Text(location))
    console.print(table)
    console.print(Text(f"✗ checkov {result.checkov_version}: {counts}", style="red"))
