"""A reranker (server_type "rerank"): llama-server with --reranking; engines without /v1/rerank refused."""

from __future__ import annotations

import pytest

from tests.core.planning.test_planner import installs, make, rules
from xgen_jupyter.core.errors import BackendUnavailable, RequestError
from xgen_jupyter.core.models.inspect import inspect_model
from xgen_jupyter.core.planning.request import parse_request
from xgen_jupyter.core.process.manager import name_for


@pytest.fixture(scope="module")
def gemma(default_model):
    return inspect_model(default_model)


def test_reranker_on_llama_server_gets_reranking_and_the_embedding_batch(gemma):
    p = make(gemma, backends=installs("llama-server-cpu", "llama-cpp-python"), server_type="rerank")
    assert p.backend == "llama-server-cpu" and p.server_type == "rerank"
    assert {"rerank", "embed-batch"} <= rules(p)
    assert p.settings.rerank and p.settings.n_ubatch == 2048
    assert "--reranking" in p.argv and "--pooling" not in p.argv  # rank pooling, not mean
    assert p.fallbacks == ()  # llama-cpp-python has no /v1/rerank: never a fallback for a reranker


def test_embedding_plan_has_no_reranking(gemma):
    p = make(gemma, backends=installs("llama-server-cpu"), server_type="embedding")
    assert not p.settings.rerank and "--reranking" not in p.argv and "--embedding" in p.argv


def test_an_engine_without_rerank_is_refused_with_what_to_use(gemma):
    with pytest.raises(RequestError, match="llama-cpp-python cannot serve a reranker") as info:
        make(gemma, backends=installs("llama-server-cpu", "llama-cpp-python"), server_type="rerank",
             backend="llama-cpp-python")
    assert "llama-server" in (info.value.hint or "")
    with pytest.raises(BackendUnavailable):  # auto, and only llama-cpp-python here
        make(gemma, backends=installs("llama-cpp-python"), server_type="rerank")


def test_a_reranker_is_named_apart_from_the_chat_server():
    assert name_for(parse_request({"model": "default", "server_type": "rerank"})) == "default-rerank"
    assert name_for(parse_request({"model": "bge-rerank", "server_type": "rerank"})) == "bge-rerank"


def test_load_flag_rerank():
    import argparse

    from xgen_jupyter.core.request_args import add_request_args, request_from_args

    p = argparse.ArgumentParser()
    add_request_args(p)
    assert request_from_args(p.parse_args(["default", "--rerank"]))["server_type"] == "rerank"
    assert "server_type" not in request_from_args(p.parse_args(["default"]))
