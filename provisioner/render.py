"""Render the Terraform modules from the Jinja2 templates.

Safety by construction: in these templates `{{ value }}` never pastes raw text into HCL. The
environment's `finalize` hook turns every printed value into an HCL literal (strings quoted and
escaped, so a `"`, `\\`, `${` or `%{` inside a value stays a literal). The only way to print raw
text is the `ident` filter, which accepts nothing but an HCL identifier.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import tempfile
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from pydantic import BaseModel

from provisioner import __version__, address_events, tf_versions
from provisioner.baseline import Baseline
from provisioner.package_data import templates_dir
from provisioner.policies import GUARD_TAG_KEY, Place, PolicyError, alarm_topic_policy, harden_scps

TEMPLATES_DIR = templates_dir()
FAMILIES = ("cloudtrail", "flow_logs", "config", "scp", "ebs_encryption", "alarms", "network", "allowed_amis")

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
               "alarm_topic_policy_doc": alarm_topic_policy(baseline, terraform_place()),
               "address_event_pattern": address_events.event_pattern(),
               "address_filter_pattern": address_events.filter_pattern(), **documents}
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
    """Render into `out`, all or nothing, touching only harden's own files (see render_tree)."""
    return render_tree(render_files(baseline, templates, endpoint_url, allow_destroy), Path(out), fmt=fmt)


# -- writing the tree: all or nothing, only harden's own files -----------------------------------
#
# The whole new tree is written into a staging folder inside `out` (same filesystem, so every
# move is a rename) and formatted there. Then a journal of the moves is written (the commit
# point) and the files are renamed into place one by one. A failure before the commit leaves
# `out` as it was; a failure during the renames puts the previous files back (each was linked
# into the staging folder first); a process killed during the renames left a committed journal,
# which the next render rolls forward before doing anything else. Staging folders without a
# journal are leftovers of a killed run and are removed. `MANIFEST` lists the files harden
# wrote, with their hashes: a file that is not in it (the user's own .tf files, state files,
# .terraform/, modules of their own) is never deleted or moved, and a file harden no longer
# renders is deleted only while it is still byte for byte what harden wrote.

MANIFEST = ".harden-manifest.json"
STAGING_PREFIX = ".harden-render-"
JOURNAL = "journal.json"
LOCK_WAIT = 30.0   # seconds another render may hold the output folder


