"""output — what a run leaves behind: certificates, reports, comparisons.

Owns: the :class:`~certify.output.certificate.Certificate` and its atomic JSON
write (:mod:`.certificate`), the certificate's published JSON Schema
(``certificate.schema.json``, Draft 2020-12, package data; :func:`.certificate.load_schema`),
the Markdown report of one or many certificates (:mod:`.report`), its figures
(:mod:`.figures`) and the numbers it prints (:mod:`.readout`: ratios, intervals
as a paper prints them), and the comparison against stored baselines that CI
runs (:mod:`.compare`).

May import: :mod:`certify.errors`, :mod:`certify._version`, matplotlib (for
reports).  It reads finished certificates only: nothing from
:mod:`certify.trusted`, :mod:`certify.bounds`, :mod:`certify.train` or
:mod:`certify.cases`.  The ``jsonschema`` library is a test dependency, not imported
here: compare and report check the required fields (``certificate.validate``).
"""
