"""What ``xgen pull REPO[:QUANT or FILE]`` means: parse the spec, pick the files from a repo's list.

Pure functions over the hub's file list (name, size, hashes), so the choice is tested without a network.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import ModelError

#: The quant taken when the spec names none (what Ollama and LM Studio default to).
DEFAULT_QUANT = "Q4_K_M"
_REPO = re.compile(r"^[A-Za-z0-9][\w.\-]*(/[A-Za-z0-9][\w.\-]*)?$")
_PREFIXES = ("https://huggingface.co/", "http://huggingface.co/", "huggingface.co/", "hf.co/", "hf://")
_SPLIT = re.compile(r"-(\d{5})-of-(\d{5})\.gguf$")
_QUANT = re.compile(
    r"(?:^|[-_.])((?:UD-)?(?:I?Q\d(?:_[A-Z0-9]+)*|TQ\d_\d|F16|F32|BF16|MXFP4(?:_MOE)?))(?=[-_.]|$)",
    re.IGNORECASE,
)
#: Files a vLLM folder needs: weights, configs, tokenizers, chat templates (no code, no pickles).
_HF_KEEP = re.compile(r"(\.safetensors|\.json|tokenizer\.model|\.tiktoken|\.txt|\.jinja)$")


@dataclass(frozen=True)
class HubFile:
    """One file of a repo as the hub lists it: path in the repo, bytes, sha256 (LFS) or git blob id."""

    name: str
    size: int | None
    sha256: str | None = None
    blob_id: str | None = None


@dataclass(frozen=True)
class PullSpec:
    repo: str
    revision: str | None
    selector: str | None  # a quant (Q4_K_M) or a file path in the repo; None: the default


@dataclass(frozen=True)
class Selection:
    """What to download: the files, the folder name under the models dir ('' for a flat GGUF)."""

    kind: str  # "gguf" | "hf"
    files: tuple[HubFile, ...]
    subdir: str
    quant: str | None

    @property
    def total(self) -> int:
        return sum(f.size or 0 for f in self.files)


def parse_spec(spec: str) -> PullSpec:
    """``owner/name[@rev][:QUANT or FILE]`` (an hf.co/ or huggingface.co URL prefix is accepted)."""
    text = (spec or "").strip()
    for p in _PREFIXES:
        if text.lower().startswith(p):
            text = text[len(p):]
            break
    repo, _, selector = text.partition(":")
    repo, _, revision = repo.partition("@")
    repo = repo.strip("/")
    if not repo or not _REPO.match(repo) or ".." in repo:
        raise ModelError(
            f"{spec!r} is not a Hugging Face model repo",
            "write OWNER/NAME[:QUANT or FILE], e.g. unsloth/gemma-3-270m-it-GGUF:Q4_K_M",
        )
    sel = selector.strip() or None
    if sel is not None and (".." in sel.split("/") or sel.startswith("/")):
        raise ModelError(f"{sel!r} is not a file name inside the repo", "give a quant like Q4_K_M or a file path")
    return PullSpec(repo, revision.strip() or None, sel)


def quant_of(filename: str) -> str | None:
    """The quant a GGUF's name says (``Qwen3-8B-UD-Q4_K_XL-00001-of-00002.gguf`` -> ``UD-Q4_K_XL``)."""
    base = _SPLIT.sub("", filename.rsplit("/", 1)[-1]).removesuffix(".gguf")
    found = _QUANT.findall(base)
    return found[-1].upper() if found else None


def _is_model_gguf(name: str) -> bool:
    base = name.rsplit("/", 1)[-1].lower()
    return base.endswith(".gguf") and not base.startswith(("mmproj", "imatrix"))


def _groups(files: list[HubFile]) -> dict[str, list[HubFile]]:
    """Model files keyed by their first part: a split GGUF (``-0000k-of-0000n``) is one entry."""
    out: dict[str, list[HubFile]] = {}
    for f in sorted(files, key=lambda f: f.name):
        m = _SPLIT.search(f.name)
        key = f.name[: m.start()] + f"-00001-of-{m.group(2)}.gguf" if m else f.name
        out.setdefault(key, []).append(f)
    return out


def _gb(n: int) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"


def _listing(groups: dict[str, list[HubFile]]) -> str:
    rows = []
    for key, parts in groups.items():
        q = quant_of(key) or "?"
        split = f", {len(parts)} parts" if len(parts) > 1 else ""
        rows.append(f"{q} ({key}, {_gb(sum(p.size or 0 for p in parts))}{split})")
    return "; ".join(rows)


def _complete(repo: str, key: str, parts: list[HubFile]) -> list[HubFile]:
    m = _SPLIT.search(key)
    if m and len(parts) != int(m.group(2)):
        raise ModelError(f"{repo}: split GGUF {key} lists {len(parts)} of {int(m.group(2))} parts",
                         "the repo is incomplete; pick another quant or file")  # fmt: skip
    return parts


def select(repo: str, files: list[HubFile], selector: str | None) -> Selection:
    """The files ``selector`` names in ``repo``'s list; a clear error listing what exists otherwise."""
    ggufs = [f for f in files if _is_model_gguf(f.name)]
    names = {f.name for f in files}
    if not ggufs:
        return _select_hf(repo, files, selector)
    groups = _groups(ggufs)
    if selector and (selector in names or selector.lower().endswith(".gguf")):
        every = _groups([f for f in files if f.name.lower().endswith(".gguf")])  # mmproj too, when named
        key = next((k for k, parts in every.items() if selector in {p.name for p in parts}), None)
        if key is None:
            raise ModelError(f"{repo} has no file {selector!r}", f"it has: {_listing(groups)}")
        parts = _complete(repo, key, every[key])
        return Selection("gguf", tuple(parts), "", quant_of(key))
    want = (selector or DEFAULT_QUANT).upper()
    matches = {k: v for k, v in groups.items() if quant_of(k) == want}
    if not matches and selector is None and len({quant_of(k) for k in groups}) == 1:
        matches = groups  # one quant only: that is the model
    if not matches:
        said = "no quant given, and" if selector is None else "the quant"
        raise ModelError(f"{repo}: {said} {want} is not there", f"pick one of: {_listing(groups)}")
    if len(matches) > 1:
        raise ModelError(f"{repo}: {want} matches {len(matches)} models: {_listing(matches)}",
                         f"name the file instead: {repo}:{next(iter(matches))}")  # fmt: skip
    key, parts = next(iter(matches.items()))
    return Selection("gguf", tuple(_complete(repo, key, parts)), "", quant_of(key))


def _select_hf(repo: str, files: list[HubFile], selector: str | None) -> Selection:
    names = {f.name for f in files}
    weights = [f for f in files if f.name.endswith(".safetensors")]
    if "config.json" not in names or not weights:
        shown = ", ".join(sorted(names)[:20]) or "no files"
        raise ModelError(
            f"{repo} has neither a GGUF nor a Hugging Face model folder (config.json + *.safetensors)",
            f"its files: {shown}",
        )
    if selector:
        raise ModelError(f"{repo} is a Hugging Face folder (for vLLM), not GGUF quants: {selector!r} does not apply",
                         f"pull it as {repo} without ':{selector}'")  # fmt: skip
    keep = [f for f in files if _HF_KEEP.search(f.name) and "/" not in f.name.strip("/")]
    keep = [f for f in keep if f.name != "config.json"] + [f for f in keep if f.name == "config.json"]
    return Selection("hf", tuple(keep), repo.rsplit("/", 1)[-1], None)
