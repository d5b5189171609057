"""``xgen_jupyter.client(name)``: an ``openai.OpenAI`` client already pointed at a loaded server.

Through a Jupyter server it targets the authenticated proxy (``<server>/xgen/v1``, the Jupyter
token as the API key); in-process it targets the engine itself with the engine's key.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .client_api import XGenClient
from .current import get_client

if TYPE_CHECKING:
    import openai


def client(name: str, via: XGenClient | None = None, **kwargs: Any) -> openai.OpenAI:
    """An OpenAI client for server ``name``; pass ``model=name`` in its calls as usual.

    ``via``: the xgen client to ask (default: this kernel's, ``current.get_client()``).
    Extra keyword arguments go to ``openai.OpenAI`` (timeout, max_retries, ...).
    """
    import openai

    via = via or get_client()
    via.server(name)  # an unknown name fails here, in one line, not at the first request
    base_url, api_key = via.openai_target(name)
    if "http_client" not in kwargs:
        # trust_env=False: a proxy meant for the internet must not intercept the Jupyter server.
        kwargs["http_client"] = openai.DefaultHttpxClient(trust_env=False)
    return openai.OpenAI(base_url=base_url, api_key=api_key, **kwargs)
