r"""trusted — the trusted computing base: every certified number rests on this folder.

Enclosure contract
------------------
For a real function f and its interval (or ball) version F, for every input
box X:

    F(X) ⊇ { f(x) : x ∈ X }

— the result contains the exact value for every point of the inputs; it is
not necessarily the tightest.  Endpoints are rounded outward (lower
``round_floor``, upper ``round_ceiling``).  An enclosure that carries no
information (NaN, an infinite radius) never makes a bound smaller: it becomes
+inf, never a finite number.  Predicates are named apart: *certainly*
(true for every point of the box; may prune, may pass) vs *possibly* (true
for some point; never passes).

Trusted primitives
------------------
Only these are relied on; nothing else here is taken on faith.

* mpmath.iv (the default engine, 53 bits): + − × ÷, integer powers, ``exp``,
  ``log``, ``sqrt``, ``sin``, ``cos``, ``tan``, ``pi``; the transcendental ones
  widened outward by 4 ulps (:func:`.intervals._widen`).  Every activation is
  rewritten into these by :func:`symbolic.activations.trusted_form`.
* python-flint's Arb balls (the optional second engine, :mod:`.engine_flint`):
  the same operations on ``arb``.
* IEEE 754 float64 + − × and ``sqrt``, correctly rounded, in the screening
  path (:mod:`.screen`) only, each result widened outward by at least one ulp;
  it may prune boxes, it never reports a number.
* Python's exact integers and :class:`fractions.Fraction` (spectral bounds,
  decimal strings of endpoints).

Modules
-------
:mod:`.intervals` (the contract on mpmath.iv, tight activation enclosures),
:mod:`.activation_constants` (the σ-constants), :mod:`.engine` (the kernels
and the :class:`~.engine.NumberSystem` base both engines share),
:mod:`.engine_iv` (mpmath.iv) and :mod:`.engine_flint` (Arb), which import the
base and never each other; :mod:`.engines` (the registry, the only module that
imports both); :mod:`.screen` (vectorized rigorous screening);
:mod:`.expansion` (the choice of expansion points).

May import: :mod:`symbolic` (the generated templates and activations), mpmath,
NumPy, python-flint.  Nothing from :mod:`certify.cases`, :mod:`certify.bounds`,
:mod:`certify.train`, :mod:`certify.output` or the runner.
"""
