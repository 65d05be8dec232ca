"""Similarity scorers (lexical by hand, the real embedding model) and the price table."""

from __future__ import annotations

from pathlib import Path

import pytest

from voicereplay.compare.model import TokenUsage
from voicereplay.compare.prices import (
    DEFAULT_PRICES,
    baseline_usage,
    load_prices,
    price_for,
    replay_usage,
)
from voicereplay.compare.similarity import Embedding, Lexical, scorer, words
from voicereplay.config import Settings
from voicereplay.errors import ConfigError
from voicereplay.models import Backends, Call, Cost, CostItem, Replay, ReplayTurn


def test_lexical_similarity_by_hand() -> None:
    assert words("Thanks. And can you confirm the NAME?") == [
        "thanks", "and", "can", "you", "confirm", "the", "name"]
    lexical = Lexical()
    # 2 * matches / (len a + len b): "your order shipped" in both (3 of 4 + 5 words)
    assert lexical.score("Your order shipped today.", "Good news: your order shipped!") == \
        pytest.approx(2 * 3 / (4 + 5))
    assert lexical.score("", "") == 1.0 and lexical.score("", "hello") == 0.0
    assert lexical.threshold == 0.5


def test_scorer_by_name_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(scorer(), Lexical)
    monkeypatch.setenv("VOICEREPLAY_SIMILARITY", "embedding")
    assert isinstance(scorer(Settings.from_env().similarity), Embedding)
    with pytest.raises(ConfigError, match="lexical, embedding"):
        scorer("cosine")


@pytest.mark.models
def test_the_embedding_model_scores_paraphrases_above_lexical_overlap() -> None:
    embedding = Embedding()
    refund = ("I've issued a refund of $59.99 to your original payment method.",
              "I have refunded $59.99 to the card you paid with.")
    unrelated = ("I've issued a refund of $59.99 to your original payment method.",
                 "Could you please confirm the name on the order?")
    close, far, empty = embedding.score_many([refund, unrelated, ("", "")])
    assert close > far + 0.2
    assert close > Lexical().score(*refund)  # a paraphrase shares few words
    assert 0.0 <= far < embedding.threshold <= close <= 1.0
    assert empty == 1.0


def test_prices_exact_prefix_and_user_file(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    assert price_for("gpt-4o-mini-2024-07-18", DEFAULT_PRICES) == DEFAULT_PRICES["gpt-4o-mini"]
    assert price_for("openai/gpt-4o", DEFAULT_PRICES) == DEFAULT_PRICES["gpt-4o"]
    assert price_for("my-finetune", DEFAULT_PRICES) is None
    prices = tmp_path / "prices.yaml"
    prices.write_text("my-finetune: {input: 0.30, output: 1.20}\n"
                      "gpt-4o-mini: {input: 1, output: 2}\n")
    monkeypatch.setenv("VOICEREPLAY_PRICES", str(prices))
    table = load_prices(Settings.from_env().prices_file)
    assert table["my-finetune"] == (0.30, 1.20) and table["gpt-4o-mini"] == (1.0, 2.0)
    prices.write_text("my-finetune: 0.3\n")
    with pytest.raises(ConfigError, match="my-finetune: expected"):
        load_prices(prices)
    with pytest.raises(ConfigError, match="cannot read the prices file"):
        load_prices(tmp_path / "missing.yaml")
    assert load_prices(tmp_path / "missing.yaml", explicit=False) == DEFAULT_PRICES


def test_tokens_and_cost_of_both_sides() -> None:
    call = Call(provider="vapi", call_id="c", cost=Cost(breakdown=[
        CostItem(kind="llm", usd=0.000549, detail={
            "promptTokens": 3169, "completionTokens": 122,
            "model": {"provider": "openai", "model": "gpt-4o-mini"}}),
        CostItem(kind="tts", usd=0.01784)]))
    assert baseline_usage(call, None) == TokenUsage(
        prompt=3169, completion=122, model="gpt-4o-mini", cost_usd=0.000549,
        cost_source="provider")
    replay = Replay(id="r", call_provider="vapi", call_id="c", snapshot_id="s",
                    backends={"llm": "openai-compatible"}, turns=[
                        ReplayTurn(role="agent", prompt_tokens=1000, completion_tokens=20),
                        ReplayTurn(role="tool_call", prompt_tokens=1200, completion_tokens=10),
                        ReplayTurn(role="agent", origin="caller-llm", prompt_tokens=999),
                        ReplayTurn(role="agent", text="no usage")])
    usage = replay_usage(replay, "gpt-4o-mini", DEFAULT_PRICES)
    # 2200 prompt tokens × $0.15/M + 30 completion tokens × $0.60/M
    assert (usage.prompt, usage.completion) == (2200, 30)
    assert usage.cost_usd == pytest.approx((2200 * 0.15 + 30 * 0.60) / 1e6)
    assert usage.cost_source == "price-table"
    local = replay.model_copy(update={"backends": Backends(llm="llama-cpp")})
    assert replay_usage(local, "gpt-4o-mini", DEFAULT_PRICES).cost_usd == 0.0
    unknown = replay_usage(replay, "my-finetune", DEFAULT_PRICES)
    assert unknown.cost_usd is None and unknown.cost_source == "unknown"
