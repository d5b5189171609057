"""xgen pull against a local hub mirror (tests/hub_mirror.py) through huggingface_hub's real client:
progress, resume, integrity, disk refusal, shared downloads, clear errors, tokens and HF_ENDPOINT."""

from __future__ import annotations

import filecmp
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.hub_mirror import HubMirror
from tests.model_files import write_gguf, write_hf
from xgen_jupyter.core.errors import ModelError
from xgen_jupyter.core.models.gguf_info import read_gguf
from xgen_jupyter.core.models.pull import PullProgress, pull, pull_dir
from xgen_jupyter.core.models.resolve import list_models, resolve_model

REPO = Path(__file__).resolve().parents[3]
TINY = "acme/tiny-GGUF"


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    src = tmp_path_factory.mktemp("hub-src")
    out = {
        # 21 MB: huggingface_hub writes in 10 MB chunks, so a drop at 12 MB leaves a 10 MB partial
        "q4": write_gguf(src / "tiny-Q4_K_M.gguf", n_vocab=40000),
        "q8": write_gguf(src / "tiny-Q8_0.gguf"),
    }
    write_gguf(src / "tiny-Q8_0-split.gguf", n_vocab=20000, split_max_tensors=12)  # 3 parts
    for i in (1, 2, 3):
        out[f"part{i}"] = src / f"tiny-Q8_0-split-0000{i}-of-00003.gguf"
    write_hf(src / "hf")
    return out


@pytest.fixture()
def hub(files: dict[str, Path]) -> Iterator[HubMirror]:
    m = HubMirror()
    m.add(TINY, {"tiny-Q4_K_M.gguf": files["q4"], "tiny-Q8_0.gguf": files["q8"], "README.md": b"# tiny\n"})
    m.add("acme/split-GGUF", {f"Q8_0/tiny-Q8_0-0000{i}-of-00003.gguf": files[f"part{i}"] for i in (1, 2, 3)})
    yield m
    m.close()


def _pull(hub: HubMirror, models: Path, spec: str = TINY, **kw: object) -> dict:
    return pull(spec, model_dirs=[str(models)], endpoint=hub.url, **kw)  # type: ignore[arg-type]


def _names(models: Path) -> list[str]:
    return [m["name"] for m in list_models([str(models)])]


