"""cases — a case file becomes a validated :class:`~certify.cases.case.Case`.

Owns: parsing and validating the TOML case format (:mod:`.case`), the data
sources and series (:mod:`.data`), the targets y_j (:mod:`.targets`) and the
symmetric initialisation θ(0) (:mod:`.init`).  Every user mistake becomes a
one-line :class:`~certify.errors.UserError` naming the file and the key.

May import: :mod:`certify.errors`, :mod:`symbolic` (activations), and from
:mod:`certify.trusted` only the questions a case must answer before it is
accepted (is this activation certifiable, is this engine available).  Nothing
from :mod:`certify.bounds`, :mod:`certify.train` or :mod:`certify.output`.
"""
