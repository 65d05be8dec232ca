"""Writes ``report.schema.json`` (the JSON Schema of ``report.json``) from the models.

Run ``python -m voicereplay.compare.schema`` after changing :mod:`voicereplay.compare.model`,
and bump :data:`~voicereplay.compare.model.SCHEMA_VERSION`: a test fails while the shipped
schema and the models disagree.
"""

from __future__ import annotations

import json
from typing import Any

from voicereplay.compare.files import SCHEMA_PATH
from voicereplay.compare.model import SCHEMA_VERSION, Comparison

__all__ = ["generate"]


def generate() -> dict[str, Any]:
    schema = Comparison.model_json_schema(mode="serialization")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"urn:voicereplay:report:{SCHEMA_VERSION}",
        "title": f"voicereplay report.json, schema version {SCHEMA_VERSION}",
        **{k: v for k, v in schema.items() if k != "title"},
    }


def main() -> None:
    SCHEMA_PATH.write_text(json.dumps(generate(), indent=2, ensure_ascii=False) + "\n",
                           encoding="utf-8")
    print(f"wrote {SCHEMA_PATH}")


if __name__ == "__main__":
    main()
