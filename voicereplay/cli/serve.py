"""`voicereplay serve`: the web app (pages, /api, /docs) over this home's store."""

from __future__ import annotations

import ipaddress
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from voicereplay.cli.common import err, handle_errors, parse_interval, settings, use_rules
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
    rules: Annotated[Path | None, typer.Option(
        help="The flag rules file webhooks are matched against (default: VOICEREPLAY_RULES "
             "or $VOICEREPLAY_HOME/rules.yaml).")] = None,
    sync_every: Annotated[str | None, typer.Option(
        help="Also list the providers' recent calls this often (e.g. 10m) and import the "
             "ones whose webhook was missed.")] = None,
    public_url: Annotated[str | None, typer.Option(
        help="This app's address in notification links (default: VOICEREPLAY_PUBLIC_URL, "
             "else http://HOST:PORT).")] = None,
) -> None:
    """Serve the web app (calls, replays, the side-by-side comparison) and the provider
    webhooks, with an embedded job worker."""
    import uvicorn

    from voicereplay.web import create_app

    use_rules(rules)
    every = parse_interval(sync_every, option="--sync-every")
    if public_url is not None and not public_url.startswith(("http://", "https://")):
        raise ConfigError(f"--public-url {public_url!r}: expected an http(s):// URL")
    config = settings()
    if rules is not None:
        from voicereplay.pipeline.rules import load_configured_rules

        load_configured_rules(config)  # a broken file stops serve now
    shown = f"[{host}]" if ":" in host else host
    config = replace(config, public_url=(public_url or config.public_url
                                         or f"http://{shown}:{port}").rstrip("/"))
    if not _loopback(host) and not config.api_token and not insecure:
        raise ConfigError(f"refusing to listen on {host} without VOICEREPLAY_API_TOKEN: anyone "
                          "who can reach it could read every call; set a token, or pass "
                          "--insecure on a trusted network")
    # An open app answers its loopback names only: a page whose DNS name is rebound to
    # 127.0.0.1 (same origin to the browser) would otherwise read and change everything.
    hosts = None if config.api_token or insecure else [*LOOPBACK_NAMES, host]
    app = create_app(config, worker=not no_worker, concurrency=concurrency,
                     allowed_hosts=hosts, sync_every=every)
    guard = "sign-in with VOICEREPLAY_API_TOKEN" if config.api_token else "open: no API token"
    err.print(Text(f"voicereplay on http://{host}:{port}/ "
                   f"({'no worker' if no_worker else f'embedded worker, {concurrency} threads'}"
                   f"; {guard})"))
    uvicorn.run(app, host=host, port=port, log_level="warning")
