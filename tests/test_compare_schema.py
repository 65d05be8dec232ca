"""report.json's schema: shipped, in step with the models, and what reports validate against."""

from __future__ import annotations

import json

import jsonschema
import pytest

from tests.compare_samples import sample_comparison
from voicereplay.compare.files import SCHEMA_PATH, report_schema
from voicereplay.compare.model import SCHEMA_VERSION
from voicereplay.compare.schema import generate


def test_the_shipped_schema_matches_the_models() -> None:
    # Changed voicereplay/compare/model.py? Run `python -m voicereplay.compare.schema` and bump
    # SCHEMA_VERSION when a field is renamed, removed or changes meaning.
    assert report_schema() == generate(), "report.schema.json is stale"
    assert SCHEMA_VERSION in report_schema()["$id"]
    jsonschema.Draft202012Validator.check_schema(report_schema())


def test_a_report_validates_and_a_broken_one_does_not() -> None:
    report = json.loads(sample_comparison().model_dump_json())
    jsonschema.validate(report, report_schema())
    for broken in ({**report, "fidelity": {"score": 0.5}},  # basis is required
                   {**report, "divergence": {**(report["divergence"] or {}), "reason": "vibes"}},
                   {**report, "surprise": 1}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, report_schema())


def test_the_schema_ships_inside_the_package() -> None:
    assert SCHEMA_PATH.parent.name == "compare" and SCHEMA_PATH.exists()
