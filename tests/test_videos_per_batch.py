"""Several videos per WebUI batch (videos_per_batch) on the real ldm UNet.

With videos_per_batch V the WebUI batch holds V × frames rows, video-major,
and video k of batch n must be the video that batch count would give as its
(n·V + k)-th run: the same seeds, so the same noise, and the same result up to
the float rounding of batched matmuls. Each case samples a 2-video batch and
the two single-video runs with those videos' seeds (Euler with
classifier-free guidance, cond and uncond rows batched as the WebUI does) and
compares them: plain, context windows with FreeNoise, prompt travel rows,
cond and uncond in separate calls, the step cache, img2img's init-image
blend, FreeInit and a per-frame ControlNet-style hint.
"""

import contextlib

import pytest
import torch

import motion_module as mm
from motion_module.context.freenoise import reschedule_videos
from motion_module.context.hints import hint_rows
from motion_module.freeinit import FreeInitOptions, sample_iterations
from motion_module.init_latent import batch_blend_weights, blend, blend_weights, first_video_rows
from motion_module.prompt_travel import parse, schedule, travel_rows, wraps
from motion_module.request.params import AnimateDiffParams
from motion_module.stepcache import CacheOptions, StepCache
from unets import CONTEXT_DIM

SEED = 1234
SIZE = 8  # latent 8x8
STEPS = 3
CFG = 5.0
# Relative to the largest |value| of the result: what float32 rounding of
# differently sized batched matmuls can change, and far below any real change.
TOLERANCE = 1e-5


# -- the WebUI's seed rule (modules/processing.py, process_images_inner) ----------------


def webui_batch_seeds(seed, webui_batch_size, n_iter, n):
    """p.seeds of batch n: all_seeds = [seed + x for x in range(len(all_prompts))] with
    len(all_prompts) = batch_size * n_iter, sliced per batch."""
    all_seeds = [seed + x for x in range(webui_batch_size * n_iter)]
    return all_seeds[n * webui_batch_size:(n + 1) * webui_batch_size]


@pytest.mark.parametrize("videos", [1, 2, 3, 8])
@pytest.mark.parametrize("n_iter", [1, 3])
@pytest.mark.parametrize("frames", [8, 12])
def test_video_k_of_a_batch_gets_the_seeds_batch_count_gives_its_run(videos, n_iter, frames):
    batched = AnimateDiffParams(enable=True, video_length=frames, batch_size=8, videos_per_batch=videos).resolve()
    single = AnimateDiffParams(enable=True, video_length=frames, batch_size=8).resolve()
    assert batched.webui_batch_size == videos * frames and single.webui_batch_size == frames
    for n in range(n_iter):
        seeds = webui_batch_seeds(SEED, batched.webui_batch_size, n_iter, n)
        for k in range(videos):
            run = n * videos + k  # the same video made by batch count alone
            assert seeds[k * frames:(k + 1) * frames] == webui_batch_seeds(SEED, frames, n_iter * videos, run)
            # What the file name, the infotext and FreeNoise take: the video's first frame's seed.
            assert seeds[k * frames] == SEED + run * frames


# -- sampling ------------------------------------------------------------------------


def row_noise(seeds):
    """One latent of noise per row from its own seed, as the WebUI's ImageRNG draws it."""
    return torch.stack([torch.randn(4, SIZE, SIZE, generator=torch.Generator().manual_seed(s)) for s in seeds])


def conditioning(frames, prompts=None):
    """(cond, uncond) rows for one video: each frame's prompt encoded (a random
    tensor per distinct text), and an empty negative."""
    prompts = prompts or ["a cat"] * frames

    def encode(text):
        return torch.randn(7, CONTEXT_DIM, generator=torch.Generator().manual_seed(sum(map(ord, text))))

    cache = {text: encode(text) for text in dict.fromkeys(prompts)}
    return torch.stack([cache[text] for text in prompts]), encode("").expand(frames, -1, -1)


SCHEDULE = mm.schedule_for("v2").alphas_cumprod()
TIMESTEPS = [999, 749, 499, 249][:STEPS]


def sigma(t):
    a = SCHEDULE[t]
    return float(((1 - a) / a) ** 0.5)


