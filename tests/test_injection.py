"""Injection into the real ldm UNet: placement, restore, refusals, edge batches."""

import logging

import pytest
import torch

import motion_module as mm
from motion_module.injection import TemporalSlot, injection_points
from motion_module.synthetic import random_model
from unets import channels_for, inputs, sd15_unet, sdxl_layout_unet, unet_for

ALL_KINDS = ["v1", "v2", "v3", "animatelcm", "sdxl", "hotshot"]


def snapshot(unet):
    """Everything a restore must give back: module tree, parameters, instance attributes."""
    return ([(name, type(m), id(m)) for name, m in unet.named_modules()],
            {k: v.clone() for k, v in unet.state_dict().items()},
            {name: sorted(m.__dict__) for name, m in unet.named_modules()})


def assert_restored(unet, before, x, t, c, plain):
    tree, params, attrs = snapshot(unet)
    assert tree == before[0]
    assert params.keys() == before[1].keys()
    assert all(torch.equal(params[k], before[1][k]) for k in params)
    assert attrs == before[2]
    assert not mm.is_injected(unet)
    assert torch.equal(unet(x, t, context=c), plain)  # bit-identical


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_inject_places_modules_and_restores_bit_identically(kind):
    unet = unet_for(kind)
    model = random_model(kind, channels=channels_for(kind))
    x, t, c = inputs(videos=2, frames=4, size=8)
    with torch.no_grad():
        plain = unet(x, t, context=c)
        before = snapshot(unet)
        with mm.inject(unet, model, frames=4):
            slots = [m for m in unet.modules() if isinstance(m, TemporalSlot)]
            expected = len(model.down_modules()) + len(model.up_modules()) + (model.mid_module() is not None)
            assert len(slots) == expected
            assert not torch.equal(unet(x, t, context=c), plain)
        assert_restored(unet, before, x, t, c, plain)


def test_sd15_placement_matches_the_official_map():
    unet = sd15_unet()
    model = random_model("v2", channels=channels_for("v2"))
    with mm.inject(unet, model, frames=4):
        where = {}
        for name, m in unet.named_modules():
            if isinstance(m, TemporalSlot):
                where[name] = m.module
    down, up = model.down_modules(), model.up_modules()
    for k, block in enumerate([1, 2, 4, 5, 7, 8, 10, 11]):
        n = 2 if block in (1, 2, 4, 5, 7, 8) else 1  # level 3 has no SpatialTransformer
        assert where[f"input_blocks.{block}.{n}"] is down[k]
    for i in range(12):
        # ResBlock (+SpatialTransformer from block 3 on); in blocks 2, 5, 8 this
        # index is just before the Upsample
        layers = 1 + (1 if i >= 3 else 0)
        assert where[f"output_blocks.{i}.{layers}"] is up[i], i
    assert where["middle_block.2"] is model.mid_module()


def test_sdxl_placement_has_three_levels_and_no_middle():
    unet = sdxl_layout_unet()
    model = random_model("sdxl", channels=channels_for("sdxl"))
    assert len(injection_points(unet, model)) == 6 + 9
    with mm.inject(unet, model, frames=4):
        slots = {n for n, m in unet.named_modules() if isinstance(m, TemporalSlot)}
        assert type(unet.output_blocks[2][3]).__name__ == "Upsample"
    assert {n.split(".")[0] for n in slots} == {"input_blocks", "output_blocks"}
    assert "input_blocks.1.1" in slots  # level 0: ResBlock only, module right after it
    assert "output_blocks.2.2" in slots  # ResBlock, SpatialTransformer, module, Upsample
    assert "output_blocks.8.1" in slots  # level 0 again: no attention, no Upsample


def test_restore_after_exception_mid_forward():
    unet = sd15_unet()
    model = random_model("v1", channels=channels_for("v1"))
    x, t, c = inputs(videos=1, frames=4, size=8)
    plain = unet(x, t, context=c)
    before = snapshot(unet)
    boom = model.up_modules()[5]

    def explode(*args, **kwargs):
        raise RuntimeError("boom")

    boom.forward = explode
    with pytest.raises(RuntimeError, match="boom"):
        with mm.inject(unet, model, frames=4):
            unet(x, t, context=c)
    del boom.forward
    assert_restored(unet, before, x, t, c, plain)


