"""Settings: the one place that reads the environment.

Every face (CLI, web app, workers) reads :class:`Settings` once with :meth:`Settings.from_env`
and passes it down; nothing else in voicereplay reads or writes ``os.environ``. A bad value is a
:class:`~voicereplay.errors.ConfigError` naming the variable (exit 2), raised when the settings
are read, so no command starts half-configured.

| variable | meaning | default |
|---|---|---|
| ``VOICEREPLAY_HOME`` | ``voicereplay.db``, ``artifacts/``, ``prices.yaml`` | ~/.voicereplay |
| ``VOICEREPLAY_DATABASE_URL`` | the store (``sqlite:///…``, ``postgresql+psycopg://…``) | home |
| ``VOICEREPLAY_DOWNLOAD_CONCURRENCY`` | downloads at once in an import | 8 |
| ``VOICEREPLAY_HTTP_TIMEOUT`` | seconds per provider HTTP request (connect and read) | 30 |
| ``VOICEREPLAY_LLM_BASE_URL`` | OpenAI-compatible endpoint (``--llm-base-url``) | none |
| ``VOICEREPLAY_LLM_API_KEY`` | key for that endpoint (``--llm-api-key``) | none |
| ``VOICEREPLAY_SIMILARITY`` | ``lexical`` or ``embedding`` | lexical |
| ``VOICEREPLAY_PRICES`` | a prices YAML file | ``$VOICEREPLAY_HOME/prices.yaml`` |
| ``VOICEREPLAY_API_TOKEN`` | protects the web app and its API (bearer / sign-in) | none |
| ``VOICEREPLAY_REDIS_URL`` | deliver jobs through Redis (``redis://host:6379/0``) | none |
| ``VOICEREPLAY_JOB_LEASE`` | seconds a job attempt holds its job between heartbeats | 60 |
| ``VOICEREPLAY_PLUGINS`` | modules that register backends, comma-separated | none |
| ``VOICEREPLAY_JOB_ATTEMPTS`` | attempts a background job gets before it fails | 3 |
| ``VAPI_API_KEY`` / ``RETELL_API_KEY`` | provider keys | none |
| ``VOICEREPLAY_VAPI_WEBHOOK_SECRET`` | secret, token or HMAC key Vapi webhooks must carry | none |
| ``VOICEREPLAY_VAPI_WEBHOOK_AUTH`` | ``secret`` (a header), ``bearer`` or ``hmac`` | secret |
| ``VOICEREPLAY_VAPI_WEBHOOK_HEADER`` | header of the secret / bearer token | X-Vapi-Secret |
| ``VOICEREPLAY_VAPI_WEBHOOK_HMAC_*`` | ``ALGORITHM`` (sha256, sha512), ``SIGNATURE_HEADER`` | |
| | (x-signature), ``TIMESTAMP_HEADER`` (x-timestamp), ``PAYLOAD_FORMAT`` | |
| | (``{timestamp}.{body}``), ``ENCODING`` (hex, base64), ``PREFIX`` (none), | |
| | ``MAX_SKEW`` (seconds, 300) | |
| ``VOICEREPLAY_RETELL_WEBHOOK_KEY`` | key Retell webhooks are signed with | RETELL_API_KEY |
| ``VOICEREPLAY_RULES`` | the flag rules file (``--rules``) | ``$VOICEREPLAY_HOME/rules.yaml`` |
| ``VOICEREPLAY_PUBLIC_URL`` | the web app's address in notification links | ``serve``'s own |
| ``VOICEREPLAY_SCENARIOS`` | where the web app's "Save as test" writes scenarios | home/scenarios |
| ``VAPI_BASE_URL`` / ``RETELL_BASE_URL`` | provider API hosts | the public APIs |
| ``OPENAI_API_KEY``, ``GROQ_API_KEY``, … | keys of LLM/TTS services (any ``*_API_KEY``) | none |

Secrets are never part of ``repr`` and never serialized: :class:`Settings` is not a model that
gets stored, and requests (:mod:`voicereplay.requests`) hold no keys.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from urllib.parse import urlsplit

from voicereplay.errors import ConfigError
from voicereplay.signatures import VapiAuth

__all__ = ["Settings", "offline_model_hubs"]

DEFAULT_HTTP_TIMEOUT = 30.0
DEFAULT_JOB_LEASE = 60.0
DEFAULT_JOB_ATTEMPTS = 3
DEFAULT_DOWNLOAD_CONCURRENCY = 8
_SQLITE_MEMORY = (":memory:", "mode=memory")


def _clean(environ: Mapping[str, str], name: str) -> str | None:
    value = environ.get(name, "").strip()
    return value or None


def _positive_int(environ: Mapping[str, str], name: str, default: int, top: int) -> int:
    raw = _clean(environ, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: expected a whole number from 1 to {top}") from None
    if not 1 <= value <= top:
        raise ConfigError(f"{name}={raw!r}: expected a whole number from 1 to {top}")
    return value


def _positive_float(environ: Mapping[str, str], name: str, default: float) -> float:
    raw = _clean(environ, name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: expected a number of seconds, e.g. 10") from None
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{name}={raw!r}: expected a positive number of seconds, e.g. 10")
    return value


def check_database_url(url: str, *, source: str = "VOICEREPLAY_DATABASE_URL") -> str:
    """``url`` if SQLAlchemy can use it as the store; else a ConfigError naming ``source``."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise ConfigError(f"{source}={url!r} is not a database URL; use e.g. "
                          "sqlite:////path/voicereplay.db or "
                          "postgresql+psycopg://user@host/db") from None
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise ConfigError(f"{source}: {backend!r} databases are not supported; use sqlite or "
                          "postgresql")
    if backend == "sqlite" and (not parsed.database or any(
            m in url for m in _SQLITE_MEMORY)):
        raise ConfigError(f"{source}: an in-memory SQLite database would lose everything "
                          "when the command ends; name a file, e.g. sqlite:////path/x.db")
    return url


