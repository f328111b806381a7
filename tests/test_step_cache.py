"""Step caching (motion_module.stepcache) on the real ldm UNet with a motion module.

What must hold: interval 1 and every full step are the exact computation; a
cached row is served from its own frame's and conditioning's entry under
moving context windows and separate cond/uncond calls; the step is found from
the timestep (second-order samplers), a jump in timestep starts afresh; the
UNet is bit-identical after a run, an error or an interrupt; ControlNet-style
forwards that re-implement the block loop keep their shallow residuals fresh.
"""

import pytest
import torch

import motion_module as mm
from motion_module.errors import IncompatibleUNetError, ParamError
from motion_module.request.params import AnimateDiffParams, check_cache_depth
from motion_module.stepcache import CacheOptions, StepCache, StepClock, deep_blocks, full_steps, step_of
from test_injection import snapshot
from unets import inputs, sd15_unet, sdxl_layout_unet

FRAMES = 16
T_FULL, T_CACHED = 700.0, 650.0


@pytest.fixture(scope="module")
def k_sampling():
    try:  # the demo loads k-diffusion's samplers without its training stack
        from demo.animatediff_demo import K_SAMPLING
    except SystemExit:
        pytest.skip("k-diffusion is not installed")
    return K_SAMPLING


def _windows(length=8, overlap=2):
    return mm.ContextOptions(length=length, stride=1, overlap=overlap, closed_loop="R-P", fuse="flat")


def _cond_uncond(frames=FRAMES, seed=0):
    """x for cond and uncond (same latent), per-row timesteps, two different text contexts."""
    x, _, c = inputs(videos=2, frames=frames, seed=seed, size=8)
    x[frames:] = x[:frames]
    c[frames:] = torch.randn(c[frames:].shape, generator=torch.Generator().manual_seed(seed + 7))
    return x, c


def _t(value, rows):
    return torch.full((rows,), value)


def _run_calls(unet, model, calls, cache=None, context=None, split=False, motion_scale=1.0):
    """Injected UNet evaluations at the given timesteps; cond and uncond in one
    call or (split) one after the other."""
    x, c = _cond_uncond()
    outs = []
    if cache is not None:
        cache.attach()
    try:
        with torch.no_grad(), mm.inject(unet, model, frames=FRAMES, context=context, step_cache=cache,
                                        motion_scale=motion_scale):
            for t in calls:
                if split:
                    outs.append(torch.cat([unet(x[:FRAMES], _t(t, FRAMES), context=c[:FRAMES]),
                                           unet(x[FRAMES:], _t(t, FRAMES), context=c[FRAMES:])]))
                else:
                    outs.append(unet(x, _t(t, x.shape[0]), context=c))
    finally:
        if cache is not None:
            cache.detach()
    return outs


def _cache(unet, interval=3, depth=0, early=0.0, schedule=None):
    cache = StepCache(unet, CacheOptions(interval, depth, early))
    cache.new_sampling(schedule)
    return cache


# -- the plan -------------------------------------------------------------------

def test_full_steps_every_interval_after_the_early_share():
    assert full_steps(CacheOptions(3), 12) == [0, 3, 6, 9]
    assert full_steps(CacheOptions(3, early=0.25), 12) == [0, 1, 2, 3, 6, 9]
    assert full_steps(CacheOptions(1), 5) == [0, 1, 2, 3, 4]
    assert full_steps(CacheOptions(5), 25) == [0, 5, 10, 15, 20]


def test_a_call_belongs_to_the_step_whose_interval_holds_its_timestep():
    schedule = [999.0, 800.0, 600.0, 400.0, 0.0]
    assert [step_of(t, schedule) for t in (999.0, 900.0, 800.0, 700.0, 600.0, 1.0)] == [0, 0, 1, 1, 2, 3]
    # The WebUI's schedule in timesteps can end in 0 twice (its last sigma and the final 0).
    assert step_of(0.0, [999.0, 500.0, 0.0, 0.0]) == 2
    clock = StepClock(None)  # no schedule: a new step when the timestep changes
    assert [clock.step(t) for t in (999.0, 999.0, 800.0, 800.0, 600.0)] == [0, 0, 1, 1, 2]
    assert clock.restarts(999.0) and not clock.restarts(600.0)