def test_double_injection_is_refused_and_first_stays_intact():
    unet = sd15_unet()
    model = random_model("v2", channels=channels_for("v2"))
    with mm.inject(unet, model, frames=4):
        with pytest.raises(mm.MotionModuleError, match="already injected"):
            mm.Injection(unet, model, frames=4).apply()
        assert mm.is_injected(unet)
    assert not mm.is_injected(unet)


def test_remove_any_cleans_a_leftover_injection():
    unet = sd15_unet()
    x, t, c = inputs(videos=1, frames=4, size=8)
    plain = unet(x, t, context=c)
    before = snapshot(unet)
    mm.Injection(unet, random_model("v1", channels=channels_for("v1")), frames=4).apply()
    assert mm.remove_any(unet)
    assert not mm.remove_any(unet)
    assert_restored(unet, before, x, t, c, plain)


def test_removal_does_not_depend_on_positions():
    """Another extension appends a layer to a block we also edited: removing
    our modules must leave its layer in place and take only ours."""
    unet = sd15_unet()
    model = random_model("v2", channels=channels_for("v2"))
    foreign = torch.nn.Identity()
    injection = mm.Injection(unet, model, frames=4).apply()
    unet.output_blocks[2].append(foreign)
    unet.middle_block.insert(0, torch.nn.Identity())
    injection.remove()
    assert unet.output_blocks[2][-1] is foreign
    assert not any(isinstance(m, TemporalSlot) for m in unet.modules())


def test_forward_wrapped_by_someone_else_stays_safe():
    """If another extension wraps unet.forward after us, removal leaves its
    wrapper alone and our layer in its chain becomes a pass-through."""
    unet = sd15_unet()
    x, t, c = inputs(videos=1, frames=4, size=8)
    plain = unet(x, t, context=c)
    injection = mm.Injection(unet, random_model("v1", channels=channels_for("v1")), frames=4).apply()
    inner = unet.forward
    calls = []

    def theirs(*a, **k):
        calls.append(1)
        return inner(*a, **k)

    unet.forward = theirs
    injection.remove()
    assert unet.forward is theirs
    assert torch.equal(unet(x, t, context=c), plain) and calls


@pytest.mark.parametrize("module_kind,unet_builder,unet_name", [
    ("v2", sdxl_layout_unet, "an SDXL UNet"), ("v1", sdxl_layout_unet, "an SDXL UNet"),
    ("sdxl", sd15_unet, "an SD1.x/2.x UNet"), ("hotshot", sd15_unet, "an SD1.x/2.x UNet"),
])
def test_wrong_base_model_is_refused_naming_both(module_kind, unet_builder, unet_name):
    unet = unet_builder()
    before = snapshot(unet)
    model = random_model(module_kind, channels=channels_for(module_kind))
    with pytest.raises(mm.IncompatibleUNetError) as e:
        mm.Injection(unet, model, frames=4).apply()
    family = "SDXL" if model.is_sdxl else "SD1.5"
    assert family in str(e.value) and unet_name in str(e.value) and module_kind in str(e.value)
    assert snapshot(unet)[0] == before[0]


def test_frames_above_position_encoding_are_refused():
    unet = sd15_unet()
    model = random_model("v1", channels=channels_for("v1"))  # 24 positions
    with pytest.raises(mm.FrameCountError, match="24"):
        mm.Injection(unet, model, frames=25)
    injection = mm.Injection(unet, model, frames=24)
    with pytest.raises(mm.FrameCountError):
        injection.frames = 30
    assert not mm.is_injected(unet)


def test_batch_not_multiple_of_frames_runs_plain_unet_with_one_warning(caplog):
    unet = sd15_unet()
    model = random_model("v1", channels=channels_for("v1"))
    x, t, c = inputs(videos=1, frames=3, size=8)
    plain = unet(x, t, context=c)
    with caplog.at_level(logging.WARNING, logger="animatediff"), mm.inject(unet, model, frames=8):
        first = unet(x, t, context=c)
        second = unet(x, t, context=c)
    assert torch.equal(first, plain) and torch.equal(second, plain)
    warnings = [r for r in caplog.records if "not a multiple" in r.getMessage()]
    assert len(warnings) == 1


