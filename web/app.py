"""The app factory: :func:`create_app` wires the store, the job queue, the routers and the
error handlers; it holds no logic of its own."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.middleware.trustedhost import TrustedHostMiddleware

from voicereplay import __version__
from voicereplay.config import Settings
from voicereplay.pipeline.queue import JobQueue
from voicereplay.store import Store
from voicereplay.web.errors import install_error_handlers
from voicereplay.web.routes import ROUTERS
from voicereplay.web.security import SecurityMiddleware
from voicereplay.web.templating import STATIC

__all__ = ["create_app"]


def create_app(settings: Settings | None = None, *, store: Store | None = None,
               worker: bool = False, concurrency: int = 3,
               allowed_hosts: Sequence[str] | None = None,
               sync_every: float | None = None) -> FastAPI:
    """The web app over ``settings``' store. ``worker``: run an embedded job worker
    (``concurrency`` threads) while the app runs. ``allowed_hosts``: answer only requests whose
    ``Host`` is one of these (``serve`` sets the loopback names for an app without a token, so
    a site that rebinds its DNS name to 127.0.0.1 cannot reach it); None: any host.
    ``sync_every``: list the providers' recent calls this often (seconds) and import the ones
    whose webhook was missed (:class:`~voicereplay.jobs.sync.PeriodicSync`)."""
    settings = settings or Settings.from_env()
    store = store or Store.from_settings(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        embedded = None
        if worker:
            from voicereplay.jobs.worker import EmbeddedWorker

            embedded = EmbeddedWorker(settings, store, concurrency=concurrency)
            embedded.start()
        syncing = None
        if sync_every:
            from voicereplay.jobs.sync import PeriodicSync

            syncing = PeriodicSync(app.state.queue, sync_every)
            syncing.start()
        try:
            yield
        finally:
            if syncing is not None:
                syncing.stop()
            if embedded is not None:
                embedded.stop()

    app = FastAPI(title="voicereplay", version=__version__, lifespan=lifespan,
                  description="Replay real Vapi/Retell calls against a changed agent.")
    app.state.settings = settings
    app.state.store = store
    app.state.queue = JobQueue(store, settings)
    install_error_handlers(app)
    app.add_middleware(SecurityMiddleware, api_token=settings.api_token)
    if allowed_hosts is not None:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts))
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for router in ROUTERS:
        app.include_router(router)
    return app
