"""The redaction settings a user keeps: ``$VOICEREPLAY_HOME/redact.yaml`` (or
``--redact-config FILE``), read by ``save --redact`` and the web app's "Save as test".

.. code-block:: yaml

    names: [Maria Lopez, Jordan Miles]     # always redacted (as PERSON)
    patterns:                              # regular expressions, redacted as CUSTOM …
      - 'ORD-\\d{6}'
      - {regex: 'MRN\\d+', entity: MEDICAL_RECORD}   # … or as the entity you name
    allow: [Acme Audio, Sam]               # never redacted (the business's, the agent's name)

Every key is optional; unknown keys are an error naming the file. The command line's
``--redact-name``, ``--redact-pattern`` and ``--redact-allow`` add to the file's lists.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from voicereplay.config import Settings
from voicereplay.errors import ConfigError
from voicereplay.pipeline.request import read_yaml

__all__ = ["RedactConfig", "load_redact_config"]

FILE_NAME = "redact.yaml"


class Pattern(BaseModel):
    model_config = ConfigDict(extra="forbid")

    regex: str
    entity: str = Field(default="CUSTOM", pattern=r"^[A-Z][A-Z0-9_]*$")


class RedactConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    names: list[str] = Field(default_factory=list)
    patterns: list[str | Pattern] = Field(default_factory=list)
    allow: list[str] = Field(default_factory=list)

    @field_validator("patterns")
    @classmethod
    def _compiles(cls, patterns: list[str | Pattern]) -> list[str | Pattern]:
        for pattern in patterns:
            regex = pattern if isinstance(pattern, str) else pattern.regex
            try:
                re.compile(regex)
            except re.error as exc:
                raise ValueError(f"{regex!r} is not a regular expression ({exc})") from None
        return patterns

    def pattern_args(self) -> list[str | tuple[str, str]]:
        """The patterns as the redaction engine takes them."""
        return [p if isinstance(p, str) else (p.entity, p.regex) for p in self.patterns]


def load_redact_config(settings: Settings, explicit: Path | None = None) -> RedactConfig:
    """The file's settings (empty when no file is named and the default one does not exist)."""
    path = explicit or settings.home / FILE_NAME
    if explicit is None and not path.exists():
        return RedactConfig()
    data = read_yaml(path, "redaction settings")
    try:
        return RedactConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "file"
        raise ConfigError(f"{path}: {where}: {first['msg']}".replace("Value error, ", "")
                          ) from None