def test_depth_selects_the_reused_block_and_is_bounded_by_the_unet(unet):
    skipped, boundary = deep_blocks(unet, 0)
    assert boundary is unet.output_blocks[10] and unet.output_blocks[11] not in skipped
    assert unet.input_blocks[1] in skipped and unet.input_blocks[0] not in skipped
    skipped, boundary = deep_blocks(unet, 3)
    assert boundary is unet.output_blocks[7] and unet.input_blocks[3] not in skipped
    with pytest.raises(IncompatibleUNetError, match="outside 0..10"):
        deep_blocks(unet, 11)
    with pytest.raises(IncompatibleUNetError, match="outside 0..7"):
        deep_blocks(sdxl_layout_unet(), 8)


@pytest.mark.parametrize("value", [0, -1, 2.5, 11, "x"])
def test_bad_interval_is_refused_naming_the_field(value):
    with pytest.raises(ParamError) as e:
        AnimateDiffParams(enable=True, deepcache_interval=value)
    assert e.value.field == "deepcache_interval" and "between 1 and 10" in str(e.value)


def test_depth_beyond_the_checkpoint_family_is_refused_naming_the_field():
    params = AnimateDiffParams(enable=True, deepcache_interval=3, deepcache_depth=9)
    check_cache_depth(params, is_sdxl=False)
    with pytest.raises(ParamError) as e:
        check_cache_depth(params, is_sdxl=True)
    assert e.value.field == "deepcache_depth" and "between 0 and 7" in str(e.value)
    with pytest.raises(ParamError) as e:
        AnimateDiffParams(enable=True, deepcache_early=1.5)
    assert e.value.field == "deepcache_early"


# -- exactness ------------------------------------------------------------------

def test_interval_one_and_every_full_step_are_the_exact_computation(unet, model):
    calls = [T_FULL, T_CACHED, 600.0, 550.0]
    exact = _run_calls(unet, model, calls)
    every = _run_calls(unet, model, calls, cache=_cache(unet, interval=1))
    assert all(torch.equal(a, b) for a, b in zip(exact, every))
    cache = _cache(unet, interval=3)
    cached = _run_calls(unet, model, calls, cache=cache)
    assert [mode for _, mode in cache.decisions] == ["full", "cached", "cached", "full"]
    assert torch.equal(cached[0], exact[0]) and torch.equal(cached[3], exact[3])
    change = (cached[1] - exact[1]).abs().mean() / exact[1].abs().mean()
    assert 0 < change < 0.5, change  # an approximation, not another computation


def test_cached_steps_run_only_the_shallow_blocks(unet, model):
    ran = []
    # On the blocks' first layers: a skipped block is still called, its layers are not.
    hooks = [block[0].register_forward_hook(lambda m, i, o, k=k: ran.append(k))
             for k, block in enumerate(unet.input_blocks)]
    try:
        cache = _cache(unet, interval=2, depth=1)
        _run_calls(unet, model, [T_FULL, T_CACHED], cache=cache)
    finally:
        for hook in hooks:
            hook.remove()
    assert ran == list(range(12)) + [0, 1]


def test_the_unet_is_bit_identical_after_a_cached_run(unet, model):
    x, c = _cond_uncond()
    with torch.no_grad():
        plain = unet(x, _t(T_FULL, x.shape[0]), context=c)
    before = snapshot(unet)
    cache = _cache(unet)
    _run_calls(unet, model, [T_FULL, T_CACHED], cache=cache, context=_windows())
    assert snapshot(unet)[0] == before[0] and snapshot(unet)[2] == before[2]
    assert cache.feature_bytes == 0 and not cache.hooks
    with torch.no_grad():
        assert torch.equal(unet(x, _t(T_FULL, x.shape[0]), context=c), plain)


@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyboardInterrupt()])
def test_an_error_inside_a_cached_step_leaves_the_unet_as_it_was(unet, model, error):
    x, c = _cond_uncond()
    with torch.no_grad():
        plain = unet(x, _t(T_FULL, x.shape[0]), context=c)
    before = snapshot(unet)
    shallow = unet.output_blocks[11]
    calls = []

    def fail_on_second(module, args):
        calls.append(1)
        if len(calls) == 2:
            raise error

    handle = shallow.register_forward_pre_hook(fail_on_second)
    cache = _cache(unet)
    try:
        with pytest.raises(type(error)):
            _run_calls(unet, model, [T_FULL, T_CACHED], cache=cache)
    finally:
        handle.remove()
    assert cache.decisions[-1][1] == "cached"
    assert snapshot(unet)[2] == before[2] and not mm.is_injected(unet)
    assert cache.feature_bytes == 0
    with torch.no_grad():
        assert torch.equal(unet(x, _t(T_FULL, x.shape[0]), context=c), plain)


