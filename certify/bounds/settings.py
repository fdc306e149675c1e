"""The inputs of :func:`certify.bounds.data_constants.certify_data_constants` that travel together.

:class:`BoundsSettings`: how hard to work (tolerance, budget, processes, engine,
random points); :class:`Ball`: which set Ω_ρ the sup is taken over (width and
radii).  Both are frozen; ``BoundsSettings`` checks and normalizes its values
when it is made, so a bad setting fails before any work starts.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

__all__ = ["Ball", "BoundsSettings", "DEFAULT_BOX_BUDGET", "DEFAULT_LOWER_SAMPLES",
           "DEFAULT_MEMORY_CAP_MB", "DEFAULT_REL_TOL", "DEFAULT_SETTINGS", "SELECTION_RULES",
           "SPLIT_RULES"]

DEFAULT_REL_TOL = 0.02
DEFAULT_BOX_BUDGET = 2000
DEFAULT_LOWER_SAMPLES = 48
#: random lower-bound points in all (``samples_for``), and the fewest per (neuron, sample)
LOWER_POINTS = 2**17
MIN_LOWER_SAMPLES = 8
#: what the screening may hold at once, all processes together (MiB; see ``memory_cap_mb``)
DEFAULT_MEMORY_CAP_MB = 1536
#: how a box is bisected: at its widest coordinate, or where width × the magnitude of the
#: third derivatives ∂H in that direction (its anchor's enclosure at the box's worst
#: step) is largest — the coordinate that contributes most to the box's excess
SPLIT_RULES = ("widest", "smear")
#: which leaves a round of stage 1 bisects: those in the top half of their neuron set's
#: excess, per criterion (each ‖g_t‖ and ‖H_t‖ on its own), or combined (a leaf's
#: largest excess over all criteria)
SELECTION_RULES = ("per-criterion", "combined")


@dataclass(frozen=True)
class BoundsSettings:
    """Settings of the data-specific certifier (results do not depend on ``jobs``).

    rel_tol: tolerance of the bisection (target (1 + rel_tol)·lower, and the
    least relative improvement per sweep), > 0; box_budget: screening boxes per
    distinct neuron's set (stage 1; the pruning stage may use as many again);
    jobs: processes (at least 1); engine: the trusted interval engine,
    "mpmath.iv" (the default) or "python-flint" (Arb balls,
    :mod:`certify.trusted.engine_flint`); seed: of the random lower-bound points;
    lower_samples: random points per (neuron, sample) (None or 0: the default
    :data:`DEFAULT_LOWER_SAMPLES`; see :attr:`samples`); memory_cap_mb: the
    cap (MiB, all processes together) on what the screening holds at once — the
    third-derivative enclosures ∂H of its boxes and the temporaries of one batch.
    Neuron sets are screened in chunks that fit (a set whose samples alone do
    not fit is split by samples); a refinement that would pass the cap is not
    made, which leaves the bound sound and looser, and the certificate says so;
    scheduler: the address of a dask.distributed scheduler (``tcp://HOST:PORT``):
    the screening chunks and trusted tasks become tasks of that cluster instead
    of ``jobs`` local processes (the same tasks, so the same result);
    split: the bisection rule, one of :data:`SPLIT_RULES` ("smear" by default: as
    tight or tighter than "widest" on every case measured, with every box its own ∂H);
    selection: which leaves are
    bisected, one of :data:`SELECTION_RULES` (any rule gives an exact cover, so a
    sound bound; they differ in how fast it tightens); inherit: a box's bound is also
    capped by its ancestors' (a box lies in each of them) for choosing, pruning and
    covering — False gives the rule before that was added, for comparison;
    trusted_all: the trusted engine evaluates every cover box, not only those whose
    screened bound is above the trusted max found (the rule before, for comparison:
    the same bound up to the cheap-or-own form of each box, at more cost);
    time_limit_s: wall-clock seconds for the whole call, None for no limit.  The
    refinement stops where the screening would pass what is left of it (shared by
    the chunks, ``jobs`` at a time); the cover is then evaluated as it stands,
    sound and looser, and the certificate says so.  The lower bounds and the
    trusted evaluation always run to the end, so the call may take longer; with a
    limit that is reached, the result depends on the machine's speed;
    anchor_levels: boxes at depths that are multiples of it get first-order AD of
    their own (∂H over the box), the others the cheaper mean value form from their
    anchor's ∂H: 1 (the default) gives every box its own, which is tighter per box
    and needs fewer boxes, so it is faster at a given budget; 4 is the rule before.
    """

    rel_tol: float = DEFAULT_REL_TOL
    box_budget: int = DEFAULT_BOX_BUDGET
    jobs: int = 1
    engine: str = "mpmath.iv"
    seed: int = 0
    lower_samples: int | None = None
    memory_cap_mb: int = DEFAULT_MEMORY_CAP_MB
    scheduler: str | None = None
    split: str = "smear"
    selection: str = "combined"
    inherit: bool = True
    trusted_all: bool = False
    time_limit_s: float | None = None
    anchor_levels: int = 1

    def __post_init__(self) -> None:
        if self.selection not in SELECTION_RULES:
            raise ValueError(f"selection must be one of {', '.join(SELECTION_RULES)}, "
                             f"got {self.selection!r}")
        if self.split not in SPLIT_RULES:
            raise ValueError(f"split must be one of {', '.join(SPLIT_RULES)}, "
                             f"got {self.split!r}")
        rel_tol = float(self.rel_tol)
        if not rel_tol > 0:
            raise ValueError("rel_tol must be > 0")
        object.__setattr__(self, "rel_tol", rel_tol)
        object.__setattr__(self, "box_budget", int(self.box_budget))
        object.__setattr__(self, "jobs", max(1, int(self.jobs)))
        if not int(self.memory_cap_mb) >= 64:
            raise ValueError("memory_cap_mb must be >= 64")
        object.__setattr__(self, "memory_cap_mb", int(self.memory_cap_mb))
        if (isinstance(self.anchor_levels, bool)
                or not isinstance(self.anchor_levels, numbers.Integral)
                or self.anchor_levels < 1):
            raise ValueError(f"anchor_levels must be an integer >= 1, got "
                             f"{self.anchor_levels!r}")
        object.__setattr__(self, "anchor_levels", int(self.anchor_levels))
        if self.time_limit_s is not None:
            lim = float(self.time_limit_s)
            if not lim > 0 or lim != lim:
                raise ValueError(f"time_limit_s must be > 0, got {self.time_limit_s!r}")
            object.__setattr__(self, "time_limit_s", lim)

    @property
    def samples(self) -> int:
        """Random lower-bound points per (neuron, sample) when none are set: the default."""
        return int(self.lower_samples or DEFAULT_LOWER_SAMPLES)

    def samples_for(self, pairs: int) -> int:
        """Random lower-bound points per (neuron, sample) for ``pairs`` of them: the
        setting, else the default while pairs × default ≤ :data:`LOWER_POINTS`, else
        fewer (at least :data:`MIN_LOWER_SAMPLES`): the total stays near LOWER_POINTS
        and the projected ascent from the best points does the rest."""
        if self.lower_samples:
            return self.samples
        return min(self.samples, max(MIN_LOWER_SAMPLES, -(-LOWER_POINTS // max(1, pairs))))


#: the settings of a call that names none
DEFAULT_SETTINGS = BoundsSettings()


@dataclass(frozen=True)
class Ball:
    """Ω_ρ = ∏_i [w_i(0) ± ρ_w/√m] × B(u_i(0), ρ_u/√m) for width ``m``.

    rho_w, rho_u: the radii before the 1/√m scaling; decimal strings, Fractions
    or DecimalValue (``.text``) are exact, floats are taken at their value.
    """

    m: int
    rho_w: object
    rho_u: object
