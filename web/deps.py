"""FastAPI dependencies: the settings, the store and the job queue of the running app."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from voicereplay.config import Settings
from voicereplay.pipeline.queue import JobQueue
from voicereplay.store import Store

__all__ = ["QueueDep", "SettingsDep", "StoreDep"]


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def get_queue(request: Request) -> JobQueue:
    queue: JobQueue = request.app.state.queue
    return queue


SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[Store, Depends(get_store)]
QueueDep = Annotated[JobQueue, Depends(get_queue)]
