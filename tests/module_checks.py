"""What every rendered module must hold, asserted the same way by each tests/test_module_*.py.

`mod` is a module directory read by tests.hcl.load_hcl.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

from provisioner.terraform import load_check

STANDARD_FILES = ["main.tf", "outputs.tf", "variables.tf", "versions.tf"]
REGION = "${var.region}"


def assert_standard_files(module_dir: Path) -> None:
    assert sorted(p.name for p in Path(module_dir).glob("*.tf")) == STANDARD_FILES


def assert_pins_aws_provider_v6(mod: dict) -> None:
    (terraform,) = mod["terraform"]
    assert terraform["required_version"] == ">= 1.5"
    assert terraform["required_providers"][0]["aws"] == {"source": "hashicorp/aws", "version": ">= 6.0, < 7.0"}


def assert_every_regional_block_sets_region(mod: dict, global_resources: Iterable[str] = (),
                                            global_data_sources: Iterable[str] = ()) -> None:
    """Provider v6: a regional resource or data source names `region = var.region`; a global one
    (IAM, STS, ...) takes no region argument at all."""
    for kind, global_types in (("resource", set(global_resources)), ("data", set(global_data_sources))):
        for btype, named in mod[kind].items():
            for name, body in named.items():
                where = f"{kind}.{btype}.{name}"
                if btype in global_types:
                    assert "region" not in body, f"{where} is global"
                else:
                    assert body.get("region") == REGION, where


def assert_every_taggable_resource_is_tagged(mod: dict, untaggable: Iterable[str], tagged_types: set[str],
                                             tags: str | Callable[[str], bool] = "${var.tags}") -> None:
    """Every resource outside `untaggable` has tags (equal to `tags`, or accepted by it), the
    untaggable ones have none, and the tagged types are exactly `tagged_types`."""
    untaggable = set(untaggable)
    tagged = set()
    for rtype, named in mod["resource"].items():
        for name, body in named.items():
            if rtype in untaggable:
                assert "tags" not in body, f"{rtype}.{name}"
                continue
            value = body.get("tags")
            assert tags(value) if callable(tags) else value == tags, f"{rtype}.{name}: tags = {value!r}"
            tagged.add(rtype)
    assert tagged == tagged_types


def assert_variables_documented(mod: dict, validated: set[str], unvalidated: Iterable[str] = ()) -> None:
    """The module has exactly these variables; each has a type and a description; each of
    `validated` has validation rules with a condition and an error message."""
    variables = mod["variable"]
    assert set(variables) == set(validated) | set(unvalidated)
    for name, body in variables.items():
        assert body.get("type"), name
        assert body.get("description"), name
    for name in validated:
        assert variables[name].get("validation"), name
        for rule in variables[name]["validation"]:
            assert rule["condition"] and rule["error_message"], name


def assert_outputs_described(mod: dict) -> None:
    for name, body in mod["output"].items():
        assert body.get("description"), name


def assert_no_checkov_skips(module_dir: Path) -> None:
    for path in Path(module_dir).glob("*.tf"):
        assert not re.search(r"checkov:skip", path.read_text(encoding="utf-8")), path.name


def assert_terraform_loads(module_dir: Path, tmp_path: Path) -> None:
    """Terraform's own loader reads a copy of the module (load_check: `terraform providers`,
    since TerraformConfig.load_config_dir cannot serialise an operator such as `==`)."""
    root = tmp_path / Path(module_dir).name
    shutil.copytree(module_dir, root)
    assert load_check(root) == []


def one(mod: dict, rtype: str, name: str = "this") -> dict:
    """The body of one resource of a parsed module."""
    return mod["resource"][rtype][name]


def policy_doc(mod: dict, name: str) -> dict:
    """The body of one aws_iam_policy_document data source of a parsed module."""
    return mod["data"]["aws_iam_policy_document"][name]
