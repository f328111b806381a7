"""Random motion modules in the official layouts, for tests, benchmarks and the demo.

Real weights cannot be shipped or downloaded, so everything that needs a
motion module generates one here. The state dicts use exactly the official
key names (AnimateDiff naming, HotShot's own, or diffusers' MotionAdapter
layout), so they exercise the same loading path as real files.
"""

import torch

from .detect import HOTSHOT_PE_SUFFIX, PE_SUFFIX
from .kinds import get_kind
from .layers import PositionalEncoding, sinusoidal_position_encoding
from .model import MotionModel


def random_model(kind: str, channels=None, max_frames=None, seed: int = 0, std: float = 0.02,
                 dtype=torch.float32) -> MotionModel:
    """A MotionModel with random weights (norms at identity, like a fresh init).

    proj_out is random too: the official training zero-initialises it, which
    would make an untrained module a no-op and hide injection mistakes.
    """
    info = get_kind(kind)
    generator = torch.Generator().manual_seed(seed)
    # Built on meta and materialised empty: default initialisation of ~400M
    # parameters would cost seconds only to be overwritten.
    with torch.device("meta"):
        model = MotionModel(info, max_frames or info.default_max_frames, channels)
    model.to_empty(device="cpu")
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, PositionalEncoding):
                module.pe = sinusoidal_position_encoding(module.pe.shape[1], module.pe.shape[2])
        for name, param in model.named_parameters():
            if ".norm" in name or "_norm" in name or ".norms." in name:
                param.copy_(torch.ones_like(param) if name.endswith("weight") else torch.zeros_like(param))
            else:
                param.copy_(torch.randn(param.shape, generator=generator) * std)
    return model.to(dtype).eval().requires_grad_(False)


def state_dict_for_file(model: MotionModel, naming: str = "animatediff", include_pe: bool = True) -> dict:
    """The state dict an official file of this kind holds (with position tables).

    `naming`: "animatediff" (the official files), "hotshot" (HotShot-XL's own
    names) or "diffusers" (what diffusers' MotionAdapter saves: one position
    table per transformer block, `pos_embed.pe`)."""
    sd = dict(model.state_dict())
    if include_pe:
        for name, buf in model.named_buffers():
            if name.endswith(PE_SUFFIX):
                sd[name] = buf.clone()
    if naming == "hotshot":
        sd = {_to_hotshot_key(k): v for k, v in sd.items()}
    elif naming == "diffusers":
        sd = _to_diffusers(sd)
    elif naming != "animatediff":
        raise ValueError(f"naming must be 'animatediff', 'hotshot' or 'diffusers', got {naming!r}")
    return sd


def _to_diffusers(sd: dict) -> dict:
    """Written as diffusers does it, not by inverting diffusers_layout: the
    renames of its conversion script (scripts/convert_animatediff_motion_module_to_diffusers.py),
    which drops the position tables, then MotionAdapter's own table per
    transformer block (attention_blocks.0's; both attention blocks hold the same)."""
    out = {}
    for key, value in sd.items():
        if key.endswith(PE_SUFFIX):
            if ".attention_blocks.0." in key:
                block = key[: key.index(".attention_blocks.0.")].replace(".temporal_transformer", "")
                out[f"{block}.pos_embed.pe"] = value
            continue
        out[key.replace(".norms.0", ".norm1").replace(".norms.1", ".norm2").replace(".ff_norm", ".norm3")
            .replace(".attention_blocks.0", ".attn1").replace(".attention_blocks.1", ".attn2")
            .replace(".temporal_transformer", "")] = value
    return out


def _to_hotshot_key(key: str) -> str:
    key = key.replace(".temporal_transformer.", ".", 1).replace(".motion_modules.", ".temporal_attentions.", 1)
    if key.endswith(PE_SUFFIX):
        key = key[: -len(PE_SUFFIX)] + HOTSHOT_PE_SUFFIX
    return key


def save_random_checkpoint(path, kind: str, seed: int = 0, dtype=torch.float16, naming=None,
                           include_pe=None, channels=None):
    """Write a random checkpoint of `kind` to `path` (.safetensors or pickle)."""
    naming = naming or "animatediff"
    include_pe = (kind != "animatelcm") if include_pe is None else include_pe
    sd = state_dict_for_file(random_model(kind, channels=channels, seed=seed), naming, include_pe)
    sd = {k: v.to(dtype).contiguous() for k, v in sd.items()}
    path = str(path)
    if path.endswith(".safetensors"):
        from safetensors.torch import save_file
        save_file(sd, path)
    else:
        torch.save(sd, path)
    return path


# The SD1.5 UNet's spatial transformers in diffusers naming (the v3 adapter's
# targets): (block path, channels), and the text encoder's width for attn2.
_SD15_ATTENTIONS = (
    *((f"down_blocks.{i}.attentions.{j}", c) for i, c in enumerate((320, 640, 1280)) for j in range(2)),
    *((f"up_blocks.{i}.attentions.{j}", c) for i, c in zip((1, 2, 3), (1280, 640, 320)) for j in range(3)),
    ("mid_block.attentions.0", 1280),
)
_SD15_CONTEXT = 768


def _motion_lora_targets(kind, channels):
    with torch.device("meta"):
        model = MotionModel(get_kind(kind), get_kind(kind).default_max_frames, channels)
    return [(name, m.in_features, m.out_features) for name, m in model.named_modules()
            if isinstance(m, torch.nn.Linear) and ".attention_blocks." in name]


def _adapter_targets():
    return [(f"{block}.transformer_blocks.0.{attn}.{proj}",
             _SD15_CONTEXT if attn == "attn2" and proj in ("to_k", "to_v") else width, width)
            for block, width in _SD15_ATTENTIONS for attn in ("attn1", "attn2")
            for proj in ("to_q", "to_k", "to_v", "to_out.0")]


def random_lora(what: str = "motion", naming: str = "official", kind: str = "v2", rank: int = 64, seed: int = 0,
                std: float = 0.05, channels=None, dtype=torch.float32, alpha=None) -> dict:
    """A random motion LoRA (what="motion", for the layers of `kind`) or v3
    adapter (what="adapter") as the official file ("official") or the A1111
    re-save ("a1111") holds it. Values are fp16-exact, so an fp16 re-save of
    an fp32 file holds the same numbers."""
    targets = _motion_lora_targets(kind, channels) if what == "motion" else _adapter_targets()
    generator = torch.Generator().manual_seed(seed)
    sd = {}
    for module, fan_in, fan_out in targets:
        down = (torch.randn(rank, fan_in, generator=generator) * std).to(torch.float16).to(dtype)
        up = (torch.randn(fan_out, rank, generator=generator) * std).to(torch.float16).to(dtype)
        if naming == "official":
            path, proj = module.removesuffix(".0").rsplit(".", 1)
            sd[f"{path}.processor.{proj}_lora.down.weight"] = down
            sd[f"{path}.processor.{proj}_lora.up.weight"] = up
        elif naming == "a1111":
            key = module.replace(".", "_") if what == "motion" else "lora_unet_" + module.replace(".", "_")
            sd[f"{key}.lora_down.weight"] = down
            sd[f"{key}.lora_up.weight"] = up
            if alpha is not None:
                sd[f"{key}.alpha"] = torch.tensor(float(alpha))
        else:
            raise ValueError(f"naming must be 'official' or 'a1111', got {naming!r}")
    return sd
