"""symbolic — the only place formulas are written.

sympy defines one neuron's cell ``h_t = σ(w h_{t-1} + ⟨u, x_t⟩)`` and the
activations; everything else (sensitivity recurrences, bound recurrences,
closed forms, numeric code for arrays and for intervals) is *derived* here and
code-generated.  Importing this package does not import sympy: the generated
code is cached on disk (see :mod:`symbolic.codegen`).

Public API::

    symbolic.resolve("tanh")                      # Activation (validated)
    symbolic.cell_functions()                     # generated templates (module)
    symbolic.activation_functions(act)            # generated σ^{(k)} (module)
    symbolic.constants("tanh", alpha=0.7, steps=12)
        # {"sigma": {...}, "alpha_m": ..., "t": [...], "L": [...], "beta": [...]}
"""

from __future__ import annotations

from .activations import Activation, ActivationError, resolve
from .codegen import activation_module, cell_module

__all__ = [
    "Activation",
    "ActivationError",
    "resolve",
    "cell_functions",
    "activation_functions",
    "constants",
]


def cell_functions():
    """The generated per-neuron update templates (see :mod:`symbolic.cell`)."""
    return cell_module()


def activation_functions(act: Activation | str):
    """Generated σ, σ', σ'', σ''' (``d{k}_array``, ``d{k}_interval``) for ``act``."""
    if isinstance(act, str):
        act = resolve(act)
    return activation_module(act.source)


def constants(activation: str, alpha, steps: int) -> dict:
    """Certified activation constants and closed-form L_t, β_t at α_m = alpha.

    A convenience façade over :func:`certify.trusted.activation_constants.closed_form_constants`
    (certification needs the interval engine, which lives in ``certify``).
    Values are mpmath.iv intervals.
    """
    from certify.trusted.activation_constants import closed_form_constants

    return closed_form_constants(activation, alpha, steps)
