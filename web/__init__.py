"""The web face of voicereplay: pages, a JSON API under ``/api/`` and (later) webhooks.

``create_app(settings)`` builds the FastAPI app over the same store the CLI uses;
``voicereplay serve`` runs it (with an embedded job worker unless ``--no-worker``). Routes are
thin: they read the request, call :mod:`voicereplay.pipeline` or the store, and render.
"""

from voicereplay.web.app import create_app

__all__ = ["create_app"]
