"""Chat templates for tests of the in-process backend's prompt plumbing.

``QWEN_STYLE`` is written in the style of Qwen2.5's template (not a copy of it): the offered
tools in the system turn, past calls rendered with ``tojson`` inside ``<tool_call>``, tool
results as ``<tool_response>``. It is what a tools-aware GGUF gives the backend.
"""

from __future__ import annotations

__all__ = ["QWEN_STYLE"]

QWEN_STYLE = (
    "{%- if tools %}<|im_start|>system\n{{ messages[0].content }}\n<tools>\n"
    "{%- for tool in tools %}\n{{ tool | tojson }}{%- endfor %}\n</tools><|im_end|>\n"
    "{%- endif %}"
    "{%- for message in messages[1:] %}"
    "{%- if message.role == 'assistant' and message.tool_calls %}<|im_start|>assistant"
    "{%- for call in message.tool_calls %}\n<tool_call>\n{\"name\": \"{{ call.function.name }}"
    "\", \"arguments\": {{ call.function.arguments | tojson }}}\n</tool_call>{%- endfor %}"
    "<|im_end|>\n"
    "{%- elif message.role == 'tool' %}<|im_start|>user\n<tool_response>\n{{ message.content }}"
    "\n</tool_response><|im_end|>\n"
    "{%- else %}<|im_start|>{{ message.role }}\n{{ message.content }}<|im_end|>\n{%- endif %}"
    "{%- endfor %}<|im_start|>assistant\n")
