"""Provider-free stand-ins of a rendered root: the same modules, module keys, resource names and
count/for_each instances, every resource a `terraform_data` (Terraform's built-in, which needs no
provider and can be imported). Import blocks written for the real root are rewritten onto the
stand-ins, so the bundled Terraform plans them: the block shape and the address mapping are
checked by Terraform itself where the AWS provider cannot be installed."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Callable

# module.<name>["key"].<type>.<name>[index] -> ....terraform_data.<type>__<name>[index]
_TAIL = re.compile(r'(?P<head>(?:module\.[a-z_]+(?:\["[^"]+"\])?\.)*)(?P<type>aws_[a-z0-9_]+)\.(?P<name>[a-z0-9_]+)'
                   r'(?P<index>\[[^\]]+\])?$')


def standin_address(address: str) -> str:
    m = _TAIL.match(address)
    if not m:
        raise ValueError(f"not a resource instance address: {address}")
    return f"{m['head']}terraform_data.{m['type']}__{m['name']}{m['index'] or ''}"


def _resource_blocks(parsed: dict, shape: Callable[[str, str, dict], Any], var: str | None) -> str:
    out = []
    for rtype, named in sorted(parsed["resource"].items()):
        for name, body in sorted(named.items()):
            label = f"{rtype}__{name}"
            own = f"var.{var}[{json.dumps(label)}]" if var else None
            if "for_each" in body:
                meta = f"  for_each = toset({own or json.dumps(sorted(shape(rtype, name, body)))})\n"
            elif "count" in body:
                meta = f"  count = {own or shape(rtype, name, body)}\n"
            else:
                meta = ""
            out.append(f'resource "terraform_data" "{label}" {{\n{meta}}}\n')
    return "\n".join(out)


def write_standins(out: Path, root: dict, modules: dict[str, list[tuple[str | None, dict, Callable]]],
                   root_shape: Callable[[str, str, dict], Any]) -> None:
    """`root`: the parsed root; `modules`: module name -> [(for_each key or None, parsed module,
    shape(rtype, name, body) -> count or for_each keys of that instance)]."""
    out.mkdir(parents=True, exist_ok=True)
    main = [_resource_blocks(root, root_shape, None)]
    for name, instances in sorted(modules.items()):
        parsed = instances[0][1]
        (out / name).mkdir(exist_ok=True)
        (out / name / "main.tf").write_text(
            'variable "shape" {\n  type = any\n}\n\n' + _resource_blocks(parsed, lambda *a: None, "shape"))
        shapes = {}
        for key, module, shape in instances:
            per = {}
            for rtype, named in module["resource"].items():
                for rname, body in named.items():
                    if "for_each" in body or "count" in body:
                        value = shape(rtype, rname, body)
                        per[f"{rtype}__{rname}"] = sorted(value) if "for_each" in body else value
            shapes[key] = per
        if instances[0][0] is None:
            main.append(f'module "{name}" {{\n  source = "./{name}"\n  shape  = {json.dumps(shapes[None])}\n}}\n')
        else:
            main.append(f'module "{name}" {{\n  source   = "./{name}"\n  for_each = {json.dumps(shapes)}\n'
                        f'  shape    = each.value\n}}\n')
    (out / "main.tf").write_text("\n".join(main))
