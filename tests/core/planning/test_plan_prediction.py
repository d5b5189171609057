"""The plan's structured prediction (tokens/s of the chosen placement and its runner-up), which the
load form previews show, and its round trip through the API's plan dict."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.core.planning.moe_helpers import CPU, free_for, full_gpu, installs, plan_on, write_moe
from xgen_jupyter.core.api import plan_from_dict
from xgen_jupyter.core.hardware.types import HardwareReport
from xgen_jupyter.core.models.inspect import inspect_model
from xgen_jupyter.core.planning.context import GiB, PlanInputs
from xgen_jupyter.core.planning.planner import plan
from xgen_jupyter.core.planning.request import parse_request


@pytest.fixture(scope="module")
def moe(tmp_path_factory):
    return inspect_model(str(write_moe(tmp_path_factory.mktemp("moe") / "tiny-moe.gguf")))


def test_tight_card_prediction_names_the_strategy_and_runner_up(moe):
    p = plan_on(moe, free_for(full_gpu(moe) - 7 * moe.expert_tensor_max))
    pred = p.prediction
    assert pred is not None and pred.strategy == "experts" and "--n-cpu-moe 3" in pred.flags
    assert pred.runner_up is not None and pred.runner_up.strategy == "layers"
    assert pred.decode_tps > pred.runner_up.decode_tps > 0
    # The same figures the placement reason gives in words.
    why = next(r for r in p.reasons if r.rule == "placement")
    assert f"~{pred.decode_tps:.0f} t/s decode" in why.effect
    back = plan_from_dict(p.to_dict())
    assert back.prediction == pred and back.to_dict() == p.to_dict()


def test_free_card_predicts_all_on_the_gpu(moe):
    p = plan_on(moe, 140 * GiB)
    assert p.prediction is not None and p.prediction.strategy == "all-gpu" and p.prediction.decode_tps > 0
    assert p.to_dict()["prediction"]["decode_tps"] == p.prediction.decode_tps


def test_cpu_plan_predicts_cpu_speed(moe):
    req = parse_request({"model": moe.path, "n_ctx": 4096, "n_parallel": 1, "mlock": False})
    cpu_only = {k: replace(v, available=k == "llama-server-cpu", executable="/opt/llama-server")
                for k, v in installs().items()}  # fmt: skip
    p = plan(PlanInputs(HardwareReport("test", (), CPU), moe, req, cpu_only, "m"))
    assert p.gpus == () and p.prediction is not None and p.prediction.strategy == "cpu"
    assert p.prediction.decode_tps > 0 and p.prediction.runner_up is None


def test_old_plan_dict_without_prediction_still_reads(moe):
    d = plan_on(moe, 140 * GiB).to_dict()
    del d["prediction"]
    assert plan_from_dict(d).prediction is None
