"""`voicereplay serve`: the web app (pages, /api, /docs) over this home's store."""

from __future__ import annotations

import ipaddress
from typing import Annotated

import typer
from rich.text import Text

from voicereplay.cli.common import err, handle_errors, settings
from voicereplay.errors import ConfigError

__all__ = ["serve"]

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1", "[::1]", "*.localhost")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@handle_errors
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
    no_worker: Annotated[bool, typer.Option(
        "--no-worker", help="Do not run jobs in this process (run `voicereplay worker`).")]
    = False,
    concurrency: Annotated[int, typer.Option(
        min=1, max=64, help="Jobs the embedded worker runs at once.")] = 3,
    insecure: Annotated[bool, typer.Option(
        "--insecure", help="Listen beyond 127.0.0.1 without VOICEREPLAY_API_TOKEN.")] = False,
) -> None:
    """Serve the web app: calls, replays and the side-by-side comparison."""
    import uvicorn

    from voicereplay.web import create_app

    config = settings()
    if not _loopback(host) and not config.api_token and not insecure:
        raise ConfigError(f"refusing to listen on {host} without VOICEREPLAY_API_TOKEN: anyone "
                          "who can reach it could read every call; set a token, or pass "
                          "--insecure on a trusted network")
    # An open app answers its loopback names only: a page whose DNS name is rebound to
    # 127.0.0.1 (same origin to the browser) would otherwise read and change everything.
    hosts = None if config.api_token or insecure else [*LOOPBACK_NAMES, host]
    app = create_app(config, worker=not no_worker, concurrency=concurrency,
                     allowed_hosts=hosts)
    guard = "sign-in with VOICEREPLAY_API_TOKEN" if config.api_token else "open: no API token"
    err.print(Text(f"voicereplay on http://{host}:{port}/ "
                   f"({'no worker' if no_worker else f'embedded worker, {concurrency} threads'}"
                   f"; {guard})"))
    uvicorn.run(app, host=host, port=port, log_level="warning")
