"""Run a module of another source tree of this project (an exported git revision) with this venv's packages:
the baseline side of a side-by-side benchmark.

    python bench/agent/source_tree.py ROOT -m kubestack.agents [ARGS...]

The editable install maps ``kubestack.*`` onto the working tree; a finder put first on ``sys.meta_path`` maps
it onto ROOT instead, with ROOT's own ``[tool.setuptools] package-dir``. A ``kubestack`` module missing from
ROOT is missing, never borrowed from the working tree. Entry points (the plugins) come from the installed
metadata and resolve through the same finder.
"""

from __future__ import annotations

import runpy
import sys
import tomllib
from importlib.abc import MetaPathFinder
from importlib.machinery import ModuleSpec, PathFinder
from importlib.util import spec_from_file_location
from pathlib import Path


class SourceTreeFinder(MetaPathFinder):
    def __init__(self, root: Path) -> None:
        config = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
        self.packages = {name: root / folder for name, folder in config.items()}

    def find_spec(self, fullname: str, path=None, target=None) -> ModuleSpec | None:
        if fullname != "kubestack" and not fullname.startswith("kubestack."):
            return None
        folder = self.packages.get(fullname)
        if folder is not None:
            return spec_from_file_location(fullname, folder / "__init__.py", submodule_search_locations=[str(folder)])
        parent = sys.modules[fullname.rpartition(".")[0]]
        spec = PathFinder.find_spec(fullname, parent.__path__)
        if spec is None:
            raise ModuleNotFoundError(f"{fullname} is not in this source tree", name=fullname)
        return spec


def main(argv: list[str]) -> None:
    if len(argv) < 3 or argv[1] != "-m":
        raise SystemExit(__doc__.splitlines()[3].strip())
    root, module = Path(argv[0]).resolve(), argv[2]
    sys.meta_path.insert(0, SourceTreeFinder(root))
    sys.argv = [module, *argv[3:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
