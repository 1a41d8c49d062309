"""The CI material works as written: the GitHub workflow passes the workflow schema, every
harden command in it (and in the pre-commit hooks, the Makefile and the demo) parses with the
real CLI, the pre-commit manifest validates with pre-commit itself, `make help` lists every
target."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from provisioner import cli

REPO = Path(__file__).resolve().parent.parent
WORKFLOW = REPO / "examples" / "ci" / "github-actions.yml"
HOOKS = REPO / ".pre-commit-hooks.yaml"
PRE_COMMIT_CONFIG = REPO / "examples" / "ci" / "pre-commit-config.yaml"
BIN = Path(sys.executable).parent
SHELL_STOP = {"||", "&&", "|", ";", ">", ">>", "2>&1", "then", "}"}


def _tool(name: str) -> str:
    path = BIN / name
    if not path.is_file():
        pytest.fail(f"{name} is not installed in {BIN}: it is a test dependency (pyproject [test])")
    return str(path)


def _harden_commands(text: str) -> list[list[str]]:
    """Every `harden ...` command in a shell script, Makefile or run: block, as argv after
    `harden` (up to the end of the command). Mentions inside quoted text (echo, step titles)
    and comments are not commands."""
    found = []
    for line in text.replace("\\\n", " ").splitlines():
        if line.lstrip().startswith("#"):
            continue
        line = line.split(" #", 1)[0]
        for match in re.finditer(r'(?:^|[\s;(])(?:"\$HARDEN"|\$HARDEN|\$\(BIN\)/harden|harden)\s+([a-z][^\n]*)', line):
            if line[:match.start() + 1].count('"') % 2:
                continue  # inside a double-quoted string
            argv = []
            for word in shlex.split(match.group(1)):
                if word in SHELL_STOP or word.startswith((">", "2>")):
                    break
                argv.append(word)
            found.append(argv)
    return found


def _parses(argv: list[str]) -> tuple[int, str]:
    """Exit code of the real CLI parsing argv (--help stops it before running anything)."""
    if "--" in argv:  # what follows is another program's command line (sandbox exec)
        argv = argv[:argv.index("--")]
    result = CliRunner().invoke(cli.app, [*argv, "--help"], prog_name="harden")
    return result.exit_code, result.output + (result.stderr or "")


def test_the_workflow_passes_the_github_workflow_schema():
    proc = subprocess.run([_tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(WORKFLOW)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


WORKFLOWS = sorted((REPO / "examples" / "ci").glob("github-actions*.yml"))


@pytest.mark.parametrize("workflow", [w for w in WORKFLOWS if w != WORKFLOW], ids=lambda p: p.name)
def test_the_other_workflows_pass_the_github_workflow_schema(workflow):
    proc = subprocess.run([_tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(workflow)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_install_line_names_the_distribution():
    """pip refuses `NAME @ git+URL` when NAME is not the distribution's name, so every install
    line of the CI material and the README says the one in pyproject.toml."""
    import tomllib

    name = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["name"]
    texts = {p.name: p.read_text() for p in [*WORKFLOWS, REPO / "README.md"]}
    spelled = {(f, m) for f, text in texts.items()
               for m in re.findall(r'install "([A-Za-z0-9_.-]+)(?:\[[^\]]*\])? @ git\+', text)}
    assert {f for f, _ in spelled} >= {"README.md", "github-actions-organization.yml"}, spelled
    assert {(f, m) for f, m in spelled if m != name} == set()


def test_the_workflow_does_what_the_readme_says():
    doc = yaml.safe_load(WORKFLOW.read_text())
    assert "harden-aws @ git+" in doc["env"]["HARDEN_SPEC"]
    scan, drift = doc["jobs"]["scan"], doc["jobs"]["drift"]
    scan_runs = "\n".join(step.get("run", "") for step in scan["steps"])
    assert "harden scan terraform --format sarif --output checkov.sarif" in scan_runs
    assert "GITHUB_STEP_SUMMARY" in scan_runs and "::error" in scan_runs  # the author sees why
    uploads = [s for s in scan["steps"] + drift["steps"] if s.get("uses", "").startswith("github/codeql-action/upload-sarif")]
    assert {u["with"]["sarif_file"] for u in uploads} == {"checkov.sarif", "harden.sarif"}
    assert all(u["if"].startswith("always()") for u in uploads)  # uploads when the check failed too
    assert scan["permissions"]["security-events"] == "write" == drift["permissions"]["security-events"]
    drift_runs = "\n".join(step.get("run", "") for step in drift["steps"])
    assert 'backend "s3"' in drift_runs  # refuses to run without remote state


def test_every_harden_command_in_the_ci_material_parses():
    sources = {**{w: w.read_text() for w in WORKFLOWS}, REPO / "Makefile": (REPO / "Makefile").read_text(),
               REPO / "examples" / "demo.sh": (REPO / "examples" / "demo.sh").read_text()}
    hooks = yaml.safe_load(HOOKS.read_text())
    sources[HOOKS] = "\n".join(f"{h['entry']} {' '.join(h.get('args', []))}" for h in hooks)
    checked = 0
    for path, text in sources.items():
        for argv in _harden_commands(text):
            code, output = _parses(argv)
            assert code == 0, f"{path.name}: harden {' '.join(argv)}: {output}"
            checked += 1
    assert checked >= 15


def test_the_pre_commit_manifest_and_example_config_validate():
    for command, path in (("validate-manifest", HOOKS), ("validate-config", PRE_COMMIT_CONFIG)):
        proc = subprocess.run([_tool("pre-commit"), command, str(path)], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    ids = {h["id"] for h in yaml.safe_load(HOOKS.read_text())}
    used = {h["id"] for repo in yaml.safe_load(PRE_COMMIT_CONFIG.read_text())["repos"] for h in repo["hooks"]}
    assert used <= ids and "harden-scan" in ids


def test_make_help_lists_every_target():
    make = shutil.which("make")
    if make is None:
        pytest.fail("make is not installed")
    makefile = (REPO / "Makefile").read_text()
    phony = set(re.search(r"^\.PHONY:(.*)$", makefile, re.M).group(1).split())
    defined = set(re.findall(r"^([a-z][a-z-]*):", makefile, re.M))
    assert phony == defined, "every target is .PHONY and every .PHONY target exists"
    proc = subprocess.run([make, "-s", "-C", str(REPO), "help"], capture_output=True, text=True, timeout=60)
    listed = set(re.findall(r"^make (\S+)", proc.stdout, re.M))
    assert listed == defined, proc.stdout


def test_the_demo_prints_no_escape_codes_when_not_on_a_terminal(tmp_path):
    # Each harden step replaced by `true`: what is left is the script's own output.
    proc = subprocess.run(["bash", str(REPO / "examples" / "demo.sh"), "harden.toml"], capture_output=True,
                          text=True, timeout=60, env={"PATH": "/usr/bin:/bin", "HARDEN": "true"})
    assert proc.returncode == 0, proc.stderr
    assert "== 1. harden verify" in proc.stdout
    assert "\x1b" not in proc.stdout + proc.stderr