def _redis_url(environ: Mapping[str, str]) -> str | None:
    raw = _clean(environ, "VOICEREPLAY_REDIS_URL")
    if raw is not None and urlsplit(raw).scheme not in ("redis", "rediss", "unix"):
        raise ConfigError(f"VOICEREPLAY_REDIS_URL={raw!r}: expected a redis:// URL")
    return raw


def _vapi_webhook(environ: Mapping[str, str]) -> VapiAuth | None:
    """The Vapi webhook authentication plan, or None when no secret is set."""
    secret = _clean(environ, "VOICEREPLAY_VAPI_WEBHOOK_SECRET")
    scheme = (_clean(environ, "VOICEREPLAY_VAPI_WEBHOOK_AUTH") or "secret").lower()
    if scheme not in ("secret", "bearer", "hmac"):
        raise ConfigError(f"VOICEREPLAY_VAPI_WEBHOOK_AUTH={scheme!r}: expected secret, bearer "
                          "or hmac")
    if secret is None:
        return None
    prefix = "VOICEREPLAY_VAPI_WEBHOOK_HMAC_"
    options: dict[str, object] = {}
    for key, name in (("algorithm", "ALGORITHM"), ("signature_header", "SIGNATURE_HEADER"),
                      ("timestamp_header", "TIMESTAMP_HEADER"),
                      ("payload_format", "PAYLOAD_FORMAT"), ("encoding", "ENCODING"),
                      ("prefix", "PREFIX")):
        raw = _clean(environ, prefix + name)
        if raw is not None:
            options[key] = raw.lower() if key in ("algorithm", "encoding") else raw
    options["max_skew"] = _positive_float(environ, prefix + "MAX_SKEW", 300.0)
    try:
        return VapiAuth(scheme=scheme, secret=secret,  # type: ignore[arg-type]
                        header=_clean(environ, "VOICEREPLAY_VAPI_WEBHOOK_HEADER"),
                        **options)  # type: ignore[arg-type]
    except ValueError as exc:
        raise ConfigError(f"Vapi webhook settings ({prefix}*): {exc}") from None


