"""This kernel's client: remote when a Jupyter server is found, else in-process (one, cached)."""

from __future__ import annotations

import threading

from .client_api import XGenClient

_lock = threading.Lock()
_cached: XGenClient | None = None


def get_client(refresh: bool = False) -> XGenClient:
    """The client the magics and the panel use unless given one."""
    global _cached
    with _lock:
        if _cached is None or refresh:
            from .connection import discover

            conn = discover()
            if conn is not None:
                from .remote_client import RemoteClient

                _cached = RemoteClient(conn)
            else:  # imported only here: the in-process core is heavy and a remote kernel never needs it
                from .local_client import LocalClient

                _cached = LocalClient.shared()
        return _cached


def set_client(client: XGenClient | None) -> None:
    """Use this client from now on (tests, or a user pointing at another server)."""
    global _cached
    with _lock:
        _cached = client
