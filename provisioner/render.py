"""Render the Terraform modules from the Jinja2 templates.

Safety by construction: in these templates `{{ value }}` never pastes raw text into HCL. The
environment's `finalize` hook turns every printed value into an HCL literal (strings quoted and
escaped, so a `"`, `\\`, `${` or `%{` inside a value stays a literal). The only way to print raw
text is the `ident` filter, which accepts nothing but an HCL identifier.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import tempfile
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from pydantic import BaseModel

from provisioner import __version__, tf_versions
from provisioner.baseline import Baseline
from provisioner.package_data import templates_dir
from provisioner.policies import GUARD_TAG_KEY, Place, PolicyError, alarm_topic_policy, harden_scps

TEMPLATES_DIR = templates_dir()
FAMILIES = ("cloudtrail", "flow_logs", "config", "scp", "ebs_encryption", "alarms", "network", "allowed_amis")
# Top-level directories of the output tree harden owns: stale *.tf files in them are removed.
MANAGED_TOP = ("modules", "account", "organization")

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
# Unicode categories written as \u escapes: controls, format characters, line/paragraph separators.
_INVISIBLE = frozenset({"Cc", "Cf", "Zl", "Zp"})


class RenderError(Exception):
    """Rendering failed; nothing was written."""


class Raw(str):
    """Text already known to be safe HCL (an identifier); printed as is."""


def hcl_string(text: str) -> str:
    out = ['"']
    i = 0
    while i < len(text):
        ch = text[i]
        nxt = text[i + 1] if i + 1 < len(text) else ""
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ch in "$%" and nxt == "{":
            # `${` and `%{` start template interpolation/directives; doubling the sigil escapes them.
            out.append(ch + ch + "{")
            i += 1
        elif ord(ch) < 0x20 or ord(ch) == 0x7F or unicodedata.category(ch) in _INVISIBLE:
            # Control, format (bidi overrides, zero-width), line and paragraph separator
            # characters: escaped, so the .tf file people review shows what Terraform reads and
            # every tool agrees where a line ends.
            out.append(f"\\u{ord(ch):04x}" if ord(ch) <= 0xFFFF else f"\\U{ord(ch):08x}")
        else:
            out.append(ch)
        i += 1
    out.append('"')
    return "".join(out)


def hcl_literal(value: Any) -> str:
    """Any plain Python value as an HCL expression that evaluates to exactly that value."""
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, BaseModel):
        return hcl_literal(value.model_dump(mode="json"))
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise RenderError(f"cannot render non-finite number {value!r}")
        return repr(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, str):
        return hcl_string(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(hcl_literal(v) for v in value) + "]"
    if isinstance(value, dict):
        if not value:
            return "{}"
        # Quoted keys: a key is data, never an expression or a reference.
        items = [f"{hcl_string(str(k))} = {hcl_literal(v)}" for k, v in value.items()]
        return "{ " + ", ".join(items) + " }"
    raise RenderError(f"cannot render a {type(value).__name__} into HCL")


def _finalize(value: Any) -> str:
    if isinstance(value, jinja2.Undefined):
        value._fail_with_undefined_error()  # StrictUndefined: name the missing variable
    return hcl_literal(value)


def _ident(value: Any) -> Raw:
    if not isinstance(value, str) or not _IDENT.match(value):
        raise RenderError(f"not a safe HCL identifier: {value!r}")
    return Raw(value)


def _comment(value: Any) -> Raw:
    # Comments are for people; keep them on one line so nothing leaks into code.
    return Raw(re.sub(r"[\x00-\x1f\x7f]+", " ", str(value)))


# A resource policy's account, Region and partition are known to Terraform only: the policy
# functions (provisioner/policies.py) get these markers instead, and policy_document() turns each
# into the one reference it stands for. Private-use characters: no validated harden.toml value
# can hold them, and only these three references are ever written.
_REFERENCES = ("data.aws_partition.current.partition", "local.account_id", "each.key")
_MARK = re.compile("\ue000([a-z_.]+)\ue001")


def reference(expression: str) -> str:
    if expression not in _REFERENCES:
        raise RenderError(f"not a reference a policy may use: {expression!r}")
    return f"\ue000{expression}\ue001"


def terraform_place() -> Place:
    """The Place of a resource policy the account root passes to a per-region module, as
    Terraform references (the root's partition and account; for_each's key is the Region)."""
    return Place(partition=reference("data.aws_partition.current.partition"), account_id=reference("local.account_id"),
                 region=reference("each.key"))


def _policy_literal(value: Any) -> str:
    """hcl_literal(), but a marked reference inside a string becomes ${reference}."""
    if isinstance(value, str) and "\ue000" in value:
        out, last = [], 0
        for match in _MARK.finditer(value):
            if match.group(1) not in _REFERENCES:
                raise RenderError(f"unknown reference in a policy: {match.group(1)!r}")
            out.append(hcl_string(value[last:match.start()])[1:-1] + "${" + match.group(1) + "}")
            last = match.end()
        tail = value[last:]
        if "\ue000" in tail or "\ue001" in "".join(out):
            raise RenderError("a policy string holds a malformed reference marker")
        return '"' + "".join(out) + hcl_string(tail)[1:-1] + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_policy_literal(v) for v in value) + "]"
    if isinstance(value, dict):
        if not value:
            return "{}"
        return "{ " + ", ".join(f"{hcl_string(str(k))} = {_policy_literal(v)}" for k, v in value.items()) + " }"
    return hcl_literal(value)


def policy_document(doc: dict[str, Any], indent: str = "") -> Raw:
    """`jsonencode({...})` of a policy document, one statement element per line so a reviewer can
    read it. Every value is an hcl_literal() (with terraform_place()'s references resolved); only
    the layout is written here."""
    if not isinstance(indent, str) or indent.strip(" "):
        raise RenderError(f"policy_document indent must be spaces, got {indent!r}")
    # Aligned as `terraform fmt` aligns consecutive one-line attributes (the multi-line Statement
    # ends a run), so templates stay fmt-clean.
    lines = ["jsonencode({"]
    for key, value in doc.items():
        if key != "Statement":
            lines.append(f"{indent}  {hcl_string(str(key))} = {_policy_literal(value)}")
    lines.append(f'{indent}  "Statement" = [')
    for statement in doc.get("Statement", []):
        keys = [hcl_string(str(k)) for k in statement]
        inner = max((len(k) for k in keys), default=0)
        lines.append(f"{indent}    {{")
        lines.extend(f"{indent}      {k.ljust(inner)} = {_policy_literal(v)}" for k, v in zip(keys, statement.values()))
        lines.append(f"{indent}    }},")
    lines.append(f"{indent}  ]")
    lines.append(f"{indent}}})")
    return Raw("\n".join(lines))


def environment(templates: Path = TEMPLATES_DIR) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates)),
        undefined=jinja2.StrictUndefined,
        finalize=_finalize,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["ident"] = _ident
    env.filters["comment"] = _comment
    env.filters["policy_document"] = policy_document
    env.filters["json"] = lambda v: json.dumps(v, sort_keys=True)
    return env


@dataclass(frozen=True)
class RenderedFile:
    path: Path  # relative to the output directory
    content: str


# Services the rendered modules call: with an emulator endpoint, each is pointed at it.
EMULATED_SERVICES = ("cloudtrail", "cloudwatch", "configservice", "ec2", "events", "iam", "kms", "logs",
                     "organizations", "s3", "servicequotas", "sns", "sts")


def render_files(baseline: Baseline, templates: Path = TEMPLATES_DIR,
                 endpoint_url: str | None = None, allow_destroy: bool = False) -> list[RenderedFile]:
    """Render every template to memory, sorted; nothing touches the disk here.

    allow_destroy renders `prevent_destroy = false` on the log bucket, the keys and the log
    groups (harden's deliberate destroy path); by default they are guarded."""
    if endpoint_url is not None and not re.fullmatch(r"https?://[A-Za-z0-9.\-\[\]:]+(/[^\s\"\\$%{}]*)?", endpoint_url):
        raise RenderError(f"AWS_ENDPOINT_URL is not an http(s) URL: {endpoint_url!r}")
    if not templates.is_dir():
        raise RenderError(f"templates directory not found: {templates}")
    env = environment(templates)
    try:
        # The SCP documents are computed here, once (the same functions serve verify and
        # remediate); with SCPs off the organization root is not rendered and needs none.
        # The first policy of each guardrail has a module input of its own; what did not fit
        # AWS's size limit continues in overflow policies.
        scps = harden_scps(baseline) if baseline.scp.enabled else []
        first = {p.control: p for p in reversed(scps)}
        documents = {
            "allocate_address_doc": first["scp.allocate_address"].document if "scp.allocate_address" in first else None,
            "baseline_protection_doc":
                first["scp.baseline_protection"].document if "scp.baseline_protection" in first else None,
            "overflow_policies": [p for p in scps if p is not first[p.control]],
        }
    except PolicyError as exc:
        raise RenderError(str(exc)) from None
    context = {"b": baseline, "harden_version": __version__, "endpoint_url": endpoint_url,
               "emulated_services": EMULATED_SERVICES, "allow_destroy": bool(allow_destroy),
               "guard_tag_key": GUARD_TAG_KEY,
               "alarm_topic_policy_doc": alarm_topic_policy(baseline, terraform_place()), **documents}
    sources = [s.relative_to(templates) for s in sorted(templates.rglob("*.tf.j2"))]
    # No SCPs wanted: no organization root module to apply.
    sources = [rel for rel in sources if rel.parts[0] != "organization" or baseline.scp.enabled]
    # versions.tf last in each directory: its required_version follows what the others use.
    texts: dict[Path, list[str]] = {}
    files: list[RenderedFile] = []
    for rel in sorted(sources, key=lambda r: (r.name == "versions.tf.j2", r)):
        local = dict(context)
        if rel.name == "versions.tf.j2":
            version, features = tf_versions.needed(baseline, _texts_in_reach(rel.parent, texts),
                                                   root=rel.parts[0] != "modules")
            local.update(required_version=tf_versions.constraint(version), terraform_features=features,
                         aws_provider_constraint=tf_versions.AWS_PROVIDER_CONSTRAINT)
        text = _render_one(env, rel, local)
        texts.setdefault(rel.parent, []).append(text)
        files.append(RenderedFile(rel.with_suffix(""), text))
    if not files:
        raise RenderError(f"no *.tf.j2 templates under {templates}")
    return sorted(files, key=lambda f: f.path)


def _render_one(env: jinja2.Environment, rel: Path, context: dict) -> str:
    try:
        return env.get_template(rel.as_posix()).render(context)
    except jinja2.TemplateError as exc:
        line = getattr(exc, "lineno", None)
        where = f"{rel}:{line}" if line else str(rel)
        raise RenderError(f"template {where}: {exc}") from None
    except RenderError as exc:
        raise RenderError(f"template {rel}: {exc}") from None


_MODULE_SOURCE = re.compile(r'^\s*source\s*=\s*"\.\./(modules/[A-Za-z0-9_-]+)"', re.MULTILINE)


def _texts_in_reach(directory: Path, texts: dict[Path, list[str]]) -> list[str]:
    """The rendered text of a directory and of the local modules it calls (a root's constraint
    covers its modules: the one number to read before running it). Versions files of other
    directories are rendered later and are not needed: they only restate requirements."""
    own = texts.get(directory, [])
    called = {Path(m) for t in own for m in _MODULE_SOURCE.findall(t)}
    return own + [t for d in sorted(called) for t in texts.get(d, [])]


def render(baseline: Baseline, out: Path, templates: Path = TEMPLATES_DIR, fmt: bool = True,
           endpoint_url: str | None = None, allow_destroy: bool = False) -> list[Path]:
    """Render into `out`. All or nothing: the tree is built in a temporary directory and only
    then copied over, so a failure leaves the previous rendering untouched."""
    files = render_files(baseline, templates, endpoint_url, allow_destroy)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".harden-render-", dir=out) as staging:
        stage = Path(staging)
        for f in files:
            target = stage / f.path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(f.content, encoding="utf-8")
        if fmt:
            from provisioner.terraform import fmt_tree

            fmt_tree(stage)
        written: list[Path] = []
        produced = {f.path for f in files}
        # Stale *.tf files anywhere in the trees harden owns (a module or root that a newer
        # template set no longer has) go; state files and .terraform/ are never touched.
        for stale in sorted(out.rglob("*.tf")):
            rel = stale.relative_to(out)
            if rel.parts[0] in MANAGED_TOP and ".terraform" not in rel.parts and rel not in produced:
                stale.unlink()
        for rel in sorted(produced):
            src, dst = stage / rel, out / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            new = src.read_bytes()
            if not dst.exists() or dst.read_bytes() != new:
                shutil.copyfile(src, dst)
            written.append(dst)
        for d in sorted((p for p in out.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
            rel = d.relative_to(out)
            if rel.parts[0] in MANAGED_TOP and not any(d.iterdir()):
                d.rmdir()
    return written
