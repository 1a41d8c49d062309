#!/usr/bin/env python3
"""Extract the hashicorp/aws provider schema the modules use, offline, from the cdktf bindings.

The provider itself cannot be downloaded here, so `terraform providers schema -json` cannot run.
The prebuilt CDKTF bindings on PyPI (`cdktf-cdktf-provider-aws`) are generated from that very
schema and carry it in two forms inside `_jsii/provider-aws@<v>.jsii.tgz`:

* `package/.jsii`, the jsii assembly: for each resource / data source a class and its
  `<Name>Config` struct; every argument and nested block with its type and whether it is optional
  (nested blocks are structs of their own); the class lists the computed attributes.
* `package/lib/<name>/index.js`, whose source map embeds the generated TypeScript. It keeps, for
  every attribute, the exact Terraform name and the schema's flags
  (`// home_region - computed: true, optional: false, required: false`), whether a collection or a
  nested block is a list or a set, and whether a single nested block is a `MaxItems: 1` list or a
  framework single block.

Names are never derived from the camelCase jsii names: arguments take their name from the
registry link in their docs (`.../docs/resources/cloudtrail#s3_bucket_name`) and it must agree
with the generated code; computed attributes take theirs from the generated code.

The output follows the layout of `terraform providers schema -json` (so a real schema dump can
be used in its place), reduced to the types the templates use, plus the provider version:

    {"format_version": "1.0", "provider_version": "6.25.0", "provider_schemas": {
      "registry.terraform.io/hashicorp/aws": {"resource_schemas": {"aws_cloudtrail": {"block": {
        "attributes": {"name": {"type": "string", "required": true}, ...},
        "block_types": {"event_selector": {"nesting_mode": "list", "block": {...}}}}}},
       "data_source_schemas": {...}}}}

Runs on the standard library only (the product venv has no extra tool dependencies):

    python tools/extract_schema.py --wheel cdktf_cdktf_provider_aws-21.22.1-py3-none-any.whl
    python tools/extract_schema.py --download          # pip download into ~/.cache/harden/cdktf
    terraform providers schema -json > dump.json       # where the provider can be installed
    python tools/extract_schema.py --from-terraform-json dump.json --provider-version 6.40.0
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

REPO = Path(__file__).resolve().parents[1]
DIST = "cdktf-cdktf-provider-aws"
DIST_VERSION = "21.22.1"
PROVIDER_ADDRESS = "registry.terraform.io/hashicorp/aws"
DEFAULT_OUT = REPO / "tests" / "data" / "aws_provider_schema.json"
DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "harden" / "cdktf"

BASE_RESOURCES = """
aws_cloudtrail aws_kms_key aws_kms_alias aws_s3_bucket aws_s3_bucket_public_access_block
aws_s3_bucket_ownership_controls aws_s3_bucket_versioning
aws_s3_bucket_server_side_encryption_configuration aws_s3_bucket_lifecycle_configuration
aws_s3_bucket_policy aws_s3_bucket_logging aws_s3_bucket_notification aws_cloudwatch_log_group
aws_iam_role aws_iam_role_policy aws_iam_role_policy_attachment aws_iam_service_linked_role
aws_flow_log aws_config_configuration_recorder aws_config_delivery_channel
aws_config_configuration_recorder_status aws_config_config_rule aws_organizations_policy
aws_organizations_policy_attachment aws_ebs_encryption_by_default aws_ebs_default_kms_key
aws_sns_topic aws_sns_topic_policy aws_sns_topic_subscription aws_cloudwatch_metric_alarm
aws_cloudwatch_log_metric_filter aws_cloudwatch_event_rule aws_cloudwatch_event_target
""".split()
BASE_DATA_SOURCES = """
aws_iam_policy_document aws_vpcs aws_instances aws_caller_identity aws_partition aws_region
aws_regions aws_organizations_organization
""".split()

# Where the types in use are declared: the module templates and the validator's fixtures.
SCAN_GLOBS = ("templates/**/*.tf.j2", "templates/**/*.tf", "tests/fixtures/validate/**/*.tf",
              "tests/fixtures/validate/**/*.tf.j2")
DECL_RE = re.compile(r'^[ \t]*(resource|data)[ \t]+"([A-Za-z0-9_-]+)"', re.M)

LINK_RE = re.compile(
    r"\{@link https://registry\.terraform\.io/providers/hashicorp/aws/([0-9.]+)/docs/"
    r"(resources|data-sources)/([a-z0-9_]+)(?:#([a-z0-9_]+))? ")
FLAGS_RE = re.compile(
    r"^  // (\w+) - computed: (true|false), optional: (true|false), required: (true|false)$")
GETTER_RE = re.compile(r"^  public get (\w+)\(\)")
COMPLEX_RE = re.compile(r'^  private _(\w+) = new (\w+)\(this, "(\w+)"(?:, (true|false))?\);')
HCL_ATTR_RE = re.compile(
    r'^ +(\w+): \{\n +value: .*\n +isBlock: (true|false),\n +type: "(\w+)",\n'
    r' +storageClassType: "(\w+)",$', re.M)
DECL_START_RE = re.compile(r"^export (?:abstract )?(class|function|interface) (\w+)")
META_RE = re.compile(r"providerVersion: '([0-9.]+)'")


class ExtractError(RuntimeError):
    """The bindings do not look the way this extractor expects: stop rather than guess."""


@dataclass
class TsAttr:
    name: str  # exact Terraform name
    computed: bool
    optional: bool
    required: bool
    camel: str | None = None
    complex_class: str | None = None  # XList / XOutputReference / XMap holding a nested value
    wraps_set: bool = False
    getter: str = ""  # the accessor's return expression


@dataclass
class TsModule:
    """What one generated `index.ts` says about its classes and `...ToHclTerraform` functions."""

    classes: dict[str, dict[str, TsAttr]] = field(default_factory=dict)  # class -> camel -> attr
    hcl: dict[str, dict[str, tuple[bool, str, str]]] = field(default_factory=dict)
    provider_versions: set[str] = field(default_factory=set)


def parse_ts(source: str) -> TsModule:
    mod = TsModule(provider_versions=set(META_RE.findall(source)))
    lines = source.split("\n")
    i = 0
    while i < len(lines):
        m = DECL_START_RE.match(lines[i])
        if not m:
            i += 1
            continue
        kind, name = m.groups()
        j = i + 1
        while j < len(lines) and lines[j] != "}":
            j += 1
        body = lines[i + 1:j]
        text = "\n".join(body)
        if kind == "class":
            mod.classes[name] = _class_attrs(body, name)
            if "synthesizeHclAttributes()" in text:
                mod.hcl[name] = _hcl_attrs(text)
        elif kind == "function" and name.endswith("ToHclTerraform"):
            mod.hcl[name] = _hcl_attrs(text)
        i = j + 1
    return mod


def _class_attrs(body: list[str], cls: str) -> dict[str, TsAttr]:
    attrs: dict[str, TsAttr] = {}
    k = 0
    while k < len(body):
        m = FLAGS_RE.match(body[k])
        if not m:
            k += 1
            continue
        attr = TsAttr(m.group(1), m.group(2) == "true", m.group(3) == "true", m.group(4) == "true")
        k += 1
        while k < len(body) and attr.camel is None and not FLAGS_RE.match(body[k]):
            c = COMPLEX_RE.match(body[k])
            if c:
                if c.group(3) != attr.name:
                    raise ExtractError(f"{cls}: {attr.name} is stored as {c.group(3)}")
                attr.complex_class = c.group(2)
                attr.wraps_set = c.group(4) == "true"
            g = GETTER_RE.match(body[k])
            if g:
                attr.camel = g.group(1)
                if k + 1 < len(body):
                    attr.getter = body[k + 1].strip()
            k += 1
        if attr.camel is None:
            raise ExtractError(f"{cls}: no accessor after the comment for {attr.name}")
        attrs[attr.camel] = attr
    return attrs


def _hcl_attrs(text: str) -> dict[str, tuple[bool, str, str]]:
    return {m.group(1): (m.group(2) == "true", m.group(3), m.group(4))
            for m in HCL_ATTR_RE.finditer(text)}


# ---------------------------------------------------------------------------------------------
# reading the wheel
# ---------------------------------------------------------------------------------------------


def _source_from_js(js: bytes) -> str:
    at = js.rfind(b"sourceMappingURL=data:application/json;base64,")
    if at < 0:
        raise ExtractError("generated JavaScript carries no inline source map")
    payload = js[at:].split(b",", 1)[1].strip()
    sources = json.loads(base64.b64decode(payload))["sourcesContent"]
    return sources[0]


def open_bindings(wheel: Path, wanted: Callable[[dict], Iterable[str]],
                  ) -> tuple[dict, dict[str, str]]:
    """Return the jsii assembly and the TypeScript of the `lib/<dir>` modules `wanted` asks for.

    The assembly is the first member of the tarball, so one streaming pass suffices: `wanted`
    sees the assembly and returns the directory names to keep.
    """
    with zipfile.ZipFile(wheel) as zf:
        members = [n for n in zf.namelist() if re.search(r"/_jsii/[^/]+\.jsii\.tgz$", n)]
        if len(members) != 1:
            raise ExtractError(f"{wheel}: expected one _jsii/*.jsii.tgz, found {members}")
        assembly: dict | None = None
        keep: set[str] = set()
        sources: dict[str, str] = {}
        pending: dict[str, bytes] = {}
        with zf.open(members[0]) as raw, tarfile.open(fileobj=raw, mode="r|gz") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                parts = member.name.split("/")
                if member.name == "package/.jsii":
                    assembly = json.load(tar.extractfile(member))
                    keep = set(wanted(assembly))
                    for d in list(pending):
                        if d in keep:
                            sources[d] = _source_from_js(pending[d])
                    pending.clear()
                elif len(parts) == 4 and parts[:2] == ["package", "lib"] and parts[3] == "index.js":
                    if assembly is None:  # assembly not first: hold on to what may be needed
                        pending[parts[2]] = tar.extractfile(member).read()
                    elif parts[2] in keep:
                        sources[parts[2]] = _source_from_js(tar.extractfile(member).read())
    if assembly is None:
        raise ExtractError(f"{wheel}: no package/.jsii in {members[0]}")
    missing = keep - set(sources)
    if missing:
        raise ExtractError(f"{wheel}: generated code missing for {sorted(missing)}")
    return assembly, sources


def download(cache: Path, version: str) -> Path:
    cache.mkdir(parents=True, exist_ok=True)
    found = sorted(cache.glob(f"cdktf_cdktf_provider_aws-{version}-*.whl"))
    if found:
        return found[0]
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "-d", str(cache), f"{DIST}=={version}"]
    print("running:", " ".join(cmd), file=sys.stderr)
    subprocess.run(cmd, check=True)
    found = sorted(cache.glob(f"cdktf_cdktf_provider_aws-{version}-*.whl"))
    if not found:
        raise ExtractError(f"pip download left no wheel for {DIST}=={version} in {cache}")
    return found[0]


# ---------------------------------------------------------------------------------------------
# assembly -> schema
# ---------------------------------------------------------------------------------------------


class Extractor:
    def __init__(self, assembly: dict):
        self.types: dict[str, dict] = assembly["types"]
        self.prefix = assembly["name"] + "."
        self.sources: dict[str, TsModule] = {}
        self.versions: set[str] = set()
        # terraform type name -> (kind, class fqn); kind is "resources" or "data-sources"
        self.index: dict[str, tuple[str, str]] = {}
        for fqn, t in self.types.items():
            if t.get("kind") != "class" or t.get("base") not in (
                    "cdktf.TerraformResource", "cdktf.TerraformDataSource"):
                continue
            summary = t.get("docs", {}).get("summary", "")
            m = re.search(LINK_RE.pattern + r"(aws_[a-z0-9_]+)\}", summary)
            if not m:
                continue
            version, kind, short, _, tf_type = m.groups()
            if tf_type != "aws_" + short:
                raise ExtractError(f"{fqn}: docs link {short} names {tf_type}")
            self.versions.add(version)
            key = (kind, tf_type)
            if key in self.index:
                raise ExtractError(f"{tf_type} ({kind}) bound to two classes")
            self.index[key] = fqn  # type: ignore[assignment]

    # --- helpers --------------------------------------------------------------------------

    def directory(self, fqn: str) -> str:
        filename = self.types[fqn]["locationInModule"]["filename"]  # src/<dir>/index.ts
        parts = filename.split("/")
        if len(parts) != 3 or parts[0] != "src" or parts[2] != "index.ts":
            raise ExtractError(f"{fqn}: unexpected location {filename}")
        return parts[1]

    def ts(self, fqn: str) -> TsModule:
        return self.sources[self.directory(fqn)]

    def short(self, fqn: str) -> str:
        return self.types[fqn]["name"]

    def fqn_in_ns(self, like: str, name: str) -> str:
        ns = like.rsplit(".", 1)[0]
        fqn = f"{ns}.{name}"
        if fqn not in self.types:
            raise ExtractError(f"{fqn} not in the assembly")
        return fqn

    def output_of(self, holder_fqn: str) -> str:
        """The OutputReference class for a List/Map holder (from its `get` method) or itself."""
        t = self.types[holder_fqn]
        if t.get("base") == "cdktf.ComplexObject":
            return holder_fqn
        for method in t.get("methods", []):
            if method["name"] == "get":
                return method["returns"]["type"]["fqn"]
        raise ExtractError(f"{holder_fqn}: no get() to find its element class")

    @staticmethod
    def strip_union(ty: dict) -> dict:
        if "union" in ty:
            rest = [x for x in ty["union"]["types"] if x.get("fqn") != "cdktf.IResolvable"]
            if len(rest) == 1:
                return rest[0]
            raise ExtractError(f"ambiguous union {ty}")
        return ty

    def is_struct(self, ty: dict) -> bool:
        return "fqn" in ty and self.types.get(ty["fqn"], {}).get("datatype", False)

    def cty(self, ty: dict, outer: str | None = None):
        """jsii type -> Terraform's JSON type notation; `outer` picks list or set."""
        ty = self.strip_union(ty)
        if "primitive" in ty:
            p = ty["primitive"]
            return {"string": "string", "number": "number", "boolean": "bool",
                    "any": "dynamic", "json": "dynamic"}[p]
        if "collection" in ty:
            kind = ty["collection"]["kind"]
            elem = self.cty(ty["collection"]["elementtype"])
            if kind == "map":
                return ["map", elem]
            return [outer if outer in ("list", "set") else "list", elem]
        fqn = ty.get("fqn", "")
        simple = {"cdktf.StringMap": ["map", "string"], "cdktf.NumberMap": ["map", "number"],
                  "cdktf.BooleanMap": ["map", "bool"], "cdktf.AnyMap": ["map", "dynamic"],
                  "cdktf.StringMapList": ["list", ["map", "string"]],
                  "cdktf.NumberMapList": ["list", ["map", "number"]],
                  "cdktf.BooleanMapList": ["list", ["map", "bool"]],
                  "cdktf.AnyMapList": ["list", ["map", "dynamic"]]}
        if fqn in simple:
            return simple[fqn]
        raise ExtractError(f"no Terraform type for {ty}")

    # --- blocks ---------------------------------------------------------------------------

    def block(self, struct_fqn: str | None, out_fqn: str, hcl_key: str | None, where: str) -> dict:
        """Schema of one block: struct = its arguments, out = the class with its accessors."""
        out_attrs = self.ts(out_fqn).classes.get(self.short(out_fqn))
        if out_attrs is None:
            raise ExtractError(f"{where}: class {self.short(out_fqn)} not in generated code")
        hcl = self.ts(out_fqn).hcl.get(hcl_key, {}) if hcl_key else {}
        class_props = {p["name"]: p for p in self.types[out_fqn].get("properties", [])
                       if not p.get("static")}
        struct_props = {}
        if struct_fqn:
            for p in self.types[struct_fqn].get("properties", []):
                struct_props[p["name"]] = p
            unknown = set(struct_props) - set(out_attrs)
            if unknown:
                raise ExtractError(f"{where}: arguments without accessors: {sorted(unknown)}")
        attributes: dict[str, dict] = {}
        block_types: dict[str, dict] = {}
        for camel, ta in sorted(out_attrs.items()):
            name = ta.name
            path = f"{where}.{name}"
            sp = struct_props.get(camel)
            if sp is not None:
                docs = sp.get("docs", {})
                link = LINK_RE.search(docs.get("summary", "") + " " + docs.get("remarks", ""))
                if not link or link.group(4) != name:
                    raise ExtractError(f"{path}: docs link {link and link.group(4)} != {name}")
                self.versions.add(link.group(1))
                ty = sp["type"]
                if ta.computed and not ta.optional and not ta.required:
                    raise ExtractError(f"{path}: computed-only yet in the config struct")
                if bool(sp.get("optional")) == ta.required:
                    raise ExtractError(f"{path}: optional={sp.get('optional')} "
                                       f"vs required={ta.required}")
                inner = self.strip_union(ty)
                elem = inner["collection"]["elementtype"] if "collection" in inner else inner
                if self.is_struct(elem):
                    is_block, hcl_type, _ = hcl.get(name, (True, "", ""))
                    if name not in hcl:
                        raise ExtractError(f"{path}: nested block missing from the HCL synthesis")
                    holder = class_props[camel]["type"]["fqn"]
                    nested_out = self.output_of(holder)
                    nested_struct = elem["fqn"]
                    fn = self.short(nested_struct)
                    fn = fn[0].lower() + fn[1:] + "ToHclTerraform"
                    bt: dict = {"block": self.block(nested_struct, nested_out, fn, path)}
                    if "collection" in inner:
                        if inner["collection"]["kind"] == "map":
                            bt["nesting_mode"] = "map"
                        else:
                            bt["nesting_mode"] = hcl_type if hcl_type in ("list", "set") else "list"
                    elif hcl_type == "struct":
                        bt["nesting_mode"] = "single"
                    else:
                        bt["nesting_mode"] = hcl_type if hcl_type in ("list", "set") else "list"
                        bt["max_items"] = 1
                    if ta.required and bt["nesting_mode"] in ("list", "set"):
                        bt["min_items"] = 1
                    if ta.required and bt["nesting_mode"] == "single":
                        bt["required"] = True
                    if not is_block:
                        raise ExtractError(f"{path}: struct-typed but not synthesised as a block")
                    block_types[name] = bt
                    continue
                outer = hcl.get(name, (False, "simple", ""))[1]
                try:
                    attr = {"type": self.cty(ty, outer)}
                except ExtractError as exc:
                    raise ExtractError(f"{path}: {exc}") from None
            else:
                # computed-only attribute (or an argument the struct does not list: refuse)
                if not ta.computed or ta.optional or ta.required:
                    raise ExtractError(f"{path}: settable attribute missing from the config struct")
                prop = class_props.get(camel)
                if prop is None:
                    raise ExtractError(f"{path}: accessor {camel} not in the assembly")
                attr = {"type": self.computed_type(prop["type"], ta, path)}
            if ta.required:
                attr["required"] = True
            if ta.optional:
                attr["optional"] = True
            if ta.computed:
                attr["computed"] = True
            attributes[name] = attr
        out: dict = {}
        if attributes:
            out["attributes"] = attributes
        if block_types:
            out["block_types"] = block_types
        return out

    def computed_type(self, ty: dict, ta: TsAttr, path: str):
        ty = self.strip_union(ty)
        fqn = ty.get("fqn", "")
        if fqn and not fqn.startswith("cdktf.") and fqn in self.types:
            t = self.types[fqn]
            elem_out = self.output_of(fqn)
            attrs = self.block(None, elem_out, None, path).get("attributes", {})
            obj = ["object", {k: v["type"] for k, v in sorted(attrs.items())}]
            base = t.get("base")
            if base == "cdktf.ComplexList":
                return ["set" if ta.wraps_set else "list", obj]
            if base == "cdktf.ComplexMap":
                return ["map", obj]
            if base == "cdktf.ComplexObject":
                return obj
            raise ExtractError(f"{path}: computed value held by {fqn} ({base})")
        if ty.get("fqn") == "cdktf.IResolvable" or "collection" in ty:
            return self.getter_type(ta, path)
        return self.cty(ty)

    GETTERS = {"getStringAttribute": "string", "getNumberAttribute": "number",
               "getBooleanAttribute": "bool", "getListAttribute": ["list", "string"],
               "getNumberListAttribute": ["list", "number"],
               "getStringMapAttribute": ["map", "string"],
               "getNumberMapAttribute": ["map", "number"],
               "getBooleanMapAttribute": ["map", "bool"],
               "getAnyMapAttribute": ["map", "dynamic"],
               "interpolationForAttribute": "dynamic"}

    def getter_type(self, ta: TsAttr, path: str):
        m = re.search(r"this\.(\w+)\('" + re.escape(ta.name) + r"'\)", ta.getter)
        if not m or m.group(1) not in self.GETTERS:
            raise ExtractError(f"{path}: cannot type accessor `{ta.getter}`")
        ty = self.GETTERS[m.group(1)]
        if isinstance(ty, list) and ty[0] == "list" and "Fn.tolist(" in ta.getter:
            ty = ["set", ty[1]]
        return ty

    def schema_for(self, kind: str, tf_type: str) -> dict:
        fqn = self.index[(kind, tf_type)]  # type: ignore[index]
        cls = self.types[fqn]
        params = cls["initializer"]["parameters"]
        config = [p for p in params if p["name"] == "config"]
        if len(config) != 1:
            raise ExtractError(f"{fqn}: no config parameter")
        config_fqn = config[0]["type"]["fqn"]
        return {"block": self.block(config_fqn, fqn, self.short(fqn), tf_type)}


