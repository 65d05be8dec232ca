"""PII redaction for saved scenarios (``voicereplay save --redact``), offline and verified.

The public API (what the scenario writer and the CLI call):

* :func:`find_pii` ``(text, *, extra_names=(), extra_patterns=()) -> list[Span]`` — phone
  numbers, e-mails, card/account numbers, street addresses, dates of birth, names… found by
  Presidio on a local spaCy model, in written *and* spoken forms ("four one five …",
  "maria at example dot com"), plus the user's names and regular expressions
  (:mod:`.detect`, :mod:`.spoken`, :mod:`.presidio`);
* :class:`Redactor` — one per scenario: ``learn(*texts_or_json)`` first, then
  ``redact_text(text, where=…)`` and ``redact_value(json, where=…)`` replace every known value
  with the same typed placeholder (``<PHONE_NUMBER_1>``) everywhere; ``report`` is the
  :class:`RedactionReport` (:mod:`.redactor`);
* :func:`redact_audio` ``(samples, rate, words, spans, *, pad=0.3, mode="mute"|"tone")`` mutes
  the timed words behind the spans; :func:`verify_audio` ``(samples, rate, values, stt)``
  transcribes the result again and returns the values still heard; :func:`redact_segment`
  does both for one caller segment with a Redactor, muting the whole segment when anything is
  still heard (:mod:`.audio`);
* :class:`RedactionReport` — where, what type, which detector, which placeholder; never the
  value (``to_json()``, ``render()`` for a terminal) (:mod:`.report`).

Presidio and the spaCy model load once per process, on first use (a few seconds).

A scenario, in order — learn everything first, so a value found late is redacted early too::

    redactor = Redactor(extra_names=config_names, extra_patterns=config_patterns,
                        allow=[agent_name])
    redactor.learn(*turn_texts, *tool_arguments, *tool_results)
    texts = [redactor.redact_text(t, where=f"turn {n}") for n, t in enumerate(turn_texts)]
    args = redactor.redact_value(arguments, where=f"turn {n} tool call {name}.arguments")
    samples, audio_result = redact_segment(redactor, samples, rate, stt,
                                           where=f"turn {n} audio", words=segment_words)
    print(redactor.report.render())      # plain text: print it with markup off
    scenario_json["redaction"] = redactor.report.to_json()

``stt`` is a speech-to-text stage, e.g. ``STT.create("faster-whisper")`` from
:mod:`voicereplay.simulate.stages`; ``segment_words`` are the provider's word timings for the
segment, with times from the segment's start (or pass ``offset=`` the segment's start time),
or None to transcribe them.
"""

from voicereplay.redact.audio import redact_audio, redact_segment, redaction_ranges, verify_audio
from voicereplay.redact.detect import DEFAULT_ENTITIES, Span, UserPattern, find_pii
from voicereplay.redact.redactor import KnownValue, Redactor
from voicereplay.redact.report import AudioRedaction, Leak, Redaction, RedactionReport

__all__ = [
    "DEFAULT_ENTITIES",
    "AudioRedaction",
    "KnownValue",
    "Leak",
    "Redaction",
    "RedactionReport",
    "Redactor",
    "Span",
    "UserPattern",
    "find_pii",
    "redact_audio",
    "redact_segment",
    "redaction_ranges",
    "verify_audio",
]
