"""What xgen writes into Jupyter AI's (Jupyternaut's) config: its models offered, the user's own
choices kept, keys refreshed; and the URL the server reaches its own proxy at. The real Jupyter AI
end to end: test_aichat_jupyternaut.py."""

from __future__ import annotations

from typing import Any

from xgen_jupyter.server.aichat import ID_PREFIX, is_ours, jupyternaut_update, proxy_url

BASE = "http://127.0.0.1:8888/xgen/v1"


def test_proxy_url_is_the_loopback_address_under_the_base_url() -> None:
    assert proxy_url("", 8888, "/") == "http://127.0.0.1:8888/xgen/v1"
    assert proxy_url("0.0.0.0", 9000, "/user/alice/") == "http://127.0.0.1:9000/user/alice/xgen/v1"
    assert proxy_url("localhost", 1, "/a", https=True) == "https://127.0.0.1:1/a/xgen/v1"
    assert proxy_url("10.1.2.3", 80, "/") == "http://10.1.2.3:80/xgen/v1"  # bound to one address: that one
    assert proxy_url("::1", 80, "/") == "http://[::1]:80/xgen/v1"


def test_a_fresh_config_offers_every_model_and_makes_the_first_the_default() -> None:
    up = jupyternaut_update({}, BASE, "xgen-k1", ["chat", "default"], {"max_tokens": 64})
    assert [m["id"] for m in up["custom_models"]] == [f"{ID_PREFIX}openai/chat", f"{ID_PREFIX}openai/default"]
    chat = up["custom_models"][0]
    assert chat["name"] == "xgen · chat" and chat["model_id"] == "openai/chat"
    assert chat["params"] == {"max_tokens": 64, "api_base": BASE, "api_key": "xgen-k1"}
    assert up["model_provider_id"] == "openai/chat"
    assert up["fields"] == {"openai/chat": {"max_tokens": 64, "api_base": BASE, "api_key": "xgen-k1"}}


def _mine() -> dict[str, Any]:
    return {"id": "custom-1234/openai/gpt-x", "name": "mine", "model_id": "openai/gpt-x", "params": {"api_key": "sk"}}


def test_the_users_own_models_and_default_stay() -> None:
    current = {"custom_models": [_mine()], "model_provider_id": "anthropic/claude-x", "fields": {}}
    up = jupyternaut_update(current, BASE, "xgen-k1", ["default"])
    assert up["custom_models"][1] == _mine() and len(up["custom_models"]) == 2
    assert "model_provider_id" not in up and "fields" not in up  # a default xgen did not write is theirs


def test_a_restart_replaces_xgens_entries_and_their_revoked_key() -> None:
    first = jupyternaut_update({"custom_models": [_mine()]}, "http://127.0.0.1:1/xgen/v1", "xgen-old",
                               ["default", "gone"])
    current = {"custom_models": first["custom_models"], "model_provider_id": first["model_provider_id"],
               "fields": first["fields"]}
    up = jupyternaut_update(current, BASE, "xgen-new", ["default"])
    assert [m["id"] for m in up["custom_models"]] == [f"{ID_PREFIX}openai/default", _mine()["id"]]
    assert up["model_provider_id"] == "openai/default"
    assert up["fields"]["openai/default"] == {"api_base": BASE, "api_key": "xgen-new"}
    assert "xgen-old" not in repr(up)


def test_no_models_changes_no_default() -> None:
    up = jupyternaut_update({}, BASE, "xgen-k", [])
    assert up == {"custom_models": []}


def test_only_openai_entries_at_an_xgen_proxy_are_ours() -> None:
    assert is_ours("openai/x", {"api_base": BASE})
    assert is_ours("openai/x", {"api_base": BASE + "/"})
    assert not is_ours("openai/x", {"api_base": "https://api.openai.com/v1"})
    assert not is_ours("ollama/x", {"api_base": BASE})
    assert not is_ours(None, {"api_base": BASE}) and not is_ours("openai/x", None)
