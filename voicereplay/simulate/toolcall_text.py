"""Tool calls that a model wrote as text, found leniently and checked against the tools.

Models served without a tool-call parser — a GGUF run in-process through its own chat
template, or a small model behind an OpenAI-compatible server that answers ``content`` instead
of ``tool_calls`` — write their calls into the reply text. :func:`parse_tool_calls` finds them
in three shapes, first match wins for any stretch of text:

1. ``<tool_call>{"name": …, "arguments": {…}}</tool_call>`` (Qwen, Hermes; the closing tag may
   be missing when generation stopped there);
2. a fenced block, `````json {…}`````;
3. bare JSON anywhere in the text.

Inside each, the JSON is one call or a list of calls: ``{"name", "arguments"}`` (also
``"parameters"``, ``"args"`` or ``"input"`` for the arguments — Llama 3.1 writes
``parameters`` — and arguments given as a JSON string), OpenAI's own
``{"type": "function", "function": {"name", "arguments"}}``, or ``{"name", …arguments…}``
flattened. JSON that names no tool offered stays text (a model may well read out JSON).
Everything outside the calls stays text, to be spoken (less the markers some models put
before a call: Mistral's ``[TOOL_CALLS]``, Llama's ``<|python_tag|>``).

Arguments are checked against the tool's JSON schema with ``jsonschema``. A scalar of the
wrong type where the schema asks for a string, an integer or a number (``4417`` for an
``order_id`` string, ``"2"`` for a count) is converted, as small models write them either way.
Arguments that still do not fit are kept as written — the model did choose the tool, and a
tool server answers such a call as it would answer any model — and the problem is listed in
:attr:`TextToolCalls.problems` (the backends log it). Arguments that are no JSON object at all
are kept in ``raw_arguments``, as the streamed ``tool_calls`` of a server are.

:func:`with_text_tool_calls` applies this to a streamed reply: text is passed on as it
arrives until a character that may open a call (``<``, a backtick, ``{``, ``[``); from there it
is held to the end and parsed, so a spoken preamble keeps its real time-to-first-token and a
tool call is never read aloud.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import jsonschema
from referencing.exceptions import Unresolvable

from voicereplay.models import ToolCall
from voicereplay.simulate.stages import ChatDelta

__all__ = ["TextToolCalls", "check_arguments", "parse_tool_calls", "tool_schemas",
           "with_text_tool_calls"]

_TAGGED = re.compile(r"<tool_call>(.*?)(?:</tool_call>|\Z)", re.DOTALL)
_FENCED = re.compile(r"```[\w-]*[ \t]*\n?(.*?)(?:```|\Z)", re.DOTALL)
_OPENERS = re.compile(r"[<`{\[]")
_MARKERS = re.compile(r"\[TOOL_CALLS\]|<\|python_tag\|>|</?tool_call>")  # beside a call
_NAME_KEYS = ("name", "tool", "tool_name", "function")
_ARGUMENT_KEYS = ("arguments", "parameters", "args", "input")
_NOT_ARGUMENTS = {*_NAME_KEYS, "type", "id"}


@dataclass
class TextToolCalls:
    """What :func:`parse_tool_calls` found: the text left to say, the calls, and problems."""

    text: str
    calls: list[ToolCall] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # "check_status: 4417 is not …"


def tool_schemas(tools: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Tool name → its ``parameters`` schema (``None`` when it gives none), from OpenAI-style
    ``tools``."""
    schemas: dict[str, Any] = {}
    for tool in tools:
        function = tool.get("function") if isinstance(tool, Mapping) else None
        if isinstance(function, Mapping) and isinstance(function.get("name"), str):
            schemas[function["name"]] = function.get("parameters")
    return schemas


def parse_tool_calls(text: str, tools: Sequence[Mapping[str, Any]]) -> TextToolCalls:
    """The tool calls written in ``text`` for ``tools`` (see the module docstring)."""
    schemas = tool_schemas(tools)
    if not schemas:
        return TextToolCalls(text)
    spans: list[tuple[int, int, list[ToolCall]]] = []
    for pattern in (_TAGGED, _FENCED):
        for match in pattern.finditer(text):
            inside = _calls_in(match.group(1), schemas)
            if inside and not _overlaps(spans, match.start(), match.end()):
                spans.append((match.start(), match.end(), inside))
    spans += list(_bare_calls(text, schemas, spans))
    spans.sort(key=lambda span: span[0])
    kept: list[str] = []
    calls: list[ToolCall] = []
    problems: list[str] = []
    position = 0
    for start, end, found in spans:
        kept.append(text[position:start])
        position = end
        for call in found:
            checked, problem = check_arguments(call, schemas.get(call.name))
            calls.append(checked.model_copy(update={"id": f"call_{len(calls) + 1}"}))
            if problem:
                problems.append(f"{call.name}: {problem}")
    kept.append(text[position:])
    if calls:
        kept = [_MARKERS.sub("", part) for part in kept]
    said = " ".join(part.strip() for part in kept if part.strip())
    return TextToolCalls(said, calls, problems)


def check_arguments(call: ToolCall, schema: Any) -> tuple[ToolCall, str | None]:
    """``call`` with its arguments checked against ``schema``: scalars of the wrong type
    converted where the schema's property asks for a string, integer or number; the schema's
    complaint when they still do not fit (``None`` when they do, or there is no schema)."""
    if not isinstance(schema, Mapping) or call.raw_arguments is not None:
        return call, None
    try:
        validator_class = jsonschema.validators.validator_for(schema)
        validator_class.check_schema(schema)
    except jsonschema.SchemaError:
        return call, None  # a broken schema checks nothing
    validator = validator_class(schema)
    try:
        if validator.is_valid(call.arguments):
            return call, None
        converted = _converted(call.arguments, schema)
        if converted != call.arguments and validator.is_valid(converted):
            return call.model_copy(update={"arguments": converted}), None
        error = jsonschema.exceptions.best_match(validator.iter_errors(call.arguments))
    except Unresolvable:
        return call, None  # a $ref that leads nowhere (nothing is fetched) checks nothing
    where = "/".join(str(p) for p in error.absolute_path) if error else ""
    message = error.message if error else "does not fit the schema"
    return call, f"{where}: {message}" if where else message


