"""LLM prices and token usage: what a call's or a replay's LLM turns cost.

:data:`DEFAULT_PRICES` holds USD per million tokens (input, output) for common voice-agent
models. Users extend or override it with a YAML file — ``$VOICEREPLAY_HOME/prices.yaml`` or the
file named by ``VOICEREPLAY_PRICES``::

    my-finetune: {input: 0.30, output: 1.20}
    gpt-4o-mini: {input: 0.15, output: 0.60}

A model name matches exactly (case-insensitive), else by the longest table key it starts with
(``gpt-4o-mini-2024-07-18`` → ``gpt-4o-mini``). Embedded local models (llama.cpp) cost nothing.
The baseline's tokens and LLM cost come from the provider's cost breakdown when it has them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from voicereplay.compare.model import TokenUsage
from voicereplay.errors import ConfigError
from voicereplay.models import Call, Replay

__all__ = ["DEFAULT_PRICES", "Price", "baseline_usage", "load_prices", "price_for", "replay_usage"]

Price = tuple[float, float]  # USD per 1M input tokens, per 1M output tokens

DEFAULT_PRICES: dict[str, Price] = {
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4-turbo": (10.00, 30.00),
    "gpt-3.5-turbo": (0.50, 1.50),
    "gpt-5-nano": (0.05, 0.40),
    "gpt-5-mini": (0.25, 2.00),
    "gpt-5": (1.25, 10.00),
    "claude-3-5-haiku": (0.80, 4.00),
    "claude-3-5-sonnet": (3.00, 15.00),
    "claude-3-7-sonnet": (3.00, 15.00),
    "claude-sonnet-4": (3.00, 15.00),
    "claude-haiku-4": (1.00, 5.00),
    "gemini-1.5-flash": (0.075, 0.30),
    "gemini-2.0-flash": (0.10, 0.40),
    "gemini-2.5-flash": (0.30, 2.50),
    "llama-3.1-8b-instant": (0.05, 0.08),
    "llama-3.3-70b-versatile": (0.59, 0.79),
}
LOCAL_BACKENDS = ("llama-cpp", "recorded")


def load_prices(path: Path | None = None, *, explicit: bool = True) -> dict[str, Price]:
    """The default table, extended by the prices file at ``path`` (see the module docs).

    ``explicit`` False: ``path`` is the default location, which may not exist."""
    prices = dict(DEFAULT_PRICES)
    if path is None or (not explicit and not path.exists()):
        return prices
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ConfigError(f"cannot read the prices file {path}: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: expected model: {{input: USD per 1M, output: USD per 1M}}")
    for model, entry in data.items():
        prices[str(model).lower()] = _price(path, str(model), entry)
    return prices


def _price(path: Path, model: str, entry: Any) -> Price:
    try:
        if isinstance(entry, Mapping) and set(entry) <= {"input", "output"}:
            price = float(entry["input"]), float(entry["output"])
            if not all(math.isfinite(p) and p >= 0 for p in price):
                raise ConfigError(f"{path}: {model}: prices must be finite numbers of USD "
                                  f"per 1M tokens, 0 or more (got {entry['input']!r}, "
                                  f"{entry['output']!r})")
            return price
    except (KeyError, TypeError, ValueError):
        pass
    raise ConfigError(f"{path}: {model}: expected {{input: <USD per 1M tokens>, "
                      "output: <USD per 1M tokens>}}")


def price_for(model: str | None, prices: Mapping[str, Price]) -> Price | None:
    """The price of ``model``: exact match, else the longest key it starts with."""
    if not model:
        return None
    name = model.lower().rsplit("/", 1)[-1]
    if name in prices:
        return prices[name]
    keys = [k for k in prices if name.startswith(k)]
    return prices[max(keys, key=len)] if keys else None


def _cost(prompt: int | None, completion: int | None, price: Price | None) -> float | None:
    if price is None or (prompt is None and completion is None):
        return None
    return ((prompt or 0) * price[0] + (completion or 0) * price[1]) / 1_000_000


def baseline_usage(call: Call, model: str | None,
                   prices: Mapping[str, Price] | None = None) -> TokenUsage:
    """Tokens and LLM cost of the baseline: the provider's figures, else the price table."""
    prompt = completion = None
    usd = None
    for item in call.cost.breakdown:
        if item.kind != "llm":
            continue
        detail = item.detail
        prompt = _add(prompt, detail.get("promptTokens", detail.get("prompt_tokens")))
        completion = _add(completion,
                          detail.get("completionTokens", detail.get("completion_tokens")))
        usd = (usd or 0.0) + item.usd
        named = detail.get("model")
        if isinstance(named, Mapping) and named.get("model"):
            model = str(named["model"])
    if usd is not None:
        return TokenUsage(prompt=prompt, completion=completion, model=model, cost_usd=usd,
                          cost_source="provider")
    table = prices if prices is not None else load_prices()
    cost = _cost(prompt, completion, price_for(model, table))
    return TokenUsage(prompt=prompt, completion=completion, model=model, cost_usd=cost,
                      cost_source="price-table" if cost is not None else "unknown")


def replay_usage(replay: Replay, model: str | None,
                 prices: Mapping[str, Price] | None = None) -> TokenUsage:
    """Tokens the replay's LLM used (agent turns only) and their estimated cost."""
    prompt = completion = None
    for turn in replay.turns:
        if turn.origin == "caller-llm":
            continue
        prompt = _add(prompt, turn.prompt_tokens)
        completion = _add(completion, turn.completion_tokens)
    backend = replay.backends.llm
    if backend in LOCAL_BACKENDS:
        free = prompt is not None or completion is not None
        return TokenUsage(prompt=prompt, completion=completion, model=model or backend,
                          cost_usd=0.0 if free else None,
                          cost_source="price-table" if free else "unknown")
    table = prices if prices is not None else load_prices()
    cost = _cost(prompt, completion, price_for(model, table))
    return TokenUsage(prompt=prompt, completion=completion, model=model, cost_usd=cost,
                      cost_source="price-table" if cost is not None else "unknown")


def _add(total: int | None, value: Any) -> int | None:
    """``total + value`` when ``value`` is a number; ``total`` unchanged otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return total
    return (total or 0) + int(value)
