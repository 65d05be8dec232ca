"""The one place that strings the steps together: import → snapshot → replay → compare → store.

The CLI, the web app, the job workers and webhook triggers call these functions with a
:class:`ReplayRequest`; none of them holds business logic of its own.
"""

from voicereplay.pipeline.calling import (
    Interrupted,
    Progress,
    ReplayResult,
    compare_stored,
    run_call,
    show_replay,
)
from voicereplay.pipeline.importing import ImportOutcome, import_calls, open_provider
from voicereplay.pipeline.request import CallRef, ReplayRequest, ReportOptions, Secrets
from voicereplay.pipeline.scenarios import run_scenario, save_scenario
from voicereplay.pipeline.snapshots import (
    apply_overrides,
    demo_dir,
    load_overrides,
    resolve_snapshot,
)

__all__ = [
    "CallRef",
    "ImportOutcome",
    "Interrupted",
    "Progress",
    "ReplayRequest",
    "ReplayResult",
    "ReportOptions",
    "Secrets",
    "apply_overrides",
    "compare_stored",
    "demo_dir",
    "import_calls",
    "load_overrides",
    "open_provider",
    "resolve_snapshot",
    "run_call",
    "run_scenario",
    "save_scenario",
    "show_replay",
]
