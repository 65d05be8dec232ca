"""Notifications: where a triggered replay's outcome is posted (a rule's ``notify`` list).

A :class:`NotifyTarget` is one URL and the format it speaks: ``json`` (voicereplay's own
summary) or ``slack`` (an incoming-webhook message).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["NotifyTarget"]


class NotifyTarget(BaseModel):
    """One place a triggered replay's summary is posted."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(description="http(s) URL the summary is POSTed to")
    format: Literal["json", "slack"] = Field(
        default="json", description="json: voicereplay's summary; slack: an incoming-webhook "
                                    "message")
    headers: dict[str, str] = Field(default_factory=dict,
                                    description="extra request headers (never logged)")

    @field_validator("url")
    @classmethod
    def _http(cls, url: str) -> str:
        if not url.startswith(("http://", "https://")):
            raise ValueError("a notification URL starts with http:// or https://")
        return url
