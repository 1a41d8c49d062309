"""Where the templates and the provider schema are: inside the package when harden is installed
from a wheel (setup.py copies them there at build time), at the top of the checkout otherwise
(a clone, or an editable install). Keep the two paths in step with setup.py's BUNDLED."""

from __future__ import annotations

import os
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _bundled(inside_package: str, in_checkout: str) -> Path:
    installed = _PACKAGE / inside_package
    return installed if installed.exists() else _PACKAGE.parent / in_checkout


def templates_dir() -> Path:
    """$HARDEN_TEMPLATES (a directory of your own templates) wins."""
    override = os.environ.get("HARDEN_TEMPLATES")
    return Path(override) if override else _bundled("templates", "templates")


def provider_schema() -> Path:
    return _bundled("data/aws_provider_schema.json", "tests/data/aws_provider_schema.json")
