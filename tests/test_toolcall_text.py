"""The lenient tool-call parser on model outputs of each shape, and its streaming filter.

The samples are written the way each model family writes a call when no server parses it:
Qwen2.5 and Hermes (``<tool_call>``), instruct models that fence JSON, Llama 3.1 (bare JSON
with ``parameters``), Mistral (``[TOOL_CALLS]`` and a list), OpenAI's own shape with the
arguments as a JSON string.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from voicereplay.models import ToolCall
from voicereplay.simulate.stages import ChatDelta
from voicereplay.simulate.toolcall_text import (
    check_arguments,
    parse_tool_calls,
    tool_schemas,
    with_text_tool_calls,
)

TOOLS: list[dict[str, Any]] = [
    {"type": "function", "function": {
        "name": "check_status", "description": "Look up an order's shipping status.",
        "parameters": {"type": "object", "required": ["order_id"], "properties": {
            "order_id": {"type": "string"}}}}},
    {"type": "function", "function": {
        "name": "issue_refund", "description": "Refund an order.",
        "parameters": {"type": "object", "required": ["order_id"], "properties": {
            "order_id": {"type": "string"}, "reason": {"type": "string"},
            "amount": {"type": "number"}, "items": {"type": "integer"}}}}},
    {"type": "function", "function": {"name": "end_call"}},  # no parameters at all
]

QWEN = ('<tool_call>\n{"name": "check_status", "arguments": {"order_id": "4417"}}\n'
        '</tool_call>')
QWEN_TWO = ("Let me look into that for you.\n"
            '<tool_call>\n{"name": "check_status", "arguments": {"order_id": "4417"}}\n'
            '</tool_call>\n<tool_call>\n{"name": "issue_refund", "arguments": '
            '{"order_id": "4417", "reason": "arrived damaged"}}\n</tool_call>')
UNCLOSED = ('One moment.<tool_call>\n{"name": "check_status", "arguments": '
            '{"order_id": "4417"}}')  # generation stopped at the stop token, before the tag
FENCED = ("Sure! I'll check on that order now.\n\n```json\n"
          '{\n  "name": "check_status",\n  "arguments": {\n    "order_id": "4417"\n  }\n}\n```')
LLAMA31 = '{"name": "check_status", "parameters": {"order_id": "4417"}}'
MISTRAL = ('[TOOL_CALLS] [{"name": "issue_refund", "arguments": {"order_id": "4417", '
           '"reason": "never arrived"}}]')
OPENAI_SHAPE = ('{"type": "function", "function": {"name": "check_status", '
                '"arguments": "{\\"order_id\\": \\"4417\\"}"}}')
FLAT = 'I will check. {"name": "check_status", "order_id": "4417"}'
WRAPPED = ('{"tool_calls": [{"id": "x", "type": "function", "function": {"name": "check_status", '
           '"arguments": {"order_id": "4417"}}}]}')


@pytest.mark.parametrize(("output", "said", "calls"), [
    (QWEN, "", [("check_status", {"order_id": "4417"})]),
    (QWEN_TWO, "Let me look into that for you.",
     [("check_status", {"order_id": "4417"}),
      ("issue_refund", {"order_id": "4417", "reason": "arrived damaged"})]),
    (UNCLOSED, "One moment.", [("check_status", {"order_id": "4417"})]),
    (FENCED, "Sure! I'll check on that order now.", [("check_status", {"order_id": "4417"})]),
    (LLAMA31, "", [("check_status", {"order_id": "4417"})]),
    (MISTRAL, "", [("issue_refund", {"order_id": "4417", "reason": "never arrived"})]),
    (OPENAI_SHAPE, "", [("check_status", {"order_id": "4417"})]),
    (FLAT, "I will check.", [("check_status", {"order_id": "4417"})]),
    (WRAPPED, "", [("check_status", {"order_id": "4417"})]),
    ('<tool_call>{"name": "end_call", "arguments": {}}</tool_call>', "", [("end_call", {})]),
])
def test_each_shape_a_model_writes_becomes_calls_and_the_rest_is_said(
        output: str, said: str, calls: list[tuple[str, dict[str, Any]]]) -> None:
    found = parse_tool_calls(output, TOOLS)

    assert found.text == said
    assert [(c.name, c.arguments) for c in found.calls] == calls
    assert [c.id for c in found.calls] == [f"call_{n + 1}" for n in range(len(calls))]
    assert all(c.raw_arguments is None for c in found.calls) and found.problems == []


@pytest.mark.parametrize("output", [
    "Your order 4417 shipped yesterday and should arrive on Friday.",
    "I can help with that {name}! What's your order number?",  # braces, no JSON
    "Here is the summary: [shipped, in transit]",
    '{"status": "shipped", "eta": "Friday"}',  # JSON, but no call
    "```\nprint('hello')\n```",
    "<b>bold</b> text with a < sign",
    "[" * 5000 + "]" * 5000,  # deeper than the JSON decoder recurses
])
def test_text_without_a_call_is_said_unchanged(output: str) -> None:
    found = parse_tool_calls(output, TOOLS)
    assert found.text == output.strip() and found.calls == [] and found.problems == []


def test_json_naming_a_tool_not_offered_stays_text() -> None:
    output = '<tool_call>\n{"name": "delete_account", "arguments": {"user": "7"}}\n</tool_call>'
    assert parse_tool_calls(output, TOOLS).text == output
    bare = 'Okay. {"name": "transfer_call", "arguments": {"to": "sales"}}'
    assert parse_tool_calls(bare, TOOLS).calls == []
    # a list is calls only when every item is one: a known and an unknown tool stay text
    mixed = ('[{"name": "check_status", "arguments": {"order_id": "1"}}, '
             '{"name": "wire_money", "arguments": {}}]')
    assert parse_tool_calls(mixed, TOOLS).text == mixed
    nested = '{"result": {"name": "check_status", "arguments": {"order_id": "1"}}}'
    assert parse_tool_calls(nested, TOOLS).text == nested  # not searched inside
    assert parse_tool_calls(QWEN, []).text == QWEN  # no tools offered: nothing is a call


def test_arguments_of_the_wrong_scalar_type_are_converted_to_what_the_schema_asks() -> None:
    output = ('<tool_call>{"name": "issue_refund", "arguments": {"order_id": 4417, '
              '"amount": "19.99", "items": "2"}}</tool_call>')
    [call] = parse_tool_calls(output, TOOLS).calls
    assert call.arguments == {"order_id": "4417", "amount": 19.99, "items": 2}


def test_arguments_that_do_not_fit_the_schema_keep_the_call_and_report_the_problem() -> None:
    output = '<tool_call>{"name": "check_status", "arguments": {"order": "4417"}}</tool_call>'
    found = parse_tool_calls(output, TOOLS)

    # The model chose the tool: the call stands, with its arguments as written; a tool server
    # will answer it as it answers any call it has no result for.
    assert [(c.name, c.arguments) for c in found.calls] == [("check_status", {"order": "4417"})]
    assert found.problems == ["check_status: 'order_id' is a required property"]
    wrong = '{"name": "issue_refund", "arguments": {"order_id": "1", "items": "two"}}'
    assert parse_tool_calls(wrong, TOOLS).problems == [
        "issue_refund: items: 'two' is not of type 'integer'"]


def test_arguments_that_are_no_json_object_are_kept_as_raw_text() -> None:
    output = '{"name": "check_status", "arguments": "order 4417 please"}'
    [call] = parse_tool_calls(output, TOOLS).calls
    assert call.arguments == {} and call.raw_arguments == "order 4417 please"
    listed = '{"name": "check_status", "arguments": ["4417"]}'
    assert parse_tool_calls(listed, TOOLS).calls[0].raw_arguments == '["4417"]'


def test_a_raw_newline_inside_a_string_is_read() -> None:
    output = '{"name": "issue_refund", "arguments": {"order_id": "4417", "reason": "a\nb"}}'
    [call] = parse_tool_calls(output, TOOLS).calls
    assert call.arguments["reason"] == "a\nb"


def test_a_broken_schema_checks_nothing_and_schemas_are_read_from_tools() -> None:
    call = ToolCall(id="c", name="t", arguments={"x": 1})
    assert check_arguments(call, {"type": "no-such-type"}) == (call, None)
    assert check_arguments(call, None) == (call, None)
    unresolvable = {"type": "object", "properties": {"x": {"$ref": "http://127.0.0.1:9/x"}}}
    assert check_arguments(call, unresolvable) == (call, None)  # nothing is fetched
    schemas = tool_schemas(TOOLS)
    assert list(schemas) == ["check_status", "issue_refund", "end_call"]
    assert schemas["end_call"] is None


# ---- with_text_tool_calls ----------------------------------------------------------------

def stream(*pieces: str, finish: str = "stop", call: ToolCall | None = None
           ) -> Iterator[ChatDelta]:
    for piece in pieces:
        yield ChatDelta(text=piece)
    if call is not None:
        yield ChatDelta(tool_call=call)
    yield ChatDelta(finish_reason=finish)
    yield ChatDelta(prompt_tokens=50, completion_tokens=len(pieces))


def test_a_call_split_across_pieces_is_found_and_the_preamble_passes_first() -> None:
    pieces = ["Let me ", "check that.", " <tool", "_call>\n{\"name\": \"check_", "status\", ",
              "\"arguments\": {\"order_id\": \"4417\"}}\n</tool_call>"]
    out = list(with_text_tool_calls(stream(*pieces), TOOLS))

    # the spoken preamble is passed on as it arrives, before the call is complete
    assert [d.text for d in out[:3]] == ["Let me ", "check that.", " "]
    calls = [d.tool_call for d in out if d.tool_call]
    assert [(c.name, c.arguments) for c in calls] == [("check_status", {"order_id": "4417"})]
    assert "".join(d.text for d in out).strip() == "Let me check that."
    assert out[-1].finish_reason == "tool_calls"
    assert [d.finish_reason for d in out if d.finish_reason] == ["tool_calls"]
    assert any(d.prompt_tokens == 50 for d in out)  # usage passes through


def test_held_text_without_a_call_is_said_at_the_end_with_its_finish_reason() -> None:
    out = list(with_text_tool_calls(stream("It costs ", "{about} $20", " total."), TOOLS))
    assert "".join(d.text for d in out) == "It costs {about} $20 total."
    assert [d.finish_reason for d in out if d.finish_reason] == ["stop"]
    assert not any(d.tool_call for d in out)


def test_a_stream_with_real_tool_calls_keeps_its_text_as_text() -> None:
    real = ToolCall(id="a", name="check_status", arguments={"order_id": "1"})
    out = list(with_text_tool_calls(stream(LLAMA31, call=real, finish="tool_calls"), TOOLS))
    assert [d.tool_call for d in out if d.tool_call] == [real]
    assert "".join(d.text for d in out) == LLAMA31


def test_without_tools_the_stream_is_untouched_and_problems_are_collected() -> None:
    pieces = list(stream(QWEN))
    assert list(with_text_tool_calls(iter(pieces), [])) == pieces
    problems: list[str] = []
    bad = '<tool_call>{"name": "check_status", "arguments": {}}</tool_call>'
    out = list(with_text_tool_calls(stream(bad), TOOLS, problems))
    assert [d.tool_call.name for d in out if d.tool_call] == ["check_status"]
    assert problems == ["check_status: 'order_id' is a required property"]

