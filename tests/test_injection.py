"""Trying to break the renderer: every free-text value harden.toml lets through, made as hostile
as validation allows, must reach Terraform as exactly that text, and nothing else.

The free-text surfaces are tag values and alarm subscription endpoints (everything else has a
shape: names, ARNs, ids, Regions); the organization root also carries principal ARNs with the odd
characters IAM names allow. Each is rendered by `harden render`, then evaluated by the real,
bundled Terraform (no provider): the values come back verbatim, the tree still loads, and no
block appears that the templates do not declare. Jinja never evaluates a value a second time.
"""

from __future__ import annotations

import json

import random
import shutil
import unicodedata

import pytest

from provisioner.baseline import ConfigError, parse_baseline
from provisioner.render import RenderError, hcl_literal, hcl_string, render, render_files
from provisioner.terraform import load_check
from tests.terraform_helpers import apply_and_read_outputs

# HCL template sequences at every position, escapes of escapes, Jinja syntax, comment and heredoc
# openers, a would-be block, JSON, Unicode line separators and direction overrides.
HOSTILE = [
    '${file("/etc/passwd")}',
    '$${a}', '$$${a}', '$$$${a}', '$', '$$', '${', 'x${', '${}', '$ {x}',
    '%{if true}x%{endif}', '%%{a}', '%%%{a}', '%', '%{', '%{~ for x in [1] ~}y%{~ endfor ~}',
    '\\${a}', '\\\\${a}', '\\', '\\\\', '\\"', '\\u0041', '\\n',
    '"', '""', '" }', '"}\nresource "null_resource" "pwned" {}\n#',
    '{{ 7 * 7 }}', '{% raw %}x{% endraw %}', '{# c #}', '{{', '}}',
    '# not a comment', '// nor this', '/* nor */', '<<EOF', '<<-EOT',
    '{"a": "${b}"}', 'a = b', '[1, 2]',
    'line\u2028separator', 'para\u2029graph', 'next\u0085line', '\u202eoverride', 'zero\u200bwidth', '\ufeffbom',
    'é 中文 🙂 \U0001f600',
]

# Printable (the tag rule) hostile values; control characters have their own test below.
PRINTABLE = [v for v in HOSTILE if not any(ord(c) < 0x20 or ord(c) == 0x7F for c in v)]


def _subscriptions() -> list[dict]:
    """Endpoints as hostile as each protocol's validation lets through."""
    return [
        {"protocol": "https", "endpoint": 'https://hooks.example.com/${var.x}/%{if(true)}"\\{{7*7}}'},
        {"protocol": "https", "endpoint": "https://h.example.com/a?b=$${c}&d=%%{e}"},
        {"protocol": "email", "endpoint": '"${x}"@example.com'},
        {"protocol": "sqs", "endpoint": 'arn:aws:sqs:eu-west-1:123456789012:q"${x}'},
        {"protocol": "lambda", "endpoint": "arn:${aws_partition.x}:lambda:::{{y}}%{endfor}"},
    ]


def _baseline(**extra):
    return parse_baseline({"regions": ["eu-west-1"], "home_region": "eu-west-1", **extra})


def _blocks(src: str) -> list[str]:
    return [ln for ln in src.split("\n") if ln[:1].isalpha()]  # top-level block headers


def test_hostile_values_reach_terraform_verbatim_through_the_whole_render(tmp_path):
    # At most 40 tags of 256 characters: the tail is packed into one value (boundaries included).
    tags = {f"T{i:02d}": v for i, v in enumerate(PRINTABLE[:39])}
    tags["T99"] = "".join(PRINTABLE[39:])
    assert len(tags["T99"]) <= 256 and "".join(tags.values()) == "".join(PRINTABLE)
    subs = _subscriptions()
    hostile = _baseline(tags=tags, alarms={"subscriptions": subs})
    render(hostile, tmp_path / "out")
    render(_baseline(), tmp_path / "clean")
    out, clean = tmp_path / "out", tmp_path / "clean"

    # The same files and, in every file, the same top-level blocks as a clean rendering.
    files = sorted(p.relative_to(out) for p in out.rglob("*.tf"))
    assert files == sorted(p.relative_to(clean) for p in clean.rglob("*.tf"))
    for rel in files:
        assert _blocks((out / rel).read_text()) == _blocks((clean / rel).read_text()), rel
    # Jinja printed the values, it did not run them.
    variables = (out / "account" / "variables.tf").read_text()
    assert "{{ 7 * 7 }}" in variables and "49" not in variables
    # What a reviewer reads is what Terraform reads: no raw bidi override, zero-width character
    # or line separator that other tools (and eyes) take for the end of a line or for code.
    for rel in files:
        text = (out / rel).read_text()
        assert text.endswith("\n") and text.splitlines() == text.split("\n")[:-1], rel
        assert not {c for c in text if unicodedata.category(c) in ("Cf", "Zl", "Zp")}, rel
    assert "\\u202e" in variables and "\\u2028" in variables

    # Terraform evaluates the rendered defaults back to exactly the configured values.
    probe = tmp_path / "probe"
    probe.mkdir()
    shutil.copy(out / "account" / "variables.tf", probe / "variables.tf")
    (probe / "outputs.tf").write_text('output "tags" {\n  value = var.tags\n}\n'
                                      'output "subs" {\n  value = var.alarm_subscriptions\n}\n')
    outputs = apply_and_read_outputs(probe)
    assert outputs["tags"] == tags
    assert outputs["subs"] == subs

    # And Terraform's own loader reads both roots and every module.
    for root in ("account", "organization"):
        assert load_check(out / root) == [], root


