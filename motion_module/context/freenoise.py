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
