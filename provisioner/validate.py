"""Offline validation of Terraform modules against the hashicorp/aws provider schema.

`terraform validate` needs the provider plugin, which cannot be downloaded here. This module
does the part of its work that matters for the rendered modules, from the provider's own schema
(extracted once by `tools/extract_schema.py` into `tests/data/aws_provider_schema.json`, in the
layout of `terraform providers schema -json`, so a real schema dump can be used instead):

* arguments and blocks of every `resource` / `data` block: unknown names, missing required
  ones, a block written as an argument or the reverse, computed-only attributes being set,
  nested block counts, literals of the wrong type (expressions are never guessed at);
* references: to resources, data sources, variables, locals and modules that the module does
  not declare; to attributes a resource or data source does not have, through instance keys
  (`[0]`, `[each.key]`, `[*]`) and nested blocks where the path is static; `module.X.Y` outputs
  that a local module source does not declare; `each`/`count` outside for_each/count;
* declarations: variables need `type` and `description`, outputs a `description`; module
  calls are checked against the child's variables when the source is a local path;
* the project's conventions (templates/CONVENTIONS.md): in a module that takes `var.region`,
  every regional resource and data source sets `region`; in a module that takes `var.tags`,
  every taggable resource sets `tags`.

HCL is parsed with python-hcl2's Lark grammar (its raw parse tree keeps a line for every
token); the schema is loaded once per file and cached.

    problems = validate_tree(Path("terraform"))
    for p in problems:
        print(p)            # modules/cloudtrail/main.tf:12: aws_cloudtrail.this: ...
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from lark import Token, Tree
from lark.exceptions import LarkError, UnexpectedInput

from hcl2.api import parses_to_tree

__all__ = ["Problem", "ProviderSchema", "load_schema", "validate_tree", "DEFAULT_SCHEMA"]

DEFAULT_SCHEMA = Path(__file__).resolve().parents[1] / "tests" / "data" / "aws_provider_schema.json"
PROVIDER_ADDRESS = "registry.terraform.io/hashicorp/aws"


@dataclass(frozen=True, order=True)
class Problem:
    file: str  # relative to the validated root, with forward slashes
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


# ---------------------------------------------------------------------------------------------
# schema
# ---------------------------------------------------------------------------------------------

# Terraform's built-in resource, usable without any provider.
_BUILTIN_RESOURCES = {
    "terraform_data": {"block": {"attributes": {
        "id": {"type": "string", "computed": True},
        "input": {"type": "dynamic", "optional": True},
        "output": {"type": "dynamic", "computed": True},
        "triggers_replace": {"type": "dynamic", "optional": True},
    }}},
}


@dataclass
class ProviderSchema:
    path: Path
    version: str | None
    resources: dict[str, dict]  # type -> block schema
    data_sources: dict[str, dict]
    not_in_provider: dict[str, set[str]]  # "resource" / "data" -> names the provider lacks

    def block(self, kind: str, tf_type: str) -> dict | None:
        table = self.resources if kind == "resource" else self.data_sources
        entry = table.get(tf_type)
        return entry["block"] if entry else None

    @property
    def label(self) -> str:
        return f"hashicorp/aws {self.version}" if self.version else "hashicorp/aws"


_SCHEMA_CACHE: dict[tuple[str, int, int], ProviderSchema] = {}


def load_schema(path: Path | str | None = None) -> ProviderSchema:
    """Load (once per file version) the schema written by tools/extract_schema.py.

    A `terraform providers schema -json` dump works too (it carries no version).
    """
    p = Path(path) if path is not None else DEFAULT_SCHEMA
    try:
        st = p.stat()
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{p}: no provider schema; run `make schema` (tools/extract_schema.py)") from None
    key = (str(p.resolve()), st.st_mtime_ns, st.st_size)
    cached = _SCHEMA_CACHE.get(key)
    if cached is not None:
        return cached
    doc = json.loads(p.read_text(encoding="utf-8"))
    schemas = doc.get("provider_schemas", {})
    provider = schemas.get(PROVIDER_ADDRESS)
    if provider is None:
        aws = [k for k in schemas if k.endswith("/hashicorp/aws")]
        if len(aws) != 1:
            raise ValueError(f"{p}: no {PROVIDER_ADDRESS} in provider_schemas")
        provider = schemas[aws[0]]
    absent = doc.get("not_in_provider", {})
    schema = ProviderSchema(
        path=p,
        version=doc.get("provider_version"),
        resources={**_BUILTIN_RESOURCES, **provider.get("resource_schemas", {})},
        data_sources=dict(provider.get("data_source_schemas", {})),
        not_in_provider={"resource": set(absent.get("resources", [])),
                         "data": set(absent.get("data_sources", []))},
    )
    _SCHEMA_CACHE[key] = schema
    return schema


# ---------------------------------------------------------------------------------------------
# HCL -> a small syntax model with lines
# ---------------------------------------------------------------------------------------------


@dataclass
class Attr:
    name: str
    line: int
    expr: Any  # lark Tree
    file: str


@dataclass
class Block:
    type: str
    labels: list[str]
    line: int
    body: "Body"
    file: str


@dataclass
class Body:
    attrs: list[Attr] = field(default_factory=list)
    blocks: list[Block] = field(default_factory=list)

    def attr(self, name: str) -> Attr | None:
        for a in self.attrs:
            if a.name == name:
                return a
        return None

    def blocks_of(self, type_: str) -> list[Block]:
        return [b for b in self.blocks if b.type == type_]


def _is_nl(node: Any) -> bool:
    return isinstance(node, Tree) and node.data == "new_line_or_comment"


def _line(node: Any) -> int:
    if isinstance(node, Token):
        return node.line or 0
    meta = getattr(node, "meta", None)
    if meta is not None and not meta.empty:
        return meta.line
    for child in node.children:
        line = _line(child)
        if line:
            return line
    return 0


def _name(node: Tree) -> str:
    # identifier / keyword / literal_value: one token
    return str(node.children[0])


def _string_text(node: Tree) -> str | None:
    """The value of a quoted string without interpolation, else None."""
    parts = []
    for child in node.children:
        if isinstance(child, Token):
            continue  # the quotes
        if child.data != "string_part":
            return None
        inner = child.children[0]
        if isinstance(inner, Token):
            parts.append(str(inner))
        else:
            return None
    return "".join(parts)


def _label(node: Tree) -> str:
    if node.data == "string":
        return _string_text(node) or ""
    return _name(node)


def _body(tree: Tree, file: str) -> Body:
    body = Body()
    for child in tree.children:
        if not isinstance(child, Tree):
            continue
        if child.data == "attribute":
            name_node = child.children[0]
            body.attrs.append(Attr(_name(name_node), _line(name_node), child.children[-1], file))
        elif child.data == "block":
            parts = [c for c in child.children if isinstance(c, Tree) and not _is_nl(c)]
            head, inner = parts[:-1], parts[-1]
            body.blocks.append(Block(_name(head[0]), [_label(h) for h in head[1:]],
                                     _line(head[0]), _body(inner, file), file))
    return body


def parse_hcl(text: str, file: str = "<string>") -> Body:
    """Parse HCL into the syntax model; raises HclSyntaxError with a line."""
    try:
        tree = parses_to_tree(text)
    except UnexpectedInput as exc:
        raise HclSyntaxError(file, exc.line or 0, _first_line(str(exc))) from None
    except LarkError as exc:
        raise HclSyntaxError(file, 0, _first_line(str(exc))) from None
    return _body(tree.children[0], file)


class HclSyntaxError(Exception):
    def __init__(self, file: str, line: int, message: str):
        super().__init__(f"{file}:{line}: {message}")
        self.file, self.line, self.message = file, line, message


def _first_line(text: str) -> str:
    return text.strip().split("\n", 1)[0]


# ---------------------------------------------------------------------------------------------
# expressions: literals and references
# ---------------------------------------------------------------------------------------------

_CHAIN = {"get_attr_expr_term", "index_expr_term", "attr_splat_expr_term", "full_splat_expr_term"}


def _strip(node: Any) -> Any:
    """Unwrap expr_term wrappers and parentheses."""
    while isinstance(node, Tree) and node.data == "expr_term":
        kids = [c for c in node.children if not _is_nl(c)]
        if len(kids) == 1:
            node = kids[0]
        elif (len(kids) == 3 and isinstance(kids[0], Token) and kids[0].type == "LPAR"):
            node = kids[1]
        else:
            break
    return node


@dataclass
class Lit:
    kind: str  # string number bool null tuple object template
    value: Any = None
    items: list = field(default_factory=list)  # tuple: [expr]; object: [(key or None, expr)]


_HEREDOC_INTERP = re.compile(r"(?<!\$)\$\{|(?<!%)%\{")


def literal(node: Any) -> Lit | None:
    """What a literal expression is; None for anything that needs evaluating."""
    e = _strip(node)
    if not isinstance(e, Tree):
        return None
    d = e.data
    if d == "string":
        text = _string_text(e)
        if text is not None:
            return Lit("string", text)
        parts = [c for c in e.children if isinstance(c, Tree)]
        if len(parts) == 1 and not isinstance(parts[0].children[0], Token) \
                and parts[0].children[0].data == "interpolation":
            return None  # "${x}" is x itself
        return Lit("template")
    if d in ("heredoc_template", "heredoc_template_trim"):
        text = str(e.children[0])
        return Lit("template") if _HEREDOC_INTERP.search(text) else Lit("string", text)
    if d == "template_string":
        return Lit("string", str(e.children[0]))
    if d in ("int_lit", "float_lit"):
        return Lit("number", str(e.children[0]))
    if d == "literal_value":
        v = str(e.children[0])
        return Lit("null") if v == "null" else Lit("bool", v == "true")
    if d == "unary_op":
        op, operand = e.children[0], e.children[1]
        inner = literal(operand)
        if inner and inner.kind == "number" and str(op) == "-":
            return Lit("number", "-" + inner.value)
        if inner and inner.kind == "bool" and str(op) == "!":
            return Lit("bool", not inner.value)
        return None
    if d == "tuple":
        return Lit("tuple", items=[c for c in e.children if isinstance(c, Tree) and not _is_nl(c)])
    if d == "object":
        items = []
        for elem in e.children:
            if isinstance(elem, Tree) and elem.data == "object_elem":
                key_node = elem.children[0]
                key = _object_key(key_node)
                items.append((key, elem.children[-1]))
        return Lit("object", items=items)
    return None


def _object_key(key_node: Tree) -> str | None:
    """A literal object key (bare identifier, keyword or quoted string), else None."""
    inner = key_node.children[0]
    if isinstance(inner, Tree) and inner.data == "keyword":
        return _name(inner)
    inner = _strip(inner)
    if isinstance(inner, Tree):
        if inner.data == "identifier":
            return _name(inner)
        if inner.data == "string":
            return _string_text(inner)
    return None


@dataclass
class Ref:
    root: str
    steps: list[tuple]  # ("attr", name) | ("index", expr or None) | ("splat",)
    line: int

    def text(self, upto: int | None = None) -> str:
        out = self.root
        for step in self.steps[:upto]:
            if step[0] == "attr":
                out += "." + step[1]
            elif step[0] == "splat":
                out += "[*]"
            else:
                out += "[" + _short_text(step[1]) + "]"
        return out


def _short_text(node: Any) -> str:
    lit = literal(node) if node is not None else None
    if lit is not None and lit.kind == "number":
        return lit.value
    if lit is not None and lit.kind == "string":
        return json.dumps(lit.value)
    e = _strip(node) if node is not None else None
    if isinstance(e, Tree) and (e.data in _CHAIN or e.data == "identifier"):
        base, ops = _flatten(e)
        if isinstance(base, Tree) and base.data == "identifier":
            return Ref(_name(base), ops, 0).text()
    return "..."


def _flatten(node: Tree) -> tuple[Any, list[tuple]]:
    """A traversal chain -> (base node, steps)."""
    ops_rev = []
    while isinstance(node, Tree) and node.data in _CHAIN:
        ops_rev.append(node.children[1])
        node = _strip(node.children[0])
    steps: list[tuple] = []
    for op in reversed(ops_rev):
        steps.extend(_steps_of(op))
    return node, steps


def _steps_of(op: Tree) -> list[tuple]:
    d = op.data
    if d == "get_attr":
        return [("attr", _name(op.children[-1]))]
    if d == "braces_index":
        expr = [c for c in op.children if isinstance(c, Tree) and not _is_nl(c)][0]
        return [("index", expr)]
    if d == "short_index":
        return [("index", None)]
    if d in ("attr_splat", "full_splat"):
        out: list[tuple] = [("splat",)]
        for sub in op.children:
            if isinstance(sub, Tree):
                out.extend(_steps_of(sub))
        return out
    return []


def references(node: Any, bound: frozenset[str] = frozenset()) -> list[Ref]:
    """Every variable reference in an expression (function names, object keys, names bound by
    for-expressions and template for-directives excluded)."""
    out: list[Ref] = []
    _walk(node, bound, out)
    return out


def _walk(node: Any, bound: frozenset[str], out: list[Ref]) -> None:
    if not isinstance(node, Tree):
        return
    d = node.data
    if d == "identifier":
        name = _name(node)
        if name not in bound:
            out.append(Ref(name, [], _line(node)))
        return
    if d in _CHAIN:
        base, steps = _flatten(node)
        if isinstance(base, Tree) and base.data == "identifier":
            name = _name(base)
            if name not in bound:
                out.append(Ref(name, steps, _line(base)))
        else:
            _walk(base, bound, out)
        for step in steps:
            if step[0] == "index" and step[1] is not None:
                _walk(step[1], bound, out)
        return
    if d == "function_call":
        for child in node.children:
            if isinstance(child, Tree) and child.data == "arguments":
                _walk(child, bound, out)
        return
    if d in ("for_tuple_expr", "for_object_expr"):
        intro = next(c for c in node.children if isinstance(c, Tree) and c.data == "for_intro")
        names, collection = set(), None
        seen_in = False
        for child in intro.children:
            if isinstance(child, Token) and child.type == "IN":
                seen_in = True
            elif isinstance(child, Tree) and not _is_nl(child):
                if not seen_in and child.data == "identifier":
                    names.add(_name(child))
                elif seen_in:
                    collection = child
        _walk(collection, bound, out)
        inner = bound | names
        for child in node.children:
            if child is not intro:
                _walk(child, inner, out)
        return
    if d == "object_elem":
        key_node = node.children[0]
        if _object_key(key_node) is None:
            _walk(key_node, bound, out)
        _walk(node.children[-1], bound, out)
        return
    if d == "string":
        names = set()
        for part in node.children:
            if isinstance(part, Tree) and part.children and isinstance(part.children[0], Tree) \
                    and part.children[0].data == "template_for_start":
                for_node = part.children[0]
                for child in for_node.children:
                    if isinstance(child, Token) and child.type == "IN":
                        break
                    if isinstance(child, Tree) and child.data == "identifier":
                        names.add(_name(child))
        inner = bound | names
        for part in node.children:
            if isinstance(part, Tree):
                for child in part.children:
                    if isinstance(child, Tree) and child.data == "template_for_start":
                        # the collection is the expression child; identifiers before IN are bound
                        exprs = [c for c in child.children if isinstance(c, Tree)
                                 and c.data != "identifier"]
                        for e in exprs:
                            _walk(e, bound, out)
                    else:
                        _walk(child, inner, out)
        return
    if d in ("heredoc_template", "heredoc_template_trim"):
        _walk_heredoc(node, bound, out)
        return
    for child in node.children:
        _walk(child, bound, out)


_HEREDOC_FOR = re.compile(r"^~?\s*for\s+(\w+)\s*(?:,\s*(\w+)\s*)?in\s+(.*?)\s*~?$", re.S)
_HEREDOC_IF = re.compile(r"^~?\s*if\s+(.*?)\s*~?$", re.S)


def _walk_heredoc(node: Tree, bound: frozenset[str], out: list[Ref]) -> None:
    """References inside a heredoc: the grammar keeps its body as one token, so each
    interpolation and directive is parsed on its own (with the right line)."""
    token = node.children[0]
    text = str(token)
    base_line = token.line or 0
    pieces: list[tuple[str, str, int]] = []  # (kind, source, line)
    i = 0
    while True:
        m = _HEREDOC_INTERP.search(text, i)
        if not m:
            break
        start = m.end()
        depth, j = 1, start
        while j < len(text) and depth:
            if text[j] == "{":
                depth += 1
            elif text[j] == "}":
                depth -= 1
            j += 1
        inner = text[start:j - 1]
        i = j
        line = base_line + text.count("\n", 0, m.start())
        pieces.append(("$" if m.group(0).startswith("$") else "%", inner, line))
    names: set[str] = set()
    for kind, inner, _ in pieces:
        fm = _HEREDOC_FOR.match(inner.strip()) if kind == "%" else None
        if fm:
            names.update(n for n in fm.group(1, 2) if n)
    inner_bound = bound | names
    for kind, inner, line in pieces:
        expr, scope = inner.strip().strip("~").strip(), inner_bound
        if kind == "%":
            fm, im = _HEREDOC_FOR.match(inner.strip()), _HEREDOC_IF.match(inner.strip())
            if fm:
                expr, scope = fm.group(3), bound
            elif im:
                expr = im.group(1)
            else:
                continue  # else / endif / endfor
        if not expr:
            continue
        try:
            tree = parses_to_tree("\n" * max(line - 1, 0) + "x = (" + expr + ")\n")
        except LarkError:
            continue
        for child in tree.children[0].children:
            if isinstance(child, Tree) and child.data == "attribute":
                _walk(child.children[-1], scope, out)


# ---------------------------------------------------------------------------------------------
# types
# ---------------------------------------------------------------------------------------------


def _type_name(ty: Any) -> str:
    if isinstance(ty, str):
        return ty
    if ty[0] in ("list", "set", "map"):
        return f"{ty[0]}({_type_name(ty[1])})"
    if ty[0] == "object":
        return "object"
    if ty[0] == "tuple":
        return "tuple"
    return str(ty)


def _lit_name(lit: Lit) -> str:
    if lit.kind == "string":
        v = lit.value if len(lit.value) <= 40 else lit.value[:37] + "..."
        return f"string {json.dumps(v)}"
    if lit.kind == "number":
        return f"number {lit.value}"
    if lit.kind == "bool":
        return f"bool {'true' if lit.value else 'false'}"
    if lit.kind == "tuple":
        return "a list literal"
    if lit.kind == "object":
        return "an object literal"
    if lit.kind == "template":
        return "a string template"
    return lit.kind


def attr_type(spec: dict) -> Any:
    """An attribute's type; framework nested attributes (`nested_type`, in real schema dumps)
    become the equivalent object type."""
    if "type" in spec:
        return spec["type"]
    nested = spec.get("nested_type")
    if not nested:
        return "dynamic"
    obj = ["object", {k: attr_type(v) for k, v in nested.get("attributes", {}).items()}]
    mode = nested.get("nesting_mode", "single")
    return obj if mode == "single" else [mode, obj]


_NUMBER_RE = re.compile(r"^-?\d+(\.\d+)?([eE][+-]?\d+)?$")


def literal_type_errors(node: Any, ty: Any) -> list[tuple[int, str]]:
    """(line, problem) for a literal that cannot convert to `ty`; [] when fine or not literal."""
    lit = literal(node)
    if lit is None or lit.kind == "null" or ty in ("dynamic", None):
        return []
    line = _line(node)
    want = _type_name(ty)
    bad = [(line, f"expects {want}, got {_lit_name(lit)}")]
    if ty == "string":
        return bad if lit.kind in ("tuple", "object") else []
    if ty == "number":
        if lit.kind == "string":
            return [] if _NUMBER_RE.match(lit.value.strip()) else bad
        return bad if lit.kind in ("bool", "tuple", "object") else []
    if ty == "bool":
        if lit.kind == "string":
            return [] if lit.value in ("true", "false") else bad
        return bad if lit.kind in ("number", "tuple", "object") else []
    if isinstance(ty, list):
        kind = ty[0]
        if kind in ("list", "set"):
            if lit.kind != "tuple":
                return bad
            errs: list[tuple[int, str]] = []
            for item in lit.items:
                errs += [(ln, f"element {msg}") for ln, msg in literal_type_errors(item, ty[1])]
            return errs
        if kind == "map":
            if lit.kind != "object":
                return bad
            errs = []
            for key, value in lit.items:
                errs += [(ln, f"[{json.dumps(key) if key else '...'}] {msg}")
                         for ln, msg in literal_type_errors(value, ty[1])]
            return errs
        if kind == "object":
            if lit.kind != "object":
                return bad
            errs = []
            fields = ty[1]
            for key, value in lit.items:
                if key is not None and key in fields:
                    errs += [(ln, f".{key} {msg}")
                             for ln, msg in literal_type_errors(value, fields[key])]
            return errs
        if kind == "tuple":
            return bad if lit.kind != "tuple" else []
    return []


_PRIMITIVE_TYPES = {"string": "string", "number": "number", "bool": "bool", "any": "dynamic"}


def type_constraint(node: Any) -> Any:
    """A variable's `type = ...` expression -> the JSON type notation ("dynamic" if unsure)."""
    e = _strip(node)
    if not isinstance(e, Tree):
        return "dynamic"
    if e.data == "identifier":
        return _PRIMITIVE_TYPES.get(_name(e), "dynamic")
    if e.data == "function_call":
        fname = _name(e.children[0])
        args = [c for c in e.children if isinstance(c, Tree) and c.data == "arguments"]
        exprs = ([c for c in args[0].children if isinstance(c, Tree) and not _is_nl(c)]
                 if args else [])
        if fname in ("list", "set", "map") and len(exprs) == 1:
            return [fname, type_constraint(exprs[0])]
        if fname == "object" and len(exprs) == 1:
            lit = literal(exprs[0])
            if lit and lit.kind == "object":
                return ["object", {k: type_constraint(v) for k, v in lit.items if k}]
        if fname == "tuple":
            return ["tuple", []]
        if fname == "optional" and exprs:
            return type_constraint(exprs[0])
    return "dynamic"


