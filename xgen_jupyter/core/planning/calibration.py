"""What loads really took on a GPU, kept to correct the next plan of the same model and settings.

After an engine turns ready on a GPU, the caller reads its memory per process (NVML; see
``measured_gpu_bytes``) and calls ``record``. The next plan with the same key (model file,
backend and build, the settings that change memory apart from the placement) adds the last
measured error to every prediction, and its reasons say "predicted X, last measured Y".

The store is one JSON file in the state dir, rewritten atomically. A corrupt or foreign file is
ignored with a warning (and set aside on the next write), never trusted.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .plan import LaunchPlan

log = logging.getLogger(__name__)
FILENAME = "calibration.json"
KIND = "xgen-calibration"
VERSION = 1
#: Settings that change the engine's memory other than where tensors go (the placement is
#: what the planner chooses with the correction applied, so it is not part of the key).
KEY_SETTINGS = ("n_ctx", "n_parallel", "n_ubatch", "flash_attn", "cache_type_k", "cache_type_v",
                "split_mode", "embedding")  # fmt: skip


def model_identity(path: str) -> str:
    """Path, size and modification time: a changed file is another model."""
    try:
        st = os.stat(path)
        return f"{path}|{st.st_size}|{int(st.st_mtime)}"
    except OSError:
        return f"{path}|?|?"


def key_of(model_path: str, backend: str, build: str, settings: Mapping[str, Any]) -> str:
    """The store's key: the model file, the backend and its build (the engine's executable), and
    the settings in KEY_SETTINGS."""
    # Unset, None and False read alike: the planner's working values leave out what the final
    # settings spell as None/False.
    parts = [f"{k}={settings.get(k) or '-'}" for k in KEY_SETTINGS]
    return "|".join([model_identity(model_path), backend, build, *parts])


def key_for_plan(plan: LaunchPlan) -> str:
    """The key of a launched plan (its argv[0] is the executable, as the planner's build id)."""
    return key_of(plan.model_path, plan.backend, plan.argv[0] if plan.argv else "", plan.settings.to_dict())


def _path(state_dir: Path | str) -> Path:
    return Path(state_dir) / FILENAME


def load(state_dir: Path | str) -> dict[str, dict[str, Any]]:
    """The records by key; {} (with a logged warning) when the file is corrupt or not ours."""
    p = _path(state_dir)
    try:
        raw = p.read_text()
    except FileNotFoundError:
        return {}
    except OSError as e:
        log.warning("calibration file %s unreadable (%s): ignored", p, e)
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        log.warning("calibration file %s is not JSON: ignored (plans use the estimate alone)", p)
        return {}
    if not isinstance(data, dict) or data.get("kind") != KIND or data.get("version") != VERSION:
        log.warning("calibration file %s is not an xgen calibration store (v%d): ignored", p, VERSION)
        return {}
    recs = data.get("records")
    if not isinstance(recs, dict):
        log.warning("calibration file %s has no records table: ignored", p)
        return {}
    return {k: v for k, v in recs.items() if _valid(v)}


def _valid(rec: Any) -> bool:
    return (
        isinstance(rec, dict)
        and isinstance(rec.get("predicted"), int)
        and isinstance(rec.get("measured"), int)
        and rec["predicted"] > 0
        and rec["measured"] > 0
    )


def record(
    state_dir: Path | str,
    key: str,
    *,
    predicted: int,
    measured: int,
    placement: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Store one load's predicted and measured GPU bytes under ``key``; returns the record."""
    p = _path(state_dir)
    p.parent.mkdir(parents=True, exist_ok=True)
    recs = load(state_dir)
    if p.exists() and not recs:
        try:
            data = json.loads(p.read_text())
            ok = data.get("kind") == KIND and data.get("version") == VERSION
        except (ValueError, AttributeError, OSError):
            ok = False
        if not ok:  # keep a foreign or broken file for whoever wrote it; start a fresh store
            p.rename(p.with_name(f"{FILENAME}.ignored-{int(time.time())}"))
    rec = {"predicted": int(predicted), "measured": int(measured), "placement": dict(placement or {}),
           "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}  # fmt: skip
    recs[key] = rec
    body = json.dumps({"kind": KIND, "version": VERSION, "records": recs}, indent=1)
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=".calibration-")
    with os.fdopen(fd, "w") as f:
        f.write(body)
    os.replace(tmp, p)
    return rec


def bias(records: Mapping[str, Any], key: str) -> tuple[int, dict[str, Any] | None]:
    """(measured - predicted, the record) for ``key``; (0, None) when none was recorded."""
    rec = records.get(key)
    if not isinstance(rec, dict) or not _valid(rec):
        return 0, None
    return int(rec["measured"]) - int(rec["predicted"]), rec


def measured_gpu_bytes(pids: set[int], gpu_indices: tuple[int, ...]) -> dict[int, int] | None:
    """Bytes the processes ``pids`` hold on each GPU, from NVML; None when NVML cannot say
    (no NVIDIA driver, or a pid namespace NVML does not see into)."""
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except Exception:
        return None
    try:
        out: dict[int, int] = {}
        for i in gpu_indices:
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            for proc in pynvml.nvmlDeviceGetComputeRunningProcesses(h):
                if proc.pid in pids and proc.usedGpuMemory:
                    out[i] = out.get(i, 0) + int(proc.usedGpuMemory)
        return out or None
    except Exception:
        return None
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:
            pass
