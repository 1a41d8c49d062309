"""Offline validation of Terraform modules against the hashicorp/aws provider schema.

provisioner/validate.py checks the rendered modules the way `terraform validate` would if the
provider could be downloaded; tools/extract_schema.py extracts the schema it checks against from
the cdktf prebuilt bindings (a tool-only dependency).

Negative fixtures live in tests/fixtures/validate/bad/<case>/: one mistake per case, and the
offending line carries `# expect: <part of the message>`. A case passes when the validator
reports exactly those problems, on those lines, and nothing else.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from provisioner.validate import (
    Problem,
    load_schema,
    literal_type_errors,
    main,
    parse_hcl,
    references,
    validate_tree,
)

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures" / "validate"
SCHEMA = REPO / "tests" / "data" / "aws_provider_schema.json"
EXTRACTOR = REPO / "tools" / "extract_schema.py"
EXPECT = re.compile(r"#\s*expect:\s*(.+?)\s*$")


def _load_extractor():
    spec = importlib.util.spec_from_file_location("extract_schema", EXTRACTOR)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("extract_schema", module)
    spec.loader.exec_module(module)
    return module


extract_schema = _load_extractor()


def _schema_tool_mark():
    """`schema_tool` marks the tests that need the cdktf wheel. Registered in pyproject; until
    it is, fall back to no mark (under --strict-markers an unknown mark fails collection)."""
    try:
        return pytest.mark.schema_tool
    except pytest.fail.Exception:
        return lambda f: f


schema_tool = _schema_tool_mark()


def expected(case: Path) -> list[tuple[str, int, str]]:
    out = []
    for path in sorted(case.rglob("*.tf")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            m = EXPECT.search(line)
            if m:
                out.append((path.relative_to(case).as_posix(), number, m.group(1)))
    return sorted(out)


BAD_CASES = sorted(p.name for p in (FIXTURES / "bad").iterdir() if p.is_dir())


# ---------------------------------------------------------------------------------------------
# the validator on fixtures
# ---------------------------------------------------------------------------------------------


def test_there_is_a_negative_fixture_per_kind_of_mistake():
    kinds = {
        "unknown_argument", "unknown_block", "missing_required_argument", "missing_required_block",
        "block_as_argument", "argument_as_block", "wrong_type_bool", "wrong_type_number",
        "wrong_type_list", "computed_attribute_set", "unknown_attribute",
        "unknown_attribute_count_index", "unknown_attribute_each_key",
        "unknown_nested_block_attribute", "undeclared_resource", "undeclared_data_source",
        "undeclared_variable", "undeclared_local", "undeclared_module", "module_output_undeclared",
        "variable_without_type", "variable_without_description", "each_without_for_each",
        "count_without_count", "dynamic_unknown_block", "dynamic_without_content",
    }
    assert kinds <= set(BAD_CASES)
    for case in BAD_CASES:
        assert expected(FIXTURES / "bad" / case), f"{case}: no `# expect:` marker"


@pytest.mark.parametrize("case", BAD_CASES)
def test_each_mistake_is_caught_with_its_message_and_line(case):
    root = FIXTURES / "bad" / case
    want = expected(root)
    got = validate_tree(root, SCHEMA)
    assert [(p.file, p.line) for p in got] == [(f, n) for f, n, _ in want], \
        "\n".join(map(str, got))
    for problem, (_, _, fragment) in zip(got, want):
        assert fragment in problem.message, f"{problem}\n  expected: {fragment}"


def test_correct_fixture_has_no_problems():
    assert validate_tree(FIXTURES / "good", SCHEMA) == []


def test_exact_messages():
    def only(case: str) -> Problem:
        (problem,) = validate_tree(FIXTURES / "bad" / case, SCHEMA)
        return problem

    assert only("unknown_argument") == Problem(
        "main.tf", 4,
        'aws_cloudtrail.this: unknown argument "is_multiregion_trail" '
        '(did you mean "is_multi_region_trail"?)')
    assert str(only("missing_required_block")) == (
        "main.tf:1: aws_s3_bucket_server_side_encryption_configuration.this: missing required "
        'block "rule"')
    assert only("unknown_attribute_each_key").message == (
        "reference to aws_kms_key.this[each.key].keyid: aws_kms_key.this has no attribute "
        '"keyid" (did you mean "key_id"?)')
    assert only("module_output_undeclared").file == "root/main.tf"


def test_problems_are_sorted_across_modules_and_files():
    problems = validate_tree(FIXTURES / "bad", SCHEMA)
    assert problems == sorted(problems)
    assert len(problems) == sum(len(expected(FIXTURES / "bad" / c)) for c in BAD_CASES)
    assert all(p.file.split("/")[0] in BAD_CASES for p in problems)


def test_hidden_directories_are_not_modules(tmp_path):
    shutil.copytree(FIXTURES / "bad" / "unknown_argument", tmp_path / ".terraform" / "x")
    (tmp_path / "main.tf").write_text('resource "aws_sns_topic" "t" {}\n')
    assert validate_tree(tmp_path, SCHEMA) == []


def test_cli_prints_problems_and_fails(capsys):
    assert main([str(FIXTURES / "bad" / "undeclared_local"), "--schema", str(SCHEMA)]) == 1
    assert capsys.readouterr().out == (
        "main.tf:2: reference to undeclared local value local.topic_name\n")
    assert main([str(FIXTURES / "good"), "--schema", str(SCHEMA)]) == 0


def test_missing_schema_file_says_how_to_make_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="make schema"):
        validate_tree(FIXTURES / "good", tmp_path / "nope.json")


def test_schema_is_loaded_once():
    assert load_schema(SCHEMA) is load_schema(SCHEMA)
    assert load_schema() is load_schema(SCHEMA)


# ---------------------------------------------------------------------------------------------
# literals and references
# ---------------------------------------------------------------------------------------------


def _expr(text: str):
    return parse_hcl(f"x = {text}\n").attrs[0].expr


@pytest.mark.parametrize("text, ty, error", [
    ('"yes"', "bool", 'expects bool, got string "yes"'),
    ('"true"', "bool", None),  # Terraform converts it
    ("1", "bool", "expects bool, got number 1"),
    ('"30"', "number", None),
    ('"thirty"', "number", 'expects number, got string "thirty"'),
    ("-1.5", "number", None),
    ("true", "string", None),  # converts to "true"
    ('["a"]', "string", "expects string, got a list literal"),
    ('"a"', ["set", "string"], 'expects set(string), got string "a"'),
    ('["a", 1, true]', ["list", "string"], None),
    ('["a", ["b"]]', ["list", "string"], "element expects string, got a list literal"),
    ('{ a = "x" }', ["map", "bool"], '["a"] expects bool, got string "x"'),
    ('["a"]', ["map", "string"], "expects map(string), got a list literal"),
    ('"a-${var.x}"', ["list", "string"], "expects list(string), got a string template"),
    ('"${var.x}"', "bool", None),  # an expression: never guessed at
    ("var.enabled", "bool", None),
    ('var.x ? "a" : "b"', "number", None),
    ("null", "bool", None),
    ('"x"', "dynamic", None),
])
def test_literal_types(text, ty, error):
    errors = literal_type_errors(_expr(text), ty)
    assert [msg for _, msg in errors] == ([error] if error else [])


def test_references_skip_function_names_object_keys_and_bound_names():
    refs = references(_expr('{ Name = upper(local.n), (var.k) = [for k, v in var.m : '
                            '"${k}=${v.id}"], for = aws_s3_bucket.b[0].arn }'))
    assert sorted(r.text() for r in refs) == ["aws_s3_bucket.b[0].arn", "local.n", "var.k",
                                              "var.m"]


def test_references_in_heredocs_keep_their_line():
    body = parse_hcl('x = <<-EOT\n  one\n  ${var.a}\n  %{ for i in var.l }${i}%{ endfor }\nEOT\n')
    refs = references(body.attrs[0].expr)
    assert [(r.text(), r.line) for r in refs] == [("var.a", 3), ("var.l", 4)]


# ---------------------------------------------------------------------------------------------
# the schema file
# ---------------------------------------------------------------------------------------------


def _aws(doc: dict) -> dict:
    return doc["provider_schemas"]["registry.terraform.io/hashicorp/aws"]


@pytest.fixture(scope="module")
def schema_doc() -> dict:
    return json.loads(SCHEMA.read_text(encoding="utf-8"))


def test_schema_file_carries_the_provider_version_and_the_types(schema_doc):
    assert schema_doc["provider_version"] == "6.25.0"
    assert load_schema(SCHEMA).version == "6.25.0"
    aws = _aws(schema_doc)
    assert set(extract_schema.BASE_RESOURCES) <= set(aws["resource_schemas"])
    assert set(extract_schema.BASE_DATA_SOURCES) <= set(aws["data_source_schemas"])
    resources, data = extract_schema.types_in_use(REPO)
    missing = {t for t in resources - set(aws["resource_schemas"])
               if t not in schema_doc["not_in_provider"]["resources"]}
    missing |= {t for t in data - set(aws["data_source_schemas"])
                if t not in schema_doc["not_in_provider"]["data_sources"]}
    assert not missing, f"types used by templates/fixtures missing: {missing}; run `make schema`"
    assert SCHEMA.stat().st_size < 300_000


def test_schema_cloudtrail(schema_doc):
    block = _aws(schema_doc)["resource_schemas"]["aws_cloudtrail"]["block"]
    attrs = block["attributes"]
    assert attrs["name"] == {"type": "string", "required": True}
    assert attrs["s3_bucket_name"] == {"type": "string", "required": True}
    # the v6 per-resource region argument
    assert attrs["region"] == {"type": "string", "optional": True, "computed": True}
    assert attrs["is_multi_region_trail"] == {"type": "bool", "optional": True}
    assert attrs["tags"] == {"type": ["map", "string"], "optional": True}
    for computed in ("arn", "home_region", "sns_topic_arn"):
        assert attrs[computed] == {"type": "string", "computed": True}
    selector = block["block_types"]["event_selector"]
    assert selector["nesting_mode"] == "list"
    assert selector["block"]["attributes"]["exclude_management_event_sources"]["type"] == \
        ["set", "string"]
    data_resource = selector["block"]["block_types"]["data_resource"]
    assert data_resource["block"]["attributes"]["values"] == \
        {"type": ["list", "string"], "required": True}
    assert block["block_types"]["insight_selector"]["nesting_mode"] == "set"


def test_schema_sse_configuration_nested_blocks(schema_doc):
    block = _aws(schema_doc)["resource_schemas"][
        "aws_s3_bucket_server_side_encryption_configuration"]["block"]
    rule = block["block_types"]["rule"]
    assert (rule["nesting_mode"], rule["min_items"]) == ("set", 1)
    default = rule["block"]["block_types"]["apply_server_side_encryption_by_default"]
    assert (default["nesting_mode"], default["max_items"]) == ("list", 1)
    assert default["block"]["attributes"] == {
        "kms_master_key_id": {"type": "string", "optional": True},
        "sse_algorithm": {"type": "string", "required": True},
    }
    assert rule["block"]["attributes"]["bucket_key_enabled"]["type"] == "bool"


def test_schema_flow_log(schema_doc):
    block = _aws(schema_doc)["resource_schemas"]["aws_flow_log"]["block"]
    attrs = block["attributes"]
    assert attrs["traffic_type"] == {"type": "string", "optional": True}
    assert attrs["max_aggregation_interval"]["type"] == "number"
    assert attrs["log_destination"] == {"type": "string", "optional": True, "computed": True}
    assert "log_group_name" not in attrs  # removed in provider v6
    assert block["block_types"]["destination_options"]["max_items"] == 1


def test_schema_config_recorder(schema_doc):
    block = _aws(schema_doc)["resource_schemas"]["aws_config_configuration_recorder"]["block"]
    assert block["attributes"]["role_arn"]["required"] is True
    group = block["block_types"]["recording_group"]
    assert (group["nesting_mode"], group["max_items"]) == ("list", 1)
    assert group["block"]["attributes"]["all_supported"]["type"] == "bool"
    assert group["block"]["attributes"]["resource_types"]["type"] == ["set", "string"]
    assert "exclusion_by_resource_types" in group["block"]["block_types"]
    override = block["block_types"]["recording_mode"]["block"]["block_types"][
        "recording_mode_override"]
    assert override["block"]["attributes"]["resource_types"]["required"] is True


def test_schema_policy_document(schema_doc):
    block = _aws(schema_doc)["data_source_schemas"]["aws_iam_policy_document"]["block"]
    assert block["attributes"]["json"] == {"type": "string", "computed": True}
    statement = block["block_types"]["statement"]
    assert statement["nesting_mode"] == "list"
    assert statement["block"]["attributes"]["actions"]["type"] == ["set", "string"]
    condition = statement["block"]["block_types"]["condition"]
    assert condition["nesting_mode"] == "set"
    assert {k for k, v in condition["block"]["attributes"].items() if v.get("required")} == \
        {"test", "variable", "values"}
    assert statement["block"]["block_types"]["principals"]["block"]["attributes"][
        "identifiers"]["type"] == ["set", "string"]


def test_schema_computed_nested_objects(schema_doc):
    org = _aws(schema_doc)["data_source_schemas"]["aws_organizations_organization"]["block"]
    kind, (obj, fields) = org["attributes"]["accounts"]["type"]
    assert (kind, obj) == ("list", "object")
    assert {"arn", "email", "id", "name", "status"} <= set(fields)
    assert org["attributes"]["roots"]["type"][1][1]["policy_types"][0] == "list"


# ---------------------------------------------------------------------------------------------
# the repository's modules
# ---------------------------------------------------------------------------------------------


def test_rendered_example_has_no_problems():
    terraform = REPO / "terraform"
    if not any(terraform.rglob("*.tf")):
        pytest.skip("no rendered example in terraform/ yet (the lead commits one)")
    problems = validate_tree(terraform, SCHEMA)
    assert problems == [], "\n".join(map(str, problems))


def test_fresh_rendering_has_no_problems(rendered):
    problems = validate_tree(rendered, SCHEMA)
    assert problems == [], "\n".join(map(str, problems))


@pytest.mark.parametrize("allow_destroy", [False, True])
def test_module_templates_have_no_problems(tmp_path, allow_destroy):
    """Module templates are static HCL apart from the values the renderer fills in
    (templates/CONVENTIONS.md: prevent_destroy, the version constraints): validate them with
    both settings of --allow-destroy."""
    from provisioner.baseline import Baseline
    from provisioner.render import render_files

    files = [f for f in render_files(Baseline(), allow_destroy=allow_destroy) if f.path.parts[0] == "modules"]
    if not files:
        pytest.skip("no module templates yet")
    for f in files:
        dst = tmp_path / f.path
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_text(f.content, encoding="utf-8")
    problems = validate_tree(tmp_path, SCHEMA)
    assert problems == [], "\n".join(map(str, problems))


# ---------------------------------------------------------------------------------------------
# the extractor
# ---------------------------------------------------------------------------------------------


def test_extractor_needs_only_the_standard_library():
    # -S: no site-packages at all; -I: no user site, no PYTHON* variables
    result = subprocess.run([sys.executable, "-I", "-S", str(EXTRACTOR), "--help"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "--wheel" in result.stdout and "--download" in result.stdout


def test_a_real_schema_dump_can_replace_the_extracted_file(tmp_path):
    """After an upgrade past the last cdktf bindings, `terraform providers schema -json` is the
    source: the extractor reduces it to the same layout and the validator reads it."""
    dump = {"format_version": "1.0", "provider_schemas": {
        "registry.terraform.io/hashicorp/aws": {
            "provider": {"version": 0, "block": {}},
            "resource_schemas": {
                "aws_widget": {"version": 1, "block": {
                    "attributes": {
                        "name": {"type": "string", "required": True, "description": "x",
                                 "description_kind": "plain"},
                        "legacy": {"type": "bool", "optional": True, "deprecated": True},
                        "arn": {"type": "string", "computed": True},
                        "settings": {"nested_type": {"nesting_mode": "single", "attributes": {
                            "size": {"type": "number", "optional": True}}},
                            "optional": True},
                    },
                    "description_kind": "plain"}},
                "aws_unused": {"version": 0, "block": {}},
            },
            "data_source_schemas": {}}}}
    (tmp_path / "dump.json").write_text(json.dumps(dump))
    out = tmp_path / "schema.json"
    module = tmp_path / "templates" / "m"  # where the extractor looks for the types in use
    module.mkdir(parents=True)
    (module / "main.tf").write_text(
        'resource "aws_widget" "w" {\n'
        '  name     = "w"\n'
        '  legacy   = true\n'
        '  settings = { size = "big" }\n'
        '}\n'
        'output "o" {\n'
        '  description = "o"\n'
        '  value       = [aws_widget.w.settings.size, aws_widget.w.settings.colour]\n'
        '}\n')
    assert extract_schema.main(["--from-terraform-json", str(tmp_path / "dump.json"),
                                "--provider-version", "6.99.0", "--repo", str(tmp_path),
                                "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["provider_version"] == "6.99.0"
    assert set(_aws(doc)["resource_schemas"]) == {"aws_widget"}
    assert "description" not in json.dumps(doc)
    assert [p.message for p in validate_tree(module, out)] == [
        'aws_widget.w: "legacy" is deprecated in hashicorp/aws 6.99.0',
        'aws_widget.w: "settings" .size expects number, got string "big"',
        "reference to aws_widget.w.settings.colour: aws_widget.w.settings has no attribute "
        '"colour"',
    ]


def _wheel() -> Path | None:
    env = os.environ.get("HARDEN_CDKTF_WHEEL")
    if env:
        return Path(env)
    found = sorted(extract_schema.DEFAULT_CACHE.glob(
        f"cdktf_cdktf_provider_aws-{extract_schema.DIST_VERSION}-*.whl"))
    return found[0] if found else None


@pytest.fixture(scope="module")
def two_extractions() -> tuple[str, str]:
    wheel = _wheel()
    if wheel is None or not wheel.is_file():
        pytest.skip(f"no {extract_schema.DIST}=={extract_schema.DIST_VERSION} wheel: run "
                    "`make schema` (downloads it once) or set HARDEN_CDKTF_WHEEL")
    resources, data = extract_schema.types_in_use(REPO)
    first = extract_schema.render(extract_schema.extract(wheel, resources, data))
    second = extract_schema.render(extract_schema.extract(wheel, set(resources), set(data)))
    return first, second


@schema_tool
def test_extract_schema_is_deterministic(two_extractions):
    first, second = two_extractions
    assert first == second


@schema_tool
def test_committed_schema_is_up_to_date(two_extractions):
    assert SCHEMA.read_text(encoding="utf-8") == two_extractions[0], \
        "tests/data/aws_provider_schema.json is stale: run `make schema`"