# ---------------------------------------------------------------------------------------------
# modules
# ---------------------------------------------------------------------------------------------

_RESOURCE_META_ATTRS = {"count", "for_each", "depends_on", "provider"}
_RESOURCE_META_BLOCKS = {"lifecycle", "provisioner", "connection"}
_DATA_META_BLOCKS = {"lifecycle"}
_LIFECYCLE_ATTRS = {"create_before_destroy", "prevent_destroy", "ignore_changes",
                    "replace_triggered_by"}
_LIFECYCLE_BLOCKS = {"precondition", "postcondition"}
_VARIABLE_ATTRS = {"type", "description", "default", "sensitive", "nullable", "ephemeral"}
_OUTPUT_ATTRS = {"value", "description", "sensitive", "depends_on", "ephemeral"}
_TOP_LEVEL = {"terraform", "provider", "variable", "locals", "output", "module", "resource",
              "data", "moved", "import", "removed", "check", "ephemeral"}
_PATH_ATTRS = {"module", "root", "cwd"}
_TERRAFORM_ATTRS = {"workspace", "applying"}


@dataclass
class ModuleInterface:
    """What a caller can see of a module: its variables and outputs."""

    variables: dict[str, Block]
    outputs: dict[str, Block]


@dataclass
class Module:
    dir: Path
    bodies: dict[str, Body]  # file (relative to the validated root) -> body
    problems: list[Problem]
    variables: dict[str, Block] = field(default_factory=dict)
    locals: dict[str, Attr] = field(default_factory=dict)
    outputs: dict[str, Block] = field(default_factory=dict)
    resources: dict[tuple[str, str], Block] = field(default_factory=dict)
    data: dict[tuple[str, str], Block] = field(default_factory=dict)
    calls: dict[str, Block] = field(default_factory=dict)

    @property
    def interface(self) -> ModuleInterface:
        return ModuleInterface(self.variables, self.outputs)


