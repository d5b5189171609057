"""One config end to end: each ``c.XGen`` trait is the CoreConfig field of the same name, and each
field reaches the Ray nodes unless it is listed as the node's own. A new setting is two edits (the
field, the trait); forgetting either one, or a conversion on the way, fails here."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
from traitlets import Dict, Float, Int, List, TraitType, Unicode
from traitlets.config import Config

from xgen_jupyter.core.box.db import default_shared_dir
from xgen_jupyter.core.cluster.agent import node_config
from xgen_jupyter.core.config import CORE_ONLY, FORWARDED, NODE_LOCAL, CoreConfig
from xgen_jupyter.server.app import SERVER_ONLY, XGen

TRAITS = XGen.class_own_traits(config=True)
FIELDS = set(CoreConfig.names())


def test_every_field_has_a_trait_and_every_trait_a_field() -> None:
    assert sorted(FIELDS - CORE_ONLY - set(TRAITS)) == [], "CoreConfig fields without a c.XGen trait"
    assert sorted(set(TRAITS) - FIELDS - SERVER_ONLY) == [], "c.XGen traits that reach no CoreConfig field"
    assert not CORE_ONLY & set(TRAITS) and CORE_ONLY <= FIELDS  # the lists say what they mean
    assert not SERVER_ONLY & FIELDS and set(TRAITS) >= SERVER_ONLY
    assert NODE_LOCAL <= FIELDS and FORWARDED == FIELDS - NODE_LOCAL


def _distinct(name: str, trait: TraitType[Any, Any]) -> Any:
    """A value unlike the default, different for every trait (a swapped pair shows)."""
    n = sorted(TRAITS).index(name) + 1
    if isinstance(trait, Int):
        return (trait.default_value or 0) + 1000 + n
    if isinstance(trait, Float):
        return (trait.default_value or 0.0) + 0.25 + n
    if isinstance(trait, List):
        return [f"/x/{name}"]
    if isinstance(trait, Dict):
        return {name: f"v-{name}"}
    if isinstance(trait, Unicode):
        return "never-" + name if name != "restart_policy" else "on-crash"
    raise AssertionError(f"no test value for the {type(trait).__name__} trait {name!r}: add one here")


def _values() -> dict[str, Any]:
    return {name: _distinct(name, trait) for name, trait in TRAITS.items() if name in FIELDS}


def _same(field_value: Any, trait_value: Any) -> bool:
    return (str(field_value) if isinstance(field_value, Path) else field_value) == trait_value


def test_every_trait_value_reaches_the_core_and_the_nodes(tmp_path: Path) -> None:
    values = _values()
    cfg = XGen(config=Config({"XGen": values})).core_config()
    for name, value in values.items():
        assert _same(getattr(cfg, name), value), name
    # To a node, as over Ray's wire (plain data), and back into a CoreConfig there.
    settings = json.loads(json.dumps(cfg.for_nodes()))
    assert set(settings) == FORWARDED
    node = node_config(settings, "10.0.0.7", "a" * 40)
    for f in fields(CoreConfig):
        if f.name in NODE_LOCAL or f.name == "idle_ttl":
            continue
        assert getattr(node, f.name) == getattr(cfg, f.name), f.name
    assert node.host == "10.0.0.7" and node.cluster is None and node.state_dir.name == "a" * 12
    assert node.idle_ttl == 0.0  # idle unload is decided where the proxy sees the traffic
    assert isinstance(node.shared_dir, Path) and isinstance(node.engines_dir, Path)


def test_core_only_fields_cross_to_nodes_too() -> None:
    cfg = CoreConfig(user="alice", restart_backoff=2.5)
    node = node_config(cfg.for_nodes(), "10.0.0.7", "b" * 40)
    assert (node.user, node.restart_backoff) == ("alice", 2.5)


def test_a_node_ignores_settings_it_does_not_know() -> None:
    node = node_config({"gpu_margin": 0.2, "from_a_newer_xgen": 1, "host": "0.0.0.0"}, "10.0.0.7", "c" * 40)
    assert node.gpu_margin == 0.2 and node.host == "10.0.0.7"


@pytest.mark.parametrize(("trait", "expected"), [("", None), ("/srv/xgen-box", Path("/srv/xgen-box"))])
def test_shared_dir_empty_is_off_and_a_path_is_used(trait: str, expected: Path | None) -> None:
    assert XGen(config=Config({"XGen": {"shared_dir": trait}})).core_config().shared_dir == expected


def test_shared_dir_unset_is_the_default_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XGEN_SHARED_DIR", str(tmp_path / "box"))
    assert XGen().core_config().shared_dir == default_shared_dir() == tmp_path / "box"


def test_unset_optional_text_is_none() -> None:
    cfg = XGen(config=Config({"XGen": {"cluster": "", "vllm_python": None}})).core_config()
    assert cfg.cluster is None and cfg.vllm_python is None
    assert cfg == CoreConfig.from_dict(cfg.to_dict())
