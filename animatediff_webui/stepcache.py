"""The step cache in the WebUI: one per run, attached while `p.sample` runs,
and told each sampler's schedule as the sampler starts.

The WebUI makes a new sampler for every sampling (the first pass, hires
fix's second pass, each FreeInit iteration) inside `p.sample`. While our
sampling runs, the samplers it creates have their sampling function wrapped
(per instance) to hand the cache the schedule they were given, converted to
the timesteps the UNet receives; both wraps are taken off by identity after.
"""

import contextlib
import functools

import torch

from ..motion_module.errors import IncompatibleUNetError
from ..motion_module.request.params import ParamError
from ..motion_module.stepcache import CacheOptions, StepCache

from .log import logger

# What the last cached run did, for the status route: call counts, the most
# feature memory held, and each inner UNet call's step and mode (F full, c cached).
last_run = {}


def build(unet, params):
    """The run's cache, or None when the interval is 1 (exact, nothing hooked)."""
    if params.deepcache_interval <= 1:
        return None
    try:
        return StepCache(unet, CacheOptions(params.deepcache_interval, params.deepcache_depth,
                                            params.deepcache_early))
    except IncompatibleUNetError as e:
        raise ParamError("deepcache_depth", f"'deepcache_depth': {e}") from None


def _schedule(sampler, kwargs):
    """(timesteps as the UNet gets them, steps) of one sampling call, or (None, steps)."""
    sigmas = kwargs.get("sigmas")
    if isinstance(sigmas, torch.Tensor) and hasattr(getattr(sampler, "model_wrap", None), "sigma_to_t"):
        timesteps = sampler.model_wrap.sigma_to_t(sigmas.to(torch.float32))
        return timesteps.tolist(), len(sigmas) - 1
    timesteps = kwargs.get("timesteps")
    if timesteps is not None:
        values = [float(t) for t in timesteps]
        return values, len(values)
    return None, kwargs.get("n")


def _watch(sampler, cache, watched):
    func = sampler.__dict__.get("func")
    if func is None:
        return

    @functools.wraps(func)  # the WebUI reads the sampling function's signature
    def started(*args, **kwargs):
        schedule, steps = _schedule(sampler, kwargs)
        cache.new_sampling(schedule, steps)
        return func(*args, **kwargs)

    sampler.func = started
    watched.append((sampler, func, started))


@contextlib.contextmanager
def attached(cache, control_networks=()):
    """Hooks on (the UNet's deep blocks, and those of ControlNet's networks,
    which run inside its calls) and samplers watched for the `with` block;
    everything off, every stored feature freed, after it (also after an
    error or interrupt)."""
    if cache is None:
        yield
        return
    from modules import sd_samplers

    create = sd_samplers.create_sampler
    watched = []

    def create_watched(*args, **kwargs):
        sampler = create(*args, **kwargs)
        _watch(sampler, cache, watched)
        return sampler

    try:
        cache.attach(control_networks)
        sd_samplers.create_sampler = create_watched
        yield
    finally:
        if sd_samplers.create_sampler is create_watched:
            sd_samplers.create_sampler = create
        for sampler, func, started in watched:
            if sampler.__dict__.get("func") is started:
                sampler.func = func
        counts, stored = cache.counts(), cache.peak_bytes
        cache.detach()
        last_run.clear()
        last_run.update(counts, feature_mib=round(stored / 2 ** 20, 3),
                        calls="".join("F" if mode == "full" else "c" for _, mode in cache.decisions),
                        steps=[step for step, _ in cache.decisions])
        logger.info("step cache: %d full and %d cached UNet calls (%.1f MiB of stored features)",
                    counts["full"], counts["cached"], stored / 2 ** 20)
