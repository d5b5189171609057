"""Load a HardwareReport from JSON: simulate a box (``XGEN_HARDWARE_REPORT=box.json``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import XGenError
from .cpu import CPUDetector
from .types import HardwareReport

ENV_VAR = "XGEN_HARDWARE_REPORT"

_EXAMPLE = '{"gpus": [{"index": 0, "name": "Sim 24GB", "vendor": "nvidia", "memory_total": 25769803776}]}'


def report_from_dict(d: dict[str, Any]) -> HardwareReport:
    """Like HardwareReport.from_dict, but ``method`` and ``cpu`` may be left out (the real CPU is used)."""
    if not isinstance(d, dict):
        raise XGenError("hardware report must be a JSON object", hint=f"e.g. {_EXAMPLE}")
    d = dict(d)
    d.setdefault("method", "injected")
    if "cpu" not in d:
        d["cpu"] = CPUDetector().detect_cpu().to_dict()
    gpus = d.get("gpus", [])
    if not isinstance(gpus, list):
        raise XGenError("'gpus' in the hardware report must be a list", hint=f"e.g. {_EXAMPLE}")
    for i, g in enumerate(gpus):
        need = ("index", "name", "vendor", "memory_total")
        missing = [k for k in need if not isinstance(g, dict) or k not in g]
        if missing:
            raise XGenError(
                f"gpus[{i}] in the hardware report lacks {', '.join(missing)}", hint=f"e.g. {_EXAMPLE}"
            )
    try:
        return HardwareReport.from_dict(d)
    except (TypeError, KeyError, ValueError) as e:
        raise XGenError(f"hardware report is malformed: {e}", hint=f"e.g. {_EXAMPLE}") from e


def load_report_file(path: str | Path) -> HardwareReport:
    p = Path(path)
    try:
        d = json.loads(p.read_text())
    except FileNotFoundError as e:
        msg = f"{ENV_VAR} names {p}, which does not exist"
        raise XGenError(msg, hint=f"unset {ENV_VAR} or fix the path") from e
    except (OSError, ValueError) as e:
        raise XGenError(f"cannot read hardware report {p}: {e}", hint="it must be a JSON object") from e
    return report_from_dict(d)
