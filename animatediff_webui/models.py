"""Motion-module files: listing, kind filtering, loading with a one-entry cache."""

import gc
import os
import weakref

from modules import devices, hashes

from .. import motion_module as mm
from ..motion_module.errors import MotionModuleError
from ..motion_module.request.model_files import list_models, resolve_model
from ..motion_module.probe import probe

from . import host, settings
from .log import logger

_cached = {"key": None, "model": None}
# Every module loaded and not yet freed: after a run, only the cached one
# should be (GET /animatediff/v1/status; the load test checks it).
_in_memory = weakref.WeakSet()


def available(sd_is_xl=None) -> list:
    """Model names under the model folder; with `sd_is_xl` given, only those made
    for that family (files that cannot be read are kept, so the user sees them
    and gets the loader's error)."""
    folder = settings.model_folder()
    names = list_models(folder)
    if sd_is_xl is None:
        return names
    kept = []
    for name in names:
        try:
            if probe(os.path.join(folder, name)).kind.is_sdxl == sd_is_xl:
                kept.append(name)
        except (MotionModuleError, OSError):
            kept.append(name)
    return kept


def describe_all() -> list:
    folder = settings.model_folder()
    out = []
    for name in list_models(folder):
        try:
            det = probe(os.path.join(folder, name))
            out.append({"name": name, "kind": det.kind.name, "max_frames": det.max_frames,
                        "is_sdxl": det.kind.is_sdxl})
        except (MotionModuleError, OSError) as e:
            out.append({"name": name, "kind": None, "error": str(e)})
    return out


def default_model(sd_is_xl=None) -> str:
    names = available(sd_is_xl)
    return names[0] if names else ""


def resolve(name: str, sd_is_xl: bool) -> str:
    """Path for a requested model name; empty means the first suitable file."""
    folder = settings.model_folder()
    if not name:
        name = default_model(sd_is_xl)
        if not name:
            raise MotionModuleError(f"AnimateDiff: no motion module found in {folder!r}; put one there or set "
                                    "Settings → AnimateDiff → model path")
    return str(resolve_model(folder, name))


def file_hash(path: str) -> str:
    # The WebUI's cached sha256 ("AnimateDiff/<name>" entry), computed once per file.
    try:
        return hashes.sha256(path, f"AnimateDiff/{os.path.basename(path)}") or ""
    except Exception as e:  # hashing must never block a generation
        logger.debug("hashing %s failed: %s", path, e)
        return ""


def load(path: str, device, dtype, fp8: bool = False):
    """The motion model for `path` on `device` in `dtype` (cached), where and
    in what the UNet computes (`host.module_placement`)."""
    stat = os.stat(path)
    key = (path, stat.st_size, stat.st_mtime_ns, str(device), str(dtype), fp8)
    if _cached["key"] != key:
        _forget()
        # A failed run can leave its model in a reference cycle; collect it
        # before loading the next one instead of holding both in memory.
        gc.collect()
        devices.torch_gc()
        logger.info("loading motion module %s", os.path.basename(path))
        model = mm.load(path, device=device, dtype=dtype, fp8=fp8)
        model.sha256 = file_hash(path)
        _in_memory.add(model)
        _cached["key"], _cached["model"] = key, model
    return _cached["model"]


def unload(to_cpu_only=False) -> str:
    """Move the cached module to the CPU, or drop it; says what happened."""
    model = _cached["model"]
    if model is None:
        return "No motion module is loaded."
    size = sum(p.numel() * p.element_size() for p in model.parameters())
    what = f"{model.name or 'the motion module'} ({model.kind}, {size / 2 ** 20:.0f} MiB)"
    if to_cpu_only:
        if next(model.parameters()).device.type == "cpu":
            return f"{what} is already on the CPU."
        host.release(model)
        model.to(devices.cpu)
        _cached["key"] = _cached["key"][:3] + ("cpu",) + _cached["key"][4:]
        devices.torch_gc()
        return f"Moved {what} to the CPU; it goes back to {devices.device} on the next run."
    _forget()
    gc.collect()
    devices.torch_gc()
    return f"Removed {what} from memory."


def _forget():
    if _cached["model"] is not None:
        host.release(_cached["model"])
    _cached["key"], _cached["model"] = None, None


def cached():
    """The cached module, or None."""
    return _cached["model"]


def in_memory() -> int:
    """How many motion modules are still in memory, the cached one included."""
    return len(_in_memory)


def cached_name():
    """The file of the cached module, or None."""
    return os.path.basename(_cached["key"][0]) if _cached["key"] else None