def types_in_use(repo: Path) -> tuple[set[str], set[str]]:
    resources, data = set(BASE_RESOURCES), set(BASE_DATA_SOURCES)
    for pattern in SCAN_GLOBS:
        for path in sorted(repo.glob(pattern)):
            text = path.read_text(encoding="utf-8", errors="replace")
            for kind, tf_type in DECL_RE.findall(text):
                if tf_type.startswith("aws_"):
                    (resources if kind == "resource" else data).add(tf_type)
    return resources, data


def extract(wheel: Path, resources: set[str] | None, data_sources: set[str] | None) -> dict:
    """resources/data_sources None means every type the provider has."""
    state: dict = {}

    def wanted(assembly: dict) -> list[str]:
        ex = Extractor(assembly)
        state["ex"] = ex
        state["fingerprint"] = assembly.get("fingerprint", "")
        state["assembly"] = f'{assembly["name"]}@{assembly["version"]}'
        picks = []
        for kind, names in (("resources", resources), ("data-sources", data_sources)):
            have = {t for (k, t) in ex.index if k == kind}
            chosen = have if names is None else names & have
            state[kind] = (sorted(chosen), sorted((names or set()) - have))
            picks += [ex.directory(ex.index[(kind, t)]) for t in chosen]
        return sorted(set(picks))

    _, sources = open_bindings(wheel, wanted)
    ex: Extractor = state["ex"]
    ex.sources = {d: parse_ts(src) for d, src in sources.items()}
    for mod in ex.sources.values():
        ex.versions |= mod.provider_versions
    out_r = {t: ex.schema_for("resources", t) for t in state["resources"][0]}
    out_d = {t: ex.schema_for("data-sources", t) for t in state["data-sources"][0]}
    if len(ex.versions) != 1:
        raise ExtractError(f"bindings name several provider versions: {sorted(ex.versions)}")
    version = ex.versions.pop()
    doc = {
        "format_version": "1.0",
        "provider_version": version,
        "generated_from": {
            "package": f"{DIST}=={wheel.name.split('-')[1]}",
            "assembly": state["assembly"],
            "fingerprint": state["fingerprint"],
            "tool": "tools/extract_schema.py",
        },
        "not_in_provider": {"resources": state["resources"][1],
                            "data_sources": state["data-sources"][1]},
        "provider_schemas": {
            PROVIDER_ADDRESS: {"resource_schemas": out_r, "data_source_schemas": out_d},
        },
    }
    return doc