# -- per frame, per conditioning row -----------------------------------------

def test_moving_windows_serve_each_row_from_its_own_frame(unet, model):
    """With the motion module's contribution at 0 every frame is computed on
    its own, so a cached step under windows that moved since the full step
    must equal the same cached step without windows. Entries keyed by call or
    by position in the window hand rows another frame's features and fail."""
    calls = [T_FULL, T_CACHED]
    whole = _run_calls(unet, model, calls, cache=_cache(unet, interval=2), motion_scale=0.0)
    windowed_cache = _cache(unet, interval=2)
    windowed = _run_calls(unet, model, calls, cache=windowed_cache, context=_windows(), motion_scale=0.0)
    assert {mode for _, mode in windowed_cache.decisions} == {"full", "cached"}
    assert len(windowed_cache.decisions) > 2  # several windows per step
    assert torch.allclose(windowed[1], whole[1], atol=1e-4, rtol=1e-4)
    assert not torch.allclose(windowed[1], _run_calls(unet, model, calls, motion_scale=0.0)[1], atol=1e-3)


def test_a_host_sending_evaluations_in_its_own_arguments_caches_as_the_unet_would(unet, model):
    """Forge sends each evaluation through `evaluate` with noise levels and
    `c_crossattn`; `unet_view` hands the cache the UNet's timestep and context,
    so the steps and the cond/uncond entries come out as with the UNet's call."""
    calls, schedule = [T_FULL, T_CACHED, T_CACHED - 50], [T_FULL, T_CACHED, T_CACHED - 50]
    forward_cache = _cache(unet, interval=3, schedule=schedule)
    expected = _run_calls(unet, model, calls, cache=forward_cache, context=_windows())
    x, c = _cond_uncond()

    def apply_model(x, sigma, c_crossattn=None):
        return unet(x, sigma * 100, context=c_crossattn)

    def unet_view(args, kwargs):
        return (args[0] * 100, kwargs["c_crossattn"]), {}

    cache = _cache(unet, interval=3, schedule=schedule).attach()
    try:
        with torch.no_grad(), mm.inject(unet, model, frames=FRAMES, context=_windows(), step_cache=cache,
                                        wrap_forward=False) as injection:
            sent = [injection.evaluate(apply_model, x, (_t(t, x.shape[0]) / 100,), {"c_crossattn": c}, unet_view)
                    for t in calls]
    finally:
        cache.detach()
    assert cache.decisions == forward_cache.decisions
    assert {mode for _, mode in cache.decisions} == {"full", "cached"}
    for got, want in zip(sent, expected):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_windows_of_one_step_are_all_full_or_all_cached(unet, model):
    cache = _cache(unet, interval=2)
    outs = _run_calls(unet, model, [T_FULL, T_CACHED, 600.0], cache=cache, context=_windows())
    modes = {}
    for step, mode in cache.decisions:
        modes.setdefault(step, set()).add(mode)
    assert modes == {0: {"full"}, 1: {"cached"}, 2: {"full"}}
    assert all(torch.isfinite(out).all() for out in outs)


def test_cond_and_uncond_sent_separately_keep_their_own_entries(unet, model):
    calls = [T_FULL, T_CACHED]
    joint = _run_calls(unet, model, calls, cache=_cache(unet, interval=2))
    split_cache = _cache(unet, interval=2)
    split = _run_calls(unet, model, calls, cache=split_cache, split=True)
    assert [mode for _, mode in split_cache.decisions] == ["full", "full", "cached", "cached"]
    assert torch.allclose(split[1], joint[1], atol=1e-4, rtol=1e-4)


def test_a_changed_conditioning_is_computed_in_full(unet, model):
    x, c = _cond_uncond()
    cache = _cache(unet, interval=3).attach()
    try:
        with torch.no_grad(), mm.inject(unet, model, frames=FRAMES, step_cache=cache):
            unet(x, _t(T_FULL, x.shape[0]), context=c)
            edited = c.clone()
            edited[:FRAMES] += 0.5  # prompt editing switched the cond at this step
            unet(x, _t(T_CACHED, x.shape[0]), context=edited)
            unet(x, _t(600.0, x.shape[0]), context=edited)
    finally:
        cache.detach()
    assert [mode for _, mode in cache.decisions] == ["full", "full", "cached"]


