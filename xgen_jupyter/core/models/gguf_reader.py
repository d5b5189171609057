"""Opening GGUFs: gguf's GGUFReader with a fast, bounds-checked path, and friendly errors.

The stock reader builds one numpy view per array element: gemma-3's 262,144-token
vocabulary (three arrays) took 12.5 s here. This subclass reads numeric arrays as one
view and walks string arrays without keeping them (nothing here needs the vocabulary),
and it checks every length against the file size, so a corrupt length fails at once
instead of looping (the stock loop never advances past the end of a truncated file).
Everything else — header, scalar fields, tensor infos — is GGUFReader's own code.
"""

from __future__ import annotations

import os
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from gguf import GGUF_MAGIC, GGUFReader, GGUFValueType

from ..errors import ModelError


class TruncatedGGUF(ValueError):
    """The header describes more bytes than the file holds."""


class FastGGUFReader(GGUFReader):
    """GGUFReader that skips the contents of string arrays (their length is kept)."""

    def _get(
        self,
        offset: int,
        dtype: npt.DTypeLike,
        count: int = 1,
        override_order: Literal["I", "S", "<"] | None = None,
    ) -> npt.NDArray[Any]:
        # Every read of the header and of tensor views goes through here: check it.
        end = int(offset) + np.dtype(dtype).itemsize * int(count)
        if end > len(self.data):
            raise TruncatedGGUF(f"it needs at least {end:,} bytes but has {len(self.data):,}")
        return super()._get(offset, dtype, count, override_order)

    def _get_field_parts(
        self, orig_offs: int, raw_type: int
    ) -> tuple[int, list[npt.NDArray[Any]], list[int], list[GGUFValueType]]:
        if raw_type != GGUFValueType.ARRAY:
            if orig_offs >= len(self.data):
                raise TruncatedGGUF(f"metadata runs past the end of the file at byte {orig_offs}")
            return super()._get_field_parts(orig_offs, raw_type)
        size = len(self.data)
        offs = orig_offs
        if offs + 12 > size:
            raise TruncatedGGUF(f"metadata array header past the end of the file at byte {offs}")
        raw_itype = self._get(offs, np.uint32)
        alen = self._get(offs + 4, np.uint64)
        offs += 12
        itype = GGUFValueType(int(raw_itype[0]))
        count = int(alen[0])
        parts: list[npt.NDArray[Any]] = [raw_itype, alen]
        nptype = self.gguf_scalar_to_np.get(itype)
        if nptype is not None:
            itemsize = np.dtype(nptype).itemsize
            if offs + count * itemsize > size:
                raise TruncatedGGUF(f"a {count}-element array runs past the end of the file")
            parts.append(self._get(offs, nptype, count))
            return offs + count * itemsize - orig_offs, parts, [2], [GGUFValueType.ARRAY, itype]
        if itype == GGUFValueType.STRING:
            order = ">" if (self.byte_order == "S") == (np.little_endian) else "<"
            mv = memoryview(self.data)  # type: ignore[arg-type]  # numpy arrays are buffers
            for _ in range(count):
                if offs + 8 > size:
                    raise TruncatedGGUF(f"a {count}-string array runs past the end of the file")
                slen = int.from_bytes(mv[offs : offs + 8], "big" if order == ">" else "little")
                offs += 8 + slen
            if offs > size:
                raise TruncatedGGUF(f"a {count}-string array runs past the end of the file")
            # Contents deliberately not kept; callers read the count from parts[1].
            return offs - orig_offs, parts, [], [GGUFValueType.ARRAY, GGUFValueType.STRING]
        # Arrays of arrays are rare in practice: the stock code handles them.
        return super()._get_field_parts(orig_offs, raw_type)


def array_len(field: Any) -> int:
    """Element count of an array field read by either reader."""
    # parts = [key_len, key, value_type, item_type, count, ...] for array fields.
    return int(field.parts[4][0])


def check_file(path: str) -> int:
    """Size of the GGUF at ``path``; ModelError if it is missing, unreadable, empty or not a GGUF."""
    if not os.path.exists(path):
        raise ModelError(f"Model file not found: {path}", "check the path, or list models with %xgen models")
    if os.path.isdir(path):
        raise ModelError(
            f"{path} is a folder, not a GGUF file",
            "pass the .gguf file inside it, or a Hugging Face folder with config.json",
        )
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except PermissionError:
        raise ModelError(
            f"Permission denied reading {path}",
            "make the file readable by this user (chmod a+r) or ask its owner",
        ) from None
    except OSError as exc:
        raise ModelError(f"Cannot read {path}: {exc.strerror or exc}") from None
    size = os.path.getsize(path)
    if size == 0:
        raise ModelError(f"{path} is empty (0 bytes)", "the download or conversion did not finish; redo it")
    if len(head) < 4 or int.from_bytes(head, "little") != GGUF_MAGIC:
        raise ModelError(
            f"{path} is not a GGUF file (it starts with {head!r}, not b'GGUF')",
            "pass a .gguf model, or convert the model with llama.cpp's convert_hf_to_gguf.py",
        )
    return size


def open_gguf(path: str, size: int) -> FastGGUFReader:
    """The header of a checked GGUF; every reader failure becomes a ModelError."""
    try:
        reader = FastGGUFReader(path)
    except TruncatedGGUF as exc:
        raise ModelError(
            f"{path} is truncated: {exc}", "the file is incomplete; download or copy it again"
        ) from None
    except PermissionError:
        raise ModelError(f"Permission denied reading {path}", "make the file readable by this user") from None
    except (ValueError, IndexError, KeyError, OverflowError, UnicodeDecodeError, TypeError, OSError) as exc:
        raise ModelError(
            f"{path} is a corrupt or truncated GGUF ({type(exc).__name__}: {exc})",
            "download or convert the model again",
        ) from None
    end = max((t.data_offset + t.n_bytes for t in reader.tensors), default=0)
    if end > size:
        raise ModelError(
            f"{path} is truncated: its header describes {end:,} bytes but the file has {size:,}",
            "the file is incomplete; download or copy it again",
        )
    return reader
