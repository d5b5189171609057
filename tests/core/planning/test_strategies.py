"""Placement strategies on a real small MoE GGUF (written here), planned on injected tight cards."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.core.planning.moe_helpers import CUDA_FLAGS, free_for, full_gpu, plan_on, write_moe
from tests.model_files import write_gguf
from xgen_jupyter.core.models.inspect import inspect_model
from xgen_jupyter.core.planning import experts
from xgen_jupyter.core.planning.context import GiB
from xgen_jupyter.core.planning.margin import Margin
from xgen_jupyter.core.planning.strategies import DECODE_TIE

MiB = 1024**2


@pytest.fixture(scope="module")
def moe(tmp_path_factory):
    return inspect_model(str(write_moe(tmp_path_factory.mktemp("moe") / "tiny-moe.gguf")))


def test_moe_facts_read_from_the_gguf(moe):
    assert moe.is_moe and moe.expert_count == 16 and moe.expert_used_count == 2
    assert moe.layer_expert_bytes == (3 * 16 * 512 * 128 * 4,) * 8
    assert moe.expert_tensor_max == 16 * 512 * 128 * 4
    assert all(lb > eb for lb, eb in zip(moe.layer_bytes, moe.layer_expert_bytes, strict=True))


def test_free_card_keeps_everything_on_the_gpu(moe):
    p = plan_on(moe, 140 * GiB)
    assert p.settings.n_gpu_layers == moe.n_layer + 1
    assert p.settings.n_cpu_moe is None and p.settings.override_tensor is None
    assert "--n-cpu-moe" not in p.argv and "placement" not in {r.rule for r in p.reasons}


def test_tight_card_moves_experts_not_layers_and_says_why(moe):
    # Room for everything but 7 expert tensors: 8 must go to the CPU (the engine copies one back to
    # the GPU for each prompt ubatch); whole blocks, 3 of them, as splitting block 2 would gain
    # less than DECODE_TIE of decode and cost prompt speed (test_split_block.py).
    p = plan_on(moe, free_for(full_gpu(moe) - 7 * moe.expert_tensor_max))
    s = p.settings
    assert s.n_gpu_layers == moe.n_layer + 1  # attention, KV and the head all stay on the GPU
    assert s.n_cpu_moe == 3 and s.override_tensor is None
    argv = " ".join(p.argv)
    assert "--n-cpu-moe 3" in argv and "--override-tensor" not in argv
    why = next(r for r in p.reasons if r.rule == "placement")
    assert "experts on the CPU" in why.effect and "predicted" in why.effect and "t/s" in why.effect
    assert "2 of 16 experts" in why.why and "runner-up whole layers on the CPU" in why.why
    assert p.memory.gpu_total <= p.memory.budget


def test_slow_host_splits_a_block_with_override_tensor(moe):
    # The same room on a host with 2 GB/s: each expert tensor read from host RAM costs enough that
    # keeping one more on the GPU is worth it, so block 2 is split: its up and down on the CPU.
    p = plan_on(moe, free_for(full_gpu(moe) - 7 * moe.expert_tensor_max), host_bandwidth=2e9)
    s = p.settings
    assert s.n_cpu_moe == 2 and s.override_tensor == r"blk\.2\.ffn_(up|down)_exps=CPU"
    argv = " ".join(p.argv)
    assert "--n-cpu-moe 2" in argv and r"--override-tensor blk\.2\.ffn_(up|down)_exps=CPU" in argv
    assert any("2 of block 2's 3 expert tensors on the CPU (-ot)" in r.effect for r in p.reasons)
    assert p.memory.gpu_total <= p.memory.budget


def test_expert_offload_is_fitted_to_the_budget_exactly(moe):
    full = full_gpu(moe)
    tensor = moe.expert_tensor_max
    for moved_tensors in range(1, 12):
        room = free_for(full - moved_tensors * tensor)
        for host, exact in ((2e9, True), (None, False)):
            p = plan_on(moe, room, host_bandwidth=host)
            k, part = p.settings.n_cpu_moe or 0, 0
            if p.settings.override_tensor:
                part = 1 if "ffn_down_exps" in p.settings.override_tensor else 2
            assert p.memory.gpu_total + Margin().for_bytes(p.memory.gpu_total) <= room
            pred = p.prediction
            assert pred is not None and pred.runner_up is not None
            if pred.strategy == "layers":
                # One whole block moved (no expert copy buffer needed) vs 4 expert tensors: as fast
                # or within DECODE_TIE, and a faster prompt.
                assert moved_tensors == 3 and pred.decode_tps >= pred.runner_up.decode_tps * (1 - DECODE_TIE)
                continue
            # The fewest expert tensors on the CPU that fit: one more than the room needs, as the
            # engine copies one at a time back to the GPU for a prompt (experts.EXPERT_COPIES); on
            # a fast host whole blocks, unless a split block gains more than DECODE_TIE of decode.
            if exact:
                assert 3 * k + part == moved_tensors + 1
            else:
                assert 3 * k + part >= moved_tensors + 1 and (part == 0 or 3 * k + part == moved_tensors + 1)


def test_build_without_n_cpu_moe_uses_override_tensor(moe):
    flags = CUDA_FLAGS - {"--n-cpu-moe"}
    p = plan_on(moe, free_for(full_gpu(moe) - 8 * moe.expert_tensor_max), flags)
    assert p.settings.n_cpu_moe is None
    assert p.settings.override_tensor == r"blk\.(0|1|2)\.ffn_(up|down|gate|gate_up)_(ch|)exps=CPU"
    assert "--n-cpu-moe" not in p.argv and "--override-tensor" in p.argv
    assert any("-ot (experts of blocks 0-2" in r.effect for r in p.reasons)


def test_build_without_tensor_placement_moves_whole_layers_and_says_why(moe):
    flags = frozenset({"--fit", "--split-mode=layer"})
    p = plan_on(moe, free_for(full_gpu(moe) - 3 * moe.layer_expert_bytes[0]), flags)
    assert p.settings.n_cpu_moe is None and p.settings.override_tensor is None
    assert p.settings.n_gpu_layers <= moe.n_layer
    warn = next(r for r in p.reasons if r.rule == "placement" and r.level == "warning")
    assert "neither --n-cpu-moe nor --override-tensor" in warn.why


def test_dense_model_keeps_the_layer_fit(tmp_path):
    dense = inspect_model(str(write_gguf(tmp_path / "dense.gguf", n_layer=8, n_embd=512, n_ff=2048, n_vocab=256)))
    full = full_gpu(dense)
    p = plan_on(dense, free_for(full - sum(dense.layer_bytes[:3])))
    assert p.settings.n_cpu_moe is None and p.settings.n_gpu_layers < dense.n_layer + 1
    assert "placement" not in {r.rule for r in p.reasons}


def test_even_all_experts_on_the_cpu_not_enough_moves_layers_too(moe):
    # Less than the model needs with every expert on the CPU: expert offload of all blocks, and fewer blocks.
    base = experts.estimate(moe, n_ctx=4096, n_gpu_layers=-1, n_cpu_moe=moe.n_layer, n_ubatch=512, n_outputs=1,
                            per_seq_attention=True, flash_attn=True, head_first=True, device="cuda").gpu_total  # fmt: skip
    p = plan_on(moe, free_for(base - 2 * (moe.layer_bytes[0] - moe.layer_expert_bytes[0])))
    assert p.settings.n_gpu_layers <= moe.n_layer
    assert p.memory.gpu_total <= p.memory.budget


def test_partial_block_needs_three_equal_expert_tensors(moe):
    assert experts.can_split_block(moe)
    merged = replace(moe, expert_tensor_max=moe.layer_expert_bytes[0] // 2)
    assert not experts.can_split_block(merged)
    assert experts.override_pattern(2, 1, full_blocks=False) == r"blk\.2\.ffn_down_exps=CPU"
    assert experts.override_pattern(0, 0) == ""


def test_two_tight_cards_split_a_moe_instead_of_moving_experts(moe):
    """Neither card holds every expert, both together do: a layer split, no expert offload."""
    from tests.core.planning.moe_helpers import CPU, h200, installs
    from xgen_jupyter.core.hardware.types import HardwareReport
    from xgen_jupyter.core.planning.context import PlanInputs
    from xgen_jupyter.core.planning.planner import plan
    from xgen_jupyter.core.planning.request import parse_request

    free = free_for(full_gpu(moe) - 3 * moe.layer_expert_bytes[0])
    cards = (h200(free), replace(h200(free), index=1))
    req = parse_request({"model": moe.path, "n_ctx": 4096, "n_parallel": 1, "mlock": False})
    p = plan(PlanInputs(HardwareReport("t", cards, CPU), moe, req, installs(), "m"))
    assert p.settings.split_mode == "layer" and p.gpus == (0, 1)
    assert p.settings.n_cpu_moe is None and p.settings.override_tensor is None and "--n-cpu-moe" not in p.argv
    assert "placement" not in {r.rule for r in p.reasons}
    one = plan(PlanInputs(HardwareReport("t", cards[:1], CPU), moe, req, installs(), "m"))
    assert one.settings.n_cpu_moe  # on one card alone the experts go to the CPU