@dataclass
class Ctx:
    """Where an expression sits: what `each`, `count`, iterators and `self` mean there."""

    file: str
    each: bool = False
    count: bool = False
    self_ok: bool = False
    bound: frozenset[str] = frozenset()
    label: str = ""

    def with_bound(self, *names: str) -> "Ctx":
        return Ctx(self.file, self.each, self.count, self.self_ok, self.bound | set(names),
                   self.label)


def _suggest(name: str, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, sorted(options), n=1, cutoff=0.7)
    return f' (did you mean "{close[0]}"?)' if close else ""


class Validator:
    def __init__(self, root: Path, schema: ProviderSchema):
        self.root = root
        self.schema = schema
        self._modules: dict[Path, Module] = {}

    # --- loading ---------------------------------------------------------------------------

    def rel(self, path: Path) -> str:
        try:
            return path.resolve().relative_to(self.root.resolve()).as_posix()
        except ValueError:
            return path.resolve().as_posix()

    def module(self, directory: Path) -> Module:
        key = directory.resolve()
        mod = self._modules.get(key)
        if mod is None:
            mod = self._load(directory)
            self._modules[key] = mod
        return mod

    def _load(self, directory: Path) -> Module:
        bodies: dict[str, Body] = {}
        problems: list[Problem] = []
        for path in sorted(directory.glob("*.tf")):
            rel = self.rel(path)
            try:
                bodies[rel] = parse_hcl(path.read_text(encoding="utf-8"), rel)
            except HclSyntaxError as exc:
                problems.append(Problem(rel, exc.line, f"HCL syntax error: {exc.message}"))
            except UnicodeDecodeError as exc:
                problems.append(Problem(rel, 0, f"not UTF-8: {exc}"))
        mod = Module(directory, bodies, problems)
        for rel, body in bodies.items():
            for block in body.blocks:
                self._declare(mod, block)
            for attr in body.attrs:
                problems.append(Problem(rel, attr.line, f'unexpected argument "{attr.name}" at '
                                        "the top level of a module"))
        return mod

    def _declare(self, mod: Module, block: Block) -> None:
        def dup(kind: str, name: str, first: Block | Attr) -> None:
            mod.problems.append(Problem(block.file, block.line,
                                        f"duplicate {kind} {name} (first declared at "
                                        f"{first.file}:{first.line})"))

        t, labels = block.type, block.labels
        want = {"variable": 1, "output": 1, "module": 1, "resource": 2, "data": 2,
                "provider": 1, "locals": 0, "terraform": 0}.get(t)
        if want is not None and len(labels) != want:
            mod.problems.append(Problem(block.file, block.line,
                                        f"{t} block takes {want} label(s), has {len(labels)}"))
            return
        if t == "variable":
            if labels[0] in mod.variables:
                dup("variable", labels[0], mod.variables[labels[0]])
            mod.variables.setdefault(labels[0], block)
        elif t == "output":
            if labels[0] in mod.outputs:
                dup("output", labels[0], mod.outputs[labels[0]])
            mod.outputs.setdefault(labels[0], block)
        elif t == "module":
            if labels[0] in mod.calls:
                dup("module", labels[0], mod.calls[labels[0]])
            mod.calls.setdefault(labels[0], block)
        elif t == "resource":
            key = (labels[0], labels[1])
            if key in mod.resources:
                dup("resource", ".".join(key), mod.resources[key])
            mod.resources.setdefault(key, block)
        elif t == "data":
            key = (labels[0], labels[1])
            if key in mod.data:
                dup("data source", "data." + ".".join(key), mod.data[key])
            mod.data.setdefault(key, block)
        elif t == "locals":
            for attr in block.body.attrs:
                if attr.name in mod.locals:
                    first = mod.locals[attr.name]
                    mod.problems.append(Problem(attr.file, attr.line,
                                                f"duplicate local value {attr.name} (first "
                                                f"declared at {first.file}:{first.line})"))
                mod.locals.setdefault(attr.name, attr)
        elif t not in _TOP_LEVEL:
            mod.problems.append(Problem(block.file, block.line,
                                        f'unknown top-level block "{t}"'))

    # --- module checks ---------------------------------------------------------------------

    def check_module(self, directory: Path) -> list[Problem]:
        mod = self.module(directory)
        self.mod = mod
        self.out: list[Problem] = list(mod.problems)
        for rel, body in mod.bodies.items():
            for block in body.blocks:
                t = block.type
                if t == "resource" and len(block.labels) == 2:
                    self.check_resource(block, "resource")
                elif t == "data" and len(block.labels) == 2:
                    self.check_resource(block, "data")
                elif t == "variable" and block.labels:
                    self.check_variable(block)
                elif t == "output" and block.labels:
                    self.check_output(block)
                elif t == "module" and block.labels:
                    self.check_call(block)
                elif t == "locals":
                    for attr in block.body.attrs:
                        self.check_expr(attr.expr, Ctx(attr.file, label=f"local.{attr.name}"))
                elif t == "provider":
                    self.check_refs_in_body(block.body, Ctx(block.file))
                elif t == "import":
                    self.check_import(block)
        return self.out

    def problem(self, file: str, line: int, message: str) -> None:
        self.out.append(Problem(file, line, message))

    # --- import blocks (harden writes them for resources remediate made) --------------------

    _IMPORT_ATTRS = {"to", "id", "identity", "for_each", "provider"}

    def check_import(self, block: Block) -> None:
        """`to` names a resource instance this configuration declares: every module on the way
        exists and is indexed as its count/for_each says, the resource exists in the last one and
        is indexed the same way, and its type is in the provider schema; `id` is a string.
        https://developer.hashicorp.com/terraform/language/import"""
        file, body = block.file, block.body
        for attr in body.attrs:
            if attr.name not in self._IMPORT_ATTRS:
                self.problem(file, attr.line, f'import: unexpected argument "{attr.name}"')
        to, import_id = body.attr("to"), body.attr("id")
        if import_id is None and body.attr("identity") is None:
            self.problem(file, block.line, "import: needs an id (or an identity)")
        elif import_id is not None:
            lit = literal(import_id.expr)
            if lit is not None and lit.kind != "string":
                self.problem(file, import_id.line, f"import: id must be a string, got a {lit.kind}")
        if to is None:
            self.problem(file, block.line, "import: needs a to address")
            return
        refs = references(to.expr)
        if len(refs) != 1:
            self.problem(file, to.line, "import: to must be one resource instance address")
            return
        ref = refs[0]
        names = [ref.root] + [s[1] for s in ref.steps if s[0] == "attr"]
        indexes = [None] * len(names)
        position = 0
        for step in ref.steps:
            if step[0] == "attr":
                position += 1
            elif step[0] == "index":
                indexes[position] = step[1]
            else:
                self.problem(file, to.line, f"import: {ref.text()}: a splat is not an instance address")
                return
        module, where = self.mod, ""
        while len(names) >= 2 and names[0] == "module":
            call = module.calls.get(names[1])
            if call is None:
                self.problem(file, to.line, f"import: {ref.text()}: no module {names[1]} in {where or 'this root'}")
                return
            if not self._index_fits(file, to.line, ref, f"module.{names[1]}", call.body, indexes[1]):
                return
            src = literal(call.body.attr("source").expr) if call.body.attr("source") else None
            if src is None or src.kind != "string" or not src.value.startswith(("./", "../")):
                return  # a registry module: its resources are not here to check
            module = self.module((module.dir / src.value).resolve())
            where = f"module.{names[1]}"
            names, indexes = names[2:], indexes[2:]
        if len(names) != 2:
            self.problem(file, to.line, f"import: {ref.text()}: not a resource address")
            return
        resource = module.resources.get((names[0], names[1]))
        if resource is None:
            self.problem(file, to.line, f"import: {ref.text()}: {where or 'this root'} declares no "
                         f"resource {names[0]}.{names[1]}{_suggest(names[1], {k[1]: 1 for k in module.resources if k[0] == names[0]})}")
            return
        if self.schema.block("resource", names[0]) is None:
            self.problem(file, to.line, f"import: {ref.text()}: {names[0]} is not a resource of {self.schema.label}")
        self._index_fits(file, to.line, ref, f"{names[0]}.{names[1]}", resource.body, indexes[1])

    def _index_fits(self, file: str, line: int, ref: Ref, what: str, body: Body, index: Any) -> bool:
        """An instance key as the block's count (a number) or for_each (a string) asks, or none."""
        wants = "for_each" if body.attr("for_each") else "count" if body.attr("count") else None
        lit = literal(index) if index is not None else None
        if wants is None and index is not None:
            self.problem(file, line, f"import: {ref.text()}: {what} has no count or for_each, so it takes no index")
        elif wants is not None and index is None:
            self.problem(file, line, f"import: {ref.text()}: {what} has {wants}: name an instance")
        elif wants == "for_each" and (lit is None or lit.kind != "string"):
            self.problem(file, line, f"import: {ref.text()}: {what} has for_each: the key must be a string")
        elif wants == "count" and (lit is None or lit.kind != "number"):
            self.problem(file, line, f"import: {ref.text()}: {what} has count: the index must be a number")
        else:
            return True
        return False

    # --- resources and data sources --------------------------------------------------------

    def check_resource(self, block: Block, kind: str) -> None:
        tf_type, name = block.labels
        addr = f"{tf_type}.{name}" if kind == "resource" else f"data.{tf_type}.{name}"
        body = block.body
        count, for_each = body.attr("count"), body.attr("for_each")
        if count and for_each:
            self.problem(block.file, for_each.line, f"{addr}: count and for_each are mutually "
                         "exclusive")
        ctx = Ctx(block.file, each=for_each is not None, count=count is not None, label=addr)
        # meta-arguments are evaluated before the instance exists
        meta_ctx = Ctx(block.file, label=addr)
        for meta in ("count", "for_each"):
            a = body.attr(meta)
            if a:
                self.check_expr(a.expr, meta_ctx)
        dep = body.attr("depends_on")
        if dep:
            self.check_expr(dep.expr, meta_ctx)
        schema = self.schema.block(kind, tf_type)
        if schema is None and (tf_type.startswith("aws_")):
            what = "resource type" if kind == "resource" else "data source"
            if tf_type in self.schema.not_in_provider[kind]:
                msg = f"{addr}: {tf_type} is not a {what} of {self.schema.label}"
            else:
                msg = (f"{addr}: unknown {what} {tf_type}: not in the {self.schema.label} schema "
                       f"({self.schema.path.name}); if it is real, re-run `make schema`")
            self.problem(block.file, block.line, msg)
        meta_blocks = _RESOURCE_META_BLOCKS if kind == "resource" else _DATA_META_BLOCKS
        for lc in body.blocks_of("lifecycle"):
            self.check_lifecycle(lc, schema, addr, ctx, kind)
        for b in body.blocks:
            if b.type in ("provisioner", "connection") and kind == "resource":
                self.check_refs_in_body(b.body, Ctx(b.file, ctx.each, ctx.count, True,
                                                    ctx.bound, addr))
        if schema is None:
            # no schema (another provider): still check references
            for a in body.attrs:
                if a.name not in ("count", "for_each", "depends_on", "provider"):
                    self.check_expr(a.expr, ctx)
            for b in body.blocks:
                if b.type not in meta_blocks:
                    self.check_refs_in_body(b.body, ctx)
            return
        self.check_body(body, schema, addr, ctx, block.line, top=kind)
        self.check_conventions(block, schema, addr)

    def check_lifecycle(self, lc: Block, schema: dict | None, addr: str, ctx: Ctx,
                        kind: str) -> None:
        allowed = _LIFECYCLE_ATTRS if kind == "resource" else set()
        for a in lc.body.attrs:
            if a.name not in allowed:
                self.problem(a.file, a.line, f'{addr}: unknown lifecycle argument "{a.name}"')
            elif a.name == "ignore_changes":
                lit = literal(a.expr)
                if lit is not None and lit.kind == "tuple" and schema is not None:
                    for item in lit.items:
                        for ref in references(item):
                            known = set(schema.get("attributes", {})) | set(
                                schema.get("block_types", {}))
                            if ref.root not in known:
                                self.problem(a.file, ref.line,
                                             f'{addr}: ignore_changes names "{ref.root}", which '
                                             f"{addr.split('.')[-2]} does not have"
                                             f"{_suggest(ref.root, known)}")
                elif lit is None:
                    refs = references(a.expr)
                    if not (len(refs) == 1 and refs[0].root == "all" and not refs[0].steps):
                        self.problem(a.file, a.line,
                                     f"{addr}: ignore_changes must be a list of attribute names "
                                     "or all")
            elif a.name == "replace_triggered_by":
                self.check_expr(a.expr, ctx)
            elif a.name in ("create_before_destroy", "prevent_destroy"):
                for ln, msg in literal_type_errors(a.expr, "bool"):
                    self.problem(a.file, ln, f"{addr}: lifecycle {a.name} {msg}")
        for b in lc.body.blocks:
            if b.type not in _LIFECYCLE_BLOCKS:
                self.problem(b.file, b.line, f'{addr}: unknown lifecycle block "{b.type}"')
                continue
            cond_ctx = Ctx(b.file, ctx.each, ctx.count, b.type == "postcondition", ctx.bound,
                           addr)
            self.check_condition_block(b, cond_ctx, addr)

    def check_condition_block(self, b: Block, ctx: Ctx, addr: str) -> None:
        for req in ("condition", "error_message"):
            if b.body.attr(req) is None:
                self.problem(b.file, b.line, f'{addr}: {b.type} block needs "{req}"')
        for a in b.body.attrs:
            if a.name not in ("condition", "error_message"):
                self.problem(a.file, a.line, f'{addr}: unknown {b.type} argument "{a.name}"')
            self.check_expr(a.expr, ctx)

    def check_body(self, body: Body, schema: dict, addr: str, ctx: Ctx, line: int,
                   top: str | None = None) -> None:
        """Arguments and nested blocks of `body` against a block schema; `line` is the line of
        the block that owns the body (where missing arguments are reported)."""
        attrs: dict[str, dict] = schema.get("attributes", {})
        block_types: dict[str, dict] = schema.get("block_types", {})
        meta_attrs = _RESOURCE_META_ATTRS if top else set()
        meta_blocks = (_RESOURCE_META_BLOCKS if top == "resource" else
                       _DATA_META_BLOCKS if top == "data" else set())
        names = set(attrs) | set(block_types)
        seen: set[str] = set()
        for a in body.attrs:
            if a.name in meta_attrs:
                continue
            if a.name in seen:
                self.problem(a.file, a.line, f'{addr}: argument "{a.name}" is set twice')
            seen.add(a.name)
            if a.name in attrs:
                spec = attrs[a.name]
                if spec.get("computed") and not spec.get("optional") and not spec.get("required"):
                    self.problem(a.file, a.line, f'{addr}: "{a.name}" is computed by the '
                                 "provider (read-only) and cannot be set")
                if spec.get("deprecated"):
                    self.problem(a.file, a.line, f'{addr}: "{a.name}" is deprecated in '
                                 f"{self.schema.label}")
                for ln, msg in literal_type_errors(a.expr, attr_type(spec)):
                    self.problem(a.file, ln, f'{addr}: "{a.name}" {msg}')
                if spec.get("required") and (literal(a.expr) or Lit("x")).kind == "null":
                    self.problem(a.file, a.line, f'{addr}: required argument "{a.name}" is null')
            elif a.name in block_types:
                if block_types[a.name].get("nesting_mode") != "single":
                    self.problem(a.file, a.line, f'{addr}: "{a.name}" is a block, not an '
                                 f"argument: write {a.name} {{ ... }}")
            else:
                self.problem(a.file, a.line, f'{addr}: unknown argument "{a.name}"'
                             f"{_suggest(a.name, names)}")
            self.check_expr(a.expr, ctx)
        counts: dict[str, int] = {}
        dynamic: set[str] = set()
        for b in body.blocks:
            if b.type in meta_blocks:
                continue
            if b.type == "dynamic":
                self.check_dynamic(b, block_types, attrs, addr, ctx, names)
                if b.labels:
                    dynamic.add(b.labels[0])
                continue
            if b.type in block_types:
                counts[b.type] = counts.get(b.type, 0) + 1
                bt = block_types[b.type]
                if b.labels:
                    self.problem(b.file, b.line, f'{addr}: block "{b.type}" takes no labels')
                if bt.get("block", {}).get("deprecated") and counts[b.type] == 1:
                    self.problem(b.file, b.line, f'{addr}: block "{b.type}" is deprecated in '
                                 f"{self.schema.label}")
                self.check_body(b.body, bt.get("block", {}), f"{addr}.{b.type}", ctx, b.line)
            elif b.type in attrs:
                self.problem(b.file, b.line, f'{addr}: "{b.type}" is an argument, not a block: '
                             f"write {b.type} = ...")
                seen.add(b.type)
                self.check_refs_in_body(b.body, ctx)
            else:
                self.problem(b.file, b.line, f'{addr}: unknown block "{b.type}"'
                             f"{_suggest(b.type, names)}")
                self.check_refs_in_body(b.body, ctx)
        for aname, spec in sorted(attrs.items()):
            if spec.get("required") and aname not in seen:
                self.problem(ctx.file, line, f'{addr}: missing required argument "{aname}"')
        for bname, bt in sorted(block_types.items()):
            if bname in dynamic:
                continue
            n = counts.get(bname, 0)
            lo = bt.get("min_items", 1 if bt.get("required") else 0)
            hi = bt.get("max_items", 1 if bt.get("nesting_mode") == "single" else None)
            if n < lo:
                what = "missing required block" if n == 0 else f"needs at least {lo} blocks"
                self.problem(ctx.file, line, f'{addr}: {what} "{bname}"')
            if hi is not None and n > hi:
                first = [b for b in body.blocks if b.type == bname][hi]
                self.problem(first.file, first.line, f'{addr}: at most {hi} "{bname}" '
                             f"block{'s' if hi > 1 else ''} allowed, found {n}")

    def check_dynamic(self, b: Block, block_types: dict, attrs: dict, addr: str, ctx: Ctx,
                      names: set[str]) -> None:
        if len(b.labels) != 1:
            self.problem(b.file, b.line, f"{addr}: dynamic block takes one label")
            return
        label = b.labels[0]
        fe = b.body.attr("for_each")
        if fe is None:
            self.problem(b.file, b.line, f'{addr}: dynamic "{label}" needs for_each')
        else:
            self.check_expr(fe.expr, ctx)
        iterator = label
        it = b.body.attr("iterator")
        if it is not None:
            refs = references(it.expr)
            if len(refs) == 1 and not refs[0].steps:
                iterator = refs[0].root
            else:
                self.problem(it.file, it.line, f'{addr}: dynamic "{label}" iterator must be a '
                             "bare name")
        for a in b.body.attrs:
            if a.name not in ("for_each", "iterator", "labels"):
                self.problem(a.file, a.line, f'{addr}: unknown argument "{a.name}" in dynamic '
                             f'"{label}" (arguments go in its content block)')
            elif a.name == "labels":
                self.check_expr(a.expr, ctx.with_bound(iterator))
        contents = b.body.blocks_of("content")
        for other in b.body.blocks:
            if other.type != "content":
                self.problem(other.file, other.line, f'{addr}: unknown block "{other.type}" in '
                             f'dynamic "{label}"')
        if len(contents) != 1:
            self.problem(b.file, b.line, f'{addr}: dynamic "{label}" needs exactly one content '
                         "block")
        inner_ctx = ctx.with_bound(iterator)
        if label in block_types:
            for c in contents:
                self.check_body(c.body, block_types[label].get("block", {}), f"{addr}.{label}",
                                inner_ctx, c.line)
        else:
            if label in attrs:
                self.problem(b.file, b.line, f'{addr}: "{label}" is an argument, not a block: '
                             "dynamic blocks only generate nested blocks")
            else:
                self.problem(b.file, b.line, f'{addr}: dynamic "{label}": unknown block '
                             f'"{label}"{_suggest(label, names)}')
            for c in contents:
                self.check_refs_in_body(c.body, inner_ctx)

    def check_conventions(self, block: Block, schema: dict, addr: str) -> None:
        attrs = schema.get("attributes", {})
        body = block.body
        if "region" in self.mod.variables and "region" in attrs and body.attr("region") is None:
            self.problem(block.file, block.line,
                         f'{addr}: sets no "region" although the module takes var.region '
                         "(convention: every regional resource sets region = var.region)")
        if (block.type == "resource" and "tags" in self.mod.variables and "tags" in attrs
                and attrs["tags"].get("optional") and body.attr("tags") is None):
            self.problem(block.file, block.line,
                         f'{addr}: sets no "tags" although the module takes var.tags '
                         "(convention: every taggable resource is tagged with var.tags)")

    # --- variables, outputs, module calls --------------------------------------------------

    def check_variable(self, block: Block) -> None:
        name = block.labels[0]
        body = block.body
        for req in ("type", "description"):
            if body.attr(req) is None:
                self.problem(block.file, block.line, f'variable "{name}" has no {req}')
        for a in body.attrs:
            if a.name not in _VARIABLE_ATTRS:
                self.problem(a.file, a.line, f'variable "{name}": unknown argument "{a.name}"'
                             f"{_suggest(a.name, _VARIABLE_ATTRS)}")
        desc = body.attr("description")
        if desc is not None:
            lit = literal(desc.expr)
            if lit is not None and lit.kind == "string" and not lit.value.strip():
                self.problem(desc.file, desc.line, f'variable "{name}" has an empty description')
        ty_attr, default = body.attr("type"), body.attr("default")
        if ty_attr is not None and default is not None:
            for ln, msg in literal_type_errors(default.expr, type_constraint(ty_attr.expr)):
                self.problem(default.file, ln, f'variable "{name}": default {msg}')
        ctx = Ctx(block.file, label=f"var.{name}")
        for b in body.blocks:
            if b.type == "validation":
                self.check_condition_block(b, ctx, f'variable "{name}"')
            else:
                self.problem(b.file, b.line, f'variable "{name}": unknown block "{b.type}"')

    def check_output(self, block: Block) -> None:
        name = block.labels[0]
        body = block.body
        if body.attr("value") is None:
            self.problem(block.file, block.line, f'output "{name}" has no value')
        if body.attr("description") is None:
            self.problem(block.file, block.line, f'output "{name}" has no description')
        ctx = Ctx(block.file, label=f"output.{name}")
        for a in body.attrs:
            if a.name not in _OUTPUT_ATTRS:
                self.problem(a.file, a.line, f'output "{name}": unknown argument "{a.name}"'
                             f"{_suggest(a.name, _OUTPUT_ATTRS)}")
            self.check_expr(a.expr, ctx)
        for b in body.blocks:
            if b.type == "precondition":
                self.check_condition_block(b, ctx, f'output "{name}"')
            else:
                self.problem(b.file, b.line, f'output "{name}": unknown block "{b.type}"')

    def local_source(self, call: Block) -> Path | None:
        src = call.body.attr("source")
        lit = literal(src.expr) if src else None
        if lit is None or lit.kind != "string":
            return None
        if not (lit.value.startswith("./") or lit.value.startswith("../")):
            return None
        return (self.mod.dir / lit.value)

    def check_call(self, block: Block) -> None:
        name = block.labels[0]
        addr = f"module.{name}"
        body = block.body
        src = body.attr("source")
        if src is None:
            self.problem(block.file, block.line, f"{addr}: missing required argument \"source\"")
        ctx = Ctx(block.file, each=body.attr("for_each") is not None,
                  count=body.attr("count") is not None, label=addr)
        meta_ctx = Ctx(block.file, label=addr)
        child: ModuleInterface | None = None
        path = self.local_source(block) if src else None
        if path is not None:
            if not path.is_dir() or not any(path.glob("*.tf")):
                lit = literal(src.expr)
                self.problem(src.file, src.line, f"{addr}: source {json.dumps(lit.value)} has no "
                             f".tf files ({self.rel(path)})")
            else:
                child_mod = self.module(path)
                child = child_mod.interface
        for a in body.attrs:
            if a.name in ("count", "for_each", "depends_on"):
                self.check_expr(a.expr, meta_ctx)
                continue
            if a.name in ("source", "version", "providers"):
                continue
            self.check_expr(a.expr, ctx)
            if child is None:
                continue
            var = child.variables.get(a.name)
            if var is None:
                self.problem(a.file, a.line, f'{addr}: unknown argument "{a.name}": the module '
                             f"has no such variable{_suggest(a.name, child.variables)}")
                continue
            ty = var.body.attr("type")
            if ty is not None:
                for ln, msg in literal_type_errors(a.expr, type_constraint(ty.expr)):
                    self.problem(a.file, ln, f'{addr}: "{a.name}" {msg}')
        if child is not None:
            for vname, var in sorted(child.variables.items()):
                if var.body.attr("default") is None and body.attr(vname) is None:
                    self.problem(block.file, block.line,
                                 f'{addr}: missing required argument "{vname}" (the module\'s '
                                 "variable has no default)")
        for b in body.blocks:
            self.problem(b.file, b.line, f'{addr}: unexpected block "{b.type}" in a module call')

    # --- expressions -----------------------------------------------------------------------

    def check_refs_in_body(self, body: Body, ctx: Ctx) -> None:
        for a in body.attrs:
            self.check_expr(a.expr, ctx)
        for b in body.blocks:
            if b.type == "dynamic" and b.labels:
                it = b.body.attr("iterator")
                name = b.labels[0]
                if it is not None:
                    refs = references(it.expr)
                    if refs:
                        name = refs[0].root
                inner = ctx.with_bound(name)
                for a in b.body.attrs:
                    if a.name != "iterator":
                        self.check_expr(a.expr, ctx if a.name == "for_each" else inner)
                for c in b.body.blocks:
                    self.check_refs_in_body(c.body, inner)
            else:
                self.check_refs_in_body(b.body, ctx)

    def check_expr(self, node: Any, ctx: Ctx) -> None:
        for ref in references(node, ctx.bound):
            self.check_ref(ref, ctx)

    def check_ref(self, ref: Ref, ctx: Ctx) -> None:
        mod, root, steps = self.mod, ref.root, ref.steps
        file, line = ctx.file, ref.line

        def first_attr() -> str | None:
            return steps[0][1] if steps and steps[0][0] == "attr" else None

        if root == "var":
            name = first_attr()
            if name is None:
                self.problem(file, line, f"{ref.text()}: var must be followed by a variable name")
            elif name not in mod.variables:
                self.problem(file, line, f"reference to undeclared variable var.{name}"
                             f"{_suggest(name, mod.variables)}")
            return
        if root == "local":
            name = first_attr()
            if name is None:
                self.problem(file, line, f"{ref.text()}: local must be followed by a name")
            elif name not in mod.locals:
                self.problem(file, line, f"reference to undeclared local value local.{name}"
                             f"{_suggest(name, mod.locals)}")
            return
        if root == "each":
            if not ctx.each:
                self.problem(file, line, f"{ref.text()}: each is only valid in a block with "
                             "for_each")
            elif first_attr() not in ("key", "value"):
                self.problem(file, line, f"{ref.text()}: each has only key and value")
            return
        if root == "count":
            if not ctx.count:
                self.problem(file, line, f"{ref.text()}: count.index is only valid in a block "
                             "with count")
            elif first_attr() != "index":
                self.problem(file, line, f"{ref.text()}: count has only index")
            return
        if root == "path":
            if first_attr() not in _PATH_ATTRS:
                self.problem(file, line, f"{ref.text()}: path has only module, root and cwd")
            return
        if root == "terraform":
            if first_attr() not in _TERRAFORM_ATTRS:
                self.problem(file, line, f"{ref.text()}: terraform has only workspace and "
                             "applying")
            return
        if root == "self":
            if not ctx.self_ok:
                self.problem(file, line, f"{ref.text()}: self is only valid in provisioner, "
                             "connection and postcondition blocks")
            return
        if root == "module":
            self.check_module_ref(ref, ctx)
            return
        if root == "data":
            if len(steps) < 2 or steps[0][0] != "attr" or steps[1][0] != "attr":
                self.problem(file, line, f"{ref.text()}: data must be followed by a type and a "
                             "name")
                return
            key = (steps[0][1], steps[1][1])
            decl = mod.data.get(key)
            if decl is None:
                same = [n for (t, n) in mod.data if t == key[0]]
                self.problem(file, line, f"reference to undeclared data source "
                             f"data.{key[0]}.{key[1]}{_suggest(key[1], same)}")
                return
            self.check_instance_path(ref, 2, decl, self.schema.block("data", key[0]),
                                     f"data.{key[0]}.{key[1]}", ctx)
            return
        # a resource type
        name = first_attr()
        if name is None:
            if steps:
                self.problem(file, line, f"{ref.text()}: a resource reference needs a name")
            else:
                self.problem(file, line, f'reference to unknown name "{root}"')
            return
        decl = mod.resources.get((root, name))
        if decl is None:
            same = [n for (t, n) in mod.resources if t == root]
            if same or root in self.schema.resources:
                self.problem(file, line, f"reference to undeclared resource {root}.{name}"
                             f"{_suggest(name, same)}")
            else:
                self.problem(file, line, f"reference to {ref.text(1)}: no resource of type "
                             f'"{root}" in this module (and "{root}" is not a variable, local, '
                             "module or data reference)")
            return
        self.check_instance_path(ref, 1, decl, self.schema.block("resource", root),
                                 f"{root}.{name}", ctx)

    def check_instance_path(self, ref: Ref, n: int, decl: Block, schema: dict | None,
                            addr: str, ctx: Ctx) -> None:
        """Steps after the address: the instance key (if count/for_each), then attributes."""
        steps = ref.steps[n:]
        multi = decl.body.attr("count") is not None or decl.body.attr("for_each") is not None
        file, line = ctx.file, ref.line
        if not steps:
            return
        if steps[0][0] == "splat":
            steps = steps[1:]
        elif steps[0][0] == "index":
            if not multi:
                self.problem(file, line, f"{ref.text()}: {addr} has no count or for_each, so "
                             "it cannot be indexed")
                return
            steps = steps[1:]
        elif multi:
            kind = "count" if decl.body.attr("count") is not None else "for_each"
            key = "[0]" if kind == "count" else "[each.key]"
            self.problem(file, line, f"{ref.text()}: {addr} has {kind}: refer to an instance, "
                         f"e.g. {addr}{key}.{steps[0][1]}")
            return
        if schema is not None and steps:
            self.check_path(ref, steps, {"block": schema}, addr, ctx)

    def check_path(self, ref: Ref, steps: list[tuple], spec: dict, where: str, ctx: Ctx) -> None:
        """Walk attribute steps through a block schema (spec has "block") or a type."""
        file, line = ctx.file, ref.line
        while steps:
            step = steps[0]
            if "block" in spec:
                block = spec["block"]
                if step[0] != "attr":
                    self.problem(file, line, f"{ref.text()}: {where} is a single object; it "
                                 "cannot be indexed")
                    return
                name = step[1]
                attrs = block.get("attributes", {})
                bts = block.get("block_types", {})
                if name in attrs:
                    spec = {"type": attr_type(attrs[name])}
                    where = f"{where}.{name}"
                    steps = steps[1:]
                    continue
                if name in bts:
                    bt = bts[name]
                    where = f"{where}.{name}"
                    steps = steps[1:]
                    mode = bt.get("nesting_mode", "list")
                    if mode == "single" or mode == "group":
                        spec = {"block": bt.get("block", {})}
                        continue
                    if not steps:
                        return
                    nxt = steps[0]
                    if nxt[0] == "attr":
                        if mode == "map":
                            steps = steps[1:]
                            spec = {"block": bt.get("block", {})}
                            continue
                        hint = "([0])" if mode == "list" else "(one(...) or a for expression)"
                        self.problem(file, line, f"{ref.text()}: {where} is a {mode} of blocks; "
                                     f"select an element {hint} before .{nxt[1]}")
                        return
                    if nxt[0] == "index" and mode == "set":
                        self.problem(file, line, f"{ref.text()}: {where} is a set of blocks and "
                                     "cannot be indexed; use one(...), tolist(...) or a for "
                                     "expression")
                        return
                    steps = steps[1:]
                    spec = {"block": bt.get("block", {})}
                    continue
                self.problem(file, line, f"reference to {ref.text()}: {where} has no attribute "
                             f'"{name}"{_suggest(name, set(attrs) | set(bts))}')
                return
            ty = spec.get("type", "dynamic")
            if ty == "dynamic":
                return
            if isinstance(ty, str):
                self.problem(file, line, f"{ref.text()}: {where} is a {ty}; it has no "
                             f"{'attributes' if step[0] == 'attr' else 'elements'}")
                return
            kind = ty[0]
            if kind in ("list", "set"):
                if step[0] == "attr":
                    self.problem(file, line, f"{ref.text()}: {where} is a {_type_name(ty)}; "
                                 f"select an element before .{step[1]}")
                    return
                if step[0] == "index" and kind == "set":
                    self.problem(file, line, f"{ref.text()}: {where} is a {_type_name(ty)} and "
                                 "cannot be indexed")
                    return
                spec = {"type": ty[1]}
                where = f"{where}[]"
                steps = steps[1:]
                continue
            if kind == "map":
                spec = {"type": ty[1]}
                where = f"{where}[]"
                steps = steps[1:]
                continue
            if kind == "object":
                if step[0] != "attr":
                    return
                fields = ty[1]
                if step[1] not in fields:
                    owner = (f"elements of {where[:-2]} have" if where.endswith("[]")
                             else f"{where} has")
                    self.problem(file, line, f"reference to {ref.text()}: {owner} no "
                                 f'attribute "{step[1]}"{_suggest(step[1], fields)}')
                    return
                spec = {"type": fields[step[1]]}
                where = f"{where}.{step[1]}"
                steps = steps[1:]
                continue
            return

    def check_module_ref(self, ref: Ref, ctx: Ctx) -> None:
        steps = ref.steps
        file, line = ctx.file, ref.line
        if not steps or steps[0][0] != "attr":
            self.problem(file, line, f"{ref.text()}: module must be followed by a module name")
            return
        name = steps[0][1]
        call = self.mod.calls.get(name)
        if call is None:
            self.problem(file, line, f"reference to undeclared module module.{name}"
                         f"{_suggest(name, self.mod.calls)}")
            return
        rest = steps[1:]
        multi = call.body.attr("count") is not None or call.body.attr("for_each") is not None
        if rest and rest[0][0] in ("index", "splat"):
            if rest[0][0] == "index" and not multi:
                self.problem(file, line, f"{ref.text()}: module.{name} has no count or "
                             "for_each, so it cannot be indexed")
                return
            rest = rest[1:]
        elif rest and multi:
            self.problem(file, line, f"{ref.text()}: module.{name} has count or for_each: "
                         "refer to an instance first")
            return
        if not rest or rest[0][0] != "attr":
            return
        path = self.local_source(call)
        if path is None or not path.is_dir() or not any(path.glob("*.tf")):
            return
        outputs = self.module(path).outputs
        out = rest[0][1]
        if out not in outputs:
            listed = ", ".join(sorted(outputs)) or "none"
            self.problem(file, line, f"reference to {ref.text()}: module.{name} "
                         f"({self.rel(path)}) has no output \"{out}\"{_suggest(out, outputs)}; "
                         f"its outputs: {listed}")


# ---------------------------------------------------------------------------------------------
# entry point
# ---------------------------------------------------------------------------------------------


def module_dirs(root: Path) -> list[Path]:
    """Every directory under root (root included) holding .tf files; hidden dirs skipped."""
    dirs = set()
    for path in root.rglob("*.tf"):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts[:-1]):
            continue
        if path.is_file():
            dirs.add(path.parent)
    return sorted(dirs)


def validate_tree(root: Path, schema_path: Path | None = None) -> list[Problem]:
    """Validate each Terraform module directory under root against the AWS provider schema.

    Returns the problems sorted by file, line and message; [] when everything checks out.
    """
    root = Path(root)
    schema = load_schema(schema_path)
    v = Validator(root, schema)
    problems: set[Problem] = set()
    for directory in module_dirs(root):
        problems.update(v.check_module(directory))
    return sorted(problems)


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description="Validate Terraform modules against the "
                                 "hashicorp/aws provider schema, offline.")
    ap.add_argument("root", type=Path, nargs="?", default=Path("terraform"))
    ap.add_argument("--schema", type=Path, default=None)
    args = ap.parse_args(argv)
    problems = validate_tree(args.root, args.schema)
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
