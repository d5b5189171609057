"""Notice an engine becoming ready (or dying) within milliseconds."""

from __future__ import annotations

import http.client
import threading

POLL_INTERVAL = 0.01  # 10 ms: a refused loopback connect costs microseconds


def health_ok(host: str, port: int, path: str, api_key: str | None, timeout: float = 2.0) -> bool:
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        resp.read()
        return resp.status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def wait_until_ready(
    host: str,
    port: int,
    path: str,
    api_key: str | None,
    *,
    exited: threading.Event,
    stop: threading.Event,
    poke: threading.Event,
    timeout: float,
) -> str:
    """Poll the health path every 10 ms (sooner when the log pokes us).

    Returns ``ready``, ``exited``, ``stopped`` or ``timeout``.
    """
    import time

    deadline = time.monotonic() + timeout
    while True:
        if exited.is_set():
            return "exited"
        if stop.is_set():
            return "stopped"
        if health_ok(host, port, path, api_key):
            # The engine may have died between answering and now; trust the exit flag.
            return "exited" if exited.is_set() else "ready"
        if time.monotonic() > deadline:
            return "timeout"
        poke.wait(POLL_INTERVAL)
        poke.clear()
