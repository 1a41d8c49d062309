"""Evaluate the expressions of a rendered module (python-hcl2's "${...}" strings) with the values a
test supplies for its references: enough HCL for harden's own modules (references, string
templates, function calls, object and tuple constructors, ==, !=, &&, ||, !, ? :).

Anything it does not know (a function, a reference the resolver cannot answer, a `for`
expression) raises EvalError: a contract test never passes on something it could not read.
"""

from __future__ import annotations

import json
import re
from typing import Any, Callable

Resolver = Callable[[tuple], Any]


class EvalError(Exception):
    pass


_TOKEN = re.compile(r"""\s*(?:
    (?P<num>\d+(?:\.\d+)?)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_-]*)
  | (?P<op>==|!=|>=|<=|&&|\|\||\[\*\]|[?:!.,()\[\]{}=<>])
  | (?P<str>")
)""", re.X)


def _string_end(text: str, start: int) -> int:
    """Index just past the closing quote of the string literal opening at text[start]."""
    i, depth = start + 1, 0
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if depth == 0 and ch == '"':
            return i + 1
        if text.startswith("${", i) or text.startswith("%{", i):
            depth += 1
            i += 2
            continue
        if depth and ch == '"':
            i = _string_end(text, i)
            continue
        if depth and ch == "}":
            depth -= 1
        elif depth and ch == "{":
            depth += 1
        i += 1
    raise EvalError(f"unterminated string in {text!r}")


def _tokens(text: str) -> list[tuple[str, str]]:
    out, i = [], 0
    while i < len(text):
        if text[i:].strip() == "":
            break
        m = _TOKEN.match(text, i)
        if not m:
            raise EvalError(f"cannot read {text[i:]!r}")
        kind = m.lastgroup
        if kind == "str":
            start = m.end() - 1
            end = _string_end(text, start)
            out.append(("str", text[start + 1:end - 1]))
            i = end
            continue
        out.append((kind, m.group(kind)))
        i = m.end()
    return out


_UNESCAPE = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}

_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "merge": lambda *maps: {k: v for m in maps for k, v in m.items()},
    "jsonencode": lambda v: _Json(v),
    "concat": lambda *lists: [x for lst in lists for x in lst],
    "toset": lambda v: sorted(set(v)),
    "tolist": list,
    "lookup": lambda m, k, d=None: m.get(k, d),
    "one": lambda v: (v[0] if v else None) if len(v) <= 1 else (_ for _ in ()).throw(EvalError("one(): many")),
    "split": lambda sep, s: s.split(sep),
    "element": lambda lst, i: lst[i % len(lst)],
    "length": len,
    "lower": str.lower,
    "max": max, "min": min,
    "contains": lambda lst, v: v in lst,
    "replace": lambda s, old, new: s.replace(old, new),
    "keys": lambda m: sorted(m),          # Terraform returns a map's keys in lexical order
    "values": lambda m: [m[k] for k in sorted(m)],
    "setproduct": lambda *colls: _setproduct(*colls),
}


def _setproduct(*collections: Any) -> list:
    """setproduct(a, b, ...): every combination, the first argument varying slowest, as lists;
    empty if any argument is empty; Terraform (cty stdlib SetProductFunc) refuses fewer than two
    arguments. https://developer.hashicorp.com/terraform/language/functions/setproduct"""
    if len(collections) < 2:
        raise EvalError("setproduct(): at least two arguments are required")
    out: list = [[]]
    for coll in collections:
        out = [prefix + [x] for prefix in out for x in coll]
    return out


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "==": lambda a, b: a == b, "!=": lambda a, b: a != b, ">=": lambda a, b: a >= b,
    "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, "<": lambda a, b: a < b,
}


class _Json:
    """jsonencode(value): kept as the value, so documents compare semantically."""

    def __init__(self, value: Any):
        self.value = value

    def __str__(self) -> str:
        return json.dumps(self.value, separators=(",", ":"), sort_keys=True)


