"""Recognising a motion module's kind from its keys and shapes alone.

File names are never consulted: users rename files, and community finetunes
reuse the official layouts under any name. Files in HotShot-XL's own naming and
in diffusers' MotionAdapter layout (diffusers_layout.py) are renamed to
AnimateDiff naming first.
"""

import re
from dataclasses import dataclass

from .diffusers_layout import from_diffusers_names, is_diffusers_layout
from .errors import CheckpointError
from .kinds import KINDS, MotionKind

PE_SUFFIX = "pos_encoder.pe"
HOTSHOT_PE_SUFFIX = "pos_encoder.positional_encoding"
_DOWN_LEVEL = re.compile(r"^down_blocks\.(\d+)\.motion_modules\.")
_SD_CHECKPOINT_PREFIXES = ("model.diffusion_model.", "first_stage_model.", "cond_stage_model.", "conditioner.")


@dataclass(frozen=True)
class Detection:
    kind: MotionKind
    max_frames: int
    pe_in_file: bool
    channels: tuple


def _sample(keys, n=3):
    keys = sorted(keys)
    more = f" (+{len(keys) - n} more)" if len(keys) > n else ""
    return ", ".join(keys[:n]) + more


_LORA_DOWN = ("_lora.down.weight", ".lora_down.weight", ".lora.down.weight", ".lora_A.weight")
_LORA_UP = ("_lora.up.weight", ".lora_up.weight", ".lora.up.weight", ".lora_B.weight")
# A whole UNet in diffusers' layout (UNet2DConditionModel, UNetMotionModel) has these besides any motion modules.
_DIFFUSERS_UNET = re.compile(r"^(?:down_blocks\.\d+|up_blocks\.\d+|mid_block)\.(?:resnets|attentions)\.")


def _refuse_other_file_types(sd):
    keys = list(sd)
    lora = [k for k in keys if k.endswith(_LORA_DOWN + _LORA_UP)]
    if lora:
        down = next((sd[k] for k in lora if k.endswith(_LORA_DOWN)), None)
        rank = f" of rank {down.shape[0]}" if down is not None and down.dim() else ""
        what = ("a motion LoRA" if any("motion_modules" in k for k in lora)
                else "a LoRA (e.g. the v3 domain adapter)")
        raise CheckpointError(
            f"this file is {what}{rank}, not a motion module: put it in the WebUI's "
            "Lora folder and use it with <lora:name:weight> next to a motion module")
    if any(k.startswith("controlnet_cond_embedding") for k in keys):
        raise CheckpointError("this file is a SparseCtrl encoder (it has controlnet_cond_embedding keys), "
                              "not a motion module; SparseCtrl is used through ControlNet")
    if any(k.startswith(_SD_CHECKPOINT_PREFIXES) for k in keys):
        raise CheckpointError("this file is a Stable Diffusion checkpoint (it has model.diffusion_model keys), "
                              "not a motion module: put it in models/Stable-diffusion")
    if any(_DIFFUSERS_UNET.match(k) for k in keys):
        raise CheckpointError("this file is a whole UNet in diffusers' layout (it has down_blocks.N.resnets or "
                              ".attentions keys), not a motion module: use the motion adapter's own file, a "
                              "MotionAdapter's diffusion_pytorch_model.safetensors")


def from_hotshot_names(sd: dict) -> dict:
    """HotShot-XL's original naming -> AnimateDiff naming.

    `…temporal_attentions.M.<rest>` is `…motion_modules.M.temporal_transformer.<rest>`
    and its position table is called `positional_encoding` instead of `pe`.
    """
    out = {}
    for key, value in sd.items():
        key = key.replace(".temporal_attentions.", ".motion_modules.", 1) if ".temporal_attentions." in key else key
        if ".motion_modules." in key and ".temporal_transformer." not in key:
            head, _, rest = key.partition(".motion_modules.")
            index, _, tail = rest.partition(".")
            key = f"{head}.motion_modules.{index}.temporal_transformer.{tail}"
        if key.endswith(HOTSHOT_PE_SUFFIX):
            key = key[: -len(HOTSHOT_PE_SUFFIX)] + PE_SUFFIX
        out[key] = value
    return out


