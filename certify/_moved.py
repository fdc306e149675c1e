"""Old import paths of the flat layout (before the rooms of issue #12), for one release.

``import certify.screen`` (or ``from certify.data_constants import …``) still
works: a meta-path finder answers each old name with the module that now holds
it and emits one :class:`DeprecationWarning` naming the new path.  The old
names are not files, so the folder listing shows only the rooms.
``certify.rnn`` is public API (INTERFACE.md) and resolves without a warning.
``certify.engine`` held both the engines' shared base and the mpmath.iv engine
(and, before that, the registry); its old names resolve through one module
that looks them up in the three new ones.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import types
import warnings

#: old module → new module(s), searched in order for a name
MOVED: dict[str, tuple[str, ...]] = {
    "certify.case": ("certify.cases.case",),
    "certify.data": ("certify.cases.data",),
    "certify.targets": ("certify.cases.targets",),
    "certify.init": ("certify.cases.init",),
    "certify.intervals": ("certify.trusted.intervals",),
    "certify.engine": ("certify.trusted.engine", "certify.trusted.engine_iv",
                       "certify.trusted.engines"),
    "certify.engine_flint": ("certify.trusted.engine_flint",),
    "certify.engines": ("certify.trusted.engines",),
    "certify.activation_constants": ("certify.trusted.activation_constants",),
    "certify.screen": ("certify.trusted.screen",),
    "certify.expansion": ("certify.trusted.expansion",),
    "certify.data_constants": ("certify.bounds.data_constants",),
    "certify.rnn": ("certify.train.rnn",),
    "certify.executor": ("certify.train.executor",),
    "certify.projection": ("certify.train.projection",),
    "certify.comparator": ("certify.train.comparator",),
    "certify.certificate": ("certify.output.certificate",),
    "certify.report": ("certify.output.report",),
    "certify.compare": ("certify.output.compare",),
}

#: old paths that are public API: no warning
PUBLIC = frozenset({"certify.rnn"})


def _union(old: str, news: tuple[str, ...]) -> types.ModuleType:
    """One module whose attributes are looked up in ``news`` in order."""
    mods = [importlib.import_module(n) for n in news]
    proxy = types.ModuleType(old, f"Deprecated: moved to {', '.join(news)}.")

    def __getattr__(name):
        for m in mods:
            if hasattr(m, name):
                return getattr(m, name)
        raise AttributeError(f"module {old!r} has no attribute {name!r}")

    proxy.__getattr__ = __getattr__
    return proxy


class _Loader(importlib.abc.Loader):
    def create_module(self, spec):
        news = MOVED[spec.name]
        if spec.name not in PUBLIC:
            warnings.warn(f"{spec.name} moved to {' / '.join(news)}; the old path goes in "
                          "the next release", DeprecationWarning, stacklevel=2)
        if len(news) == 1:
            module = importlib.import_module(news[0])
            spec.loader_state = module.__spec__  # the import system overwrites __spec__
            return module
        return _union(spec.name, news)

    def exec_module(self, module):
        """The module is the new one, already executed; give it back its own spec (the
        import system set ``__spec__`` to the old name's, which would make its relative
        imports resolve against the old package)."""
        real = module.__spec__.loader_state
        if real is not None:
            module.__spec__ = real


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname in MOVED:
            return importlib.util.spec_from_loader(fullname, _Loader())
        return None


def install() -> None:
    """Put the finder on ``sys.meta_path`` once (idempotent)."""
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.append(_Finder())
