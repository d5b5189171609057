"""The box service: one process per shared box that owns the registry, admission, quotas and every
user's engines; users' Jupyter servers and the ``xgen`` CLI are its clients over a Unix socket.

It knows each client from the socket's peer credentials (SO_PEERCRED), never from what the
client says. See docs/shared-box.md. Nothing here imports Jupyter: the server tier uses
:mod:`.remote` (a client with the surface of XGenCore) when it finds the service's socket.
"""
