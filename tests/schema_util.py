"""The certificate's JSON Schema in the tests: ``assert_matches_schema(cert)`` checks one
certificate (a dict, a :class:`~certify.output.certificate.Certificate` or a path to its
JSON) against ``certify/output/certificate.schema.json`` with the ``jsonschema`` library,
and fails with every violation and where it is."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import jsonschema

from certify.output.certificate import load_schema


@functools.cache
def validator() -> jsonschema.Draft202012Validator:
    schema = load_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def schema_errors(cert) -> list[str]:
    """Every violation as ``path: message`` (empty when the certificate matches)."""
    if isinstance(cert, str | Path):
        cert = json.loads(Path(cert).read_text())
    doc = dict(getattr(cert, "data", cert))
    return [f"{'.'.join(map(str, e.absolute_path)) or '(top)'}: {e.message[:200]}"
            for e in sorted(validator().iter_errors(doc), key=lambda e: list(e.absolute_path))]


def assert_matches_schema(cert) -> None:
    errors = schema_errors(cert)
    assert not errors, "certificate does not match certificate.schema.json:\n" + "\n".join(
        errors[:20])
