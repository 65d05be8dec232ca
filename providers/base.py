"""The small abstract base every provider adapter fills in, and the recording download step.

An adapter turns a provider's API (or files) into our models: :class:`~voicereplay.models.Call`
and :class:`~voicereplay.snapshot.AgentSnapshot`, never raw dicts.
"""

from __future__ import annotations

import itertools
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import AbstractContextManager
from datetime import datetime
from types import TracebackType
from typing import ClassVar

from voicereplay.artifacts import ArtifactStore
from voicereplay.errors import RecordingError
from voicereplay.models import Call, Recording
from voicereplay.snapshot import AgentSnapshot

__all__ = ["CallProvider", "audio_suffix"]


class CallProvider(ABC):
    """Get calls, list them, fetch their recordings, and freeze the agent that handled them."""

    name: ClassVar[str]

    @abstractmethod
    def get_call(self, call_id: str) -> Call:
        """The normalized call; raises NotFoundError for an unknown id."""

    @abstractmethod
    def list_calls(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
    ) -> Iterator[Call]:
        """Calls created in ``[since, until)``, newest first, paging under the hood."""

    @abstractmethod
    def get_snapshot(self, call: Call) -> AgentSnapshot:
        """The agent configuration that handled ``call``, fetched if the call lacks it."""

    @abstractmethod
    def open_recording(
        self, call: Call, recording: Recording
    ) -> AbstractContextManager[Iterator[bytes]]:
        """A context manager giving the recording's bytes in chunks."""

    def fetch_recording(self, call: Call, recording: Recording, store: ArtifactStore) -> Recording:
        """Download one recording into ``store``; returns it with ``path``, ``sha256``, ``size``."""
        what = f"the {recording.kind} recording of call {call.call_id}"
        with self.open_recording(call, recording) as chunks:
            head, suffix = _sniff_audio(chunks, what)
            blob = store.put_chunks(itertools.chain([head], chunks), suffix)
        return recording.model_copy(
            update={"path": str(blob.path), "sha256": blob.sha256, "size": blob.size}
        )

    def fetch_knowledge(self, call: Call) -> Call:
        """``call`` with the knowledge-base contexts that live behind a URL (Retell), fetched.

        Never raises for the download itself: a URL that has expired or fails is a warning in
        ``call.warnings``, and the call is imported without those contexts. Providers whose
        payload holds the contexts inline return ``call`` unchanged.
        """
        return call

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    def __enter__(self) -> CallProvider:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def audio_suffix(head: bytes) -> str | None:
    """The file suffix for audio bytes starting with ``head``, or None if it is not audio."""
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return ".wav"
    if head[:4] == b"fLaC":
        return ".flac"
    if head[:4] == b"OggS":
        return ".ogg"
    if head[:3] == b"ID3" or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return ".mp3"
    if head[4:8] == b"ftyp":
        return ".m4a"
    return None


def _sniff_audio(chunks: Iterator[bytes], what: str) -> tuple[bytes, str]:
    """Read the first bytes of a download and check they are audio; returns them and a suffix."""
    head = b""
    for chunk in chunks:
        head += chunk
        if len(head) >= 16:
            break
    suffix = audio_suffix(head)
    if suffix is None:
        described = "no WAV, MP3, FLAC, OGG or M4A header" if head else "it is empty"
        raise RecordingError(  # its bytes are not shown: they may be anything
            f"{what} is not audio ({described}); the URL may have expired or point to an "
            "error page",
            provider="recording",
        )
    return head, suffix
