"""Tornado handlers of the xgen REST API and websockets, one module per concern."""
