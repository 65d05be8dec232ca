"""Provider adapters: Vapi, Retell, and exported call files, each on :class:`CallProvider`.

``create("vapi", api_key=..., base_url=...)`` builds one by name; ``names()`` lists them.
"""

from voicereplay.providers.base import CallProvider
from voicereplay.providers.registry import create, names, register

__all__ = ["CallProvider", "create", "names", "register"]
