"""Render: escaping, determinism, fmt, Terraform's own loader, root wiring, the committed example."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from provisioner.baseline import parse_baseline
from provisioner.render import (FAMILIES, RenderError, hcl_literal, hcl_string, render,
                                render_files)
from provisioner.terraform import fmt_tree, load_check
from tests.hcl import load_hcl
from tests.terraform_helpers import apply_and_read_outputs

REPO = Path(__file__).resolve().parent.parent

NASTY = [
    'plain',
    'quote " inside',
    'back\\slash and \\" escaped quote',
    '${var.injected}',
    '$${already doubled}',
    '%{ if true }x%{ endif }',
    '%%{ doubled directive',
    'dollar $ alone and percent % alone and ${',
    '"}\nresource "aws_iam_user" "evil" {\n  name = "x',
    'tab\tcarriage\rreturn',
    'unicode é 中文 🙂',
    '',
]


def test_hcl_string_escapes_template_sequences():
    assert hcl_string('a"b') == '"a\\"b"'
    assert hcl_string("${x}") == '"$${x}"'
    assert hcl_string("%{x}") == '"%%{x}"'
    assert hcl_string("a\\b") == '"a\\\\b"'
    assert hcl_string("line\nbreak") == '"line\\nbreak"'
    assert "\n" not in hcl_string(NASTY[8])


def test_hcl_literal_shapes():
    assert hcl_literal(None) == "null"
    assert hcl_literal(True) == "true"
    assert hcl_literal(3) == "3"
    assert hcl_literal(80.0) == "80"
    assert hcl_literal(2.5) == "2.5"
    assert hcl_literal(["a", 1]) == '["a", 1]'
    assert hcl_literal({"k": "v"}) == '{ "k" = "v" }'
    with pytest.raises(RenderError):
        hcl_literal(float("nan"))
    with pytest.raises(RenderError):
        hcl_literal(object())


def test_literals_round_trip_through_real_terraform(tmp_path):
    """What Terraform evaluates is exactly the Python value: no escape is lost or added."""
    values = {f"s{i}": s for i, s in enumerate(NASTY)}
    values["obj"] = {'key "with" ${x}': ["%{ y }", "\\"], "n": 1.5, "b": False}
    body = "\n".join(f"output {hcl_string(name)} {{\n  value = {hcl_literal(v)}\n}}\n"
                     for name, v in values.items())
    (tmp_path / "main.tf").write_text(body)
    outputs = apply_and_read_outputs(tmp_path)
    for name, value in values.items():
        assert outputs[name] == value, name


def test_ident_filter_rejects_anything_but_identifiers(tmp_path):
    (tmp_path / "x.tf.j2").write_text('resource "null" {{ name | ident }} {}\n')
    from provisioner.render import environment

    env = environment(tmp_path)
    assert env.get_template("x.tf.j2").render(name="good_name-1") == 'resource "null" good_name-1 {}\n'
    with pytest.raises(RenderError):
        env.get_template("x.tf.j2").render(name='bad" {')


def test_hostile_tag_values_render_as_literals(tmp_path):
    tags = {f"T{i}": s for i, s in enumerate(NASTY) if "\n" not in s and "\t" not in s and "\r" not in s}
    b = parse_baseline({"tags": tags, "regions": ["us-east-1"], "home_region": "us-east-1"})
    render(b, tmp_path / "out")
    account = tmp_path / "out" / "account"
    # Evaluate the rendered defaults with Terraform itself: the tag map must come back verbatim.
    probe = tmp_path / "probe"
    probe.mkdir()
    shutil.copy(account / "variables.tf", probe / "variables.tf")
    (probe / "outputs.tf").write_text('output "tags" {\n  value = var.tags\n}\n'
                                      'output "subs" {\n  value = var.alarm_subscriptions\n}\n')
    outputs = apply_and_read_outputs(probe)
    assert outputs["tags"] == tags
    # No block appeared beyond what the template declares, and Terraform still loads the tree.
    text = (account / "variables.tf").read_text()
    render(parse_baseline({"regions": ["us-east-1"], "home_region": "us-east-1"}), tmp_path / "clean")
    clean = (tmp_path / "clean" / "account" / "variables.tf").read_text()

    def blocks(src: str) -> list[str]:
        return [ln for ln in src.splitlines() if ln[:1].isalpha()]  # top-level block headers

    assert blocks(text) == blocks(clean)
    assert load_check(account) == []


def test_render_is_deterministic(tmp_path, example_baseline):
    render(example_baseline, tmp_path / "a")
    render(example_baseline, tmp_path / "b")
    files_a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.tf"))
    files_b = sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*.tf"))
    assert files_a == files_b and files_a
    for rel in files_a:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel


def test_rendered_tree_is_fmt_clean_and_templates_need_no_fmt(rendered, example_baseline, tmp_path):
    assert fmt_tree(rendered, check=True) == []
    # The renderer runs fmt, so check the raw template output too: templates are written clean.
    raw = tmp_path / "raw"
    for f in render_files(example_baseline):
        (raw / f.path).parent.mkdir(parents=True, exist_ok=True)
        (raw / f.path).write_text(f.content)
    assert fmt_tree(raw / "modules", check=True) == []


def _module_dirs(root: Path) -> list[Path]:
    return sorted({p.parent for p in root.rglob("*.tf")})


def test_terraform_loader_accepts_every_module(rendered, tmp_path):
    tree = tmp_path / "tree"
    shutil.copytree(rendered, tree)
    dirs = _module_dirs(tree)
    assert {d.relative_to(tree).as_posix() for d in dirs} >= (
        {f"modules/{f}" for f in FAMILIES} | {"account", "organization"})
    for d in dirs:
        assert load_check(d) == [], d


def test_terraform_loader_reports_errors_in_one_line(tmp_path):
    (tmp_path / "main.tf").write_text('variable "x" {\n  type = strin\n}\n')
    problems = load_check(tmp_path)
    assert problems and problems[0].startswith("Error: ") and "\n" not in problems[0]


def test_every_module_has_the_four_files(rendered):
    for family in FAMILIES:
        names = {p.name for p in (rendered / "modules" / family).glob("*.tf")}
        assert {"main.tf", "variables.tf", "outputs.tf", "versions.tf"} <= names, family


def test_root_module_calls_match_module_variables(rendered):
    """Every argument a root passes is a declared variable; every required variable is passed."""
    meta = {"source", "for_each", "count", "depends_on", "providers"}
    for root in ("account", "organization"):
        calls = load_hcl(rendered / root)["module"]
        assert calls, root
        for name, call in calls.items():
            source = (rendered / root / call["source"]).resolve()
            declared = load_hcl(source)["variable"]
            passed = set(call) - meta
            assert passed <= set(declared), f"{root}/{name}: unknown {passed - set(declared)}"
            required = {v for v, body in declared.items() if "default" not in body}
            assert required <= passed, f"{root}/{name}: missing {required - passed}"


def test_account_root_wires_every_family_per_region(rendered):
    calls = load_hcl(rendered / "account")["module"]
    assert set(calls) == {"cloudtrail", "config", "flow_logs", "ebs_encryption", "alarms", "network", "allowed_amis"}
    for name in ("config", "flow_logs", "ebs_encryption", "alarms", "network", "allowed_amis"):
        assert calls[name]["for_each"] == "${local.regions}"
        assert calls[name]["region"] == "${each.key}"
    assert calls["config"]["include_global_resource_types"] == "${each.key == var.home_region}"
    assert calls["flow_logs"]["traffic_type"] == "ALL"
    variables = load_hcl(rendered / "account")["variable"]
    assert variables["regions"]["default"] == ["eu-west-1", "eu-central-1", "us-east-1"]


def test_disabled_controls_are_not_instantiated(tmp_path):
    b = parse_baseline({"flow_logs": {"enabled": False}, "alarms": {"enabled": False},
                        "scp": {"enabled": False}})
    render(b, tmp_path)
    calls = load_hcl(tmp_path / "account")["module"]
    assert "flow_logs" not in calls and "alarms" not in calls and "config" in calls
    assert not (tmp_path / "organization").exists()


def test_render_is_all_or_nothing_and_removes_stale_files(tmp_path, example_baseline):
    out = tmp_path / "out"
    render(example_baseline, out)
    before = {p: p.read_bytes() for p in out.rglob("*.tf")}
    broken = tmp_path / "templates"
    shutil.copytree(REPO / "templates", broken)
    (broken / "account" / "zz_broken.tf.j2").write_text("{{ undefined_name }}\n")
    with pytest.raises(RenderError, match=r"zz_broken.tf.j2.*undefined_name"):
        render(example_baseline, out, templates=broken)
    assert {p: p.read_bytes() for p in out.rglob("*.tf")} == before
    # A file harden rendered before (it is in the manifest) and no longer renders goes; a file
    # harden never wrote stays, whatever its name.
    extra = tmp_path / "templates-extra"
    shutil.copytree(REPO / "templates", extra)
    (extra / "account" / "zz_extra.tf.j2").write_text("# rendered once\n")
    render(example_baseline, out, templates=extra)
    assert (out / "account" / "zz_extra.tf").exists()
    (out / "account" / "stale.tf").write_text("# the user's own\n")
    render(example_baseline, out)
    assert not (out / "account" / "zz_extra.tf").exists()
    assert (out / "account" / "stale.tf").read_text() == "# the user's own\n"
    assert not list(out.glob(".harden-render-*"))


def test_committed_example_rendering_is_up_to_date(rendered):
    committed = REPO / "terraform"
    fresh = {p.relative_to(rendered): p.read_bytes() for p in rendered.rglob("*.tf")}
    have = {p.relative_to(committed): p.read_bytes() for p in committed.rglob("*.tf")
            if ".terraform" not in p.parts}
    assert set(have) == set(fresh), "terraform/ is out of date: run `make render` and commit it"
    stale = sorted(str(p) for p in fresh if fresh[p] != have[p])
    assert not stale, f"terraform/ is out of date ({', '.join(stale)}): run `make render` and commit it"


def test_disabled_roots_are_removed_but_files_harden_did_not_write_stay(tmp_path, example_baseline):
    out = tmp_path / "out"
    render(example_baseline, out)
    theirs = out / "modules" / "scp" / "policies"
    theirs.mkdir()
    (theirs / "main.tf").write_text("# a sub-module harden did not write\n")
    (out / "organization" / "terraform.tfstate").write_text("{}")  # state is never touched
    render(parse_baseline({**example_baseline.model_dump(exclude_none=True), "scp": {"enabled": False}}), out)
    assert (theirs / "main.tf").exists()
    assert not list((out / "organization").glob("*.tf"))
    assert (out / "organization" / "terraform.tfstate").exists()
