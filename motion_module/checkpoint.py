"""Reading checkpoint files safely and normalising their containers.

Pickled files are opened with `torch.load(weights_only=True)` only: a pickle
that needs arbitrary code to rebuild is refused before any of it runs.
The file format is recognised from its first bytes, not its extension, because
users rename files freely.
"""

import os
import pickle
from collections.abc import Mapping

import torch

from .errors import CheckpointError

# Containers the official and community loaders unwrap; nested at times.
WRAPPER_KEYS = ("state_dict", "module")
GLOBAL_PREFIX = "module."


def is_safetensors(path) -> bool:
    """safetensors: 8-byte little-endian header size, then a JSON object."""
    with open(path, "rb") as f:
        head = f.read(9)
    return len(head) == 9 and head[8:9] == b"{"


def _read_safetensors(path):
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"cannot read {os.path.basename(path)!r} as safetensors: the file is "
                              f"truncated or corrupt ({e})") from e


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


def read_state_dict(source) -> dict:
    """Tensors of a checkpoint given as a path or an in-memory state dict."""
    obj = source if isinstance(source, Mapping) else read_file(source)
    return normalise_state_dict(obj)
