"""Jinja or not, after the rules and the request: one consistent answer, said in the reasons.

An engine with the ``jinja`` trait (llama-server) takes ``tools`` only with its Jinja engine on.
A GGUF without a chat template gets a named chat format; with Jinja on, that format must come
as a Jinja file (``core/chat_templates``), since the engine would read a bare name as a literal
template. Where xgen has no such file, Jinja is off, or the request that asked for it is refused."""

from __future__ import annotations

from typing import Any

from .. import chat_templates
from ..errors import RequestError
from .context import RuleCtx
from .plan import Reason


def settle(ctx: RuleCtx, values: dict[str, Any], user: dict[str, Any]) -> list[Reason]:
    """Make ``values['jinja']`` hold on this engine; the reasons for what changed or was kept."""
    asked = user.get("jinja")
    if not ctx.traits.jinja:
        if asked:
            return [Reason("jinja-engine", "kept your jinja=True (no switch on this engine)",
                           f"{ctx.engine} has no Jinja switch: its own chat handling renders the format", "warning")]
        return []
    fmt = values.get("chat_format")
    if not fmt or fmt in chat_templates.FORMATS or asked is False:
        return []
    have = ", ".join(sorted(chat_templates.FORMATS))
    if asked:
        raise RequestError(
            f"jinja: true cannot be served with chat format {fmt!r}",
            f"llama-server reads a built-in format's name as a literal Jinja template; xgen ships Jinja "
            f"copies of {have} only: set chat_format to one of them, or leave jinja unset (then no tools)",
        )
    values["jinja"] = False
    return [Reason("jinja-no-copy", f"--no-jinja --chat-template {fmt}",
                   f"xgen ships no Jinja copy of the {fmt} format (only {have}); the built-in one serves "
                   "plain chats, and llama-server refuses requests that carry tools", "warning")]
