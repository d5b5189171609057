"""The real llama-server CPU build (b11434) on the default model, which has no chat template:
a chat that carries ``tools`` (as Jupyter AI and jupyterlite-ai send) is answered, and the Jinja
copies of the chat formats write the very prompt of llama.cpp's built-in formats."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from xgen_jupyter.core import chat_templates
from xgen_jupyter.core.builds.install import installed_engines

pytestmark = [
    pytest.mark.engine,
    pytest.mark.skipif("llama-server-cpu" not in installed_engines(),
                       reason="llama-server-cpu not built: run scripts/ci-engines.sh"),
]

TOOLS = [{"type": "function", "function": {
    "name": "get_time", "description": "The current time", "parameters": {"type": "object", "properties": {}}}}]
# A system prompt, padding to trim, several turns: what the formats treat differently.
TALK = [
    {"role": "system", "content": "Be brief. "},
    {"role": "user", "content": " Hi there"},
    {"role": "assistant", "content": "Hello!"},
    {"role": "user", "content": [{"type": "text", "text": "What is 2+2?"}]},
]


def post(url: str, body: dict, key: str | None) -> tuple[int, dict]:
    """(status, JSON body), error bodies included (the engine says why it refused)."""
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    req.add_header("Content-Type", "application/json")
    req.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(req, timeout=300) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def load(core, name: str, **req):
    server = core.load({"model": "default", "name": name, "n_ctx": 1024, **req})
    core.manager.wait(name, timeout=120)
    assert server.state == "ready", server.logs.text_tail()
    return server


def prompt(server) -> str:
    status, out = post(f"{server.endpoint}/apply-template", {"messages": TALK}, server.api_key)
    assert status == 200
    return out["prompt"]


def test_default_model_answers_a_chat_with_tools_and_jinja_false_is_honoured(core_factory):
    core = core_factory(allowed_backends=["llama-server-cpu"])
    on, off = load(core, "tools-on"), load(core, "tools-off", jinja=False)
    argv, rules = on.plan.argv, {r.rule: r for r in on.plan.reasons}
    assert "--jinja" in argv and "--no-jinja" not in argv and "--chat-template" not in argv
    assert argv[argv.index("--chat-template-file") + 1] == chat_templates.path("gemma")
    assert {"chat-template-missing", "jinja-chat-format"} <= set(rules)
    assert "tools" in rules["jinja-chat-format"].why
    assert "--no-jinja" in off.plan.argv and off.plan.argv[off.plan.argv.index("--chat-template") + 1] == "gemma"
    assert [r.effect for r in off.plan.warnings] == ["kept your jinja=False"]
    # Plain chats are unchanged: the Jinja copy writes the built-in gemma format's prompt.
    expected = ("<start_of_turn>user\nBe brief.\n\nHi there<end_of_turn>\n<start_of_turn>model\nHello!<end_of_turn>\n"
                "<start_of_turn>user\nWhat is 2+2?<end_of_turn>\n<start_of_turn>model\n")
    assert prompt(on) == prompt(off) == expected
    ask = {"messages": [{"role": "user", "content": "Name three colors."}], "max_tokens": 12, "tools": TOOLS}
    status, out = post(f"{on.endpoint}/v1/chat/completions", {**ask, "model": "tools-on"}, on.api_key)
    assert status == 200, out
    message = out["choices"][0]["message"]
    assert message["role"] == "assistant" and (message.get("content") or message.get("tool_calls"))
    status, out = post(f"{off.endpoint}/v1/chat/completions", {**ask, "model": "tools-off"}, off.api_key)
    assert status >= 400 and "--jinja" in out["error"]["message"]  # the failure the fix removes
    plain = {"messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 8, "temperature": 0}
    answers = [post(f"{s.endpoint}/v1/chat/completions", plain, s.api_key)[1] for s in (on, off)]
    assert answers[0]["choices"][0]["message"]["content"] == answers[1]["choices"][0]["message"]["content"]


def test_the_chatml_copy_writes_the_built_in_chatml_prompt(core_factory):
    core = core_factory(allowed_backends=["llama-server-cpu"])
    on = load(core, "chatml-on", chat_format="chatml", jinja=True)
    off = load(core, "chatml-off", chat_format="chatml", jinja=False)
    assert "--chat-template-file" in on.plan.argv and "--no-jinja" in off.plan.argv
    assert prompt(on) == prompt(off) and prompt(on).startswith("<|im_start|>system\nBe brief. <|im_end|>\n")
