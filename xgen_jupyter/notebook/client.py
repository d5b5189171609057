"""``xgen_jupyter.client(name)``: an ``openai.OpenAI`` client already pointed at a loaded server.

Through a Jupyter server it targets the authenticated proxy (``<server>/xgen/v1``, the Jupyter
token as the API key); in-process it targets the engine itself with the engine's key.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .backend import XGenBackend, get_backend

if TYPE_CHECKING:
    import openai


def client(name: str, backend: XGenBackend | None = None, **kwargs: Any) -> openai.OpenAI:
    """An OpenAI client for server ``name``; pass ``model=name`` in its calls as usual.

    Extra keyword arguments go to ``openai.OpenAI`` (timeout, max_retries, ...).
    """
    import openai

    backend = backend or get_backend()
    backend.server(name)  # an unknown name fails here, in one line, not at the first request
    base_url, api_key = backend.openai_target(name)
    if "http_client" not in kwargs:
        # trust_env=False: a proxy meant for the internet must not intercept the Jupyter server.
        kwargs["http_client"] = openai.DefaultHttpxClient(trust_env=False)
    return openai.OpenAI(base_url=base_url, api_key=api_key, **kwargs)