class Sampler:
    """Euler on an eps-predicting UNet with classifier-free guidance. The UNet
    sees [cond rows of every video, uncond rows of every video] (video-major
    blocks of `frames` rows), as the WebUI's CFG denoiser batches them, in one
    call or (split: "batch cond/uncond" off) cond and uncond apart."""

    def __init__(self, unet, cond, uncond, split=False):
        self.unet, self.cond, self.uncond, self.split = unet, cond, uncond, split

    def eps(self, x, t):
        rows = x.shape[0]
        ts = torch.full((rows,), t, dtype=torch.long)
        if self.split:
            return self.unet(x, ts, context=self.cond), self.unet(x, ts, context=self.uncond)
        out = self.unet(torch.cat([x, x]), torch.cat([ts, ts]), context=torch.cat([self.cond, self.uncond]))
        return out[:rows], out[rows:]

    def __call__(self, noise, steps=STEPS, start=0):
        timesteps = TIMESTEPS[start:steps]
        x = noise * sigma(timesteps[0]) if start == 0 else noise
        for i, t in enumerate(timesteps):
            s = sigma(t)
            s_next = sigma(timesteps[i + 1]) if i + 1 < len(timesteps) else 0.0
            cond, uncond = self.eps(x / (s * s + 1) ** 0.5, t)
            denoised = x - s * (uncond + CFG * (cond - uncond))
            x = x + (x - denoised) / s * (s_next - s)
        return x


class PerFrameControl:
    """ControlNet's part in one UNet call: its hint (one row per frame, [c, c]
    for cond and uncond) lives outside the call's arguments and is switched to
    the call's rows by the injection's around_call; here it is added to x."""

    def __init__(self, unet, hint):
        self.hint = hint
        original = unet.forward

        def forward(x, *args, **kwargs):
            assert self.hint.shape[0] == x.shape[0], (self.hint.shape, x.shape)
            return original(x + 0.3 * self.hint, *args, **kwargs)

        self.forward = forward

    def around_call(self, frame_index, video_length):
        @contextlib.contextmanager
        def swapped():
            saved = self.hint
            self.hint = hint_rows(saved, frame_index, video_length)
            try:
                yield
            finally:
                self.hint = saved
        return swapped()


def generate(unet, model, params, videos, case, batch=0, n_iter=1):
    """The latents of WebUI batch `batch` of a request (`videos` videos per batch)."""
    params = AnimateDiffParams(**{**params, "enable": True, "videos_per_batch": videos})
    r = params.resolve()
    frames = r.video_length
    seeds = webui_batch_seeds(SEED, r.webui_batch_size, n_iter, batch)
    noise = row_noise(seeds)
    windowed = frames > r.context_length
    context = mm.ContextOptions(length=r.context_length, stride=r.stride, overlap=r.overlap,
                                closed_loop=r.closed_loop, fuse="pyramid") if windowed else None
    if params.freenoise and windowed:  # run.reschedule_noise
        noise = reschedule_videos(noise, frames, r.context_length, r.overlap, seeds[::frames])
    prompts = None
    travel = parse(case.get("prompt", ""), frames)
    if travel is not None:  # travel.apply: every frame of every video gets its keyframe's prompt
        prompts = travel.frame_prompts(frames)
    cond, uncond = conditioning(frames, prompts)
    cond, uncond = cond.repeat(videos, 1, 1), uncond.repeat(videos, 1, 1)
    if travel is not None:  # travel.on_cfg_denoiser, on the batch's cond rows
        plan = schedule(travel.keyframes, frames, wraps(frames, r.context_length, r.closed_loop))
        cond = travel_rows(cond, frames, plan)
    control = None
    if case.get("control"):
        hint = torch.randn(frames, 4, SIZE, SIZE, generator=torch.Generator().manual_seed(5))
        control = PerFrameControl(unet, hint.repeat(2, 1, 1, 1))  # [c, c], as ControlNet with batch cond/uncond
    sampler = Sampler(unet, cond, uncond, split=case.get("split", False))
    cache = None
    if case.get("cache"):
        cache = StepCache(unet, CacheOptions(2, 0, 0.0))
        cache.new_sampling(None)
        cache.attach()
    if control is not None:
        unet.forward = control.forward  # installed before the injection, as ControlNet's hook is
    try:
        with torch.no_grad(), mm.inject(unet, model, frames=frames, context=context, step_cache=cache,
                                        around_call=control.around_call if control else None):
            if case.get("img2img"):
                init = torch.randn(1, 4, SIZE, SIZE, generator=torch.Generator().manual_seed(9))
                latent = init.expand(r.webui_batch_size, -1, -1, -1)  # the WebUI repeats its one init image
                alpha, beta = batch_blend_weights(latent.shape[0], frames, 1.5, 4.0)
                blended = blend(latent, row_noise(seeds), alpha, beta)  # run.start_img2img_batch
                return sampler(blended + noise * sigma(TIMESTEPS[1]), start=1)
            if case.get("freeinit"):
                options = FreeInitOptions(iterations=2, fast=True)
                return sample_iterations(lambda n, steps, last: sampler(n, steps), noise, options, STEPS,
                                         frames, float(SCHEDULE[-1]))
            out = sampler(noise)
            if cache is not None:
                assert "cached" in {mode for _, mode in cache.decisions}  # the cache served a step
            return out
    finally:
        unet.__dict__.pop("forward", None)
        if cache is not None:
            cache.detach()


