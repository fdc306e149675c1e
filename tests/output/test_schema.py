"""The certificate's published JSON Schema (``certify/output/certificate.schema.json``):
a valid Draft 2020-12 schema, the same version as the code, every shipped baseline
matches it, and it rejects what the format forbids."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import pytest

from certify.output import certificate
from tests.schema_util import assert_matches_schema, schema_errors, validator

BASELINES = Path(__file__).resolve().parents[2] / "cases" / "baselines"


def test_schema_is_draft_2020_12_and_states_the_code_s_version():
    schema = certificate.load_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].endswith(":" + certificate.SCHEMA_VERSION)
    jsonschema.Draft202012Validator.check_schema(schema)
    versions = schema["properties"]["schema_version"]["enum"]
    assert versions[-1] == certificate.SCHEMA_VERSION and versions[0] == "1.0"
    assert all(v.split(".")[0] == certificate.SCHEMA_VERSION.split(".")[0] for v in versions)


def test_schema_is_package_data():
    """Found through importlib.resources (the wheel ships it: pyproject package-data)."""
    from importlib import resources

    assert resources.files("certify.output").joinpath("certificate.schema.json").is_file()
    text = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    assert '"certify.output" = ["certificate.schema.json"]' in text


def test_required_fields_agree_with_validate():
    """``certificate.validate`` (the check compare/report run without jsonschema) requires
    the fields the schema requires."""
    schema = certificate.load_schema()
    assert set(schema["required"]) == set(certificate.REQUIRED)
    for key, sub in certificate.REQUIRED.items():
        if not sub:
            continue
        node = schema["properties"][key]
        if "$ref" in node:
            node = schema["$defs"][node["$ref"].rsplit("/", 1)[1]]
        assert set(node["required"]) == set(sub), key


@pytest.mark.parametrize("path", sorted(BASELINES.glob("*.json")), ids=lambda p: p.stem)
def test_every_baseline_matches_the_schema(path):
    assert_matches_schema(path)


def _base() -> dict:
    return json.loads((BASELINES / "tanh-short-memory.json").read_text())


def _set(doc, path, value):
    *head, last = [int(k) if k.isdigit() else k for k in path.split(".")]
    for k in head:
        doc = doc[k]
    if value is KeyError:
        del doc[last]
    else:
        doc[last] = value


@pytest.mark.parametrize("path,value,where", [
    ("schema_version", "0.9", "schema_version"),
    ("verdict", "ok", "verdict"),
    ("executor", KeyError, "(top)"),
    ("constants.closed_form.L.0", [1.4, 1.5], "constants.closed_form.L.0.0"),
    ("constants.closed_form.L.0", ["1"], "constants.closed_form.L.0"),
    ("constants.closed_form.L.0", ["nan", "1"], "constants.closed_form.L.0.0"),
    ("activation.sigma1", ["1", "2", "3"], "activation.sigma1"),
    ("executor.drift.min_slack", "0.1", "executor.drift.min_slack"),
    ("executor.drift.violations", [-1], "executor.drift.violations.0"),
    ("executor.drift.fp_allowance", 1e-12, "executor.drift.fp_allowance"),
    ("executor.apriori.applicable", "False", "executor.apriori.applicable"),
    ("case.sha256", "abc", "case.sha256"),
    ("case.extra", 1, "case"),
    ("executor.algorithm", "adam", "executor.algorithm"),
])
def test_schema_rejects_a_malformed_certificate(path, value, where):
    doc = _base()
    _set(doc, path, value)
    errors = schema_errors(doc)
    assert errors and any(e.startswith(where + ":") for e in errors), errors


def test_schema_accepts_null_observed_values_and_no_data_specific_bounds():
    """An ``unknown`` certificate stores non-finite observed values as null, and a case
    without ``[certify] data_specific`` has ``certified``/``lower`` null."""
    doc = _base()
    for path in ("executor.drift.min_slack", "executor.drift.argmin", "executor.avg_loss",
                 "executor.loss.3", "executor.apriori.bound", "constants.certified",
                 "constants.lower", "constants.ratios", "constants.max_certified_over_closed"):
        _set(doc, path, None)
    _set(doc, "constants.closed_form.beta.2", ["1", "inf"])
    assert schema_errors(doc) == []
    assert validator().is_valid(copy.deepcopy(doc))