def is_hotshot_naming(sd) -> bool:
    return any(".temporal_attentions." in k or k.endswith(HOTSHOT_PE_SUFFIX) for k in sd)


def detect(sd: dict, hotshot_naming: bool = False, diffusers_naming: bool = False) -> Detection:
    """Kind of an AnimateDiff-named state dict (see `from_hotshot_names`).

    `hotshot_naming` says the keys were converted from HotShot's own naming,
    which only HotShot-XL uses, whatever its table length. `diffusers_naming`
    says they were converted from diffusers' MotionAdapter layout: there a
    file without position tables is not AnimateLCM (diffusers' files hold
    them unless a converter dropped them), so a mid block means v2.
    """
    if not sd:
        raise CheckpointError("the file holds no tensors")
    _refuse_other_file_types(sd)
    levels = {int(m.group(1)) for k in sd if (m := _DOWN_LEVEL.match(k))}
    if not levels:
        raise CheckpointError(
            "this file is not a motion module: expected keys like "
            "'down_blocks.0.motion_modules.0.temporal_transformer.norm.weight', found " + _sample(sd))
    num_levels = max(levels) + 1
    if num_levels not in (3, 4):
        raise CheckpointError(f"motion module has {num_levels} down levels; expected 4 (SD1.5) or 3 (SDXL)")
    has_mid = any(k.startswith("mid_block.") for k in sd)
    pe_lengths = {tuple(v.shape)[1] for k, v in sd.items() if k.endswith(PE_SUFFIX) and v.dim() == 3}
    if len(pe_lengths) > 1:
        raise CheckpointError(f"inconsistent position-encoding lengths {sorted(pe_lengths)} in one file")
    pe_len = pe_lengths.pop() if pe_lengths else None

    if num_levels == 4:
        if has_mid:
            name = "v2" if pe_len is not None or diffusers_naming else "animatelcm"
        elif pe_len == 24:
            name = "v1"
        else:
            name = "v3"  # also a v3-like file without position tables
    else:
        if has_mid:
            raise CheckpointError("an SDXL motion module (3 levels) with a mid block is not a known layout")
        name = "hotshot" if hotshot_naming or pe_len == 24 else "sdxl"
    kind = KINDS[name]
    return Detection(kind, pe_len or kind.default_max_frames, pe_len is not None,
                     _level_channels(sd, num_levels, kind))


def _level_channels(sd, num_levels, kind):
    """Widths per level, read from the file (official files have the official
    widths; small test files have small ones). The strict layout check that
    follows catches any tensor inconsistent with them."""
    channels = []
    for level in range(num_levels):
        norm = sd.get(f"down_blocks.{level}.motion_modules.0.temporal_transformer.norm.weight")
        width = norm.shape[0] if norm is not None and norm.dim() == 1 else kind.channels[level]
        if width % 32:
            raise CheckpointError(f"down_blocks.{level} has {width} channels; motion modules need a multiple of "
                                  "32 (GroupNorm with 32 groups)")
        channels.append(width)
    return tuple(channels)


def detect_any_naming(sd: dict):
    """(state dict in AnimateDiff naming, Detection) for a file in any naming:
    AnimateDiff's, HotShot-XL's or diffusers' MotionAdapter layout."""
    if sd:
        # Before any renaming, so that a LoRA or a UNet in diffusers' naming is named as such.
        _refuse_other_file_types(sd)
    if is_diffusers_layout(sd):
        sd = from_diffusers_names(sd)
        return sd, detect(sd, diffusers_naming=True)
    hotshot = is_hotshot_naming(sd)
    if hotshot:
        sd = from_hotshot_names(sd)
    return sd, detect(sd, hotshot_naming=hotshot)
