"""The wheel is the product: build it, install it into a fresh virtual environment outside the
repository, and run render + validate + verify from there against the sandbox. Catches what an
editable install hides (templates or the provider schema left out of the wheel, a module that
reads files from the checkout). About a minute: `make test-wheel` (and .ci/run) runs it;
`make test` leaves it out."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from provisioner import __version__

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.wheel


def _run(args, cwd, env=None, timeout=600):
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    return proc


def test_the_installed_wheel_renders_validates_and_verifies(tmp_path):
    # Built from a clean copy: setuptools reuses build/ in the source tree, where files of
    # deleted modules would linger and ship.
    source = tmp_path / "source"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
        ".git", ".venv*", "build", "*.egg-info", "__pycache__", ".pytest_cache", "terraform", ".terraform"))
    dist = tmp_path / "dist"
    built = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(source)], tmp_path)
    assert built.returncode == 0, built.stderr[-2000:]
    [wheel] = dist.glob("harden_aws-*.whl")
    assert wheel.name.startswith(f"harden_aws-{__version__}-")

    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    bin_dir = env_dir / "bin"
    # Only the venv on PATH, no PYTHONPATH: nothing from this checkout can leak in.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "AWS_ENDPOINT_URL")}
    env["PATH"] = f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin"
    installed = _run([str(bin_dir / "pip"), "install", "-q", f"{wheel}[sandbox]"], tmp_path, env)
    assert installed.returncode == 0, installed.stderr[-2000:]

    where = _run([str(bin_dir / "python"), "-c", "import provisioner.package_data as p; "
                  "print(p.templates_dir()); print(p.provider_schema())"], tmp_path, env)
    templates, schema = (Path(line) for line in where.stdout.split())
    assert env_dir in templates.parents and env_dir in schema.parents  # inside site-packages
    assert (templates / "modules" / "cloudtrail" / "main.tf.j2").is_file() and schema.is_file()

    harden = str(bin_dir / "harden")
    assert _run([harden, "--version"], tmp_path, env).stdout.strip() == f"harden {__version__}"

    rendered = _run([harden, "render", "--dir", "tf"], tmp_path, env)
    assert rendered.returncode == 0, rendered.stderr
    assert (tmp_path / "tf" / "account" / "main.tf").is_file()
    checked = _run([harden, "validate", "tf"], tmp_path, env)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "valid" in checked.stdout

    verified = _run([harden, "sandbox", "exec", "--config-out", "sandbox.toml", "--",
                     harden, "verify", "-c", "sandbox.toml", "-f", "json", "-o", "report.json"], tmp_path, env)
    assert verified.returncode == 1, verified.stderr  # the seeded account drifts
    report = json.loads((tmp_path / "report.json").read_text())
    failing = {f["control"] for f in report["findings"] if f["status"] == "fail"}
    assert {"flow_logs.all_vpcs", "ebs.default_encryption", "eip.unassociated"} <= failing
    assert not [f for f in report["findings"] if f["status"] == "error"]
