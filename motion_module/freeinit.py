"""FreeInit (Wu et al. 2023): sample, re-noise the result, keep its low
frequencies, take the high ones from the first noise, sample again.

Video diffusion models are trained on noise whose low spatio-temporal
frequencies still carry the clip's layout, but at inference the initial
noise has none. Each FreeInit iteration hands the next one a starting noise
whose low frequencies come from the previous result, which makes frames more
consistent with one another.

Pure functions on tensors; the sampling itself is the caller's (the WebUI's
own sample function, so every hook that runs before sampling runs in each
iteration). Latents are video-major ``(videos * frames, C, H, W)``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

FILTERS = ("butterworth", "gaussian", "box", "ideal")
BUTTERWORTH_ORDER = 4


@dataclass(frozen=True)
class FreeInitOptions:
    iterations: int = 3
    filter: str = "butterworth"
    spatial: float = 0.25    # d_s: normalised spatial stop frequency (0-1)
    temporal: float = 0.25   # d_t: normalised temporal stop frequency (0-1)
    fast: bool = False       # fewer steps in the early iterations


def _squared_distance(frames: int, height: int, width: int, spatial: float, temporal: float) -> torch.Tensor:
    """d^2 = ((d_s/d_t) (2t/T - 1))^2 + (2h/H - 1)^2 + (2w/W - 1)^2 on the
    centred (fftshifted) grid: the temporal axis is stretched so that one
    radius, d_s, is the cut-off on all three axes."""
    def axis(n):
        return 2 * torch.arange(n, dtype=torch.float64) / n - 1
    t = axis(frames) * (spatial / temporal)
    return t[:, None, None] ** 2 + axis(height)[None, :, None] ** 2 + axis(width)[None, None, :] ** 2


def low_pass_filter(kind: str, frames: int, height: int, width: int, spatial: float, temporal: float) -> torch.Tensor:
    """The (frames, height, width) low-pass mask on the fftshifted spectrum.

    butterworth 1 / (1 + (d^2/d_s^2)^4), gaussian exp(-d^2 / (2 d_s^2)),
    ideal 1 where d <= d_s, box 1 in a centred box of half-widths
    round(T/2 d_t), round(H/2 d_s), round(W/2 d_s). A zero stop frequency
    passes nothing (FreeInit then restarts from the first noise).
    The reference extension's ideal filter compares d^2 with 2 d_s, and its
    box uses H's half-width for W; these use the cut-off as the other
    filters do."""
    if spatial == 0 or temporal == 0:
        return torch.zeros(frames, height, width)
    if kind == "box":
        mask = torch.zeros(frames, height, width)
        half = [round(n // 2 * d) for n, d in ((frames, temporal), (height, spatial), (width, spatial))]
        centre = [n // 2 for n in (frames, height, width)]
        mask[tuple(slice(c - h, c + h) for c, h in zip(centre, half))] = 1.0
        return mask
    d2 = _squared_distance(frames, height, width, spatial, temporal)
    if kind == "butterworth":
        mask = 1 / (1 + (d2 / spatial ** 2) ** BUTTERWORTH_ORDER)
    elif kind == "gaussian":
        mask = torch.exp(-d2 / (2 * spatial ** 2))
    elif kind == "ideal":
        mask = (d2 <= spatial ** 2).double()
    else:
        raise ValueError(f"filter must be one of {', '.join(FILTERS)}, got {kind!r}")
    return mask.float()


def mix_frequencies(low: torch.Tensor, high: torch.Tensor, mask: torch.Tensor, frames: int) -> torch.Tensor:
    """Low frequencies of `low`, high ones of `high`, per video, over the
    (frames, H, W) axes: Re IFFT(FFT(low) M + FFT(high) (1 - M))."""
    def spectrum(x):
        videos = x.shape[0] // frames
        # (videos * frames, C, H, W) -> (videos, C, frames, H, W)
        x = x.reshape(videos, frames, *x.shape[1:]).transpose(1, 2).to(torch.float32)
        return torch.fft.fftshift(torch.fft.fftn(x, dim=(-3, -2, -1)), dim=(-3, -2, -1))

    mask = mask.to(low.device)
    mixed = spectrum(low) * mask + spectrum(high) * (1 - mask)
    out = torch.fft.ifftn(torch.fft.ifftshift(mixed, dim=(-3, -2, -1)), dim=(-3, -2, -1)).real
    return out.transpose(1, 2).reshape(low.shape).to(low.dtype)


def renoise(latent: torch.Tensor, noise: torch.Tensor, alpha_bar: float) -> torch.Tensor:
    """The DDPM forward process to the last timestep: sqrt(a) x0 + sqrt(1 - a) noise."""
    return latent * alpha_bar ** 0.5 + noise * (1 - alpha_bar) ** 0.5


def iteration_steps(steps: int, iterations: int, fast: bool) -> list[int]:
    """Sampling steps of each iteration: all of them, or with `fast` a share
    growing to the full count in the last iteration (coarse to fine)."""
    if not fast:
        return [steps] * iterations
    return [max(1, int(steps / iterations * (k + 1))) for k in range(iterations)]


def next_noise(previous: torch.Tensor, initial: torch.Tensor, mask: torch.Tensor, frames: int,
               alpha_bar: float) -> torch.Tensor:
    """The starting noise of the next iteration."""
    return mix_frequencies(renoise(previous, initial, alpha_bar), initial, mask, frames)


def sample_iterations(sample: Callable[[torch.Tensor, int, bool], torch.Tensor], initial: torch.Tensor,
                      options: FreeInitOptions, steps: int, frames: int, alpha_bar: float,
                      stop: Callable[[], bool] = lambda: False) -> torch.Tensor:
    """Run ``sample(noise, steps, last)`` once per iteration; return the last result.

    ``initial`` is the noise the first iteration starts from (and every later
    one takes its high frequencies from). ``stop()`` (an interrupt) ends the
    loop after the current iteration."""
    latents = None
    plan = iteration_steps(steps, options.iterations, options.fast)
    mask = None
    for k, count in enumerate(plan):
        if k == 0:
            noise = initial
        else:
            if mask is None:
                mask = low_pass_filter(options.filter, frames, initial.shape[-2], initial.shape[-1],
                                       options.spatial, options.temporal)
            noise = next_noise(latents, initial, mask, frames, alpha_bar)
        latents = sample(noise, count, k == len(plan) - 1)
        if stop():
            break
    return latents
