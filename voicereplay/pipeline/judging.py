"""Judges for ``llm_judge`` checks and ``--csat``, built from the LLM backends a replay uses.

:mod:`voicereplay.compare` evaluates checks but builds no model: this module turns a user's
choice (``--judge-model``/``--judge-base-url``, or a check's own ``model``/``base_url``) into a
:class:`~voicereplay.compare.judge.Judge` over a stage backend, with keys from the settings.

:class:`CsatCache` keeps baseline caller-satisfaction estimates, so every replay of a call
compared with ``--csat`` asks the judge about the (unchanging) baseline once: one JSON file per
question under ``<artifacts>/csat/``, named by
:meth:`~voicereplay.compare.csat.CsatEstimator.cache_key` (the judge model, the call's
transcript as shown to it, the schema, seed and token limit). Only estimates with a score are
kept; the replay's side is always estimated afresh (it is stored in its report.json).
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from voicereplay.compare.judge import JUDGE_SEED, Judge, JudgeFor
from voicereplay.compare.model import CsatEstimate
from voicereplay.config import Settings
from voicereplay.errors import ConfigError
from voicereplay.simulate.stages import LLMS, ChatRequest, LanguageModel
from voicereplay.snapshot import AgentSnapshot, ModelConfig

__all__ = ["JUDGE_CONTEXT", "CsatCache", "StageJudgeModel", "build_judge", "judge_factory"]

log = logging.getLogger(__name__)

JUDGE_CONTEXT = 8192  # tokens of context for the embedded model (SmolLM2 was trained on 8k)


class StageJudgeModel:
    """A replay's LLM backend as a :class:`~voicereplay.compare.judge.JudgeModel`.

    The embedded model (``llama-cpp``) is held to the verdict's JSON schema by its grammar;
    other backends are asked for a JSON object, which every OpenAI-compatible server knows.
    """

    def __init__(self, llm: LanguageModel, *, name: str | None = None) -> None:
        self.llm = llm
        base_url = getattr(llm, "base_url", None)
        self.base_url: str | None = base_url if isinstance(base_url, str) else None
        self.name = name or llm.model_name or (
            f"{llm.name} ({base_url})" if base_url else llm.name)

    def __repr__(self) -> str:
        return f"StageJudgeModel({self.name!r}, llm={self.llm!r})"

    def response_format(self, schema: dict[str, Any]) -> dict[str, Any]:
        if self.llm.name == "llama-cpp":
            return {"type": "json_schema", "json_schema": {"name": "verdict", "schema": schema}}
        return {"type": "json_object"}

    def request(self, messages: list[dict[str, str]], *, schema: dict[str, Any], seed: int,
                max_tokens: int | None) -> ChatRequest:
        return ChatRequest(messages=list(messages), temperature=0.0, seed=seed,
                           max_tokens=max_tokens, response_format=self.response_format(schema))

    def answer(self, messages: list[dict[str, str]], *, schema: dict[str, Any], seed: int,
               max_tokens: int | None) -> str:
        request = self.request(messages, schema=schema, seed=seed, max_tokens=max_tokens)
        return self.llm.complete(request).text


def build_judge(
    model: str | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
    snapshot: AgentSnapshot | None = None,
    settings: Settings | None = None,
) -> Judge:
    """A judge from the same choices as ``voicereplay call --model``: ``"local"`` (the
    embedded SmolLM2, also the default when neither ``model`` nor ``base_url`` is given), a
    ``.gguf`` path, or a model name (served by ``base_url``, else by the snapshot's model
    provider with its key from the settings). Raises :class:`ConfigError` for a choice that
    cannot judge."""
    from voicereplay.simulate.llm_endpoints import LOCAL, resolve_llm

    if model == "recorded":
        raise ConfigError("the recorded model cannot judge a replay; choose 'local' (the "
                          "embedded SmolLM2), a .gguf path, or a model name")
    backend = None
    if model == LOCAL or (model is None and base_url is None):
        backend, model = "llama-cpp", None
    config = snapshot.model if snapshot is not None else ModelConfig()
    keys = settings.api_keys if settings is not None else {}
    name, options = resolve_llm(config, backend=backend, base_url=base_url, api_key=api_key,
                                model_name=model, env=keys)
    if name == "llama-cpp":
        options = {**options, "n_ctx": JUDGE_CONTEXT, "seed": JUDGE_SEED}
    return Judge(StageJudgeModel(LLMS.create(name, **options)))


def judge_factory(snapshot: AgentSnapshot | None, settings: Settings | None) -> JudgeFor:
    """Builds the judge an ``llm_judge`` check names (its own model, base URL and key)."""
    def build(model: str | None, base_url: str | None, api_key: str | None) -> Judge:
        return build_judge(model, base_url, api_key, snapshot, settings)

    return build


class CsatCache:
    """Baseline CSAT estimates by question (see the module docs), under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / f"{key}.json"

    def get(self, key: str) -> CsatEstimate | None:
        """The kept estimate (marked ``cached``), or None; an unreadable file is a miss."""
        try:
            text = self.path(key).read_text(encoding="utf-8")
            estimate = CsatEstimate.model_validate_json(text)
        except (OSError, ValidationError):
            return None
        if estimate.score is None:
            return None
        return estimate.model_copy(update={"cached": True})

    def put(self, key: str, estimate: CsatEstimate) -> None:
        """Keep ``estimate`` when it has a score. A cache that cannot be written is skipped:
        the estimate is in the comparison either way."""
        if estimate.score is None or estimate.cached:
            return
        data = estimate.model_copy(update={"cached": False}).model_dump_json()
        tmp: str | None = None
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".csat-", suffix=".tmp")
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(data)
            os.replace(tmp, self.path(key))
        except OSError as exc:
            log.info("baseline CSAT estimate not cached: %s", exc)
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)