def _coalesce(*values: Any) -> Any:
    for v in values:
        if v is not None and v != "":
            return v
    raise EvalError("coalesce(): no non-null argument")


class _Parser:
    def __init__(self, text: str, resolve: Resolver):
        self.toks, self.pos, self._resolve = _tokens(text), 0, resolve
        self.skipping = 0  # inside the branch a conditional did not choose: parsed, not evaluated
        self.bound: dict[str, Any] = {}  # names a for expression binds

    def resolve(self, path: tuple) -> Any:
        if self.skipping:
            return None
        if path[0] in self.bound:
            return walk(self.bound[path[0]], path[1:])
        return self._resolve(path)

    def for_object(self) -> dict:
        """{ for k, v in coll : key => value [if cond] } (the "{" already taken)."""
        self.take("for")
        names = [self.take()[1]]
        if self.peek(","):
            self.take()
            names.append(self.take()[1])
        self.take("in")
        collection = self.cond()
        self.take(":")
        start = self.pos
        items = collection.items() if isinstance(collection, dict) else enumerate(collection or [])
        out: dict = {}
        saved = dict(self.bound)
        for k, v in list(items) or [(None, None)]:
            self.pos = start
            empty = k is None and not collection
            self.skipping += 1 if empty else 0
            self.bound.update(dict(zip(names, [k, v] if len(names) == 2 else [v])))
            key = self.cond()
            self.take("=")
            self.take(">")
            value = self.cond()
            keep = True
            if self.peek("if"):
                self.take()
                keep = self.cond()
            self.skipping -= 1 if empty else 0
            if not empty and keep:
                out[key] = value
        self.bound = saved
        self.take("}")
        return out

    def branch(self, chosen: bool) -> Any:
        self.skipping += 0 if chosen else 1
        try:
            return self.cond()
        finally:
            self.skipping -= 0 if chosen else 1

    def peek(self, value: str | None = None) -> tuple[str, str] | None:
        tok = self.toks[self.pos] if self.pos < len(self.toks) else None
        if value is not None and (tok is None or tok[1] != value or tok[0] == "str"):
            return None
        return tok

    def take(self, value: str | None = None) -> tuple[str, str]:
        tok = self.peek(value)
        if tok is None:
            raise EvalError(f"expected {value or 'more'} at token {self.pos} of {self.toks}")
        self.pos += 1
        return tok

    def parse(self) -> Any:
        value = self.cond()
        if self.pos != len(self.toks):
            raise EvalError(f"unread tokens {self.toks[self.pos:]}")
        return value

    def cond(self) -> Any:
        test = self.or_()
        if self.peek("?"):
            self.take("?")
            yes = self.branch(bool(test))
            self.take(":")
            no = self.branch(not test)
            return yes if test else no
        return test

    def or_(self) -> Any:
        value = self.and_()
        while self.peek("||"):
            self.take()
            right = self.and_()
            value = bool(value) or bool(right)
        return value

    def and_(self) -> Any:
        value = self.cmp()
        while self.peek("&&"):
            self.take()
            right = self.cmp()
            value = bool(value) and bool(right)
        return value

    def cmp(self) -> Any:
        left = self.unary()
        for op, fn in _COMPARE.items():
            if self.peek(op):
                self.take()
                right = self.unary()
                return None if self.skipping else fn(left, right)
        return left

    def unary(self) -> Any:
        if self.peek("!"):
            self.take()
            return not self.unary()
        return self.postfix()

    def postfix(self) -> Any:
        kind, value = self.take()
        if kind == "ident" and self.peek("("):
            return self.postfix_rest(self.call(value))
        if kind == "ident" and value not in ("true", "false", "null"):
            path: list[Any] = [value]
            while True:
                if self.peek(".") and self.pos + 1 < len(self.toks) and self.toks[self.pos + 1][0] == "ident":
                    self.take()
                    path.append(self.take()[1])
                elif self.peek("[*]"):
                    self.take()
                    path.append("*")
                elif self.peek("["):
                    self.take()
                    path.append(self.cond())
                    self.take("]")
                else:
                    break
            return self.resolve(tuple(path))
        return self.postfix_rest(self.primary(kind, value))

    def postfix_rest(self, value: Any) -> Any:
        while self.peek("["):
            self.take()
            index = self.cond()
            self.take("]")
            value = None if self.skipping else value[index]
        return value

    def call(self, name: str) -> Any:
        self.take("(")
        if name == "can":
            start = self.pos
            try:
                self.cond()
                ok = not self.skipping
            except (EvalError, KeyError, IndexError, TypeError):
                ok = False
                self.pos = start
                self.skip_to_close()
            self.take(")")
            return ok
        if name == "try":
            return self.try_()
        args = []
        while not self.peek(")"):
            args.append(self.cond())
            if self.peek(","):
                self.take()
        self.take(")")
        if self.skipping:
            return None
        if name == "coalesce":
            return _coalesce(*args)
        if name not in _FUNCTIONS:
            raise EvalError(f"function {name}() is not known to this evaluator")
        return _FUNCTIONS[name](*args)

    def try_(self) -> Any:
        """try(a, b, ...): the first argument that evaluates without a dynamic error (a missing
        instance, key, index or attribute), else an error. As in Terraform, a reference this
        evaluator cannot read at all (EvalError) is not swallowed.
        https://developer.hashicorp.com/terraform/language/functions/try"""
        result, found = None, False
        while not self.peek(")"):
            start = self.pos
            if found:  # parsed, not evaluated
                self.skipping += 1
                try:
                    self.cond()
                finally:
                    self.skipping -= 1
            else:
                try:
                    result, found = self.cond(), True
                except (KeyError, IndexError, TypeError):
                    self.pos = start
                    self.skip_to_close(stop_at_comma=True)
            if self.peek(","):
                self.take()
        self.take(")")
        if not found and not self.skipping:
            raise EvalError("try(): no argument could be evaluated")
        return result

    def skip_to_close(self, stop_at_comma: bool = False) -> None:
        depth = 0
        while self.pos < len(self.toks):
            kind, v = self.toks[self.pos]
            if stop_at_comma and depth == 0 and kind == "op" and v == ",":
                return
            if kind == "op" and v in "([{":
                depth += 1
            elif kind == "op" and v in ")]}":
                if depth == 0:
                    return
                depth -= 1
            self.pos += 1

    def primary(self, kind: str, value: str) -> Any:
        if kind == "num":
            return float(value) if "." in value else int(value)
        if kind == "str":
            return None if self.skipping else template(value, self.resolve)
        if kind == "ident":
            return {"true": True, "false": False, "null": None}[value]
        if value == "(":
            inner = self.cond()
            self.take(")")
            return inner
        if value == "[":
            items = []
            while not self.peek("]"):
                items.append(self.cond())
                if self.peek(","):
                    self.take()
            self.take("]")
            return items
        if value == "{" and self.peek("for"):
            return self.for_object()
        if value == "{":
            obj = {}
            while not self.peek("}"):
                k_kind, k = self.take()
                key = template(k, self.resolve) if k_kind == "str" else k
                self.take("=")
                obj[key] = self.cond()
                if self.peek(","):
                    self.take()
            self.take("}")
            return obj
        raise EvalError(f"unexpected {value!r}")


