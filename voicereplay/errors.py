"""The typed error tree of voicereplay.

Every failure a user can cause or meet is one of these, raised with a message that says what
was wrong and what to do. Lower layers translate foreign exceptions at the boundary
(``raise PayloadError(...) from exc``); the CLI prints ``str(error)`` on one line and exits
with ``error.exit_code``; the web API answers ``{"error": {"type", "message"}}`` with
``error.http_status``.

    VoiceReplayError
    ├── ConfigError                 bad settings, missing API key, unknown backend name
    │   └── RequestError            a stored job's request this worker cannot run
    ├── PayloadError                a call/assistant payload we cannot understand
    │   └── UnknownFormatError      a file that is no known provider shape
    ├── ProviderError               talking to a provider API failed
    │   ├── AuthError               401/403: the key is wrong or lacks access
    │   ├── NotFoundError           404: no such call/assistant/agent
    │   ├── RateLimitError          429 after every retry
    │   ├── ProviderUnavailable     5xx / timeouts / connection errors after every retry
    │   ├── CallNotEnded            the call is still going on (a job tries again later)
    │   └── RecordingError          a recording could not be downloaded or is not audio
    ├── Interrupted                 Ctrl-C; what was stored stays stored (exit 130)
    ├── StoreError                  the database or the artifacts dir failed
    │   └── NotStoredError          a call/snapshot the user named is not in the store
    ├── OverrideError               an override that does not fit the snapshot
    ├── JobStateError               a job's state does not allow it (cancel a finished job)
    ├── NotificationError           a notification POST failed (``retryable`` for connection
    │                               errors, timeouts, 429 with ``retry_after``, 5xx)
    └── SimulationError             a replay could not run
        └── StageError              an STT/LLM/TTS backend failed (``retryable`` for 429s,
            │                       timeouts and the like)
            └── StageAuthError      its service refused the key (401/403); exits 3
"""

from __future__ import annotations

__all__ = [
    "AuthError",
    "CallNotEnded",
    "ConfigError",
    "Interrupted",
    "JobStateError",
    "NotificationError",
    "NotFoundError",
    "NotStoredError",
    "OverrideError",
    "PayloadError",
    "ProviderError",
    "ProviderUnavailable",
    "RateLimitError",
    "RecordingError",
    "RequestError",
    "SimulationError",
    "StageAuthError",
    "StageError",
    "StoreError",
    "UnknownFormatError",
    "VoiceReplayError",
]


class VoiceReplayError(Exception):
    """Base of every error voicereplay raises on purpose."""

    exit_code: int = 1
    http_status: int = 500
    retryable: bool = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_json(self) -> dict[str, object]:
        return {"error": {"type": type(self).__name__, "message": self.message}}


class ConfigError(VoiceReplayError):
    exit_code = 2
    http_status = 400


class RequestError(ConfigError):
    """A stored job whose request no longer validates, or of a kind this worker lacks."""


class PayloadError(VoiceReplayError):
    """A payload (call, assistant, agent, webhook body) is malformed or truncated."""

    http_status = 422

    def __init__(self, message: str, *, source: str | None = None) -> None:
        super().__init__(f"{source}: {message}" if source else message)
        self.source = source


class UnknownFormatError(PayloadError):
    """A JSON document that is neither a Vapi nor a Retell call."""


class OverrideError(VoiceReplayError):
    exit_code = 2
    http_status = 422


class JobStateError(VoiceReplayError):
    """Cancel a job that has finished, retry one that has not failed: a conflict (409)."""

    exit_code = 2
    http_status = 409


class NotificationError(VoiceReplayError):
    """Posting a notification to a rule's URL failed. Not a :class:`ProviderError`: the
    receiver (a team's Slack or endpoint) is no call provider, and a failed notification never
    fails the replay it reports. ``retryable`` for connection errors, timeouts, 429 (with
    ``retry_after`` from ``Retry-After``) and 5xx; permanent for other 4xx and bad redirects.
    ``target`` names the URL by scheme, host and path only (long path segments such as a
    Slack webhook's secret shortened); ``status`` is the HTTP status when there was one."""

    http_status = 502

    def __init__(self, message: str, *, target: str, status: int | None = None,
                 retryable: bool = False, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.target = target
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after  # seconds the receiver asked us to wait, if it said


class ProviderError(VoiceReplayError):
    """A provider API call failed. ``status`` is the HTTP status when there was one."""

    http_status = 502

    def __init__(self, message: str, *, provider: str, status: int | None = None) -> None:
        super().__init__(message)
        self.provider = provider
        self.status = status


class AuthError(ProviderError):
    exit_code = 3
    http_status = 401


class NotFoundError(ProviderError):
    exit_code = 4
    http_status = 404


class RateLimitError(ProviderError):
    retryable = True
    http_status = 429

    def __init__(
        self, message: str, *, provider: str, retry_after: float | None = None
    ) -> None:
        super().__init__(message, provider=provider, status=429)
        self.retry_after = retry_after


class ProviderUnavailable(ProviderError):
    retryable = True
    http_status = 503


class CallNotEnded(ProviderError):
    """The provider says the call has not ended yet, so its recordings are not final: a
    background job retries later; the command line says to wait."""

    retryable = True
    http_status = 409


class RecordingError(ProviderError):
    http_status = 502


class Interrupted(VoiceReplayError):
    """Ctrl-C: what was stored stays stored; the message says what is left to do."""

    exit_code = 130
    http_status = 503


class StoreError(VoiceReplayError):
    pass


class NotStoredError(StoreError):
    exit_code = 4
    http_status = 404


class SimulationError(VoiceReplayError):
    http_status = 422


class StageError(SimulationError):
    """A backend of one stage failed; ``stage`` names it (e.g. ``openai-compatible``)."""

    http_status = 502

    def __init__(
        self, message: str, *, stage: str, retryable: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.stage = stage
        self.retryable = retryable
        self.retry_after = retry_after  # seconds the server asked us to wait, if it said


class StageAuthError(StageError):
    """A stage's service refused the credentials (HTTP 401/403): exit code 3, as for a
    provider's :class:`AuthError`."""

    exit_code = 3
