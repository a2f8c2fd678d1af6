"""Imports the agent does not pay for until it uses them.

PyMySQL imports ``cryptography``'s hashes, serialization and padding at import time, for the RSA exchange of
``sha256_password``/``caching_sha2_password`` over an unencrypted connection only; loading them maps the
``cryptography`` Rust library (about 6 MB resident) and ``bcrypt`` into every agent that watches MySQL. Here such
an import gives a stand-in module: the import succeeds when the real module is installed (so PyMySQL still sees
``cryptography`` as available) and the real module is imported the first time one of its names is used; the
stand-in forwards to it from then on.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from importlib.abc import Loader, MetaPathFinder
from importlib.machinery import ModuleSpec

DEFERRED = frozenset({
    "cryptography.hazmat.primitives.hashes",
    "cryptography.hazmat.primitives.serialization",
    "cryptography.hazmat.primitives.asymmetric.padding",
})


class _StandIn(types.ModuleType):
    """Imports the module it stands for at the first attribute it does not have itself."""

    def __getattr__(self, attr: str):
        if attr.startswith("__") and attr.endswith("__") and attr != "__all__":
            raise AttributeError(attr)  # what the import system asks of any module is not a use
        return getattr(self.deferred_load(), attr)

    def deferred_load(self) -> types.ModuleType:
        """The real module, imported now if not yet."""
        real = self.__dict__.get("_deferred_real")
        if real is None:
            name = self.__name__
            if sys.modules.get(name) is self:
                del sys.modules[name]
            real = importlib.import_module(name)  # the finder lets it through: a stand-in exists
            self.__dict__["_deferred_real"] = real
        return real


class _Loaded(Loader):
    """The module its parent's real import already loaded (a submodule imported below a stand-in)."""

    def create_module(self, spec: ModuleSpec) -> types.ModuleType:
        return sys.modules[spec.name]

    def exec_module(self, module: types.ModuleType) -> None:
        pass


class _StandInLoader(Loader):
    def create_module(self, spec: ModuleSpec) -> types.ModuleType:
        return _StandIn(spec.name)

    def exec_module(self, module: types.ModuleType) -> None:
        pass


class DeferredImports(MetaPathFinder):
    """Gives stand-ins for the modules in ``names`` (once each; the real import goes to the other finders)."""

    def __init__(self, names: frozenset[str] = DEFERRED) -> None:
        self.names = names
        self.stood_in: set[str] = set()

    def find_spec(self, fullname: str, path=None, target=None) -> ModuleSpec | None:
        parent = sys.modules.get(fullname.rpartition(".")[0])
        if isinstance(parent, _StandIn):  # a submodule is used: the package is, too
            parent.deferred_load()
            return ModuleSpec(fullname, _Loaded()) if fullname in sys.modules else None
        if fullname not in self.names or fullname in self.stood_in:
            return None
        if importlib.util.find_spec(fullname.rpartition(".")[0]) is None:
            return None
        for finder in sys.meta_path:  # missing stays missing: the import fails as it would have
            real = finder.find_spec(fullname, path, target) if finder is not self and hasattr(finder, "find_spec") \
                else None
            if real is not None:
                self.stood_in.add(fullname)
                spec = ModuleSpec(fullname, _StandInLoader(), is_package=real.submodule_search_locations is not None)
                spec.submodule_search_locations = real.submodule_search_locations  # its submodules load for real
                return spec
        return None


def defer_imports() -> None:
    """Install the deferral (once) before the plugins import their client libraries."""
    if not any(isinstance(finder, DeferredImports) for finder in sys.meta_path):
        sys.meta_path.insert(0, DeferredImports())