def test_pull_default_model_with_progress(hub: HubMirror, default_model: str, tmp_path: Path) -> None:
    """The real default GGUF (253 MB): no quant said -> Q4_K_M; progress to 1.0; in the catalog at once."""
    hub.add("unsloth/gemma-3-270m-it-GGUF", {
        "gemma-3-270m-it-Q4_K_M.gguf": Path(default_model),
        "gemma-3-270m-it-Q8_0.gguf": write_gguf(tmp_path / "other-Q8_0.gguf"),
        "config.json": b"{}",
    })  # fmt: skip
    models = tmp_path / "models"
    seen: list[PullProgress] = []
    r = _pull(hub, models, "unsloth/gemma-3-270m-it-GGUF", on_progress=seen.append, min_interval=0.0)
    dest = models / "gemma-3-270m-it-Q4_K_M.gguf"
    assert r["path"] == str(dest) and r["quant"] == "Q4_K_M" and r["format"] == "gguf"
    assert filecmp.cmp(dest, default_model, shallow=False)
    assert hub.gets == {"gemma-3-270m-it-Q4_K_M.gguf": 1}  # the other quant and config.json untouched
    fractions = [p.fraction for p in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and seen[-1].state == "done"
    assert len(seen) > 5 and all(p.total == dest.stat().st_size for p in seen)
    assert any(p.state == "downloading" and 0 < p.fraction < 1 and p.rate > 0 for p in seen)
    assert "verifying" in {p.state for p in seen}
    assert "gemma-3-270m-it-Q4_K_M" in _names(models)
    assert resolve_model("gemma-3-270m-it-Q4_K_M", [str(models)]) == str(dest)
    assert read_gguf(str(dest)).file_size == dest.stat().st_size
    hub.reset_counts()
    assert _pull(hub, models, "unsloth/gemma-3-270m-it-GGUF")["path"] == str(dest)
    assert not hub.gets  # already there and recorded as this version: nothing downloaded again


def test_pull_split_gguf_as_one_model(hub: HubMirror, files: dict[str, Path], tmp_path: Path) -> None:
    models = tmp_path / "models"
    r = _pull(hub, models, "acme/split-GGUF:q8_0")
    parts = sorted(models.glob("*.gguf"))
    assert [p.name for p in parts] == [f"tiny-Q8_0-0000{i}-of-00003.gguf" for i in (1, 2, 3)]
    assert r["path"] == str(parts[0]) and r["size"] == sum(p.stat().st_size for p in parts)
    assert all(filecmp.cmp(models / p.name, files[f"part{i}"], shallow=False) for i, p in enumerate(parts, 1))
    assert _names(models) == ["default", "tiny-Q8_0-00001-of-00003"]
    assert read_gguf(str(parts[0])).file_size == r["size"]


def test_interrupted_pull_resumes_from_partial_bytes(hub: HubMirror, files: dict[str, Path], tmp_path: Path) -> None:
    models = tmp_path / "models"
    size = files["q4"].stat().st_size
    hub.drop_after = 12 * 1024 * 1024  # the mirror drops the connection there, then answers 503
    with pytest.raises(ModelError) as e:
        _pull(hub, models)
    assert "stopped at" in e.value.message and "continues" in (e.value.hint or "")
    partial = list((models / ".xgen-pull").glob("*.part"))
    assert len(partial) == 1 and 0 < partial[0].stat().st_size <= hub.drop_after
    kept = partial[0].stat().st_size
    assert _names(models) == ["default"]  # a partial is never in the catalog
    hub.healthy()
    hub.reset_counts()
    seen: list[PullProgress] = []
    _pull(hub, models, on_progress=seen.append)
    assert hub.ranges == [("tiny-Q4_K_M.gguf", kept)]  # continued, not restarted
    assert hub.served["tiny-Q4_K_M.gguf"] == size - kept < size
    assert seen[0].state == "starting" and seen[0].done == kept
    assert filecmp.cmp(models / "tiny-Q4_K_M.gguf", files["q4"], shallow=False)
    assert not list((models / ".xgen-pull").glob("*.part"))


def test_corrupt_bytes_are_detected_and_discarded(hub: HubMirror, files: dict[str, Path], tmp_path: Path) -> None:
    models = tmp_path / "models"
    hub.corrupt = 5_000_000  # one flipped byte; size and headers unchanged
    with pytest.raises(ModelError) as e:
        _pull(hub, models)
    assert "corrupt" in e.value.message and "sha256" in e.value.message
    assert not (models / "tiny-Q4_K_M.gguf").exists()
    assert not list((models / ".xgen-pull").glob("*.part"))  # not kept for a resume that could never match
    assert _names(models) == ["default"]
    hub.healthy()
    _pull(hub, models)
    assert filecmp.cmp(models / "tiny-Q4_K_M.gguf", files["q4"], shallow=False)


def test_not_enough_disk_refused_before_any_byte(hub: HubMirror, files: dict[str, Path], tmp_path: Path) -> None:
    """The free-disk reading is injected (``free=``): the refusal must come before any write or GET."""
    models = tmp_path / "models"
    size = files["q4"].stat().st_size
    asked: list[Path] = []

    def free(p: Path) -> int:
        asked.append(p)
        return size  # the file fits, but not with the headroom kept free

    with pytest.raises(ModelError) as e:
        _pull(hub, models, free=free)
    assert "Not enough disk" in e.value.message and f"{size / 1e9:.2f} GB" in e.value.message
    assert asked == [models] and not models.exists() and not hub.gets and not hub.heads
    assert _pull(hub, models, free=lambda p: size * 100)["size"] == size


def test_concurrent_pulls_share_one_download(hub: HubMirror, files: dict[str, Path], tmp_path: Path) -> None:
    """One pull in another process, one here, at once: the mirror serves the file once."""
    models = tmp_path / "models"
    hub.hold = threading.Event()  # the other process's download stalls after one chunk until released
    code = (
        "import json,sys; from xgen_jupyter.core.models.pull import pull; "
        f"r = pull({TINY!r}, model_dirs=[sys.argv[1]], endpoint=sys.argv[2]); print(json.dumps(r))"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", code, str(models), hub.url], stdout=subprocess.PIPE, env=env)
    seen: list[PullProgress] = []
    waiting = threading.Event()

    def on_progress(p: PullProgress) -> None:
        seen.append(p)
        if p.state == "waiting":
            waiting.set()

    mine: dict = {}
    try:
        while not hub.gets:  # the other process is downloading
            if proc.poll() is not None:
                pytest.fail("the other pull ended before downloading")
            threading.Event().wait(0.02)
        here = threading.Thread(target=lambda: mine.update(_pull(hub, models, on_progress=on_progress,
                                                                 min_interval=0.0)))  # fmt: skip
        here.start()
        assert waiting.wait(60), "this pull did not wait for the other one"
        hub.hold.set()
        here.join(120)
        out, _ = proc.communicate(timeout=120)
    finally:
        hub.hold.set()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0 and json.loads(out)["path"] == mine["path"]
    assert hub.gets == {"tiny-Q4_K_M.gguf": 1}
    assert hub.served["tiny-Q4_K_M.gguf"] == files["q4"].stat().st_size
    assert seen[-1].state == "done"
    assert filecmp.cmp(mine["path"], files["q4"], shallow=False)


def test_unknown_repo_quant_or_file_lists_what_exists(hub: HubMirror, tmp_path: Path) -> None:
    models = tmp_path / "models"
    with pytest.raises(ModelError) as e:
        _pull(hub, models, "acme/tiny")
    assert "No model repo acme/tiny" in e.value.message and TINY in (e.value.hint or "")
    with pytest.raises(ModelError) as e:
        _pull(hub, models, f"{TINY}:Q2_K")
    assert "Q2_K" in e.value.message
    assert "Q4_K_M (tiny-Q4_K_M.gguf" in (e.value.hint or "") and "Q8_0 (tiny-Q8_0.gguf" in (e.value.hint or "")
    with pytest.raises(ModelError) as e:
        _pull(hub, models, f"{TINY}:tiny-Q3_K.gguf")
    assert "no file 'tiny-Q3_K.gguf'" in e.value.message and "tiny-Q8_0.gguf" in (e.value.hint or "")
    with pytest.raises(ModelError) as e:
        _pull(hub, models, "not a repo!")
    assert "OWNER/NAME" in (e.value.hint or "")
    with pytest.raises(ModelError, match="has no revision 'v9'"):
        _pull(hub, models, f"{TINY}@v9")
    with pytest.raises(ModelError) as e:
        pull(TINY, model_dirs=[str(models)], endpoint="http://127.0.0.1:9")  # nothing listens there
    assert "Could not reach http://127.0.0.1:9" in e.value.message and "HF_ENDPOINT" in (e.value.hint or "")
    assert not models.exists() and not hub.gets


def test_hf_endpoint_and_token_are_honoured(hub: HubMirror, files: dict[str, Path], tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    hub.add("acme/gated-GGUF", {"gated-Q4_K_M.gguf": files["q8"]}, gated=True)
    hub.tokens.add("hf_test_token")
    monkeypatch.setenv("HF_ENDPOINT", hub.url)  # no endpoint argument: the environment's mirror
    monkeypatch.setenv("HF_HUB_DISABLE_IMPLICIT_TOKEN", "")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    models = tmp_path / "models"
    with pytest.raises(ModelError) as e:
        pull("acme/gated-GGUF", model_dirs=[str(models)])
    assert "gated" in e.value.message and "HF_TOKEN" in (e.value.hint or "")
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    r = pull("acme/gated-GGUF", model_dirs=[str(models)])
    assert Path(r["path"]).name == "gated-Q4_K_M.gguf" and hub.gets == {"gated-Q4_K_M.gguf": 1}
    assert hub.auth[-1] == "Bearer hf_test_token"


def test_pull_hf_folder_for_vllm(hub: HubMirror, files: dict[str, Path], tmp_path: Path) -> None:
    src = files["q4"].parent / "hf"
    hub.add("acme/Tiny-Llama", {p.name: (p if p.suffix == ".safetensors" else p.read_bytes()) for p in src.iterdir()}
            | {"README.md": b"# card\n", "pytorch_model.bin": b"old pickles"})  # fmt: skip
    models = tmp_path / "models"
    r = _pull(hub, models, "acme/Tiny-Llama")
    assert r["format"] == "hf" and r["path"] == str(models / "Tiny-Llama")
    got = sorted(p.name for p in (models / "Tiny-Llama").iterdir() if not p.name.startswith("."))
    assert got == sorted(p.name for p in src.iterdir())  # no README, no pickles
    assert {"name": "Tiny-Llama", "format": "hf"}.items() <= next(m for m in list_models([str(models)])
                                                                  if m["name"] == "Tiny-Llama").items()  # fmt: skip
    with pytest.raises(ModelError, match="not GGUF quants"):
        _pull(hub, models, "acme/Tiny-Llama:Q4_K_M")


def test_a_mirror_listing_names_only_still_gets_disk_and_hash_checks(hub: HubMirror, files: dict[str, Path],
                                                                     tmp_path: Path) -> None:  # fmt: skip
    """Sizes then come from each file's HEAD (X-Linked-Size), the sha256 from its X-Linked-Etag."""
    hub.names_only = True
    models = tmp_path / "models"
    size = files["q4"].stat().st_size
    with pytest.raises(ModelError, match="Not enough disk"):
        _pull(hub, models, free=lambda p: size)
    assert not hub.gets and not models.exists()
    hub.corrupt = 123
    with pytest.raises(ModelError, match="corrupt"):
        _pull(hub, models)
    hub.healthy()
    assert _pull(hub, models)["size"] == size


def test_existing_file_of_another_origin_is_not_overwritten(hub: HubMirror, tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    (models / "tiny-Q4_K_M.gguf").write_bytes(b"mine")
    with pytest.raises(ModelError, match="already exists"):
        _pull(hub, models)
    assert (models / "tiny-Q4_K_M.gguf").read_bytes() == b"mine" and not hub.gets


def test_pull_dir_prefers_the_box_wide_folder(tmp_path: Path) -> None:
    box = tmp_path / "box" / "models"
    assert pull_dir([str(tmp_path / "a"), str(tmp_path / "b")]) == tmp_path / "a"
    assert pull_dir([str(tmp_path / "a")], shared_dir=tmp_path / "box") == tmp_path / "a"  # not a model dir
    assert pull_dir([str(tmp_path / "a"), str(box)], shared_dir=tmp_path / "box") == box


def test_pull_into_a_box_wide_folder(hub: HubMirror, tmp_path: Path) -> None:
    """Every user can pull into <shared_dir>/models: the folders are 1777, the locks 666, models 644."""
    box = tmp_path / "box" / "models"
    r = pull(TINY, model_dirs=[str(tmp_path / "mine"), str(box)], shared_dir=tmp_path / "box", endpoint=hub.url)
    assert Path(r["path"]).parent == box and (box.stat().st_mode & 0o7777) == 0o1777
    assert ((box / ".xgen-pull").stat().st_mode & 0o7777) == 0o1777
    assert all(p.stat().st_mode & 0o777 == 0o666 for p in (box / ".xgen-pull").glob("*.lock"))
    assert Path(r["path"]).stat().st_mode & 0o777 == 0o644
    assert not (tmp_path / "mine").exists()


def test_no_model_dirs_pull_to_the_user_folder_the_catalog_reads(hub: HubMirror, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setenv("XGEN_MODELS_DIR", str(tmp_path / "cache-models"))
    r = pull(TINY, model_dirs=[], endpoint=hub.url)
    assert r["path"] == str(tmp_path / "cache-models" / "tiny-Q4_K_M.gguf")
    assert "tiny-Q4_K_M" in [m["name"] for m in list_models([])]
    assert resolve_model("tiny-Q4_K_M", []) == r["path"]
