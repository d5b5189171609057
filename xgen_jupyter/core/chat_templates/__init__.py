"""Jinja copies of llama.cpp's built-in chat formats, for GGUFs that carry no chat template.

llama-server takes ``tools`` (Jupyter AI and jupyterlite-ai send them with every request) only
with ``--jinja``, and with ``--jinja`` a built-in template *name* is read as a literal template
(b11434 renders every prompt as the word "gemma"). These files write the same prompt as the
built-in format of the same name (tests compare both renderings on the real engine), so serving
them with ``--jinja --chat-template-file`` changes no plain chat. They ship inside the package:
every user the box service starts engines for can read them."""

from __future__ import annotations

from pathlib import Path

#: xgen's neutral chat-format names (planning/rules.py) that have a Jinja copy here.
FORMATS = frozenset({"gemma", "chatml"})


def path(chat_format: str) -> str | None:
    """The Jinja copy of ``chat_format``, or None where xgen ships none."""
    if chat_format not in FORMATS:
        return None
    return str(Path(__file__).with_name(f"{chat_format}.jinja"))
