"""Motion LoRAs and the v3 adapter: reading both file namings, applying and removing them.

A motion LoRA (the official camera-motion files) is a low-rank update of the
motion module's temporal attention projections (to_q, to_k, to_v, to_out.0):
W' = W + m * scale * up @ down, scale = alpha / rank where the file has an
alpha and 1 otherwise. The v3 adapter has the same form but updates the image
UNet's spatial attention, so only its key names are handled here (the WebUI's
own Lora code applies it).

The same weights ship under two namings:

* official (diffusers attention processors, pickled):
  ``<module path>.processor.to_q_lora.down.weight``, ``to_out_lora`` for
  ``to_out.0``;
* A1111 re-saves (safetensors): ``<module path with "_">.lora_down.weight``
  (``lora_unet_`` in front for the adapter), optional ``.alpha``.

Both are read into one form, keyed by the module path with "." replaced by
"_" (prefixed ``lora_unet_`` for the adapter), so the two files of one LoRA
give the same update.
"""
from __future__ import annotations

import math
import os
import re
from collections import Counter
from dataclasses import dataclass
from typing import Mapping, Sequence

import torch
from torch import nn

from .buffers import mapped_views
from .checkpoint import read_state_dict
from .errors import MotionModuleError, ParamError

MOTION = "motion"
ADAPTER = "adapter"
ADAPTER_PREFIX = "lora_unet_"

_OFFICIAL = re.compile(r"^(?P<path>.+)\.processor\.(?P<proj>to_q|to_k|to_v|to_out)_lora\.(?P<part>down|up)\.weight$")
_A1111 = re.compile(r"^(?P<module>[^.]+)\.(?:(?P<part>lora_down|lora_up)\.weight|(?P<alpha>alpha))$")
# The WebUI's extra-network syntax: <lora:name:te[:unet[:dyn]]>, with te=/unet= named forms.
_TAG = re.compile(r"<(lora|lyco):([^>]+)>")


class LoraError(MotionModuleError):
    """A LoRA file that cannot be used as it stands."""


@dataclass(frozen=True)
class LoraTag:
    name: str
    multiplier: float | None  # the tag's UNet multiplier (motion layers are UNet layers); None if unreadable
    text: str


def lora_tags(text: str) -> list[LoraTag]:
    """Every ``<lora:…>``/``<lyco:…>`` tag of a prompt, in order.

    The multiplier is the one the WebUI uses for UNet layers: the third
    number, else the second, else 1 (``unet=``/``te=`` override it)."""
    tags = []
    for match in _TAG.finditer(text or ""):
        items = match.group(2).split(":")
        positional = [item for item in items if "=" not in item]
        named = dict(item.split("=", 1) for item in items if "=" in item)
        try:
            te = float(named.get("te", positional[1] if len(positional) > 1 else 1.0))
            unet = float(named.get("unet", positional[2] if len(positional) > 2 else te))
        except ValueError:
            unet = None
        if positional and positional[0].strip():
            tags.append(LoraTag(positional[0].strip(), unet, match.group(0)))
    return tags


def motion_tags(tags: Sequence[LoraTag]) -> list[LoraTag]:
    """The motion LoRAs of a video, each once (a prompt-travel prompt may
    repeat a tag in several keyframe lines). ParamError("prompt") for a
    weight that is not a finite number or one name with two weights: a video has one
    motion module, so both cannot hold."""
    found: dict[str, LoraTag] = {}
    for tag in tags:
        if tag.multiplier is None or not math.isfinite(tag.multiplier):
            raise ParamError("prompt", f"the motion LoRA tag {tag.text!r} has a weight that is not a finite number")
        seen = found.setdefault(tag.name, tag)
        if seen.multiplier != tag.multiplier:
            raise ParamError("prompt", f"the motion LoRA {tag.name!r} is tagged with two weights ({seen.text} and "
                                       f"{tag.text}); give it one")
    return list(found.values())


@dataclass(frozen=True)
class LoraPair:
    down: torch.Tensor  # (rank, in)
    up: torch.Tensor    # (out, rank)
    alpha: float | None = None

    @property
    def rank(self) -> int:
        return self.down.shape[0]

    @property
    def scale(self) -> float:
        return self.alpha / self.rank if self.alpha is not None else 1.0

    def delta(self, multiplier: float, device=None) -> torch.Tensor:
        """m * scale * up @ down in float32."""
        up, down = (t.to(device=device, dtype=torch.float32) for t in (self.up, self.down))
        return (up @ down) * (multiplier * self.scale)


@dataclass(frozen=True)
class LoraFile:
    kind: str     # MOTION or ADAPTER
    naming: str   # "official" or "a1111"
    pairs: Mapping[str, LoraPair]


def file_kind(keys) -> str | None:
    """MOTION or ADAPTER when the key names are one of ours, else None (an
    ordinary image LoRA, which the WebUI handles alone)."""
    for key in keys:
        official = _OFFICIAL.match(key)
        if official:
            return MOTION if "motion_modules" in official.group("path") else ADAPTER
        a1111 = _A1111.match(key)
        if a1111 and "motion_modules" in a1111.group("module"):
            return MOTION
    return None


