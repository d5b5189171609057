"""Jinja on or off for llama-server: the request's setting is honoured or refused, the rest follows
from the GGUF (its own template, or xgen's Jinja copy of the chat format), and the reasons say so."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from xgen_jupyter.core import chat_templates
from xgen_jupyter.core.adapters.registry import backend_ids, row
from xgen_jupyter.core.errors import RequestError
from xgen_jupyter.core.hardware.types import CPUInfo, HardwareReport
from xgen_jupyter.core.models.inspect import inspect_model
from xgen_jupyter.core.planning.backend import BackendInstall
from xgen_jupyter.core.planning.context import GiB, PlanInputs
from xgen_jupyter.core.planning.planner import plan
from xgen_jupyter.core.planning.request import parse_request

CPU = CPUInfo(2, 2, 24 * GiB, 20 * GiB, "test cpu")
FLAGS = frozenset({"--jinja", "--no-jinja", "--chat-template-file"})  # what b11434's --help lists


def installs(*available: str) -> dict[str, BackendInstall]:
    return {
        b: BackendInstall(row(b), b in available, f"/opt/{b}" if b in available else None, flags=FLAGS)
        for b in backend_ids()
    }


@pytest.fixture(scope="module")
def gemma(default_model):
    return inspect_model(default_model)


def make(facts, backend="llama-server-cpu", **req):
    request = parse_request({"model": "default", **req})
    return plan(PlanInputs(HardwareReport("test", (), CPU, ()), facts, request, installs(backend), "m"))


def reason(p, rule):
    return next(r for r in p.reasons if r.rule == rule)


def after(argv, flag):
    return argv[argv.index(flag) + 1]


def test_every_shipped_format_has_its_file():
    assert {"gemma", "chatml"} <= chat_templates.FORMATS
    for fmt in chat_templates.FORMATS:
        path = chat_templates.path(fmt)
        assert path and os.path.isfile(path) and "add_generation_prompt" in Path(path).read_text()
    assert chat_templates.path("phi3") is None


def test_a_template_less_gguf_gets_jinja_with_the_gemma_copy(gemma):
    assert not gemma.has_chat_template
    for p in (make(gemma), make(gemma, jinja=True)):
        assert p.settings.jinja and p.settings.chat_format == "gemma"
        assert "--jinja" in p.argv and "--no-jinja" not in p.argv and "--chat-template" not in p.argv
        assert after(p.argv, "--chat-template-file") == chat_templates.path("gemma")
        why = reason(p, "jinja-chat-format")
        assert why.level == "info" and "tools" in why.why and "--jinja" in why.effect
        assert not p.warnings


def test_jinja_false_is_kept_with_the_built_in_format_and_a_warning(gemma):
    p = make(gemma, jinja=False)
    assert not p.settings.jinja and "--jinja" not in p.argv and "--chat-template-file" not in p.argv
    assert "--no-jinja" in p.argv and after(p.argv, "--chat-template") == "gemma"
    why = reason(p, "jinja-chat-format")
    assert why.level == "warning" and why.effect == "kept your jinja=False" and "tools" in why.why


def test_a_format_without_a_copy_turns_jinja_off_or_refuses_an_explicit_ask(gemma):
    p = make(gemma, chat_format="phi3")
    assert not p.settings.jinja and "--no-jinja" in p.argv and after(p.argv, "--chat-template") == "phi3"
    assert reason(p, "jinja-no-copy").level == "warning" and "jinja-chat-format" not in {r.rule for r in p.reasons}
    with pytest.raises(RequestError) as e:
        make(gemma, chat_format="phi3", jinja=True)
    assert "'phi3'" in e.value.message and "chatml, gemma" in str(e.value.hint)
    chatml = make(gemma, chat_format="chatml", jinja=True)
    assert after(chatml.argv, "--chat-template-file") == chat_templates.path("chatml")


def test_the_models_own_template_gets_jinja_unless_asked_not_to(gemma):
    templated = replace(gemma, has_chat_template=True)
    p = make(templated)
    assert "--jinja" in p.argv and "--chat-template-file" not in p.argv and "jinja-template" in {r.rule for r in p.reasons}
    off = make(templated, jinja=False)  # b11434 turns Jinja on unless told: the ask must reach argv
    assert "--no-jinja" in off.argv and "--jinja" not in off.argv
    assert reason(off, "jinja-template").effect == "kept your jinja=False"


def test_embeddings_and_engines_without_a_jinja_switch(gemma):
    emb = make(gemma, server_type="embedding")
    assert not {"--jinja", "--no-jinja", "--chat-template-file"} & set(emb.argv)
    lcp = make(gemma, backend="llama-cpp-python", jinja=True)
    assert after(lcp.argv, "--chat_format") == "gemma" and "--jinja" not in lcp.argv
    assert reason(lcp, "jinja-engine").level == "warning"
