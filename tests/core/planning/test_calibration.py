"""The calibration store: what a load really took, used by the next plan of the same key."""

from __future__ import annotations

import json
import logging

import pytest

from tests.core.planning.moe_helpers import free_for, full_gpu, plan_on, write_moe
from xgen_jupyter.core.models.inspect import inspect_model
from xgen_jupyter.core.planning import calibration
from xgen_jupyter.core.planning.context import GiB
from xgen_jupyter.core.planning.recorder import CalibrationRecorder

MiB = 1024**2


@pytest.fixture(scope="module")
def moe(tmp_path_factory):
    return inspect_model(str(write_moe(tmp_path_factory.mktemp("moe") / "cal-moe.gguf")))


def test_record_then_load_round_trips(tmp_path):
    rec = calibration.record(tmp_path, "k1", predicted=100, measured=130, placement={"n_gpu_layers": 9})
    assert rec["measured"] == 130
    assert calibration.bias(calibration.load(tmp_path), "k1") == (30, calibration.load(tmp_path)["k1"])
    assert calibration.bias(calibration.load(tmp_path), "other") == (0, None)


@pytest.mark.parametrize("body", ["{not json", json.dumps([1, 2]), json.dumps({"kind": "someone-else", "version": 1}),
                                  json.dumps({"kind": calibration.KIND, "version": 99, "records": {}})])  # fmt: skip
def test_corrupt_or_foreign_file_is_ignored_with_a_warning(tmp_path, caplog, body):
    (tmp_path / calibration.FILENAME).write_text(body)
    with caplog.at_level(logging.WARNING):
        assert calibration.load(tmp_path) == {}
    assert "ignored" in caplog.text
    # The next record sets the file aside (kept for whoever wrote it) and starts a fresh store.
    calibration.record(tmp_path, "k", predicted=1, measured=2)
    assert calibration.load(tmp_path) == {"k": calibration.load(tmp_path)["k"]}
    assert list(tmp_path.glob(f"{calibration.FILENAME}.ignored-*"))


def test_invalid_records_are_skipped(tmp_path):
    good = {"predicted": 10, "measured": 12}
    (tmp_path / calibration.FILENAME).write_text(json.dumps({"kind": calibration.KIND, "version": 1, "records": {
        "good": good, "neg": {"predicted": -1, "measured": 5}, "text": {"predicted": "x", "measured": 1}}}))  # fmt: skip
    assert set(calibration.load(tmp_path)) == {"good"}


def test_next_plan_uses_the_measured_figure(moe, tmp_path):
    free = free_for(full_gpu(moe) - 4 * moe.expert_tensor_max)  # a card a few expert tensors too small
    first = plan_on(moe, free)
    key = calibration.key_for_plan(first)
    assert calibration.key_of(moe.path, first.backend, first.argv[0], {"n_ctx": 4096, "n_parallel": 1,
                                                                       "n_ubatch": 512, "flash_attn": "auto"}) == key  # fmt: skip
    # The engine took 40 MiB more than predicted: the next plan counts it and says so.
    calibration.record(tmp_path, key, predicted=first.memory.gpu_total, measured=first.memory.gpu_total + 40 * MiB)
    second = plan_on(moe, free, calibration=calibration.load(tmp_path))
    why = next(r for r in second.reasons if r.rule == "calibration")
    assert "last measured" in why.effect and "+40 MiB" in why.why
    assert second.memory.gpu_total + 40 * MiB <= second.memory.budget
    assert second.memory.gpu_total < first.memory.gpu_total  # more experts on the CPU to make room
    other = plan_on(moe, free, calibration={"some other key": {"predicted": 1, "measured": 10 * GiB}})
    assert "calibration" not in {r.rule for r in other.reasons}


def test_recorder_stores_what_nvml_saw(moe, tmp_path):
    p = plan_on(moe, 140 * GiB)
    seen: list[tuple[set[int], tuple[int, ...]]] = []

    def nvml(pids: set[int], gpus: tuple[int, ...]) -> dict[int, int]:  # a recorded NVML answer
        seen.append((pids, gpus))
        return {0: p.memory.gpu_total + 12 * MiB}

    rec = CalibrationRecorder(tmp_path, lambda name: None, nvml, delay=0).record(p, 4242)
    assert seen == [({4242}, (0,))] and rec is not None
    stored = calibration.load(tmp_path)[calibration.key_for_plan(p)]
    assert stored["measured"] - stored["predicted"] == 12 * MiB
    assert CalibrationRecorder(tmp_path, lambda name: None, lambda *_: None).record(p, 1) is None  # NVML blind


def test_measured_gpu_bytes_without_nvidia_is_none():
    assert calibration.measured_gpu_bytes({1}, (0,)) is None
