"""Build hook: ship the Jinja2 templates and the provider schema inside the wheel.

`templates/` stays at the top of the repository (it is what people read and edit) and the schema
stays where `make schema` writes it; the build copies both into the package, where an installed
harden finds them (provisioner/package_data.py holds the same mapping for run time). A plain
package-dir mapping would need every sub-package listed by hand; this keeps `packages.find`.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

# source in the repository -> destination inside the package (keep in step with package_data.py)
BUNDLED = {
    "templates": "provisioner/templates",
    "tests/data/aws_provider_schema.json": "provisioner/data/aws_provider_schema.json",
}


class BuildWithData(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads them from the checkout
        root = Path(__file__).resolve().parent
        for source, target in BUNDLED.items():
            src, dst = root / source, Path(self.build_lib) / target
            if src.is_dir():
                shutil.copytree(src, dst, dirs_exist_ok=True)
            else:
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dst)


setup(cmdclass={"build_py": BuildWithData})