def test_context_windows_run_long_videos_within_the_encoding_length():
    unet = sd15_unet()
    model = random_model("v1", channels=channels_for("v1"))  # 24 positions
    x, t, c = inputs(videos=2, frames=40, size=8)
    seen = []
    options = mm.ContextOptions(length=16, overlap=4, stride=1, closed_loop="R-P")
    with torch.no_grad(), mm.inject(unet, model, frames=40, context=options) as injection:
        original = injection._call_with_frames

        def spy(call, unet_view, len_frames, x, args, kwargs, frame_index):
            seen.append((len_frames, x.shape[0]))
            return original(call, unet_view, len_frames, x, args, kwargs, frame_index)

        injection._call_with_frames = spy
        out = unet(x, t, context=c)
    assert out.shape == x.shape and torch.isfinite(out).all()
    assert seen and all(f == 16 and rows == 32 for f, rows in seen)


def test_context_window_equals_whole_video_when_it_covers_everything():
    unet = sd15_unet()
    model = random_model("v2", channels=channels_for("v2"))
    x, t, c = inputs(videos=2, frames=12, size=8)
    with torch.no_grad():
        with mm.inject(unet, model, frames=12):
            whole = unet(x, t, context=c)
        with mm.inject(unet, model, frames=12, context=mm.ContextOptions(length=16, overlap=4, stride=1, closed_loop="R-P")):
            windowed = unet(x, t, context=c)
    torch.testing.assert_close(windowed, whole, rtol=1e-5, atol=1e-6)


def _windows_of_eight(kind, videos, frames):
    """A real UNet, a random `kind` module and `videos` x `frames` rows, run in
    windows of 8 frames (overlap 2, closed loop R-P)."""
    unet = sd15_unet()
    model = random_model(kind, channels=channels_for(kind))
    options = mm.ContextOptions(length=8, overlap=2, stride=1, closed_loop="R-P")
    return unet, model, inputs(videos=videos, frames=frames, size=8), options


def test_context_windows_give_same_result_batched_or_split():
    unet, model, (x, t, c), options = _windows_of_eight("v3", videos=2, frames=20)
    with torch.no_grad():
        with mm.inject(unet, model, frames=20, context=options):
            together = unet(x, t, context=c)
        with mm.inject(unet, model, frames=20, context=options):
            apart = torch.cat([unet(x[:20], t[:20], context=c[:20]), unet(x[20:], t[20:], context=c[20:])])
    torch.testing.assert_close(apart, together, rtol=1e-4, atol=1e-5)


def _apply_model(unet):
    """A host's model call in the shape of Forge's apply_model: noise level in,
    the UNet's own timestep and context computed from its arguments."""
    def apply_model(x, sigma, c_crossattn=None):
        return unet(x / (sigma[:, None, None, None] ** 2 + 1) ** 0.5, sigma * 100, context=c_crossattn)
    return apply_model


def test_a_host_sending_the_evaluations_gets_the_same_windows_without_a_forward_wrap():
    unet, model, (x, t, c), options = _windows_of_eight("v2", videos=2, frames=20)
    sigma = t / 100
    apply_model = _apply_model(unet)
    with torch.no_grad():
        plain = unet(x, t, context=c)
        before = snapshot(unet)
        with mm.inject(unet, model, frames=20, context=options):
            wrapped = apply_model(x, sigma, c_crossattn=c)  # through the wrapped forward
        with mm.inject(unet, model, frames=20, context=options, wrap_forward=False) as injection:
            assert "forward" not in unet.__dict__
            sent = injection.evaluate(apply_model, x, (sigma,), {"c_crossattn": c})
        assert_restored(unet, before, x, t, c, plain)
    torch.testing.assert_close(sent, wrapped, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(sent, apply_model(x, sigma, c_crossattn=c), atol=1e-4)  # the motion module ran


def test_a_call_bypassing_the_hosts_evaluation_fails_instead_of_skipping_the_windows():
    unet, model, (x, t, c), options = _windows_of_eight("v2", videos=1, frames=16)
    with torch.no_grad():
        plain = unet(x, t, context=c)
        before = snapshot(unet)
        with mm.inject(unet, model, frames=16, context=options, wrap_forward=False) as injection:
            with pytest.raises(mm.MotionModuleError, match="outside AnimateDiff's evaluation"):
                unet(x, t, context=c)
            injection.evaluate(unet, x, (t,), {"context": c})  # the host's own path still runs
            with pytest.raises(mm.MotionModuleError, match="outside AnimateDiff's evaluation"):
                unet(x, t, context=c)  # and entering it once does not leave the door open
        assert_restored(unet, before, x, t, c, plain)