def parse_lora(state_dict: Mapping[str, torch.Tensor], name: str = "LoRA") -> LoraFile:
    """Both namings into one form; LoraError if the file is neither."""
    kind = file_kind(state_dict)
    if kind is None:
        raise LoraError(f"{name}: not a motion LoRA or v3 adapter (no key in either naming)")
    parts: dict[str, dict[str, object]] = {}
    naming = None
    for key, tensor in state_dict.items():
        official, a1111 = _OFFICIAL.match(key), _A1111.match(key)
        if official:
            path, proj = official.group("path"), official.group("proj")
            module = f"{path}.{'to_out.0' if proj == 'to_out' else proj}".replace(".", "_")
            if kind == ADAPTER:
                module = ADAPTER_PREFIX + module
            parts.setdefault(module, {})[official.group("part")] = tensor
            naming = naming or "official"
        elif a1111:
            slot = "alpha" if a1111.group("alpha") else a1111.group("part")[len("lora_"):]
            parts.setdefault(a1111.group("module"), {})[slot] = tensor
            naming = naming or "a1111"
    pairs = {}
    for module, found in parts.items():
        if "down" not in found or "up" not in found:
            missing = "up" if "down" in found else "down"
            raise LoraError(f"{name}: the entry for {module} has no {missing} matrix; the file is incomplete")
        down, up = found["down"], found["up"]
        if down.dim() != 2 or up.dim() != 2 or up.shape[1] != down.shape[0]:
            raise LoraError(f"{name}: the entry for {module} has shapes up {tuple(up.shape)}, down "
                            f"{tuple(down.shape)}, which do not form a low-rank pair")
        alpha = found.get("alpha")
        pairs[module] = LoraPair(down, up, float(alpha) if alpha is not None else None)
    return LoraFile(kind, naming, pairs)


def read_lora(path, name: str | None = None) -> LoraFile:
    """A LoRA file from disk (pickles with weights_only=True only)."""
    return parse_lora(read_state_dict(path), name or os.path.basename(os.fspath(path)))


@dataclass
class AppliedLoras:
    """Motion LoRAs merged into a motion model's weights until ``remove``.

    Each changed layer gets a new weight Parameter; the original Parameter is
    kept and put back by identity, so removal is exact and costs no copy."""

    swapped: list  # (module, original Parameter, patched Parameter)
    skipped: dict  # LoRA name -> module keys with no layer in this model

    def remove(self) -> None:
        for module, original, patched in reversed(self.swapped):
            if module.weight is patched:
                if (original.device, original.dtype) != (patched.device, patched.dtype):
                    # The module moved while patched (Forge's memory manager moves it at
                    # the start of sampling): the original follows it.
                    original.data = original.data.to(patched.device, patched.dtype)
                module.weight = original
        self.swapped.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


def check_compatible(model, names: Sequence[str]) -> None:
    """LoraError when motion LoRAs cannot go on this kind of motion module at all."""
    if names and model.is_sdxl:
        raise LoraError(f"motion LoRAs are trained for the SD1.5 motion modules; the {model.kind} motion module "
                        f"has other layer widths. Remove {', '.join(map(repr, names))} from the prompt")


def apply_motion_loras(model, loras: Sequence[tuple[str, LoraFile, float]]) -> AppliedLoras:
    """Merge ``(name, file, multiplier)`` motion LoRAs into ``model``.

    Entries without a layer in this module (the mid-block entries on v1/v3)
    are skipped and reported; anything else that does not fit is refused
    before a weight changes."""
    check_compatible(model, [name for name, _, _ in loras])
    layers = {name.replace(".", "_"): module for name, module in model.named_modules()
              if isinstance(module, nn.Linear)}
    updates: dict[str, list] = {}
    skipped: dict[str, list[str]] = {}
    for name, lora, multiplier in loras:
        if lora.kind != MOTION:
            raise LoraError(f"{name} is a v3 adapter, not a motion LoRA")
        if multiplier == 0:
            continue
        for key, pair in lora.pairs.items():
            layer = layers.get(key)
            if layer is None:
                skipped.setdefault(name, []).append(key)
                continue
            if pair.up.shape[0] != layer.out_features or pair.down.shape[1] != layer.in_features:
                raise LoraError(f"{name}: the entry for {key} is {pair.up.shape[0]}x{pair.down.shape[1]} but the "
                                f"{model.kind} motion module's layer is {layer.out_features}x{layer.in_features}; "
                                "this LoRA was made for another motion module")
            updates.setdefault(key, []).append((pair, multiplier))
    applied = AppliedLoras([], skipped)
    # The patched weights share one buffer per dtype (buffers.mapped_views):
    # freed whole at `remove`, not left in the allocator's heap after each run.
    groups: dict[tuple, list[str]] = {}
    for key in updates:
        weight = layers[key].weight
        groups.setdefault((weight.device, weight.dtype), []).append(key)
    try:
        with torch.no_grad():
            for (device, dtype), keys in groups.items():
                views = mapped_views([layers[key].weight.shape for key in keys], dtype, device)
                for key, view in zip(keys, views):
                    layer = layers[key]
                    original = layer.weight
                    merged = original.detach().to(torch.float32, copy=True)
                    for pair, multiplier in updates[key]:
                        merged += pair.delta(multiplier, device=merged.device)
                    patched = nn.Parameter(view.copy_(merged), requires_grad=False)
                    layer.weight = patched
                    applied.swapped.append((layer, original, patched))
    except BaseException:
        applied.remove()
        raise
    return applied


def describe_skipped(keys: Sequence[str]) -> str:
    """"mid_block (8 layers)" style summary of skipped module keys."""
    blocks = Counter(key.split("_motion_modules")[0] if "_motion_modules" in key else key for key in keys)
    return ", ".join(f"{block} ({count} layers)" for block, count in blocks.items())
