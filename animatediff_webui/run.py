"""One AnimateDiff generation: what changes on `p` and around its sampling.

The motion module, the GroupNorm mode and the noise schedule are active only
while this request's `p.sample` runs (it covers the hires-fix pass too), and
are undone in a `finally`: an error, an interrupt or a skip inside sampling
restores the model, and nothing stays installed between requests. Per-image
passes that run after sampling (face detailers) therefore see the plain UNet.

Injecting inside `p.sample` also means injecting after the WebUI has applied
the request's `override_settings`, so a checkpoint switch in the same API call
gets the motion module in the new model.
"""

import contextlib
import dataclasses
import functools
import os

import numpy as np
import torch

from modules import devices, rng, shared
from modules import images as webui_images
from modules.processing import approximation_indexes, images_tensor_to_samples

from .. import motion_module as mm
from ..motion_module.context.freenoise import reschedule_videos
from ..motion_module.freeinit import FreeInitOptions, sample_iterations
from ..motion_module.init_latent import batch_blend_weights, blend, first_video_rows
from ..motion_module.lora import apply_motion_loras, check_compatible, describe_skipped
from ..motion_module.errors import ParamError
from ..motion_module.prompt_travel import DEFAULT_INTERPOLATION
from ..motion_module.request.infotext import INFOTEXT_KEY, format_infotext
from ..motion_module.request.params import AnimateDiffParams, ResolvedParams
from ..motion_module.schedules import schedule_for

from . import cn_compat, controlnet, guard, host, i2ibatch, models, motion_lora, settings, stepcache, view
from .inputs import Sources, source_count
from .log import logger

ATTR = "animatediff_run"


@dataclasses.dataclass
class Run:
    params: AnimateDiffParams
    resolved: ResolvedParams
    is_img2img: bool
    model: object = None
    injection: object = None  # built once in `arm`, applied while p.sample runs
    step_cache: object = None  # built in `arm` when deepcache_interval > 1, attached while p.sample runs
    travel: object = None  # prompt travel plan (travel.py), when the prompt has keyframes
    control: object = None  # controlnet.RunControl, built in `arm` when sd-webui-controlnet is there
    base_latent: object = None  # img2img init latent before blending (built once per run)
    motion_loras: list = dataclasses.field(default_factory=list)  # [(name, LoraFile, multiplier)]
    loras_reported: bool = False
    sources: Sources = dataclasses.field(default_factory=Sources)  # video-to-video inputs (decoded ones removed)
    incomplete: set = dataclasses.field(default_factory=set)  # batches interrupted or skipped
    bindings: list = dataclasses.field(default_factory=list)  # Forge: host.bind_for_sampling's, undone in finish


def get(p):
    return getattr(p, ATTR, None)


def prepare(p, params: AnimateDiffParams, is_img2img: bool, sources: Sources):
    """before_process: size the batch from the request and its video-to-video
    inputs, and hand ControlNet's units their frames; everything model-related
    waits for `arm`. Whatever fails here leaves no decoded frames behind."""
    try:
        units = controlnet.enabled_units(p)
        cap = controlnet.frame_cap(units, sources.frames)
        resolved = params.resolve(source_frames=cap if cap is not None else source_count(sources))
        run = Run(params, resolved, is_img2img, sources=sources)
        setattr(p, ATTR, run)
        _cleanup_on_close(p)
        controlnet.prepare_units(units, sources.frames, sources.masks.folder if sources.masks else None,
                                 resolved.video_length)
        if i2ibatch.is_batch(p):
            i2ibatch.prepare(p, resolved.video_length, resolved.videos)
    except BaseException:
        sources.remove()
        raise
    view.set_video_length(p, resolved.video_length)
    if sources.frames is not None and not any(controlnet.own_folder(u) == sources.frames.folder for u in units):
        logger.info("the video source sets the frame count (%d) but controls nothing: %s", resolved.video_length,
                    "enable a ControlNet unit without its own input" if controlnet.installed()
                    else "install sd-webui-controlnet to control the frames with it")
    p.batch_size = resolved.webui_batch_size
    if "PNG" not in resolved.file_formats or settings.opt("animatediff_save_to_custom"):
        # PNG frames are then written by us (per-video folder) or not at all.
        p.do_not_save_samples = True
    if not settings.opt("animatediff_save_grid"):
        p.do_not_save_grid = True
    return run


def _cleanup_on_close(p):
    """The WebUI closes every `p` (also after an error or interrupt, when no
    postprocess runs): decoded frames go then at the latest."""
    close = p.close

    def close_and_finish():
        try:
            close()
        finally:
            finish(p)

    p.close = close_and_finish


def note_batch(run: Run, batch_number: int):
    """After each batch: an interrupt or skip during its sampling or its VAE
    decode left its frames unfinished."""
    if shared.state.interrupted or shared.state.skipped:
        run.incomplete.add(batch_number)


