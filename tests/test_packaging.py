"""Every Python folder installs under ``kubestack.*`` (a non-editable install only ships the packages setup.py finds
in the folders pyproject.toml maps), and a plugin is named once in pyproject.toml: its entry point."""

import importlib.util
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _setup_module():
    spec = importlib.util.spec_from_file_location("kubestack_setup", ROOT / "setup.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # not run as __main__: setup() is not called
    return module


def test_every_package_folder_is_found() -> None:
    mapping = CONFIG["tool"]["setuptools"]["package-dir"]
    expected = set()
    for package, folder in mapping.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / folder)
            if any(part.startswith(".") or part in {"lib", "target"} for part in relative.parts):
                continue
            expected.add(".".join([package, *relative.parts]))
    assert {"kubestack.plugins.redis", "kubestack.pipeline.notify", "kubestack.deploy.kube"} <= expected
    assert set(_setup_module().mapped_packages()) == expected
    assert "packages" not in CONFIG["tool"]["setuptools"], "packages are found, not listed"


def test_each_plugin_is_named_once_in_pyproject() -> None:
    text = (ROOT / "pyproject.toml").read_text()
    for name, target in CONFIG["project"]["entry-points"]["kubestack.plugins"].items():
        package = target.split(":")[0]
        assert text.count(f'"{package}"') + text.count(f"{package}:") == 1, package