def walk(value: Any, rest: tuple) -> Any:
    """value[k1][k2]... for the keys of a reference path after its root."""
    for key in rest:
        value = value[key]
    return value


def _interpolations(text: str) -> list[tuple[int, int]]:
    """(start, end) of each ${...} in a template (end past the closing brace)."""
    spans, i = [], 0
    while i < len(text):
        if text.startswith("$${", i):
            i += 3
            continue
        if text.startswith("${", i):
            depth, j = 1, i + 2
            while depth:
                if j >= len(text):
                    raise EvalError(f"unterminated interpolation in {text!r}")
                if text[j] == '"':
                    j = _string_end(text, j)
                    continue
                depth += {"{": 1, "}": -1}.get(text[j], 0)
                j += 1
            spans.append((i, j))
            i = j
            continue
        i += 1
    return spans


def template(text: str, resolve: Resolver) -> Any:
    """A string as python-hcl2 gives it: a whole "${expr}" is the expression's value (any type);
    otherwise every interpolation is evaluated into the text."""
    spans = _interpolations(text)
    if len(spans) == 1 and spans[0] == (0, len(text)):
        return _Parser(text[2:-1], resolve).parse()
    out, last = [], 0
    for start, end in spans:
        out.append(_literal(text[last:start]))
        value = _Parser(text[start + 2:end - 1], resolve).parse()
        if value is None:
            raise EvalError(f"null interpolated into {text!r}")
        out.append(str(value).lower() if isinstance(value, bool) else str(value))
        last = end
    out.append(_literal(text[last:]))
    return "".join(out)