def test_feature_size_is_one_entry_per_row(unet, model):
    cache = _cache(unet, interval=2)
    x, c = _cond_uncond()
    cache.attach()
    try:
        with torch.no_grad(), mm.inject(unet, model, frames=FRAMES, step_cache=cache):
            unet(x, _t(T_FULL, x.shape[0]), context=c)
            stored = cache.feature_bytes
    finally:
        cache.detach()
    channels = unet.output_blocks[10][0].out_channels  # the feature that enters output block 11
    assert stored == x.shape[0] * channels * 8 * 8 * 4


# -- steps from timesteps ------------------------------------------------------

def test_a_timestep_jump_starts_the_cache_afresh(unet, model):
    cache = _cache(unet, interval=3)
    _run_calls(unet, model, [T_FULL, T_CACHED, 999.0, 950.0], cache=cache)
    assert [mode for _, mode in cache.decisions] == ["full", "cached", "full", "cached"]
    cache = _cache(unet, interval=3)
    cache.attach()
    x, c = _cond_uncond()
    try:
        with torch.no_grad(), mm.inject(unet, model, frames=FRAMES, step_cache=cache):
            unet(x, _t(T_FULL, x.shape[0]), context=c)
            cache.new_sampling(None)  # a new sampler (FreeInit iteration, hires pass, img2img)
            unet(x, _t(T_FULL - 10, x.shape[0]), context=c)
    finally:
        cache.detach()
    assert [mode for _, mode in cache.decisions] == ["full", "full"]


def test_another_latent_size_is_computed_in_full(unet, model):
    cache = _cache(unet, interval=3).attach()
    x, c = _cond_uncond()
    big = torch.nn.functional.interpolate(x, scale_factor=2)
    try:
        with torch.no_grad(), mm.inject(unet, model, frames=FRAMES, step_cache=cache):
            unet(x, _t(T_FULL, x.shape[0]), context=c)
            out = unet(big, _t(T_CACHED, x.shape[0]), context=c)
    finally:
        cache.detach()
    assert [mode for _, mode in cache.decisions] == ["full", "full"] and out.shape[-1] == 16


@pytest.mark.parametrize("sampler", ["sample_heun", "sample_dpm_2", "sample_dpmpp_2s_ancestral",
                                     "sample_euler"])
def test_second_order_samplers_decide_per_step(unet, model, k_sampling, sampler):
    steps, x, c = 6, *_cond_uncond()
    sigmas = k_sampling.get_sigmas_karras(steps, 0.1, 10.0)
    schedule = (sigmas * 60).tolist()  # stand-in timesteps: monotone in sigma, as sigma_to_t is
    cache = _cache(unet, interval=2, schedule=schedule)
    seen = []

    def denoiser(latent, sigma, **kwargs):
        t = float(sigma[0]) * 60
        seen.append(t)
        rows = torch.cat([latent, latent])
        eps = unet(rows / (sigma[0] ** 2 + 1) ** 0.5, _t(t, rows.shape[0]), context=c)
        return latent - sigma[0] * (eps[FRAMES:] + 2 * (eps[:FRAMES] - eps[FRAMES:]))

    cache.attach()
    try:
        with torch.no_grad(), mm.inject(unet, model, frames=FRAMES, step_cache=cache):
            out = getattr(k_sampling, sampler)(denoiser, x[:FRAMES] * sigmas[0], sigmas, disable=True)
    finally:
        cache.detach()
    assert torch.isfinite(out).all()
    full = set(full_steps(cache.options, steps))
    assert len(seen) == len(cache.decisions)
    for t, (step, mode) in zip(seen, cache.decisions):
        assert step == step_of(t, schedule)
        assert mode == ("full" if step in full else "cached"), (t, step, mode)
    if sampler != "sample_euler":
        assert len(seen) > steps  # several evaluations in one step, decided together


# -- ControlNet-style forwards -------------------------------------------------

def _controlnet_style_forward(unet, residuals):
    """What sd-webui-controlnet's hook does: its own copy of the block loop,
    adding a control residual to every skip connection and the middle."""
    from ldm.modules.diffusionmodules.openaimodel import timestep_embedding

    def forward(x, timesteps=None, context=None, **kwargs):
        emb = unet.time_embed(timestep_embedding(timesteps, unet.model_channels, repeat_only=False))
        hs, h = [], x
        for module in unet.input_blocks:
            h = module(h, emb, context)
            hs.append(h)
        h = unet.middle_block(h, emb, context) + residuals["mid"]
        for i, module in enumerate(unet.output_blocks):
            skip = len(hs) - 1
            h = torch.cat([h, hs.pop() + residuals.get(skip, 0.0)], dim=1)
            h = module(h, emb, context)
        return unet.out(h)

    return forward


