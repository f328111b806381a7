"""Cheap kind detection for files, without loading their weights.

The model dropdown filters files by the loaded checkpoint's family, which
needs each file's kind. safetensors headers list names and shapes, so meta
tensors stand in for the data; pickles are opened memory-mapped.
"""

import json
import os
import struct

import torch

from .checkpoint import _looks_like_safetensors, normalise_state_dict, read_file
from .detect import detect_any_naming
from .errors import CheckpointError

_cache = {}


def _safetensors_meta(path) -> dict:
    with open(path, "rb") as f:
        (size,) = struct.unpack("<Q", f.read(8))
        if size > 100_000_000:
            raise CheckpointError(f"{os.path.basename(path)!r}: implausible safetensors header size")
        header = json.loads(f.read(size))
    return {k: torch.empty(v["shape"], device="meta") for k, v in header.items() if k != "__metadata__"}


def probe(path):
    """Detection for a motion-module file (cached by path, size and mtime)."""
    path = os.fspath(path)
    stat = os.stat(path)
    key = (path, stat.st_size, stat.st_mtime_ns)
    if key not in _cache:
        if _looks_like_safetensors(path):
            try:
                sd = _safetensors_meta(path)
            except (ValueError, struct.error, UnicodeDecodeError) as e:
                raise CheckpointError(f"cannot read {os.path.basename(path)!r}: corrupt safetensors header ({e})") from e
        else:
            sd = read_file(path, mmap=True)
        _cache[key] = detect_any_naming(normalise_state_dict(sd))[1]
    return _cache[key]
