"""Read rendered Terraform the way the tests need it: python-hcl2, one dict per module dir.

String values come back with their quotes stripped but *not* unescaped (python-hcl2 keeps the
source text), and references come back as "${...}" strings.
"""

from __future__ import annotations

from pathlib import Path

import hcl2
from hcl2.utils import SerializationOptions

_OPTIONS = SerializationOptions(strip_string_quotes=True, explicit_blocks=False, with_comments=False)


def parse_file(path: Path) -> dict:
    return hcl2.loads(Path(path).read_text(encoding="utf-8"), serialization_options=_OPTIONS)


def load_hcl(directory: Path) -> dict:
    """Merge every *.tf of one module directory:
    {"resource": {type: {name: body}}, "data": {...}, "variable": {name: body},
     "output": {...}, "module": {...}, "locals": {...}, "terraform": [...], "provider": {...}}"""
    merged: dict = {"resource": {}, "data": {}, "variable": {}, "output": {}, "module": {},
                    "locals": {}, "terraform": [], "provider": {}, "check": {}}
    files = sorted(Path(directory).glob("*.tf"))
    if not files:
        raise FileNotFoundError(f"no .tf files in {directory}")
    for path in files:
        doc = parse_file(path)
        for block in doc.get("resource", []) + []:
            for rtype, named in block.items():
                merged["resource"].setdefault(rtype, {}).update(named)
        for block in doc.get("data", []):
            for dtype, named in block.items():
                merged["data"].setdefault(dtype, {}).update(named)
        for key in ("variable", "output", "module", "provider", "check"):
            for block in doc.get(key, []):
                merged[key].update(block)
        for block in doc.get("locals", []):
            merged["locals"].update(block)
        merged["terraform"].extend(doc.get("terraform", []))
    return merged
