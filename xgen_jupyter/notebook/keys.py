"""``%xgen keys``: list, create (the key shown once, or put in a variable) and revoke API keys."""

from __future__ import annotations

import argparse
import time
from typing import Any

from ..core.errors import XGenError
from .client_api import Message, XGenClient


def _when(t: float | None) -> str:
    if not t:
        return "never"
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(t))


def keys_text(keys: list[Message]) -> str:
    if not keys:
        return "no API keys (`%xgen keys create NAME` makes one)"
    rows = [("ID", "NAME", "MODELS", "REQUESTS", "TOKENS IN/OUT", "LAST USED")]
    for k in keys:
        rows.append((k["id"], k["name"], ",".join(k["models"]) if k.get("models") else "all",
                     str(k["requests"]), f"{k['prompt_tokens']}/{k['completion_tokens']}", _when(k.get("last_used"))))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)


def created_text(made: Message, where: str, var: str | None) -> str:
    scope = ", ".join(made["models"]) if made.get("models") else "every model"
    shown = (f"in the variable {var!r}" if var else f"\n\n    {made['key']}\n\n"
             "It is shown this once (only its hash is kept). Copy it now, then clear this output: "
             "a saved notebook keeps its outputs.")
    return (f"API key {made['name']!r} (id {made['id']}), opening {scope} at {where.rstrip('/')}/xgen/v1, "
            f"is {shown}\nUse: OpenAI(base_url='{where.rstrip('/')}/xgen/v1', api_key=<the key>). "
            f"Revoke: %xgen keys revoke {made['id']}")


def run_keys(client: XGenClient, ns: argparse.Namespace, shell: Any = None) -> Message | None:
    if ns.action == "list":
        print(keys_text(client.keys()))
        return None
    if ns.action == "revoke":
        gone = client.revoke_key(ns.arg)
        print(f"revoked API key {gone['name']!r} ({gone['id']}): the proxy refuses it from now on")
        return gone
    if ns.var is not None and (shell is None or not ns.var.isidentifier()):
        raise XGenError(f"--var {ns.var!r}: not a variable name of this kernel", "e.g. --var XGEN_KEY")
    models = [m.strip() for m in ns.models.split(",") if m.strip()] if ns.models is not None else None
    made = client.create_key(ns.arg, models)
    if ns.var is not None:
        shell.user_ns[ns.var] = made["key"]
    print(created_text(made, client.where, ns.var))
    return made
