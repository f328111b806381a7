"""Reading checkpoint files safely and normalising their containers.

Pickled files are opened with `torch.load(weights_only=True)` only: a pickle
that needs arbitrary code to rebuild is refused before any of it runs.
The file format is recognised from its first bytes, not its extension, because
users rename files freely.
"""

import json
import math
import os
import pickle
from collections.abc import Mapping

import torch

from .buffers import mapped_empty
from .errors import CheckpointError

# Containers the official and community loaders unwrap; nested at times.
WRAPPER_KEYS = ("state_dict", "module")
GLOBAL_PREFIX = "module."


def is_safetensors(path) -> bool:
    """safetensors: 8-byte little-endian header size, then a JSON object."""
    with open(path, "rb") as f:
        head = f.read(9)
    return len(head) == 9 and head[8:9] == b"{"


# The safetensors dtype names this reader maps (the format's own list).
SAFETENSORS_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "F8_E4M3": torch.float8_e4m3fn, "F8_E5M2": torch.float8_e5m2, "I64": torch.int64, "I32": torch.int32,
    "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8, "BOOL": torch.bool,
}


def _read_safetensors(path):
    # The whole file is read into one mapping and every tensor is a view of
    # it (buffers.mapped_empty); the loader copies them out and drops it.
    name = os.path.basename(path)

    def corrupt(why):
        return CheckpointError(f"cannot read {name!r} as safetensors: the file is truncated or corrupt ({why})")

    size = os.path.getsize(path)
    data = mapped_empty(size, torch.uint8)
    with open(path, "rb") as f:
        got = f.readinto(memoryview(data.numpy()))
    header_size = int.from_bytes(bytes(data[:8].numpy()), "little") if got >= 8 else 0
    if got != size or not 2 <= header_size <= size - 8:
        raise corrupt(f"{size} bytes, header of {header_size}")
    try:
        header = json.loads(bytes(data[8:8 + header_size].numpy()))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise corrupt(f"header: {e}") from e
    if not isinstance(header, dict):
        raise corrupt("the header is not an object")
    base, stored = 8 + header_size, size - 8 - header_size
    tensors = {}
    for key, info in header.items():
        if key == "__metadata__":
            continue
        try:
            dtype = SAFETENSORS_DTYPES[info["dtype"]]
            shape = [int(n) for n in info["shape"]]
            start, end = (int(n) for n in info["data_offsets"])
        except (KeyError, TypeError, ValueError) as e:
            raise corrupt(f"tensor {key!r}: {e!r}") from e
        nbytes = math.prod(shape) * dtype.itemsize
        if min(shape, default=0) < 0 or not 0 <= start <= end <= stored or end - start != nbytes:
            raise corrupt(f"tensor {key!r}: bytes {start}..{end} of {stored} for {info['dtype']} {shape}")
        raw = data[base + start:base + end]
        if (base + start) % dtype.itemsize:  # views need aligned offsets; old writers did not pad
            raw = raw.clone()
        tensors[key] = raw.view(dtype).reshape(shape)
    return tensors


def _read_pickle(path, mmap=False):
    # torch.serialization.load, not torch.load: the WebUI replaces torch.load
    # with a checker that rejects what torch >= 2.1 writes (.format_version)
    # and returns None instead of raising. weights_only=True is the safety.
    load = torch.serialization.load
    try:
        if mmap:
            try:
                # Only zip-format checkpoints can be memory-mapped; others load normally.
                return load(str(path), map_location="cpu", weights_only=True, mmap=True)
            except RuntimeError as e:
                if "zip" not in str(e).lower():
                    raise
        return load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "weights_only" in str(e) or "Weights only" in str(e):
            raise CheckpointError(
                f"refused to load {os.path.basename(path)!r}: unpickling it needs code that is not "
                "plain tensors, and running a checkpoint's code is unsafe. Convert it to .safetensors "
                f"or re-save it with tensors only. (torch said: {str(e).splitlines()[0]})") from e
        raise CheckpointError(f"cannot read {os.path.basename(path)!r}: not a valid checkpoint ({e})") from e
    except Exception as e:  # torch.load raises many types (zip, EOF, safetensors via torch >= 2.11...)
        raise CheckpointError(f"cannot read {os.path.basename(path)!r}: the file is truncated or corrupt, "
                              f"or not a PyTorch checkpoint ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from e


def read_file(path, mmap=False):
    """Raw object stored in `path` (usually a dict). `mmap` maps pickled tensors
    instead of reading them, for callers that only look at names and shapes."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CheckpointError(f"motion module file not found: {path!r}")
    if os.path.getsize(path) == 0:
        raise CheckpointError(f"motion module file {os.path.basename(path)!r} is empty")
    if is_safetensors(path):
        return _read_safetensors(path)
    return _read_pickle(path, mmap)


def normalise_state_dict(obj) -> dict:
    """Unwrap containers, drop non-tensor entries, strip a global `module.` prefix."""
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"expected a dict of tensors, found {type(obj).__name__}")
    while True:
        inner = next((obj[k] for k in WRAPPER_KEYS if isinstance(obj.get(k), Mapping)), None)
        if inner is None:
            break
        obj = inner
    tensors = {k: v for k, v in obj.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}
    if tensors and all(k.startswith(GLOBAL_PREFIX) for k in tensors):
        tensors = {k[len(GLOBAL_PREFIX):]: v for k, v in tensors.items()}
    return tensors


def tensor_names(path) -> list[str]:
    """The tensor names in a checkpoint file, without reading its tensors
    (the safetensors header; a pickle's tensors memory-mapped)."""
    path = os.fspath(path)
    if os.path.isfile(path) and is_safetensors(path):
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(path, framework="pt") as f:
                return list(f.keys())
        except (SafetensorError, OSError, ValueError, RuntimeError) as e:
            raise CheckpointError(f"cannot read {os.path.basename(path)!r} as safetensors ({e})") from e
    return list(normalise_state_dict(read_file(path, mmap=True)))


def read_state_dict(source, mmap=False) -> dict:
    """Tensors of a checkpoint given as a path or an in-memory state dict.
    `mmap` maps a zip pickle's tensors instead of reading them, for a caller
    that copies them out before the file can change."""
    obj = source if isinstance(source, Mapping) else read_file(source, mmap)
    return normalise_state_dict(obj)
