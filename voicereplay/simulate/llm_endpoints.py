"""Which LLM backend serves a snapshot's model, and with which options.

A snapshot names the model production used (``model.provider`` / ``model.name``, e.g.
``openai`` / ``gpt-4o-mini``). :func:`resolve_llm` maps it to a registered backend name and the
options for :data:`~voicereplay.simulate.stages.LLMS`:

- providers with an OpenAI-compatible Chat Completions endpoint (:data:`OPENAI_COMPATIBLE`)
  → ``openai-compatible`` at the provider's URL, with the key from its environment variable;
- ``--llm-base-url`` → ``openai-compatible`` at that URL (any server: vLLM, Ollama,
  ``llama_cpp.server``…); a provider's key is only sent to the provider's own URL;
- ``--model local`` (backend ``llama-cpp``) or a ``--model`` ending in ``.gguf`` → the in-process
  ``llama-cpp`` backend (SmolLM2-135M-Instruct unless a GGUF is named);
- ``--model recorded`` (backend ``recorded``) → the baseline's replies (the caller adds
  ``steps=``).

Anything else — a provider without an OpenAI-compatible endpoint, a missing key — is a
:class:`~voicereplay.errors.ConfigError` that says what the snapshot names and what to pass.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from voicereplay.errors import ConfigError
from voicereplay.snapshot import ModelConfig

__all__ = ["LOCAL", "NOT_OPENAI_COMPATIBLE", "OPENAI_COMPATIBLE", "Endpoint", "resolve_llm"]

LOCAL = "local"  # --model local: the embedded SmolLM2 via llama-cpp


@dataclass(frozen=True)
class Endpoint:
    base_url: str | None  # None: the user must give one (Azure resources, custom servers)
    key_env: str | None
    key_header: str | None = None  # a header to carry the key instead of a Bearer token


# Snapshot ``model.provider`` (Vapi and Retell spellings) → an OpenAI-compatible endpoint.
OPENAI_COMPATIBLE: dict[str, Endpoint] = {
    "openai": Endpoint("https://api.openai.com/v1", "OPENAI_API_KEY"),
    "groq": Endpoint("https://api.groq.com/openai/v1", "GROQ_API_KEY"),
    "together": Endpoint("https://api.together.xyz/v1", "TOGETHER_API_KEY"),
    "together-ai": Endpoint("https://api.together.xyz/v1", "TOGETHER_API_KEY"),
    "deepseek": Endpoint("https://api.deepseek.com/v1", "DEEPSEEK_API_KEY"),
    "deep-seek": Endpoint("https://api.deepseek.com/v1", "DEEPSEEK_API_KEY"),
    "openrouter": Endpoint("https://openrouter.ai/api/v1", "OPENROUTER_API_KEY"),
    "fireworks": Endpoint("https://api.fireworks.ai/inference/v1", "FIREWORKS_API_KEY"),
    "perplexity-ai": Endpoint("https://api.perplexity.ai", "PERPLEXITY_API_KEY"),
    "deepinfra": Endpoint("https://api.deepinfra.com/v1/openai", "DEEPINFRA_API_KEY"),
    "cerebras": Endpoint("https://api.cerebras.ai/v1", "CEREBRAS_API_KEY"),
    "xai": Endpoint("https://api.x.ai/v1", "XAI_API_KEY"),
    "azure-openai": Endpoint(None, "AZURE_OPENAI_API_KEY", key_header="api-key"),
    "custom-llm": Endpoint(None, None),
}

# Providers a snapshot may name whose APIs are not Chat Completions (or not a model at all).
# Mistral's chat API is close but rejects OpenAI-only fields such as stream_options.
NOT_OPENAI_COMPATIBLE = {
    "anthropic": "Anthropic's Messages API",
    "google": "Google's Gemini API",
    "vertex": "Google Vertex AI",
    "mistral": "Mistral's chat API (it rejects OpenAI-only fields)",
    "anyscale": "Anyscale Endpoints (discontinued)",
    "inflection-ai": "Inflection's API",
    "vapi": "Vapi's own workflow model",
    "conversation-flow": "a Retell conversation flow, not a model",
}

_ADVICE = ("pass --llm-base-url URL (any OpenAI-compatible server) or --model local to use "
           "the embedded SmolLM2")


def resolve_llm(
    model: ModelConfig,
    *,
    backend: str | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
    model_name: str | None = None,
    env: Mapping[str, str] | None = None,
) -> tuple[str, dict[str, Any]]:
    """The backend name and its constructor options for replaying with ``model``.

    ``backend``, ``base_url``, ``api_key`` and ``model_name`` are the user's overrides
    (a backend name, ``--llm-base-url``, ``--llm-api-key``, ``--model``); ``env`` the
    service keys by variable name (``Settings.api_keys``).
    """
    env = env or {}
    if backend == "recorded":
        return "recorded", {}
    if backend in ("llama-cpp", LOCAL) or model_name == LOCAL or _is_gguf(model_name):
        gguf = model_name if _is_gguf(model_name) else None
        return "llama-cpp", {"model_path": gguf, "seed": model.seed}
    if backend not in (None, "openai-compatible"):
        return backend, {}  # a plugin's backend; the registry names the known ones if unknown
    name = model_name or model.name
    provider = (model.provider or "").strip().lower()
    endpoint = OPENAI_COMPATIBLE.get(provider)
    described = _describe(model)
    if base_url:
        # A provider's key goes only to the provider's own URL (or to the Azure resource the
        # user names), never to an arbitrary server.
        own = endpoint is not None and endpoint.key_env is not None and (
            endpoint.base_url is None or same_url(endpoint.base_url, base_url))
        if own and endpoint is not None:
            _require_key(endpoint, api_key, env, described, "pass --llm-api-key KEY")
        return "openai-compatible", _options(
            base_url, api_key, endpoint if own else None, env, _model_for(provider, name))
    if endpoint is None:
        if provider in NOT_OPENAI_COMPATIBLE:
            reason = f"{NOT_OPENAI_COMPATIBLE[provider]} is not OpenAI-compatible"
        elif not provider:
            reason = "it names no model provider"
        else:
            known = ", ".join(sorted(OPENAI_COMPATIBLE))
            reason = f"{provider!r} is not a provider voicereplay can call (known: {known})"
        raise ConfigError(f"the snapshot's model is {described} but {reason}; {_ADVICE}")
    if endpoint.base_url is None:
        url = _own_url(provider, model.name)
        if url is not None:
            return "openai-compatible", _options(url, api_key, None, env, model_name)
        if provider == "azure-openai":
            reason = ("an Azure OpenAI resource has no fixed URL; pass --llm-base-url "
                      "https://RESOURCE.openai.azure.com/openai/v1 (with AZURE_OPENAI_API_KEY "
                      "set), or --model local to use the embedded SmolLM2")
        elif model.name and "://" in model.name:
            reason = (f"its {model.name.split('://')[0]}:// URL speaks Retell's custom-LLM "
                      f"websocket protocol, not Chat Completions; {_ADVICE}")
        else:
            reason = f"it gives no URL to call; {_ADVICE}"
        raise ConfigError(f"the snapshot's model is {described} but {reason}")
    _require_key(endpoint, api_key, env, described, _ADVICE)
    if not name:
        raise ConfigError(f"the snapshot's model is {described} but names no model; pass "
                          f"--model NAME (a {provider} model), or {_ADVICE}")
    return "openai-compatible", _options(endpoint.base_url, api_key, endpoint, env, name)


def _require_key(endpoint: Endpoint, api_key: str | None, env: Mapping[str, str],
                 described: str, advice: str) -> None:
    if endpoint.key_env and not api_key and not env.get(endpoint.key_env):
        raise ConfigError(f"the snapshot's model is {described} but {endpoint.key_env} is not "
                          f"set; set it, or {advice}")


def _options(base_url: str, api_key: str | None, endpoint: Endpoint | None,
             env: Mapping[str, str], model: str | None) -> dict[str, Any]:
    key_env = endpoint.key_env if endpoint else None
    key = api_key or (env.get(key_env) if key_env else None) or None
    options: dict[str, Any] = {"base_url": base_url, "model": model, "key_env": key_env}
    if endpoint is not None and endpoint.key_header and key:
        options["headers"] = {endpoint.key_header: key}
    else:
        options["api_key"] = key
    return options


def _own_url(provider: str, name: str | None) -> str | None:
    """A custom LLM's own HTTP URL (Vapi's ``model.url`` style); Retell's ``wss://`` custom-LLM
    protocol is not Chat Completions."""
    if provider == "custom-llm" and name and name.startswith(("http://", "https://")):
        return name
    return None


def _model_for(provider: str, name: str | None) -> str | None:
    return None if provider == "custom-llm" and name and "://" in name else name  # a URL


def _describe(model: ModelConfig) -> str:
    return "/".join(p for p in (model.provider, model.name) if p) or "unset"


def same_url(a: str | None, b: str) -> bool:
    """Do ``a`` and ``b`` name the same Chat Completions endpoint?"""
    return a is not None and a.rstrip("/") == b.rstrip("/").removesuffix("/chat/completions")


def _is_gguf(name: str | None) -> bool:
    return bool(name) and str(name).lower().endswith(".gguf")
