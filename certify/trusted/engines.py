"""The registry of trusted engines: names, aliases, availability, construction.

It imports every engine (:mod:`certify.trusted.engine_iv` for mpmath.iv;
:mod:`certify.trusted.engine_flint` for python-flint, on first use); the
engines import only their shared base, :mod:`certify.trusted.engine`, never
this module or each other.
"""

from __future__ import annotations

from functools import lru_cache

from .engine_iv import IVEngine

__all__ = ["DEFAULT_ENGINE", "ENGINES", "ENGINE_NAMES", "EngineUnavailable", "FLINT_HINT",
           "canonical_engine", "engine_unavailable", "get_engine"]


class EngineUnavailable(ValueError):
    """A known interval engine whose package is not installed."""


FLINT_HINT = "pip install 'rnn-certify[flint]' (python-flint >= 0.6)"


def _flint_engine(act):
    """:class:`certify.trusted.engine_flint.FlintEngine` (imported on first use)."""
    try:
        from .engine_flint import FlintEngine
    except ImportError as exc:
        if (exc.name or "").split(".")[0] != "flint":
            raise  # a defect of ours, not a missing package: keep the traceback
        raise EngineUnavailable(f"interval engine 'python-flint' needs the python-flint "
                                f"package, which is not installed ({exc}); "
                                f"{FLINT_HINT}") from None
    return FlintEngine(act)


#: engine name → constructor ``f(activation) -> engine``; aliases map to the same
ENGINES = {"mpmath.iv": IVEngine, "iv": IVEngine, "mpmath": IVEngine,
           "python-flint": _flint_engine, "flint": _flint_engine, "arb": _flint_engine}
#: canonical name of each registered name (the one certificates record)
ENGINE_NAMES = {"mpmath.iv": "mpmath.iv", "iv": "mpmath.iv", "mpmath": "mpmath.iv",
                "python-flint": "python-flint", "flint": "python-flint", "arb": "python-flint"}
DEFAULT_ENGINE = "mpmath.iv"


def canonical_engine(name: str | None) -> str:
    """The canonical name of the engine called ``name`` (None: the default);
    ValueError for an unknown name."""
    key = (name or DEFAULT_ENGINE).strip().lower()
    if key not in ENGINE_NAMES:
        raise ValueError(f"unknown interval engine {name!r} (available: "
                         f"{', '.join(sorted(set(ENGINE_NAMES.values())))}; aliases "
                         f"{', '.join(k for k in ENGINE_NAMES if k not in ENGINE_NAMES.values())})")
    return ENGINE_NAMES[key]


def engine_unavailable(name: str | None) -> str | None:
    """Why the engine called ``name`` cannot run here (None when it can); ValueError
    for an unknown name.  Checks that the package is importable, nothing more."""
    canon = canonical_engine(name)
    if canon == "python-flint":
        import importlib.util

        if importlib.util.find_spec("flint") is None:
            return f"interval engine 'python-flint' needs the python-flint package, which " \
                   f"is not installed; {FLINT_HINT}"
    return None


@lru_cache(maxsize=16)
def get_engine(name: str, act):
    """The trusted engine called ``name`` ("mpmath.iv", the default; "python-flint")
    for ``act``.  ValueError for an unknown name, :class:`EngineUnavailable` when
    the engine's package is not installed."""
    key = (name or DEFAULT_ENGINE).strip().lower()
    canonical_engine(key)
    return ENGINES[key](act)