_DROP_KEYS = {"description", "description_kind", "version"}


def _reduce(node):
    """Drop documentation and schema versions from a real schema dump (keep the structure)."""
    if isinstance(node, dict):
        return {k: _reduce(v) for k, v in node.items() if k not in _DROP_KEYS}
    if isinstance(node, list):
        return [_reduce(v) for v in node]
    return node


def from_terraform_json(dump: Path, provider_version: str, resources: set[str] | None,
                        data_sources: set[str] | None) -> dict:
    """Reduce `terraform providers schema -json` output to the same file, for when the provider
    can be installed (the cdktf bindings stop at hashicorp/aws 6.25.0)."""
    doc = json.loads(dump.read_text(encoding="utf-8"))
    schemas = doc.get("provider_schemas", {})
    provider = schemas.get(PROVIDER_ADDRESS)
    if provider is None:
        raise ExtractError(f"{dump}: no {PROVIDER_ADDRESS} in provider_schemas")
    out: dict = {}
    missing: dict = {}
    for key, names in (("resource_schemas", resources), ("data_source_schemas", data_sources)):
        have = provider.get(key, {})
        chosen = set(have) if names is None else names & set(have)
        out[key] = {t: {"block": _reduce(have[t]["block"])} for t in sorted(chosen)}
        missing[key] = sorted((names or set()) - set(have))
    return {
        "format_version": "1.0",
        "provider_version": provider_version,
        "generated_from": {"terraform_providers_schema_json": dump.name,
                           "tool": "tools/extract_schema.py"},
        "not_in_provider": {"resources": missing["resource_schemas"],
                            "data_sources": missing["data_source_schemas"]},
        "provider_schemas": {PROVIDER_ADDRESS: out},
    }


