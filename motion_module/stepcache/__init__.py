"""Step caching for videos (DeepCache, Ma et al. 2023, made exact per frame).

Between two sampling steps the UNet's deep features change little. On a full
step the whole UNet runs and the features that enter the shallow output
blocks from below are kept, one entry per frame and conditioning row; on the
steps between, only the shallow input and output blocks run (with their
motion modules), fed with those entries.

    cache = StepCache(unet, CacheOptions(interval=3, depth=0))
    cache.attach()
    try:
        cache.new_sampling(schedule)            # the sampler's timesteps
        with inject(unet, model, step_cache=cache): ...
    finally:
        cache.detach()                          # hooks off, features freed

`plan` decides which steps are full (pure), `blocks` finds and hooks the deep
blocks, `store` keeps the per-row features.
"""

from .cache import StepCache
from .plan import CacheOptions, StepClock, full_steps, is_full_step, step_of
from .blocks import deep_blocks, max_depth

__all__ = ["CacheOptions", "StepCache", "StepClock", "deep_blocks", "full_steps", "is_full_step", "max_depth",
           "step_of"]