CASES = {
    "plain": ({"video_length": 6, "batch_size": 8}, {}),
    "windows_freenoise": ({"video_length": 10, "batch_size": 6, "overlap": 2, "stride": 2, "freenoise": True}, {}),
    "travel_windows": ({"video_length": 10, "batch_size": 6, "overlap": 2, "closed_loop": "R+P"},
                       {"prompt": "0: a cat\n4: a dog\n7: a red bird"}),
    "travel_one_window": ({"video_length": 6, "batch_size": 8}, {"prompt": "0: a cat\n4: a dog"}),
    "cond_uncond_apart": ({"video_length": 10, "batch_size": 6}, {"split": True}),
    "step_cache": ({"video_length": 10, "batch_size": 6}, {"cache": True}),
    "img2img": ({"video_length": 6, "batch_size": 8}, {"img2img": True}),
    "freeinit": ({"video_length": 6, "batch_size": 8}, {"freeinit": True}),
    "controlnet_windows": ({"video_length": 10, "batch_size": 6}, {"control": True}),
}


@pytest.mark.parametrize("name", list(CASES))
def test_video_k_of_a_two_video_batch_is_the_single_run_with_its_seeds(unet, model, name):
    params, case = CASES[name]
    frames = params["video_length"]
    both = generate(unet, model, params, 2, case)
    assert both.shape[0] == 2 * frames and torch.isfinite(both).all()
    singles = [generate(unet, model, params, 1, case, batch=k, n_iter=2) for k in range(2)]
    scale = max(float(s.abs().max()) for s in singles)
    diff = max(float((both[k * frames:(k + 1) * frames] - singles[k]).abs().max()) for k in range(2))
    print(f"{name}: max |batched - single| = {diff:.3g} ({diff / scale:.3g} of max |value| {scale:.3g})")
    assert diff <= TOLERANCE * scale, (name, diff, scale)
    # The two videos are different videos (different seeds), not copies.
    assert float((singles[0] - singles[1]).abs().max()) > 1000 * TOLERANCE * scale


def test_init_image_blend_is_the_same_for_every_video():
    alpha, beta = blend_weights(8, 1.5, 4.0, 1.0, 8.0)
    a2, b2 = batch_blend_weights(16, 8, 1.5, 4.0, 1.0, 8.0)
    assert torch.equal(a2, alpha.repeat(2)) and torch.equal(b2, beta.repeat(2))
    # Rows that are not whole videos fade as one video, as before.
    a3, _ = batch_blend_weights(6, 8, 1.5, 4.0)
    assert torch.equal(a3, blend_weights(6, 1.5, 4.0)[0])


def test_every_video_starts_from_the_first_videos_rows():
    # The WebUI encodes img2img rows one by one with fresh posterior noise; batch count reuses one encoding.
    encoded = torch.randn(3 * 4, 4, 8, 8)
    shared = first_video_rows(encoded, 4, 3)
    assert shared.shape == encoded.shape and torch.equal(shared[:4], encoded[:4])
    assert all(torch.equal(shared[4 * k:4 * k + 4], encoded[:4]) for k in range(3))
    assert torch.equal(first_video_rows(shared, 4, 3), shared)  # once or twice alike
    assert first_video_rows(encoded, 4, 1) is encoded
    mask = torch.rand(4, 8, 8)  # one mask for all rows
    assert first_video_rows(mask, 4, 3) is mask
    odd = torch.randn(10, 4, 8, 8)  # rows that are not whole videos
    assert first_video_rows(odd, 4, 3) is odd


def test_freenoise_reschedules_each_video_with_its_own_seed():
    from motion_module.context.freenoise import reschedule

    noise = torch.randn(24, 4, 2, 2, generator=torch.Generator().manual_seed(0))
    out = reschedule_videos(noise, 12, 8, 2, [100, 112])
    assert torch.equal(out[:12], reschedule(noise[:12], 8, 2, 100))
    assert torch.equal(out[12:], reschedule(noise[12:], 8, 2, 112))


def test_hint_rows_serve_every_video_the_same_frames():
    frames = 6
    hint = torch.arange(frames, dtype=torch.float32).view(frames, 1, 1, 1).repeat(2, 1, 1, 1)  # [c, c]
    # Two videos, cond and uncond: four blocks of a 3-frame window.
    index = torch.tensor([4, 5, 0] * 4)
    assert hint_rows(hint, index, frames).flatten().tolist() == [4.0, 5.0, 0.0] * 4