def with_text_tool_calls(deltas: Iterator[ChatDelta], tools: Sequence[Mapping[str, Any]],
                         problems: list[str] | None = None) -> Iterator[ChatDelta]:
    """``deltas`` with tool calls written as text turned into tool calls (see the module
    docstring). Text from the first possible opener on is held and parsed at the end, unless
    the stream carried real tool calls; the finish reason comes last (``tool_calls`` when calls
    were found). Schema problems are appended to ``problems``."""
    if not tool_schemas(tools):
        yield from deltas
        return
    held: list[str] | None = None
    structured = False
    finish: str | None = None
    for delta in deltas:
        structured = structured or delta.tool_call is not None
        text = delta.text
        if text and held is not None:
            held.append(text)
            text = ""
        elif text:
            opener = _OPENERS.search(text)
            if opener is not None:
                held = [text[opener.start():]]
                text = text[:opener.start()]
        finish = delta.finish_reason or finish
        delta = dataclasses.replace(delta, text=text, finish_reason=None)
        if delta.text or delta.tool_call or delta.prompt_tokens or delta.completion_tokens:
            yield delta
    rest = "".join(held or [])
    if rest and not structured:
        found = parse_tool_calls(rest, tools)
        if found.calls:
            rest, finish = found.text, "tool_calls"
            if problems is not None:
                problems.extend(found.problems)
        yield ChatDelta(text=rest)
        for call in found.calls:
            yield ChatDelta(tool_call=call)
    elif rest:
        yield ChatDelta(text=rest)
    if finish:
        yield ChatDelta(finish_reason=finish)


def _bare_calls(text: str, schemas: Mapping[str, Any],
                taken: list[tuple[int, int, list[ToolCall]]]
                ) -> Iterator[tuple[int, int, list[ToolCall]]]:
    decoder = json.JSONDecoder(strict=False)  # a raw newline inside a string is common
    position = 0
    while (opener := _OPENERS.search(text, position)) is not None:
        start = opener.start()
        position = start + 1
        if text[start] not in "{[" or _overlaps(taken, start, start + 1):
            continue
        try:
            value, end = decoder.raw_decode(text, start)
        except (ValueError, RecursionError):
            continue
        calls = _calls(value, schemas)
        if calls:
            yield start, end, calls
        position = end  # JSON that is no call is passed over whole, not searched inside


def _calls_in(fragment: str, schemas: Mapping[str, Any]) -> list[ToolCall]:
    """The calls in the JSON that a tag or fence holds (text around the JSON is allowed)."""
    found = list(_bare_calls(fragment, schemas, []))
    return [call for _, _, calls in found for call in calls]


def _calls(value: Any, schemas: Mapping[str, Any]) -> list[ToolCall]:
    """The calls ``value`` (parsed JSON) makes: all its items must be calls of known tools."""
    if isinstance(value, Mapping) and isinstance(value.get("tool_calls"), list):
        value = value["tool_calls"]  # {"tool_calls": [...]}, as an API message holds them
    items = value if isinstance(value, list) else [value]
    calls = [_call(item, schemas) for item in items]
    return [c for c in calls if c is not None] if items and all(calls) else []


def _call(item: Any, schemas: Mapping[str, Any]) -> ToolCall | None:
    if not isinstance(item, Mapping):
        return None
    if isinstance(item.get("function"), Mapping):  # OpenAI's shape
        item = item["function"]
    name = next((item[k] for k in _NAME_KEYS if isinstance(item.get(k), str)), None)
    if name not in schemas:
        return None
    key = next((k for k in _ARGUMENT_KEYS if k in item), None)
    arguments = (item[key] if key is not None
                 else {k: v for k, v in item.items() if k not in _NOT_ARGUMENTS})
    if isinstance(arguments, str):  # arguments as JSON text, as the OpenAI API sends them
        try:
            decoded = json.loads(arguments, strict=False) if arguments.strip() else {}
        except (ValueError, RecursionError):
            decoded = None
        if not isinstance(decoded, dict):
            return ToolCall(id="call", name=name, raw_arguments=arguments)
        arguments = decoded
    if not isinstance(arguments, Mapping):
        return ToolCall(id="call", name=name, raw_arguments=json.dumps(arguments))
    return ToolCall(id="call", name=name, arguments=dict(arguments))


def _converted(arguments: dict[str, Any], schema: Mapping[str, Any]) -> dict[str, Any]:
    properties = schema.get("properties")
    if not isinstance(properties, Mapping):
        return arguments
    out = dict(arguments)
    for key, value in arguments.items():
        spec = properties.get(key)
        kind = spec.get("type") if isinstance(spec, Mapping) else None
        if kind == "string" and isinstance(value, int | float) and not isinstance(value, bool):
            out[key] = str(value)
        elif kind in ("integer", "number") and isinstance(value, str):
            try:
                number = float(value.strip())
            except ValueError:
                continue
            if not math.isfinite(number):
                continue
            if kind == "number":
                out[key] = number
            elif number.is_integer():
                out[key] = int(number)
    return out


def _overlaps(spans: list[tuple[int, int, list[ToolCall]]], start: int, end: int) -> bool:
    return any(start < b and a < end for a, b, _ in spans)
