"""Build hook only; the project's metadata is in pyproject.toml.

config/config.yaml is the user-facing default config that Snakemake reads. A wheel carries a
copy of it as package data (medgen/resources/config.yaml), made here from that same file at
build time so there is one source to edit: ``medgen validate`` then works without a checkout.
Editable installs read config/config.yaml from the checkout and skip the copy.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

DEFAULT_CONFIG = Path(__file__).resolve().parent / "config" / "config.yaml"


class BuildPyWithDefaultConfig(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target = Path(self.build_lib) / "medgen" / "resources" / "config.yaml"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(DEFAULT_CONFIG, target)

    def get_outputs(self, include_bytecode=True):
        outputs = super().get_outputs(include_bytecode)
        if getattr(self, "editable_mode", False):
            return outputs
        return [*outputs, str(Path(self.build_lib) / "medgen" / "resources" / "config.yaml")]


setup(cmdclass={"build_py": BuildPyWithDefaultConfig})
