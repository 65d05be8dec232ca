"""Snapshots for a replay: find a stored snapshot, and apply a user's overrides to it."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from voicereplay.errors import NotStoredError
from voicereplay.pipeline.request import merge_overrides, read_prompt, read_yaml
from voicereplay.snapshot import AgentSnapshot
from voicereplay.store import Store

__all__ = ["apply_overrides", "demo_dir", "load_overrides", "resolve_snapshot"]


def resolve_snapshot(
    store: Store, ref: str, *, provider: str | None = None
) -> tuple[AgentSnapshot, str]:
    """A stored snapshot by call id (``provider:id`` too) or snapshot id (prefix).

    Returns the snapshot and a label saying where it came from.
    """
    try:
        call = store.get_call(ref, provider)
    except NotStoredError:
        return store.get_snapshot(ref), f"snapshot {ref}"
    snapshot = store.snapshot_for_call(call.call_id, call.provider)
    if snapshot is None:
        raise NotStoredError(
            f"call {call.call_id} has no agent snapshot; re-import it with access to its "
            "assistant/agent config (API key or sidecar file)"
        )
    return snapshot, f"call {call.call_id}"


def apply_overrides(
    snapshot: AgentSnapshot,
    *,
    overrides_file: Path | None = None,
    prompt_file: Path | None = None,
    pairs: Iterable[str] = (),
) -> AgentSnapshot:
    """The snapshot with a YAML overrides file, then a prompt file, then ``--set`` pairs."""
    return snapshot.apply(merge_overrides(
        load_overrides(overrides_file) if overrides_file else {},
        read_prompt(prompt_file) if prompt_file is not None else None, list(pairs),
        source=str(overrides_file or prompt_file or "overrides")))


def load_overrides(path: Path) -> dict[str, Any]:
    """The mapping in a YAML (or JSON) overrides file; checked by :meth:`Overrides.parse`."""
    return read_yaml(path, "overrides")


def demo_dir() -> Path:
    """The bundled demo call: fixtures/demo in a checkout, or the copy inside the package."""
    package = Path(__file__).resolve().parent.parent
    packaged = package / "demo"
    if packaged.is_dir():
        return packaged
    return package.parent / "fixtures" / "demo"