def test_a_forward_that_reimplements_the_loop_takes_fresh_shallow_residuals(unet, model):
    residuals = {"mid": 0.0}
    unet.forward = _controlnet_style_forward(unet, residuals)
    try:
        x, c = _cond_uncond()

        def cached_output(shallow=0.0, deep=0.0):
            cache = _cache(unet, interval=2).attach()
            try:
                with torch.no_grad(), mm.inject(unet, model, frames=FRAMES, step_cache=cache):
                    residuals.update({0: 0.0, 5: 0.0})
                    unet(x, _t(T_FULL, x.shape[0]), context=c)
                    residuals.update({0: shallow, 5: deep})
                    out = unet(x, _t(T_CACHED, x.shape[0]), context=c)
            finally:
                cache.detach()
            assert [mode for _, mode in cache.decisions] == ["full", "cached"]
            return out

        base = cached_output()
        assert not torch.allclose(cached_output(shallow=0.3), base)  # block 0's skip still runs fresh
        assert torch.equal(cached_output(deep=0.3), base)  # block 5 is deep: skipped on cached steps
        with torch.no_grad():
            del unet.forward
            plain_cached = _run_calls(unet, model, [T_FULL, T_CACHED], cache=_cache(unet, interval=2))[1]
        assert torch.allclose(base, plain_cached, atol=1e-5)
    finally:
        unet.__dict__.pop("forward", None)
    assert "forward" not in unet.__dict__


def _controlnet_forward(unet, control, calls):
    """sd-webui-controlnet's shape of things: its network (a copy of the UNet's
    input and middle blocks, here a second real ldm UNet) makes one residual
    per input block and one for the middle, inside the UNet's call; its own
    copy of the block loop adds them to the skips and the middle."""
    from ldm.modules.diffusionmodules.openaimodel import timestep_embedding

    # Counted on each block's first layer: a skipped block returns before its layers run.
    def counter(block):
        return block[0].register_forward_hook(lambda *_: calls.append(block))

    handles = [counter(b) for b in [*control.input_blocks, control.middle_block]]

    def forward(x, timesteps=None, context=None, **kwargs):
        emb = timestep_embedding(timesteps, unet.model_channels, repeat_only=False)
        h, residuals = x, []
        for module in control.input_blocks:
            h = module(h, control.time_embed(emb), context)
            residuals.append(0.1 * h)
        residuals.append(0.1 * control.middle_block(h, control.time_embed(emb), context))
        emb = unet.time_embed(emb)
        hs, h = [], x
        for module in unet.input_blocks:
            h = module(h, emb, context)
            hs.append(h)
        h = unet.middle_block(h, emb, context) + residuals.pop()
        for module in unet.output_blocks:
            h = module(torch.cat([h, hs.pop() + residuals.pop()], dim=1), emb, context)
        return unet.out(h)

    return forward, handles


def test_a_controlnets_deep_blocks_are_skipped_on_cached_steps_with_the_same_result(unet, model):
    """Its deep residuals feed only blocks a cached step skips: skipping them
    changes nothing (bit-identical) and saves their cost; its shallow blocks
    still run every step, and full steps run it whole."""
    control = sd15_unet(seed=5)
    before = snapshot(control)
    calls = []
    unet.forward, handles = _controlnet_forward(unet, control, calls)
    x, c = _cond_uncond()
    try:
        def run(networks):
            cache = _cache(unet, interval=3).attach(networks)
            calls.clear()
            try:
                with torch.no_grad(), mm.inject(unet, model, frames=FRAMES, step_cache=cache):
                    outs = [unet(x, _t(t, x.shape[0]), context=c) for t in (T_FULL, T_CACHED, 600.0)]
            finally:
                cache.detach()
            assert [mode for _, mode in cache.decisions] == ["full", "cached", "cached"]
            return outs, list(calls)

        plain, plain_calls = run([])
        skipping, skipping_calls = run([control])
        assert all(torch.equal(a, b) for a, b in zip(plain, skipping))
        blocks = len(control.input_blocks) + 1
        assert len(plain_calls) == 3 * blocks
        # One full step (all 13 blocks), then two cached steps with only input block 0 running.
        assert len(skipping_calls) == blocks + 2 and skipping_calls[blocks:] == [control.input_blocks[0]] * 2
    finally:
        for handle in handles:
            handle.remove()
        unet.__dict__.pop("forward", None)
    after = snapshot(control)
    assert after[0] == before[0] and after[2] == before[2]  # no hook left on the control network