def arm(p, run: Run):
    """process(): the checkpoint is final now. Load the module, build the
    injection (which checks that it fits, before anything changes), write the
    infotext, and wrap p.sample."""
    change = host.model_change(p)
    if change is not None:
        field, allowed = change
        raise ParamError(field, f"'{field}' must be '{allowed}' for a video on {host.NAME}: it loads another "
                                "model partway, which would run without the motion module")
    sd_model = p.sd_model
    model_path = models.resolve(run.params.model, bool(getattr(sd_model, "is_sdxl", False)))
    placement = host.module_placement(sd_model)
    run.model = models.load(model_path, placement.device, placement.dtype, placement.fp8)
    unet = host.unet_of(sd_model)
    if unet is None:
        raise RuntimeError(f"no UNet found in the loaded checkpoint ({type(sd_model).__name__}, {host.NAME})")
    run.step_cache = stepcache.build(unet, run.params)
    run.control = controlnet.RunControl.of(p)
    run.injection = mm.Injection(unet, run.model, frames=run.resolved.video_length,
                                 context=context_options(run.resolved), motion_scale=run.params.motion_scale,
                                 around_call=_around_call(p, run.control), step_cache=run.step_cache,
                                 wrap_forward=not host.SENDS_EVALUATIONS)
    # The whole prompt as the user wrote it (styles applied, every keyframe line).
    run.motion_loras = motion_lora.motion_loras(p.all_prompts[0] if p.all_prompts else "")
    check_compatible(run.model, [name for name, _, _ in run.motion_loras])
    # prompt_interp is written only when travel ran with something other than the default.
    method = run.travel.method if run.travel is not None else DEFAULT_INTERPOLATION
    params = dataclasses.replace(run.params, model=_relative(model_path),
                                 prompt_interp="" if method == DEFAULT_INTERPOLATION else method)
    p.extra_generation_params[INFOTEXT_KEY] = format_infotext(
        params, run.resolved, mm_hash=run.model.sha256, schedule=schedule_for(run.model).label,
        is_img2img=run.is_img2img)
    p.sample = functools.partial(_sample, p, run, p.sample)


def bind_for_sampling(p, run: Run):
    """Forge, before each sampling (the first pass, each FreeInit iteration,
    the hires pass): its memory manager takes the motion module along, and
    its model function wrapper sends each evaluation through the injection."""
    binding = host.bind_for_sampling(p.sd_model, run.model, run.injection)
    if binding is not None:
        run.bindings.append(binding)


def _around_call(p, control):
    """The injection's hook around each UNet call: a failure recorded by one
    of our callbacks (which the WebUI would swallow) stops sampling at the
    next call; then ControlNet's per-call hints."""

    @contextlib.contextmanager
    def call(frame_index, frames):
        guard.raise_failure(p)
        with control.hints_for(frame_index, frames) if control is not None else contextlib.nullcontext():
            yield

    return call


def context_options(resolved: ResolvedParams):
    if resolved.video_length <= resolved.context_length:
        return None
    return mm.ContextOptions(length=resolved.context_length, stride=resolved.stride, overlap=resolved.overlap,
                             closed_loop=resolved.closed_loop, fuse=settings.opt("animatediff_context_fuse"))


def _relative(path):
    return os.path.relpath(path, settings.model_folder()).replace(os.sep, "/")


def _sample(p, run: Run, original, *args, **kwargs):
    sd_model = p.sd_model
    unet = host.unet_of(sd_model)
    # Forge swaps in another model for another checkpoint; its hires and refiner ones are refused in arm(),
    # anything else that swaps the model between process() and sampling fails here, not silently without motion.
    if unet is not run.injection.unet:
        raise RuntimeError("the checkpoint's UNet changed between process() and sampling (a hires fix or refiner "
                           "checkpoint?); AnimateDiff needs one checkpoint for the whole video")
    if mm.remove_any(unet):
        logger.warning("removed a motion module left in the UNet by an earlier run")
    alphas = schedule_for(run.model).alphas_cumprod(int(getattr(sd_model, "num_timesteps", 1000)))
    loras = None
    try:
        run.injection.apply()
        with host.noise_schedule(sd_model, alphas):
            if run.motion_loras:
                loras = apply_motion_loras(run.model, run.motion_loras)
                _report_loras(run, loras)
            # cn_compat: SparseCtrl's layers take each call's frame count.
            with cn_compat.active(run.injection.state), \
                    stepcache.attached(run.step_cache, run.control.networks() if run.control else ()):
                if run.params.freeinit_enable:
                    return _sample_freeinit(p, run, functools.partial(original, *args, **kwargs))
                return original(*args, **kwargs)
    finally:
        try:
            if loras is not None:
                loras.remove()
        finally:
            run.injection.remove()
            if host.module_placement(sd_model).low_vram:
                run.model.to(devices.cpu)  # its last block may have taken it to the GPU (A1111's --lowvram)


