"""Tier 1: the Jupyter server extension (REST API, websockets, OpenAI proxy)."""
