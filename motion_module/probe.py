"""Cheap kind detection for files, without loading their weights.

The model dropdown filters files by the loaded checkpoint's family, which
needs each file's kind. A safetensors header lists names and shapes, so meta
tensors stand in for the data; pickles are opened memory-mapped.
"""

import functools
import os

import torch
from safetensors import SafetensorError, safe_open

from .checkpoint import is_safetensors, normalise_state_dict, read_file
from .detect import detect_any_naming
from .errors import CheckpointError

CACHE_SIZE = 256


def _safetensors_meta(path) -> dict:
    try:
        with safe_open(path, framework="pt") as f:
            return {k: torch.empty(f.get_slice(k).get_shape(), device="meta") for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"cannot read {os.path.basename(path)!r}: corrupt safetensors header ({e})") from e


def meta_state_dict(path) -> dict:
    """A file's tensor names and shapes (meta or memory-mapped tensors), without reading its weights."""
    return normalise_state_dict(_safetensors_meta(path) if is_safetensors(path) else read_file(path, mmap=True))


@functools.lru_cache(maxsize=CACHE_SIZE)
def _detect(path, size, mtime_ns):
    # size and mtime are part of the key: a replaced file is probed again.
    return detect_any_naming(meta_state_dict(path))[1]


def probe(path):
    """Detection for a motion-module file (cached by path, size and mtime)."""
    path = os.fspath(path)
    stat = os.stat(path)
    return _detect(path, stat.st_size, stat.st_mtime_ns)
