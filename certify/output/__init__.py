"""output — what a run leaves behind: certificates, reports, comparisons.

Owns: the :class:`~certify.output.certificate.Certificate` and its atomic JSON
write (:mod:`.certificate`), the Markdown/figure report of one or many
certificates (:mod:`.report`) and the comparison against stored baselines
that CI runs (:mod:`.compare`).

May import: :mod:`certify.errors`, :mod:`certify._version`, matplotlib (for
reports).  It reads finished certificates only: nothing from
:mod:`certify.trusted`, :mod:`certify.bounds`, :mod:`certify.train` or
:mod:`certify.cases`.
"""
