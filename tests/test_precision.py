"""Motion-module precision: dtypes that follow the UNet, and FP8 weight storage."""

import torch

import motion_module as mm
from motion_module.loader import FP8, pack_parameters
from motion_module.synthetic import random_model, state_dict_for_file
from unets import channels_for, inputs, unet_for


def weight_bytes(model):
    return sum(p.numel() * p.element_size() for p in model.parameters())


def test_fp8_stores_linear_weights_only():
    model = random_model("v2", channels=channels_for("v2"))
    full = weight_bytes(model)
    pack_parameters(model, "cpu", torch.float32, fp8=True)
    kinds = {type(m).__name__: m.weight.dtype for m in model.modules() if hasattr(m, "weight")}
    assert kinds == {"Linear": FP8, "GroupNorm": torch.float32, "LayerNorm": torch.float32}
    assert weight_bytes(model) < full * 0.3


def test_load_with_fp8_and_fp16():
    sd = state_dict_for_file(random_model("v3", channels=channels_for("v3")))
    fp8 = mm.load(sd, dtype=torch.float16, fp8=True)
    assert fp8.down_blocks[0].motion_modules[0].temporal_transformer.proj_in.weight.dtype == FP8
    assert fp8.down_blocks[0].motion_modules[0].temporal_transformer.norm.weight.dtype == torch.float16


def test_fp8_module_in_a_unet_under_autocast_matches_full_precision():
    # The WebUI samples under autocast when FP8 is on (bfloat16 on the CPU),
    # which computes the fp8-stored Linear layers in the autocast dtype.
    unet = unet_for("v2")
    x, t, c = inputs(videos=1, frames=4, size=8)
    full = random_model("v2", channels=channels_for("v2"))
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        plain = unet(x, t, context=c).float()
        with mm.inject(unet, full, frames=4):
            reference = unet(x, t, context=c).float()
        pack_parameters(full, "cpu", torch.float32, fp8=True)
        with mm.inject(unet, full, frames=4):
            stored = unet(x, t, context=c).float()
    motion = (reference - plain).norm()
    assert (stored - reference).norm() < 0.25 * motion  # fp8's 3-bit mantissa, far from no module at all
    assert not mm.is_injected(unet)


def test_fp16_module_in_an_fp32_unet():
    unet = unet_for("v3")
    x, t, c = inputs(videos=1, frames=4, size=8)
    model32 = random_model("v3", channels=channels_for("v3"))
    model16 = random_model("v3", channels=channels_for("v3"), dtype=torch.float16)
    with torch.no_grad():
        with mm.inject(unet, model32, frames=4):
            a = unet(x, t, context=c)
        with mm.inject(unet, model16, frames=4):
            b = unet(x, t, context=c)
    assert b.dtype == torch.float32 and torch.allclose(a, b, atol=5e-2, rtol=5e-2)
