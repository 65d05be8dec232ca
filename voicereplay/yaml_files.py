"""User-written YAML files with line numbers: read one into a mapping and its node tree, turn a
pydantic error into ``file:line: field: problem``, and write YAML a person reads.

Scenario files, agent files (:mod:`voicereplay.scenario`) go through here, so every error names
the file, the line and the field the user wrote, and every file written keeps keys in order with
multi-line text (prompts) as block scalars.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from voicereplay.errors import ConfigError

__all__ = ["dump_yaml", "line_of", "parse_yaml", "read_text", "validation_error"]


def read_text(path: Path, what: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such {what}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the {what}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: the {what} is not UTF-8 text") from None


def parse_yaml(path: Path, text: str, what: str) -> tuple[dict[str, Any], yaml.Node]:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{line}: not valid YAML: {problem}") from None
    if not isinstance(data, dict) or root is None:
        raise ConfigError(f"{path}: a {what} is a mapping of fields (see the README's "
                          "'Regression suites')")
    return data, root


def _node_at(root: yaml.Node, loc: tuple[Any, ...]) -> yaml.Node:
    """The deepest YAML node on the path ``loc`` (keys and list indices)."""
    node = root
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            found = next((v for k, v in node.value if k.value == str(part)), None)
            if found is None:
                found = next((k for k, _v in node.value if k.value == str(part)), None)
                return found if found is not None else node
            node = found
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) \
                and part < len(node.value):
            node = node.value[part]
        else:
            break
    return node


def line_of(root: yaml.Node, loc: tuple[Any, ...]) -> int:
    return int(_node_at(root, loc).start_mark.line) + 1


def validation_error(path: Path, root: yaml.Node, exc: ValidationError,
                      what: str) -> ConfigError:
    def tag(part: Any) -> bool:  # pydantic's union and validator labels: not the user's keys
        return isinstance(part, str) and (part == "str" or part.startswith("function-")
                                          or part[:1].isupper())

    error = sorted(exc.errors(include_url=False),
                   key=lambda e: (e.get("type") != "extra_forbidden", "str" in e["loc"]))[0]
    loc = tuple(p for p in error["loc"] if not tag(p))
    field = ".".join(str(p) for p in loc) or what
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    if error.get("type") == "extra_forbidden":
        message = "unknown field"
    return ConfigError(f"{path}:{line_of(root, loc)}: {field}: {message}")



class _Dumper(yaml.SafeDumper):
    pass


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    if "\n" in value.strip("\n") and not re.search(r"[ \t]\n|[^\S\n]$", value):
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_Dumper.add_representer(str, _text)


def dump_yaml(data: Any) -> str:
    """YAML a person reads: keys in the given order, multi-line text as block scalars."""
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
