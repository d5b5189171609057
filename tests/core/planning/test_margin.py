"""The margin: a fixed part plus a share of the plan, one function for planner, box and Ray placement."""

from __future__ import annotations

from dataclasses import replace

from tests.core.planning.moe_helpers import CPU, h200, installs, plan_on, write_moe
from xgen_jupyter.core.box.devices import claims_for
from xgen_jupyter.core.cluster.placement import gpu_budget
from xgen_jupyter.core.hardware.types import HardwareReport
from xgen_jupyter.core.models.inspect import inspect_model
from xgen_jupyter.core.planning.context import GiB, PlanInputs
from xgen_jupyter.core.planning.margin import DEFAULT_MARGIN_FRACTION, DEFAULT_MARGIN_MIB, Margin
from xgen_jupyter.core.planning.placement import budget
from xgen_jupyter.core.planning.request import parse_request

MiB = 1024**2


def test_budget_is_the_largest_plan_whose_margin_still_fits():
    m = Margin(256 * MiB, 0.01)
    for free in (0, 100 * MiB, 6 * GiB, 12 * GiB, 141 * GiB):
        b = m.budget(free)
        assert b == 0 or m.fits(b, free)
        assert not m.fits(b + 2 + int(free * 1e-6), free) or (b == 0 and free <= m.fixed)
    assert m.for_bytes(10 * GiB) == 256 * MiB + int(10 * GiB * 0.01)
    # Not the card's size: a 141 GiB card keeps 256 MiB + 1% of the plan, not 7 GiB.
    assert m.for_bytes(6 * GiB) < 400 * MiB


def test_of_reads_config_values_with_defaults_and_clamps():
    assert Margin.of() == Margin(DEFAULT_MARGIN_MIB * MiB, DEFAULT_MARGIN_FRACTION)
    assert Margin.of(512, 0.02) == Margin(512 * MiB, 0.02)
    assert Margin.of(-5, -1) == Margin(0, 0.0)
    assert "256 MiB + 1% of the plan" in Margin.of().describe()


def test_planner_box_and_ray_placement_agree(tmp_path):
    facts = inspect_model(str(write_moe(tmp_path / "m.gguf")))
    card = h200(2 * GiB)
    inp = PlanInputs(HardwareReport("t", (card,), CPU), facts, parse_request({"model": "m"}), installs(), "m",
                     gpu_margin=0.02, gpu_margin_mib=300)  # fmt: skip
    room, margin = budget(inp, card)
    m = Margin.of(300, 0.02)
    assert room == m.budget(card.memory_free) and margin == m.for_bytes(room)
    assert gpu_budget(card, 0.02, 0, 300) == room  # Ray placement
    p = plan_on(facts, card.memory_free, gpu_margin=0.02, gpu_margin_mib=300)
    (claim,) = [c for c in claims_for(p, HardwareReport("t", (card,), CPU), m) if c.kind == "gpu"]
    assert claim.margin == m.for_bytes(p.memory.gpu_total)  # the box registry's admission
    assert p.memory.gpu_total + claim.margin <= card.memory_free


def test_a_bigger_margin_plans_less_on_the_card(tmp_path):
    facts = inspect_model(str(write_moe(tmp_path / "m2.gguf")))
    free = 830 * MiB
    small = plan_on(facts, free, gpu_margin=0.0, gpu_margin_mib=16)
    large = plan_on(facts, free, gpu_margin=0.05, gpu_margin_mib=64)
    assert small.memory.gpu_total > large.memory.gpu_total
    assert "placement" in {r.rule for r in large.reasons}
    assert replace(large.memory, budget=None).gpu_total <= Margin.of(64, 0.05).budget(free)
