"""The packages of the folders ``pyproject.toml`` maps under ``kubestack.*`` (``[tool.setuptools.package-dir]``),
found rather than listed: a new plugin folder installs with no line here or there. Everything else about the
project is in ``pyproject.toml``."""

import tomllib
from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).resolve().parent
SKIPPED = ("lib", "lib.*", "target", "target.*", "*.lib", "*.lib.*", "*.target", "*.target.*")
"""Build output that may hold Python files (a Maven ``target/``, a vendored ``lib/``): never a package."""


def mapped_packages(root: Path = ROOT) -> list[str]:
    """Each mapped package and every package below its folder, named under the mapped name."""
    mapping = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    found = {name for name in mapping}
    for name, folder in mapping.items():
        found.update(f"{name}.{sub}" for sub in find_packages(root / folder, exclude=SKIPPED))
    return sorted(found)


if __name__ == "__main__":
    setup(packages=mapped_packages())