def _sample_freeinit(p, run: Run, sample):
    """FreeInit around the WebUI's own sample function: each iteration is one
    whole call (so the hooks that run before sampling run every time), fed
    its starting noise through `p.rng`; hires fix only in the last."""
    params, rng = run.params, p.rng
    options = FreeInitOptions(params.freeinit_iters, params.freeinit_filter, params.freeinit_ds,
                              params.freeinit_dt, params.freeinit_fast)
    saved_next, steps, enable_hr = rng.__dict__.get("next"), p.steps, getattr(p, "enable_hr", False)
    draw = rng.next
    shared.state.job_count = max(shared.state.job_count, 0) + options.iterations - 1

    def one_iteration(noise, count, last):
        served = []

        def next_noise():
            if served:
                return draw()
            served.append(True)
            return noise.clone()  # img2img scales its noise in place

        rng.next = next_noise
        p.steps = count
        p.enable_hr = enable_hr if last else False
        try:
            return sample()
        finally:
            p.steps, p.enable_hr = steps, enable_hr
            if saved_next is None:
                rng.__dict__.pop("next", None)
            else:
                rng.next = saved_next
            if not last:
                shared.state.nextjob()

    def stop():
        return shared.state.interrupted or shared.state.skipped

    return sample_iterations(one_iteration, draw(), options, steps, run.resolved.video_length,
                             host.terminal_alpha(p.sd_model), stop=stop)


def _report_loras(run: Run, loras):
    if run.loras_reported:
        return
    run.loras_reported = True
    names = ", ".join(f"{name} ({multiplier:g})" for name, _, multiplier in run.motion_loras)
    logger.info("motion LoRA: %s on the %s motion module", names, run.model.kind)
    for name, keys in loras.skipped.items():
        logger.warning("motion LoRA %r: no matching layers in the %s motion module for %s; those entries are "
                       "skipped", name, run.model.kind, describe_skipped(keys))


def finish(p):
    """End of the run: drop what `p` holds for us. `p.sample` wraps `p` itself,
    a reference cycle that would keep the motion model and latents alive until
    Python's cycle collector happens to run."""
    for name in ("sample", "init", "close"):
        p.__dict__.pop(name, None)
    run = p.__dict__.pop(ATTR, None)
    if run is not None:
        for binding in reversed(run.bindings):
            host.unbind(binding)
        run.bindings = []
        run.sources.remove()
        run.model = run.injection = run.step_cache = run.base_latent = run.travel = run.control = None
        run.motion_loras = []


def reschedule_noise(p, run: Run):
    """FreeNoise: this batch's starting noise, windows past the first reusing
    the first context's noise shuffled (motion_module.context.freenoise).
    Each video of the batch is shuffled with its own first frame's seed, as
    it would be in a batch of its own."""
    r = run.resolved
    if not run.params.freenoise or r.video_length <= r.context_length:
        return
    draw = p.rng.next

    def next_noise():
        # Each video with its first frame's seed.
        return reschedule_videos(draw(), r.video_length, r.context_length, r.overlap, p.seeds[::r.video_length])

    p.rng.next = next_noise


def start_img2img_batch(p, run: Run, fade: bool):
    """img2img, before each batch: the first time, every video of the batch
    takes the first video's start; then, unless each frame has its own init
    image (img2img batch), the init image fades into noise."""
    if run.base_latent is None:
        _share_first_video_start(p, run.resolved.video_length, run.resolved.videos)
        run.base_latent = p.init_latent
    if fade:
        _blend_init_latent(p, run)


def _share_first_video_start(p, frames: int, videos: int):
    """Every video starts from the first video's init latents, masks and image
    conditioning, as every run of batch count starts from the WebUI's one
    encoding. The WebUI encodes each row on its own and draws the VAE's
    posterior noise from the global generator, so the rows of video k would
    otherwise start from other noise than its batch-count twin."""
    for name in ("init_latent", "image_conditioning", "mask", "nmask"):
        rows = getattr(p, name, None)
        if isinstance(rows, torch.Tensor) and rows.dim() == 4:  # a mask shared by all rows has 3
            setattr(p, name, first_video_rows(rows, frames, videos))


def _blend_init_latent(p, run: Run):
    """Fade the init image (and optional last frame) into noise along the
    video (`motion_module.init_latent`), so frames can move away from the
    first image."""
    params = run.params
    latent = run.base_latent
    rows = latent.shape[0]  # videos per batch x frames
    has_last = params.last_frame is not None
    alpha, beta = batch_blend_weights(rows, run.resolved.video_length, params.latent_power, params.latent_scale,
                                      params.latent_power_last if has_last else None, params.latent_scale_last)
    noise = torch.stack([rng.randn(seed, latent.shape[1:]) for seed in p.seeds[:rows]]).to(latent)
    last = _encode_last_frame(p, params.last_frame) if has_last else None
    p.init_latent = blend(latent, noise, alpha, beta, last)


def _encode_last_frame(p, image):
    image = webui_images.resize_image(p.resize_mode if p.resize_mode != 3 else 0, image.convert("RGB"),
                                      p.width, p.height)
    array = np.moveaxis(np.array(image).astype(np.float32) / 255.0, 2, 0)
    tensor = torch.from_numpy(array).unsqueeze(0).to(shared.device, dtype=devices.dtype_vae)
    return images_tensor_to_samples(tensor, approximation_indexes.get(shared.opts.sd_vae_encode_method), p.sd_model)
