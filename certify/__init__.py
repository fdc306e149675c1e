"""certify — numbers with guarantees for gradient descent on diagonal Elman RNNs.

*Certified* numbers are outward-rounded enclosures from the trusted interval
engine (mpmath.iv; for the data-specific bounds optionally Arb balls through
python-flint, :mod:`certify.trusted.engine_flint`); *observed* numbers are floating
point from the executor.
Every certificate says which is which (its ``rigor`` section).

Public API::

    import certify
    case = certify.load_case("cases/x.toml")   # validated Case (data, init, target built)
    cert = certify.run(case)                    # Certificate (dict-like; .to_json())
    from certify import rnn                     # forward, loss_and_grad, jvp, check_grads
"""

from __future__ import annotations

from . import _moved
from ._version import __version__

_moved.install()  # old flat-layout paths (certify.screen, …) resolve, with a warning

__all__ = ["__version__", "load_case", "run", "Certificate", "UserError", "certify_activation"]


def __getattr__(name):  # lazy: keep `import certify` light
    if name == "load_case":
        from .cases.case import load_case

        return load_case
    if name == "run":
        from .runner import run

        return run
    if name == "Certificate":
        from .output.certificate import Certificate

        return Certificate
    if name == "UserError":
        from .errors import UserError

        return UserError
    if name == "certify_activation":
        from .trusted.activation_constants import certify_activation

        return certify_activation
    if name == "rnn":
        import importlib

        return importlib.import_module(".train.rnn", __name__)
    raise AttributeError(f"module 'certify' has no attribute {name!r}")
