"""Every Python folder installs under ``kubestack.*`` (a non-editable install only ships listed packages)."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_folder_is_listed_in_pyproject() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    mapping = config["package-dir"]
    expected = set()
    for package, folder in mapping.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / folder)
            if any(part.startswith(".") or part in {"lib", "target"} for part in relative.parts):
                continue
            expected.add(".".join([package, *relative.parts]))
    assert expected == set(config["packages"])
