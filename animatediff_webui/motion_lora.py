"""`<lora:…>` tags that name motion LoRAs or the official v3 adapter.

The WebUI's built-in Lora extension lists the files of models/Lora, strips
the tags from the prompts and writes "Lora hashes", but it matches a file's
keys only to layers it knows, so on its own:

* a motion LoRA does nothing (our motion layers are not registered with it,
  on purpose: it restores weights lazily, so a cached motion module would
  keep the LoRA into the next run). We read the tags ourselves, from every
  frame's prompt, and merge the LoRAs into the motion module only while
  `p.sample` runs (run.py), removing them in its `finally`;
* the official v3 adapter does nothing (its diffusers key names never match).
  Its re-saved twin is an ordinary image-UNet LoRA that the built-in
  applies; for the official file we give the built-in's loaded network the
  same modules the twin would have, so both go through one code path and
  give the same images.

Files are resolved through the built-in's own name table (no path from a
request is ever opened) and read with `weights_only=True`.
"""

import functools
import os
import sys

import torch
from modules import shared

from ..motion_module.errors import MotionModuleError
from ..motion_module.lora import ADAPTER, MOTION, file_kind, lora_tags, motion_tags, read_lora
from ..motion_module.probe import meta_state_dict
from . import host
from .log import logger

_CONVERTED = "_animatediff_adapter_from"  # marks a built-in network we filled


def _networks():
    """The built-in Lora extension's module, or None when it is disabled."""
    return sys.modules.get("networks")


def resolve(name: str):
    """The file the built-in Lora extension knows as `name`, or None."""
    networks = _networks()
    if networks is None:
        return None

    def lookup():
        entry = networks.available_network_aliases.get(name) or networks.available_networks.get(name)
        return getattr(entry, "filename", None)

    path = lookup()
    if path is None:
        networks.list_available_networks()  # files added since the list was made (as the built-in does)
        path = lookup()
    return path


def _stamp(path):
    stat = os.stat(path)
    return path, stat.st_size, stat.st_mtime_ns


@functools.lru_cache(maxsize=256)
def _kind(path, size, mtime):
    return file_kind(meta_state_dict(path))


@functools.lru_cache(maxsize=4)
def _read(path, size, mtime):
    return read_lora(path)


def kind_of(path):
    """MOTION, ADAPTER or None (not ours, or unreadable: the built-in reports those)."""
    try:
        return _kind(*_stamp(path))
    except (OSError, MotionModuleError, ValueError) as e:
        logger.debug("LoRA %s not inspected: %s", path, e)
        return None


def _motion_tags(text: str):
    """[(tag, path)] of the motion LoRAs tagged in `text`, each once."""
    tags = lora_tags(text)
    paths = {}
    for name in dict.fromkeys(tag.name for tag in tags):
        path = resolve(name)
        if path is not None and kind_of(path) == MOTION:
            paths[name] = path
    return [(tag, paths[tag.name]) for tag in motion_tags([t for t in tags if t.name in paths])]


def motion_loras(text: str):
    """[(name, LoraFile, multiplier)] of the motion LoRAs tagged in `text`.

    ParamError("prompt") for a motion LoRA's malformed tags; LoraError for
    one that cannot be read."""
    return [(tag.name, _read(*_stamp(path)), tag.multiplier) for tag, path in _motion_tags(text)]


def tagged_motion_loras(text: str) -> list:
    """Names of the motion LoRAs tagged in `text` (their weights not read)."""
    return [tag.name for tag, _ in _motion_tags(text)]


def note_unused(prompt) -> None:
    """AnimateDiff is off: say once per generation that motion LoRAs do nothing."""
    try:
        names = tagged_motion_loras(prompt if isinstance(prompt, str) else " ".join(map(str, prompt or [])))
    except Exception as e:  # a disabled extension never blocks a generation
        logger.debug("motion LoRA check skipped: %s", e)
        return
    if names:
        logger.info("AnimateDiff is not enabled: the motion LoRA %s has no effect", ", ".join(map(repr, names)))


def fill_official_adapters() -> None:
    """after_extra_networks_activate: give each loaded official v3 adapter the
    modules its re-saved twin would get from the built-in loader."""
    networks = _networks()
    if networks is None or host.IS_FORGE:
        # Forge's built-in Lora has no layer mapping to fill; its key map
        # includes the diffusers attention-processor names of the official file.
        return
    for net in list(networks.loaded_networks):
        path = getattr(getattr(net, "network_on_disk", None), "filename", None)
        if path is None or kind_of(path) != ADAPTER:
            continue
        stamp = _stamp(path)
        if getattr(net, _CONVERTED, None) == stamp:
            continue
        if getattr(shared.sd_model, "is_sdxl", False):
            logger.warning("the v3 adapter %r is for SD1.5 checkpoints; it has no effect on SDXL", net.name)
            continue
        try:
            _fill(networks, net, _read(*stamp))
        except (MotionModuleError, ValueError) as e:
            logger.error("v3 adapter %r not applied: %s", net.name, e)
            continue
        setattr(net, _CONVERTED, stamp)


def _fill(networks, net, adapter):
    import network  # the built-in's types, importable once it is loaded

    mapping = shared.sd_model.network_layer_mapping
    is_sd2 = "model_transformer_resblocks" in mapping
    modules, missing = {}, []
    for name, pair in adapter.pairs.items():
        key = networks.convert_diffusers_name_to_compvis(name, is_sd2)
        sd_module = mapping.get(key)
        if sd_module is None:
            missing.append(name)
            continue
        w = {"lora_up.weight": pair.up, "lora_down.weight": pair.down}
        if pair.alpha is not None:
            w["alpha"] = torch.tensor(pair.alpha)
        weights = network.NetworkWeights(network_key=f"{name}.lora_down.weight", sd_key=key, w=w, sd_module=sd_module)
        module = next(m for m in (t.create_module(net, weights) for t in networks.module_types) if m is not None)
        modules[key] = module
    if missing:
        raise ValueError(f"{len(missing)} of its layers are not in this checkpoint (first: {missing[0]})")
    net.modules.clear()
    net.modules.update(modules)
    logger.info("v3 adapter %r: %d layers from the official file", net.name, len(modules))
