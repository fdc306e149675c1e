"""bounds — data-specific constants on the ball Ω_ρ, tighter than the closed forms.

Owns: branch and bound over the parameter ball (screening to prune, the final
cover evaluated by a trusted engine), the certified upper bounds L_t, β_t for
the case's own data and the observed lower bounds that say how loose they are
(:mod:`.data_constants`).

May import: :mod:`certify.trusted` (every certified number it reports comes
from there), :mod:`certify.errors`, :mod:`symbolic`.  Nothing from
:mod:`certify.train` or :mod:`certify.output`; it does not parse case files.
"""