@dataclass(frozen=True)
class Settings:
    """Where data lives and how to reach providers and models (see the module docs)."""

    home: Path
    database_url: str
    vapi_api_key: str | None = field(default=None, repr=False)
    retell_api_key: str | None = field(default=None, repr=False)
    vapi_base_url: str = "https://api.vapi.ai"
    retell_base_url: str = "https://api.retellai.com"
    download_concurrency: int = DEFAULT_DOWNLOAD_CONCURRENCY
    http_timeout: float = DEFAULT_HTTP_TIMEOUT
    llm_base_url: str | None = None
    llm_api_key: str | None = field(default=None, repr=False)
    similarity: str | None = None
    prices_file: Path | None = None
    redis_url: str | None = field(default=None, repr=False)  # may hold a password
    api_token: str | None = field(default=None, repr=False)
    vapi_webhook: VapiAuth | None = field(default=None, repr=False)  # None: reject them all
    retell_webhook_key: str | None = field(default=None, repr=False)  # None: reject them all
    job_lease: float = DEFAULT_JOB_LEASE
    job_attempts: int = DEFAULT_JOB_ATTEMPTS
    plugins: tuple[str, ...] = ()  # modules that register backends (registry.load_plugins)
    rules_file: Path | None = None  # None: $VOICEREPLAY_HOME/rules.yaml when it exists
    public_url: str | None = None  # links in notifications; serve fills in its own address
    scenarios_path: Path | None = None  # None: $VOICEREPLAY_HOME/scenarios
    # every ``*_API_KEY`` variable, for the LLM/TTS services a snapshot may name
    api_keys: Mapping[str, str] = field(default_factory=dict, repr=False)

    @property
    def artifacts_dir(self) -> Path:
        return self.home / "artifacts"

    def api_key(self, env_name: str) -> str | None:
        """The key in the environment variable ``env_name`` (e.g. ``OPENAI_API_KEY``)."""
        return self.api_keys.get(env_name)

    @classmethod
    def for_home(cls, home: Path | str, **changes: object) -> Settings:
        """Settings for ``home`` with no environment (tests, embedding voicereplay)."""
        path = Path(home).expanduser()
        return cls(home=path, database_url=f"sqlite:///{path / 'voicereplay.db'}",
                   **changes)  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read and check every setting; a bad value is a ConfigError naming its variable."""
        env = os.environ if environ is None else environ
        home = Path(_clean(env, "VOICEREPLAY_HOME") or Path.home() / ".voicereplay").expanduser()
        database_url = _clean(env, "VOICEREPLAY_DATABASE_URL")
        for name in ("VAPI_BASE_URL", "RETELL_BASE_URL", "VOICEREPLAY_LLM_BASE_URL",
                     "VOICEREPLAY_PUBLIC_URL"):
            raw = _clean(env, name)
            if raw is not None and urlsplit(raw).scheme not in ("http", "https"):
                raise ConfigError(f"{name}={raw!r}: expected an http(s):// URL")
        prices = _clean(env, "VOICEREPLAY_PRICES")
        rules = _clean(env, "VOICEREPLAY_RULES")
        scenarios = _clean(env, "VOICEREPLAY_SCENARIOS")
        return cls(
            home=home,
            database_url=(check_database_url(database_url) if database_url
                          else f"sqlite:///{home / 'voicereplay.db'}"),
            vapi_api_key=_clean(env, "VAPI_API_KEY"),
            retell_api_key=_clean(env, "RETELL_API_KEY"),
            vapi_base_url=_clean(env, "VAPI_BASE_URL") or cls.vapi_base_url,
            retell_base_url=_clean(env, "RETELL_BASE_URL") or cls.retell_base_url,
            download_concurrency=_positive_int(env, "VOICEREPLAY_DOWNLOAD_CONCURRENCY",
                                               DEFAULT_DOWNLOAD_CONCURRENCY, 64),
            http_timeout=_positive_float(env, "VOICEREPLAY_HTTP_TIMEOUT",
                                         DEFAULT_HTTP_TIMEOUT),
            llm_base_url=_clean(env, "VOICEREPLAY_LLM_BASE_URL"),
            llm_api_key=_clean(env, "VOICEREPLAY_LLM_API_KEY"),
            similarity=_clean(env, "VOICEREPLAY_SIMILARITY"),
            prices_file=Path(prices).expanduser() if prices else None,
            rules_file=Path(rules).expanduser() if rules else None,
            scenarios_path=Path(scenarios).expanduser() if scenarios else None,
            public_url=(_clean(env, "VOICEREPLAY_PUBLIC_URL") or "").rstrip("/") or None,
            redis_url=_redis_url(env),
            api_token=_clean(env, "VOICEREPLAY_API_TOKEN"),
            vapi_webhook=_vapi_webhook(env),
            retell_webhook_key=(_clean(env, "VOICEREPLAY_RETELL_WEBHOOK_KEY")
                                or _clean(env, "RETELL_API_KEY")),
            plugins=tuple(p.strip() for p in (_clean(env, "VOICEREPLAY_PLUGINS") or "")
                          .split(",") if p.strip()),
            job_lease=_positive_float(env, "VOICEREPLAY_JOB_LEASE", DEFAULT_JOB_LEASE),
            job_attempts=_positive_int(env, "VOICEREPLAY_JOB_ATTEMPTS", DEFAULT_JOB_ATTEMPTS,
                                       100),
            api_keys=MappingProxyType({k: v.strip() for k, v in env.items()
                                       if k.endswith("_API_KEY") and v.strip()}),
        )

    @property
    def scenarios_dir(self) -> Path:
        """Where the web app saves scenarios ("Save as test")."""
        return self.scenarios_path or self.home / "scenarios"

    @property
    def default_prices_file(self) -> Path:
        return self.prices_file or self.home / "prices.yaml"


def offline_model_hubs() -> None:
    """Tell Hugging Face libraries never to reach a hub: every model here is a local folder.

    The one write to the environment voicereplay makes (those libraries read it, not us).
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