def test_random_hostile_strings_round_trip(tmp_path):
    """A seeded fuzz of the escaper over the characters that matter to HCL and Jinja."""
    alphabet = list('$%{}"\\\n\r\t#/*<>=[]()`~\'') + [
        "${", "%{", "$${", "%%{", "\u2028", "\u202e", "\u200d", "\U000e0001", "é", "🙂", "a", " "]
    rng = random.Random(20240510)
    values = {f"v{i}": "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 24))) for i in range(300)}
    values["map"] = {k: v for k, v in list(values.items())[:40]}  # as map keys too
    values["keys"] = {v: k for k, v in list(values.items())[40:80] if isinstance(v, str)}
    body = "".join(f"output {hcl_string(name)} {{\n  value = {hcl_literal(v)}\n}}\n" for name, v in values.items())
    (tmp_path / "main.tf").write_text(body, encoding="utf-8")
    outputs = apply_and_read_outputs(tmp_path)
    assert outputs == values


@pytest.mark.parametrize("value", ["\x00", "a\x1bb", "line\nbreak", "tab\tx", "\x7f"])
def test_control_characters_never_reach_a_tag(value):
    with pytest.raises(ConfigError, match="without control characters"):
        parse_baseline({"tags": {"Owner": value}})


@pytest.mark.parametrize("endpoint", ["https://a b", "https://a\nresource", "https://x\t"])
def test_subscription_endpoints_have_no_white_space(endpoint):
    with pytest.raises(ConfigError):
        parse_baseline({"alarms": {"subscriptions": [{"protocol": "https", "endpoint": endpoint}]}})


@pytest.mark.parametrize("principal", [
    'arn:aws:iam::123456789012:role/a"b',
    "arn:aws:iam::123456789012:role/${x}",
    "arn:aws:iam::123456789012:role/%{x}",
    "arn:aws:iam::123456789012:role/a b",
    "arn:aws:iam::123456789012:role/a\\b",
    "arn:aws:iam::123456789012:role/{{x}}",
])
def test_principal_arns_cannot_carry_template_or_quote_characters(principal):
    for section, key in (("allocate_address", "allowed_principals"), ("scp", "admin_principals")):
        with pytest.raises(ConfigError):
            parse_baseline({section: {key: [principal]}})


@pytest.mark.parametrize("url", [
    'http://127.0.0.1:5000/"',
    "http://127.0.0.1:5000/${x}",
    "http://127.0.0.1:5000/%{x}",
    "http://127.0.0.1:5000/{{x}}",
    "http://127.0.0.1:5000\nresource",
    "http://127.0.0.1:5000/\\",
    "http://user@127.0.0.1:5000",
    "file:///etc/passwd",
    "javascript:alert(1)",
])
def test_endpoint_url_is_refused_when_it_is_not_a_plain_http_url(url):
    with pytest.raises(RenderError, match="AWS_ENDPOINT_URL is not an http"):
        render_files(_baseline(), endpoint_url=url)


def test_an_accepted_endpoint_url_is_still_a_quoted_literal():
    files = {f.path.as_posix(): f.content for f in render_files(_baseline(), endpoint_url="http://[::1]:4566/p-1")}
    lines = [ln.strip() for ln in files["account/versions.tf"].splitlines() if "[::1]" in ln]
    assert lines and all(ln.endswith('= "http://[::1]:4566/p-1"') for ln in lines)


def test_odd_principal_characters_survive_into_both_scps(tmp_path):
    odd = "arn:aws:iam::123456789012:role/a+b=c,d.e@f_g-h/i+=,.@_-j"
    baseline = _baseline(allocate_address={"allowed_principals": [odd]}, scp={"admin_principals": [odd]})
    render(baseline, tmp_path / "out")
    text = (tmp_path / "out" / "organization" / "main.tf").read_text()
    from provisioner.policies import harden_scps

    # Every place the documents name it (exemptions, and the take-over statement's resources).
    expected = sum(json.dumps(p.document).count(f'"{odd}"') for p in harden_scps(baseline))
    assert expected >= 3 and text.count(f'"{odd}"') == expected
    assert load_check(tmp_path / "out" / "organization") == []
