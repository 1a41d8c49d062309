from __future__ import annotations

import os
from pathlib import Path

import pytest

from provisioner.baseline import load_baseline
from provisioner.render import render

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_CONFIG = REPO / "examples" / "harden.toml"

# Never let a developer's real credentials or profile reach a test.
for _var in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
    os.environ.pop(_var, None)


@pytest.fixture(scope="session")
def example_baseline():
    return load_baseline(EXAMPLE_CONFIG)


@pytest.fixture(scope="session")
def rendered(tmp_path_factory, example_baseline) -> Path:
    """A rendering of examples/harden.toml: rendered / "modules" / "<family>", "account", ..."""
    out = tmp_path_factory.mktemp("rendered")
    render(example_baseline, out)
    return out
