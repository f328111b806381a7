"""SparseCtrl's temporal layers, built for ControlNet through our
`scripts.animatediff_mm` alias: the official key layout loads strictly, and the
layers run on a video with the frame count of the current call."""

import json
import os

import pytest
import torch

from motion_module.layers import sinusoidal_position_encoding
from motion_module.sparsectrl import SparseCtrlMotion

LAYOUT = os.path.join(os.path.dirname(__file__), "fixtures", "mm_layouts", "sparsectrl_rgb.json")


def _official_motion_keys():
    with open(LAYOUT) as f:
        keys = json.load(f)["keys"]
    return {k: v for k, v in keys.items() if "motion_modules" in k}


def test_the_official_motion_keys_load_strictly_and_nothing_is_missing():
    keys = _official_motion_keys()
    generator = torch.Generator().manual_seed(0)
    state = {}
    for key, shape in keys.items():
        if key.endswith("pos_encoder.pe"):
            state[key] = sinusoidal_position_encoding(shape[1], shape[2])
        else:
            state[key] = torch.randn(shape, generator=generator) * 0.02
    model = SparseCtrlMotion(lambda x: 8)
    model.load_state_dict(state, strict=True)
    own = set(model.state_dict())
    assert own == {k for k in keys if not k.endswith("pos_encoder.pe")}
    assert len(model.down_blocks) == 4 and all(len(b.motion_modules) == 2 for b in model.down_blocks)


def test_a_position_encoding_of_another_length_is_refused():
    model = SparseCtrlMotion(lambda x: 8)
    state = dict(model.state_dict())
    state["down_blocks.0.motion_modules.0.temporal_transformer.transformer_blocks.0.attention_blocks.0.pos_encoder.pe"] = \
        torch.zeros(1, 24, 320)
    with pytest.raises(ValueError, match="24 frames"):
        model.load_state_dict(state)


def test_layers_mix_frames_of_the_current_call_only():
    frames = {"n": 4}
    model = SparseCtrlMotion(lambda x: frames["n"]).eval()
    layer = model.down_blocks[0].motion_modules[0]
    with torch.no_grad():
        for p in layer.parameters():
            p.normal_(0, 0.05)
        x = torch.randn(8, 320, 4, 4)  # two videos of 4 frames (cond and uncond)
        y = layer(x)
        assert y.shape == x.shape
        x2 = x.clone()
        x2[5] += 1.0  # second video only
        y2 = layer(x2)
    assert torch.equal(y[:4], y2[:4])  # the first video does not see the second
    assert not torch.equal(y[4:], y2[4:])
