"""The injected ldm UNet computes what the official AnimateDiff UNet3D computes.

For every kind, on a real ldm UNet (reduced widths; the SDXL block layout for
the SDXL kinds), the output with the motion module injected is compared with
`reference_unet3d.reference_forward`, an independent formulation of the
official 3-D UNet, in fp32 with tight tolerances.
"""

import pytest
import torch

import motion_module as mm
from motion_module.synthetic import random_model
from reference_unet3d import reference_forward
from unets import inputs, channels_for, unet_for

KINDS = ["v1", "v2", "v3", "animatelcm", "sdxl", "hotshot"]
TOL = dict(rtol=1e-4, atol=1e-5)


@pytest.fixture(scope="module", params=KINDS)
def setup(request):
    kind = request.param
    return kind, unet_for(kind), random_model(kind, channels=channels_for(kind), seed=3)


def test_matches_official_formulation(setup):
    kind, unet, model = setup
    frames = 8
    x, t, c = inputs(videos=2, frames=frames, seed=1)
    with torch.no_grad():
        expected = reference_forward(unet, model, x, t, c, frames)
        with mm.inject(unet, model, frames=frames):
            got = unet(x, t, context=c)
    torch.testing.assert_close(got, expected, **TOL)


def test_cond_and_uncond_in_separate_calls_match_one_call(setup):
    # The WebUI sends cond and uncond together or apart depending on its
    # settings and prompt lengths; the video must not depend on that.
    kind, unet, model = setup
    frames = 8
    x, t, c = inputs(videos=2, frames=frames, seed=2)
    with torch.no_grad(), mm.inject(unet, model, frames=frames):
        together = unet(x, t, context=c)
        apart = torch.cat([unet(x[:frames], t[:frames], context=c[:frames]),
                           unet(x[frames:], t[frames:], context=c[frames:])])
    torch.testing.assert_close(apart, together, **TOL)


def test_videos_are_independent(setup):
    # Video-major batches: changing video 1 must not change video 0's output.
    kind, unet, model = setup
    frames = 8
    x, t, c = inputs(videos=2, frames=frames, seed=4)
    x2 = x.clone()
    x2[frames:] += 1.0
    with torch.no_grad(), mm.inject(unet, model, frames=frames):
        a = unet(x, t, context=c)
        b = unet(x2, t, context=c)
    torch.testing.assert_close(a[:frames], b[:frames], **TOL)
    assert (a[frames:] - b[frames:]).abs().max() > 1e-3


@pytest.mark.parametrize("kind", ["v1", "hotshot"])
def test_groupnorm_scope_matters(kind):
    """Guards the reference itself: with per-frame ResBlock norms (the wrong
    scope for v1/HotShot) the result is measurably different, so the
    comparison above really pins the scope down."""
    unet, model = unet_for(kind), random_model(kind, channels=channels_for(kind), seed=3)
    x, t, c = inputs(videos=1, frames=8, seed=1)
    with torch.no_grad():
        right = reference_forward(unet, model, x, t, c, 8)
        model.kind_info = mm.get_kind("v3" if kind == "v1" else "sdxl")
        try:
            wrong_scope = reference_forward(unet, model, x, t, c, 8)
        finally:
            model.kind_info = mm.get_kind(kind)
    assert (right - wrong_scope).abs().max() > 1e-3


def test_sdxl_module_norm_is_over_frames_and_hotshot_per_frame():
    assert mm.get_kind("sdxl").module_norm_over_frames
    assert not mm.get_kind("hotshot").module_norm_over_frames
    assert not any(mm.get_kind(k).module_norm_over_frames for k in ("v1", "v2", "v3", "animatelcm"))
    assert {k for k, v in mm.KINDS.items() if v.joint_groupnorm} == {"v1", "hotshot"}


def test_chunked_attention_equals_unchunked(monkeypatch):
    # Chunking the spatial axis only bounds memory; it must not change results.
    import motion_module.layers as layers

    kind = "v2"
    unet, model = unet_for(kind), random_model(kind, channels=channels_for(kind), seed=5)
    x, t, c = inputs(videos=2, frames=8, seed=3)
    with torch.no_grad(), mm.inject(unet, model, frames=8):
        whole = unet(x, t, context=c)
        monkeypatch.setattr(layers, "CHUNK_ELEMENTS", 8 * 8 * 128 * 3)  # a few rows per chunk
        chunked = unet(x, t, context=c)
    torch.testing.assert_close(chunked, whole, **TOL)


def test_attention_never_sees_all_positions_at_once(monkeypatch):
    """At 512x512 SD1.5 level-0 size (64x64 latent, 320 channels, cond+uncond
    of 16 frames) the frames x frames scores must be computed in chunks of
    positions, not for all 2 x 4096 positions in one call."""
    import torch.nn.functional as F

    import motion_module.layers as layers
    from motion_module.layers import MotionModule

    batches = []
    real_sdpa = F.scaled_dot_product_attention

    def spy(q, k, v, *args, **kwargs):
        batches.append(q.shape[0])
        return real_sdpa(q, k, v, *args, **kwargs)

    monkeypatch.setattr(layers.F, "scaled_dot_product_attention", spy)
    module = MotionModule(320, 32).eval()
    x = torch.randn(2 * 16, 320, 64, 64)
    with torch.no_grad():
        out = module(x, frames=16)
    assert out.shape == x.shape
    total_sequences = 2 * 64 * 64
    assert batches and max(batches) < total_sequences
    assert sum(batches) == 2 * total_sequences  # two attention blocks, every position once each
