"""The one place that strings the steps together: import → snapshot → replay → store.

The CLI, the web app and the job workers call these functions; none of them holds business
logic of its own.
"""

from voicereplay.pipeline.importing import ImportOutcome, import_calls, open_provider
from voicereplay.pipeline.snapshots import (
    apply_overrides,
    demo_dir,
    load_overrides,
    resolve_snapshot,
)

__all__ = [
    "ImportOutcome",
    "apply_overrides",
    "demo_dir",
    "import_calls",
    "load_overrides",
    "open_provider",
    "resolve_snapshot",
]
