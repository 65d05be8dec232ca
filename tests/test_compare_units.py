"""Metric units are one enum; the terminal and the Markdown report format each one the same way."""

from __future__ import annotations

import pytest

from voicereplay.compare.markdown import _metric_delta, _metric_value
from voicereplay.compare.metrics import metric_rows
from voicereplay.compare.model import MetricRow, MetricUnit, SideMetrics
from voicereplay.compare.terminal import _delta, _num

EXPECTED = {  # unit → (terminal value, markdown value) of 0.25
    MetricUnit.SECONDS: ("0.25s", "0.25 s"),
    MetricUnit.RATIO: ("25%", "25%"),
    MetricUnit.USD: ("$0.2500", "$0.25"),
    MetricUnit.COUNT: ("0.2", "0.25"),
    MetricUnit.TOKENS: ("0.2", "0.25 tokens"),
    MetricUnit.WORDS_PER_MINUTE: ("0.2", "0.25 wpm"),
}


@pytest.mark.parametrize("unit", list(MetricUnit))
def test_every_unit_renders_in_both_reports(unit: MetricUnit) -> None:
    row = MetricRow(key="x", label="x", unit=unit, baseline=0.5, replay=0.25, delta=-0.25)
    terminal, markdown = EXPECTED[unit]
    assert _num(0.25, unit) == terminal
    assert _metric_value(row, 0.25) == markdown
    assert str(_delta(row)).startswith("-") and _metric_delta(row).startswith("▼")


def test_rows_carry_typed_units_into_report_json() -> None:
    rows = {r.key: r for r in metric_rows(SideMetrics(), SideMetrics())}
    assert rows["talk_ratio"].unit is MetricUnit.RATIO
    assert rows["latency_p90"].unit is MetricUnit.SECONDS
    assert rows["llm_cost"].model_dump(mode="json")["unit"] == "USD"
    with pytest.raises(ValueError):
        MetricRow(key="x", label="x", unit="furlongs")