def _literal(text: str) -> str:
    text = text.replace("$${", "${").replace("%%{", "%{")
    return re.sub(r"\\(.)", lambda m: _UNESCAPE.get(m.group(1), m.group(0)), text)


def evaluate(value: Any, resolve: Resolver) -> Any:
    """A parsed HCL value (strings, lists, dicts from python-hcl2) with every expression evaluated."""
    if isinstance(value, str):
        result = template(value, resolve)
        return result.value if isinstance(result, _Json) else result
    if isinstance(value, list):
        return [evaluate(v, resolve) for v in value]
    if isinstance(value, dict):
        return {k: evaluate(v, resolve) for k, v in value.items()}
    return value


def policy_document(block: dict, resolve: Resolver) -> dict:
    """What the AWS provider's aws_iam_policy_document renders for a block (statements only,
    plus source_policy_documents merged in order)."""
    statements = []
    for source in evaluate(block.get("source_policy_documents", []), resolve) or []:
        statements.extend(source["Statement"])
    for st in block.get("statement", []):
        st = evaluate(st, resolve)
        out: dict[str, Any] = {}
        if st.get("sid"):
            out["Sid"] = st["sid"]
        out["Effect"] = st.get("effect", "Allow")
        for key, name in (("actions", "Action"), ("not_actions", "NotAction"), ("resources", "Resource")):
            if st.get(key):
                out[name] = st[key]
        for p in st.get("principals", []):
            if p["type"] == "*" and p["identifiers"] == ["*"]:
                out["Principal"] = "*"
            else:
                out.setdefault("Principal", {})[p["type"]] = p["identifiers"]
        for c in st.get("condition", []):
            out.setdefault("Condition", {}).setdefault(c["test"], {})[c["variable"]] = c["values"]
        statements.append(out)
    return {"Version": "2012-10-17", "Statement": statements}


def normal_policy(doc: Any) -> Any:
    """A policy document in a form where equal means IAM-equivalent: JSON text parsed, single
    values as one-element lists, lists sorted, "Principal": "*" as {"AWS": ["*"]}, statements
    sorted, Version kept."""
    if isinstance(doc, str):
        doc = json.loads(doc)

    def values(v: Any) -> list:
        return sorted(str(x) for x in (v if isinstance(v, list) else [v]))

    statements = []
    for st in doc.get("Statement", []) if isinstance(doc.get("Statement"), list) else [doc["Statement"]]:
        out = {}
        for k, v in st.items():
            if k in ("Action", "NotAction", "Resource", "NotResource"):
                out[k] = values(v)
            elif k in ("Principal", "NotPrincipal"):
                v = {"AWS": "*"} if v == "*" else v
                out[k] = {pk: values(pv) for pk, pv in v.items()}
            elif k == "Condition":
                out[k] = {op: {var: values(vals) for var, vals in cond.items()} for op, cond in v.items()}
            else:
                out[k] = v
        statements.append(out)
    return {"Version": doc.get("Version"), "Statement": sorted(statements, key=lambda s: json.dumps(s, sort_keys=True))}