def render(doc: dict) -> str:
    return json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--wheel", type=Path, help=f"a downloaded {DIST} wheel")
    src.add_argument("--download", action="store_true",
                     help=f"pip download {DIST}=={DIST_VERSION} into --cache-dir (once)")
    src.add_argument("--from-terraform-json", type=Path, metavar="DUMP",
                     help="reduce `terraform providers schema -json` output instead "
                          "(needs --provider-version)")
    ap.add_argument("--provider-version", help="the hashicorp/aws version DUMP came from")
    ap.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    ap.add_argument("--version", default=DIST_VERSION, help="bindings version for --download")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--repo", type=Path, default=REPO, help="where templates/ and tests/ are")
    ap.add_argument("--all", action="store_true", help="every resource and data source (large)")
    args = ap.parse_args(argv)

    resources, data = (None, None) if args.all else types_in_use(args.repo)
    wheel: Path | None = None
    if args.from_terraform_json:
        if not args.provider_version:
            print("error: --from-terraform-json needs --provider-version (see "
                  ".terraform.lock.hcl)", file=sys.stderr)
            return 2
    elif args.wheel:
        wheel = args.wheel
    else:
        cached = sorted(args.cache_dir.glob(f"cdktf_cdktf_provider_aws-{args.version}-*.whl"))
        if args.download:
            wheel = download(args.cache_dir, args.version)
        elif cached:
            wheel = cached[0]
        else:
            print(f"error: no wheel: pass --wheel PATH or --download ({DIST}=={args.version}, "
                  f"about 60 MB, cached in {args.cache_dir})", file=sys.stderr)
            return 2
    source = wheel or args.from_terraform_json
    if not source.is_file():
        print(f"error: {source}: no such file", file=sys.stderr)
        return 2
    try:
        if wheel is None:
            doc = from_terraform_json(source, args.provider_version, resources, data)
        else:
            doc = extract(wheel, resources, data)
    except ExtractError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    text = render(doc)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    schemas = doc["provider_schemas"][PROVIDER_ADDRESS]
    print(f"{args.out}: hashicorp/aws {doc['provider_version']}, "
          f"{len(schemas['resource_schemas'])} resources, "
          f"{len(schemas['data_source_schemas'])} data sources, {len(text)} bytes",
          file=sys.stderr)
    for kind, missing in doc["not_in_provider"].items():
        for tf_type in missing:
            where = [str(p.relative_to(args.repo)) for pattern in SCAN_GLOBS
                     for p in sorted(args.repo.glob(pattern))
                     if f'"{tf_type}"' in p.read_text(encoding="utf-8", errors="replace")]
            print(f"warning: {tf_type} is not one of the {kind.replace('_', ' ')} of "
                  f"hashicorp/aws {doc['provider_version']} "
                  f"(declared in {', '.join(where) or 'the base list'})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
