"""sweep — many cases from one spec, on dask.distributed (INTERFACE.md "Sweep spec").

Owns: the sweep spec (:mod:`.spec`: parse and validate, every point checked like a
case file before anything runs), its points and their stable IDs (:mod:`.points`),
running them on a Dask cluster with resume and failures (:mod:`.execute`), the adaptive
search (:mod:`.search`), the results table and summary (:mod:`.results`), the
experiments' derived results such as fits (:mod:`.experiments`), the sweep's report
(:mod:`.report`), its progress line (:mod:`.progress`) and the command's order of work
(:mod:`.driver`).

May import: :mod:`certify.cases` (a point is a case), :mod:`certify.runner` (a point
is certified exactly like ``run``), :mod:`certify.output` (the certificate, written
atomically), :mod:`certify.errors`, :mod:`certify.progress` and
:mod:`certify.argtypes`.  Nothing from :mod:`certify.bounds`, :mod:`certify.train` or
:mod:`certify.trusted` directly.  ``dask.distributed`` is an extra
(``pip install 'rnn-certify[dask]'``), imported only when a sweep runs.
"""
