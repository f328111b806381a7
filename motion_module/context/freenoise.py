"""FreeNoise noise rescheduling for videos longer than the context.

Each window after the first starts from noise it shares, shuffled, with the
frames one context earlier (FreeNoise, Qiu et al. 2023), instead of fresh
noise of its own: the windows then denoise related starting points and a
long video keeps one look. The frames of each window step (context - overlap
frames from ``start``) take, in a seeded shuffle, the noise of as many frames
from ``start - context``; so the result depends only on the first context's
noise and the seed.
"""

import torch


def reschedule(noise: torch.Tensor, context: int, overlap: int, seed: int) -> torch.Tensor:
    """``noise`` [frames, ...] with frames past the first context rescheduled."""
    frames, step = noise.shape[0], context - overlap
    out = noise.clone()
    generator = torch.Generator().manual_seed(seed)
    for start in range(context, frames, step):
        count = min(step, frames - start)
        source = torch.arange(start - context, start - context + count)
        out[start:start + count] = out[source[torch.randperm(count, generator=generator)]]
    return out


def reschedule_videos(noise: torch.Tensor, frames: int, context: int, overlap: int, seeds) -> torch.Tensor:
    """A video-major batch [videos * frames, ...]: video k rescheduled with
    ``seeds[k]``, so it gets what it would in a batch of its own."""
    return torch.cat([reschedule(noise[k * frames:(k + 1) * frames], context, overlap, seeds[k])
                      for k in range(noise.shape[0] // frames)])
