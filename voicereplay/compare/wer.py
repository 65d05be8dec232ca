"""Word and character error rates of the replay's STT against the provider's transcript.

A replayed caller turn plays the baseline caller's own audio (origin ``original-audio``) or a
synthesis of the baseline's text (``tts-of-transcript``); the replay's STT writes down what it
heard (``ReplayTurn.heard``). That is scored against the provider's transcript of the same turn
(``Call.turns[baseline_turn].text``), both first put through
:func:`~voicereplay.compare.normalize.normalize`.

* WER = (substitutions + deletions + insertions) / words of the reference; CER the same over
  characters (spaces included). Both are fractions (0.0 = identical; above 1.0 is possible when
  the STT heard far more than was said).
* The corpus figures in :class:`WordErrors` pool every scored turn: total edits / total
  reference words (or characters), **not** the mean of the per-turn rates.
* A turn whose normalized reference is empty is skipped (a rate over zero words has no
  meaning); an empty hypothesis scores 1.0 (every word deleted).
* ``WerTurn.turn`` is the caller turn number of the baseline turn
  (:func:`voicereplay.turns.caller_turns`).

Scoring uses jiwer (Levenshtein alignment).
"""

from __future__ import annotations

from voicereplay.compare.model import WerTurn, WordErrors
from voicereplay.compare.normalize import DESCRIPTION, normalize
from voicereplay.models import Call, Replay
from voicereplay.turns import caller_turns

__all__ = ["SCORED_ORIGINS", "word_errors"]

SCORED_ORIGINS = ("original-audio", "tts-of-transcript")  # the caller said the baseline's words


def word_errors(call: Call, replay: Replay) -> WordErrors | None:
    """WER/CER of every replayed caller turn that replays a baseline turn; None if none does."""
    import jiwer

    numbers = {c.index: c.number for c in caller_turns(call.turns)}
    scored: list[WerTurn] = []
    references: list[str] = []
    hypotheses: list[str] = []
    for turn in replay.turns:
        index = turn.baseline_turn
        if (turn.role != "user" or turn.heard is None or index is None
                or turn.origin not in SCORED_ORIGINS or index not in numbers):
            continue
        reference = normalize(call.turns[index].text)
        if not reference:
            continue
        hypothesis = normalize(turn.heard)
        scored.append(WerTurn(
            turn=numbers[index], reference=reference, hypothesis=hypothesis,
            wer=float(jiwer.wer(reference, hypothesis)),
            cer=float(jiwer.cer(reference, hypothesis)),
        ))
        references.append(reference)
        hypotheses.append(hypothesis)
    if not scored:
        return None
    return WordErrors(
        wer=float(jiwer.wer(references, hypotheses)),
        cer=float(jiwer.cer(references, hypotheses)),
        turns=scored,
        normalizer=DESCRIPTION,
    )
