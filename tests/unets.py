"""Small real ldm UNets (from stable-diffusion-sdkit) with the SD1.5 and SDXL block layouts.

The widths are reduced so that tests run in seconds on a CPU; the block
structure (levels, ResBlocks, SpatialTransformers, Up/Downsamples, middle
block) is the real one the motion modules are injected into.
"""

import torch
from ldm.modules.diffusionmodules.openaimodel import UNetModel

SD15_TEST_CHANNELS = (32, 64, 128, 128)
SDXL_TEST_CHANNELS = (32, 64, 128)
CONTEXT_DIM = 64


def _reinit_zero_layers(unet, generator):
    # ldm zero-initialises output convs and transformer proj_out; a trained
    # model has none of those at zero, and zeros would hide mistakes.
    with torch.no_grad():
        for p in unet.parameters():
            if p.abs().max() == 0 and p.dim() > 1:
                p.copy_(torch.randn(p.shape, generator=generator) * 0.05)


def sd15_unet(seed=0, model_channels=32):
    torch.manual_seed(seed)
    unet = UNetModel(
        image_size=32, in_channels=4, out_channels=4, model_channels=model_channels,
        attention_resolutions=[4, 2, 1], num_res_blocks=2, channel_mult=[1, 2, 4, 4],
        num_heads=8, use_spatial_transformer=True, transformer_depth=1,
        context_dim=CONTEXT_DIM, legacy=False)
    _reinit_zero_layers(unet, torch.Generator().manual_seed(seed + 1))
    return unet.eval().requires_grad_(False)


def sdxl_layout_unet(seed=0, model_channels=32):
    """SDXL's block layout on the ldm UNet class: 3 levels, no attention at
    level 0, head width 64 in the real model (here reduced), 2048-d context
    (reduced). sgm's UNetModel has the same block structure."""
    torch.manual_seed(seed)
    unet = UNetModel(
        image_size=32, in_channels=4, out_channels=4, model_channels=model_channels,
        attention_resolutions=[2, 4], num_res_blocks=2, channel_mult=[1, 2, 4],
        num_head_channels=16, use_spatial_transformer=True, transformer_depth=1,
        context_dim=CONTEXT_DIM, use_linear_in_transformer=True, legacy=False)
    _reinit_zero_layers(unet, torch.Generator().manual_seed(seed + 1))
    return unet.eval().requires_grad_(False)


def channels_for(kind):
    from motion_module import get_kind
    return SDXL_TEST_CHANNELS if get_kind(kind).is_sdxl else SD15_TEST_CHANNELS


def unet_for(kind, seed=0):
    from motion_module import get_kind
    return sdxl_layout_unet(seed) if get_kind(kind).is_sdxl else sd15_unet(seed)


def inputs(videos, frames, seed=0, size=16):
    g = torch.Generator().manual_seed(seed)
    n = videos * frames
    x = torch.randn(n, 4, size, size, generator=g)
    t = torch.full((n,), 500, dtype=torch.long)
    c = torch.randn(n, 7, CONTEXT_DIM, generator=g)
    return x, t, c