def _write_file(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(content)


def _sha256(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def _read_manifest(out: Path) -> dict[str, str]:
    try:
        doc = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
        files = doc.get("files", {})
        return {str(k): str(v) for k, v in files.items()} if isinstance(files, dict) else {}
    except (OSError, ValueError, AttributeError):
        return {}   # none yet (or unreadable): harden claims nothing, so deletes nothing


def _safe_rel(rel: str) -> bool:
    parts = Path(rel).parts
    return bool(parts) and not Path(rel).is_absolute() and ".." not in parts and not parts[0].startswith(STAGING_PREFIX)


class _Lock:
    """An exclusive lock on the output folder (flock on its descriptor; released by the kernel
    when the process dies, so a killed render never leaves it held)."""

    def __init__(self, out: Path) -> None:
        self.out, self.fd = out, None

    def __enter__(self) -> "_Lock":
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock, the rest still holds
            return self
        import time

        self.fd = os.open(self.out, os.O_RDONLY)
        deadline = time.monotonic() + LOCK_WAIT
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return self
            except BlockingIOError:
                if time.monotonic() > deadline:
                    os.close(self.fd)
                    raise RenderError(f"another harden render has been writing {self.out} for "
                                      f"{LOCK_WAIT:g}s; try again when it has finished") from None
                time.sleep(0.05)

    def __exit__(self, *_exc) -> None:
        if self.fd is not None:
            os.close(self.fd)


def _prune_empty_dirs(out: Path, start: Path) -> None:
    d = start
    while d != out and out in d.parents:
        try:
            d.rmdir()           # only when empty
        except OSError:
            return
        d = d.parent


def recover(out: Path) -> list[str]:
    """Finish what a killed render committed, remove what it did not. Returns what was done."""
    done = []
    for stage in sorted(out.glob(STAGING_PREFIX + "*")):
        if not stage.is_dir() or stage.is_symlink():
            continue
        journal = stage / JOURNAL
        if journal.is_file():
            ops = json.loads(journal.read_text(encoding="utf-8"))["ops"]
            for op in ops:
                _roll_forward(out, stage, op)
            done.append(f"finished the render interrupted in {stage.name}")
        else:
            done.append(f"removed {stage.name}, left by an interrupted render")
        shutil.rmtree(stage, ignore_errors=True)
    return done


def _roll_forward(out: Path, stage: Path, op: dict) -> None:
    rel = op["rel"]
    if not _safe_rel(rel):
        return
    src, dst = stage / "new" / rel, out / rel
    if op["op"] in ("replace", "move_dir") and src.exists():
        dst.parent.mkdir(parents=True, exist_ok=True)
        if op["op"] == "move_dir" and dst.exists():
            for f in sorted(p for p in src.rglob("*") if p.is_file()):
                target = dst / f.relative_to(src)
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(f, target)
        else:
            os.replace(src, dst)
    elif op["op"] == "delete" and dst.is_file() and _sha256(dst.read_bytes()) == op["sha256"]:
        dst.unlink()
        _prune_empty_dirs(out, dst.parent)


def _plan(out: Path, produced: dict[str, str], old: dict[str, str]) -> list[dict]:
    """The moves, in order, or RenderError before anything in `out` changes."""
    ops: list[dict] = []
    moved_dirs: set[str] = set()
    for rel in sorted(produced):
        path = out / rel
        missing_top = None
        for depth in range(1, len(Path(rel).parts)):
            ancestor = out.joinpath(*Path(rel).parts[:depth])
            if ancestor.is_symlink() and not ancestor.is_dir():
                raise RenderError(f"{ancestor} is a broken link where harden writes a directory")
            if not ancestor.exists():
                missing_top = Path(rel).parts[:depth]
                break
            if not ancestor.is_dir():
                raise RenderError(f"{ancestor} is a file where harden writes a directory; move it away")
        if missing_top is not None:
            top = Path(*missing_top).as_posix()
            if top not in moved_dirs:
                moved_dirs.add(top)
                ops.append({"op": "move_dir", "rel": top})
            continue
        if path.is_dir():
            raise RenderError(f"{path} is a directory where harden writes a file; move it away")
        ops.append({"op": "replace", "rel": rel})
    for rel, digest in sorted(old.items()):
        path = out / rel
        if rel in produced or not _safe_rel(rel) or not path.is_file() or path.is_symlink():
            continue
        if _sha256(path.read_bytes()) == digest:   # edited since harden wrote it: the user's now
            ops.append({"op": "delete", "rel": rel, "sha256": digest})
    return ops


def render_tree(files: list[RenderedFile], out: Path, fmt: bool = True) -> list[Path]:
    if out.exists() and not out.is_dir():
        raise RenderError(f"{out} is a file, not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RenderError(f"cannot create {out}: {exc.strerror or exc}") from None
    with _Lock(out):
        recover(out)
        old = _read_manifest(out)
        try:
            stage = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=out))
        except OSError as exc:
            raise RenderError(f"cannot write into {out}: {exc.strerror or exc}; nothing was changed") from None
        try:
            ops, produced = _stage(files, out, stage, old, fmt)
        except BaseException as exc:
            shutil.rmtree(stage, ignore_errors=True)
            if isinstance(exc, OSError):
                raise RenderError(f"cannot write the new rendering beside {out}: {exc.strerror or exc}; "
                                  "nothing was changed") from None
            raise
        done: list[dict] = []
        try:
            for op in ops:
                _apply(out, stage, op)
                done.append(op)
        except OSError as exc:
            _roll_back(out, stage, done)
            shutil.rmtree(stage, ignore_errors=True)
            raise RenderError(f"cannot move the new rendering into {out}: {exc.strerror or exc}; "
                              "the previous files were put back") from None
        shutil.rmtree(stage, ignore_errors=True)
    return [out / rel for rel in sorted(produced) if rel != MANIFEST]


def _stage(files: list[RenderedFile], out: Path, stage: Path, old: dict[str, str],
           fmt: bool) -> tuple[list[dict], dict[str, str]]:
    new = stage / "new"
    for f in files:
        _write_file(new / f.path, f.content.encode("utf-8"))
    if fmt:
        from provisioner.terraform import fmt_tree

        fmt_tree(new)
    produced = {f.path.as_posix(): _sha256((new / f.path).read_bytes()) for f in files}
    manifest = json.dumps({"harden_version": __version__, "files": produced}, indent=1, sort_keys=True) + "\n"
    _write_file(new / MANIFEST, manifest.encode("utf-8"))
    ops = _plan(out, produced, old)
    ops = [op for op in ops if op.get("rel") != MANIFEST] + [{"op": "replace", "rel": MANIFEST}]
    # Keep the previous files (hard links: no copy, no space) so a failed move can put them back.
    for op in ops:
        target = out / op["rel"]
        if op["op"] in ("replace", "delete") and target.is_file():
            backup = stage / "old" / op["rel"]
            backup.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(target, backup)
            except OSError:
                shutil.copy2(target, backup)
    journal = stage / (JOURNAL + ".tmp")
    _write_file(journal, json.dumps({"ops": ops}).encode("utf-8"))
    os.replace(journal, stage / JOURNAL)   # the commit point
    return ops, {**produced, MANIFEST: ""}


def _apply(out: Path, stage: Path, op: dict) -> None:
    src, dst = stage / "new" / op["rel"], out / op["rel"]
    if op["op"] == "delete":
        dst.unlink()
        _prune_empty_dirs(out, dst.parent)
    else:
        os.replace(src, dst)


def _roll_back(out: Path, stage: Path, done: list[dict]) -> None:
    for op in reversed(done):
        dst, backup = out / op["rel"], stage / "old" / op["rel"]
        try:
            if op["op"] == "move_dir":
                os.replace(dst, stage / "new" / op["rel"])
            elif backup.exists():
                dst.parent.mkdir(parents=True, exist_ok=True)
                os.replace(backup, dst)
            elif op["op"] == "replace":
                dst.unlink()
        except OSError:
            continue
