"""Random motion modules in the official layouts, for tests, benchmarks and the demo.

Real weights cannot be shipped or downloaded, so everything that needs a
motion module generates one here. The state dicts use exactly the official
key names (AnimateDiff naming, or HotShot's own), so they exercise the same
loading path as real files.
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
    """The state dict an official file of this kind holds (with position tables)."""
    sd = dict(model.state_dict())
    if include_pe:
        for name, buf in model.named_buffers():
            if name.endswith(PE_SUFFIX):
                sd[name] = buf.clone()
    if naming == "hotshot":
        sd = {_to_hotshot_key(k): v for k, v in sd.items()}
    elif naming != "animatediff":
        raise ValueError(f"naming must be 'animatediff' or 'hotshot', got {naming!r}")
    return sd


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
