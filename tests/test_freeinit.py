"""FreeInit's filters, frequency mixing and iteration loop (motion_module/freeinit.py)."""

import math

import pytest
import torch

import motion_module as mm
from motion_module.freeinit import (FILTERS, FreeInitOptions, iteration_steps, low_pass_filter, mix_frequencies,
                                    renoise, sample_iterations)
from motion_module.synthetic import random_model
from unets import channels_for, inputs, unet_for

T, H, W = 8, 16, 16


def wave(k, axis, frames=T):
    """A cosine of k periods along one axis of (frames, 4, H, W) latents, constant along the others."""
    n = {"t": frames, "h": H, "w": W}[axis]
    values = torch.cos(2 * math.pi * k * torch.arange(n) / n)
    shape = {"t": (frames, 1, 1, 1), "h": (1, 1, H, 1), "w": (1, 1, 1, W)}[axis]
    return values.reshape(shape).expand(frames, 4, H, W).contiguous()


def gain(kind, k, axis, spatial=0.25, temporal=0.25):
    """What the filter does to one cosine: output = gain * input."""
    mask = low_pass_filter(kind, T, H, W, spatial, temporal)
    x = wave(k, axis)
    out = mix_frequencies(x, torch.zeros_like(x), mask, T)
    ratio = (out * x).sum() / (x * x).sum()
    assert torch.allclose(out, ratio * x, atol=1e-5)  # a cosine stays that cosine
    return ratio.item()


@pytest.mark.parametrize("k", [1, 2, 3, 5, 7])
def test_butterworth_and_gaussian_follow_their_formulas(k):
    d = 2 * k / W  # the normalised frequency of k periods on the centred grid
    assert gain("butterworth", k, "w") == pytest.approx(1 / (1 + (d ** 2 / 0.25 ** 2) ** 4), abs=1e-5)
    assert gain("gaussian", k, "h") == pytest.approx(math.exp(-d ** 2 / (2 * 0.25 ** 2)), abs=1e-5)


def test_temporal_axis_is_stretched_by_spatial_over_temporal():
    # d_t = 0.5 with d_s = 0.25: one temporal period counts as (0.25 / 0.5) * 2/T.
    d = 0.5 * 2 * 1 / T
    assert gain("gaussian", 1, "t", spatial=0.25, temporal=0.5) == pytest.approx(
        math.exp(-d ** 2 / (2 * 0.25 ** 2)), abs=1e-5)


@pytest.mark.parametrize("kind", ["ideal", "box"])
def test_sharp_filters_pass_below_the_cut_off_and_stop_above(kind):
    assert gain(kind, 1, "w") == pytest.approx(1.0, abs=1e-6)   # d = 0.125 < 0.25
    assert gain(kind, 5, "w") == pytest.approx(0.0, abs=1e-6)   # d = 0.625 > 0.25
    assert gain(kind, 0, "t") == pytest.approx(1.0, abs=1e-6)   # the mean always passes


@pytest.mark.parametrize("kind", FILTERS)
def test_low_frequencies_come_from_the_first_input_and_high_from_the_second(kind):
    low, high = wave(1, "w") + wave(7, "h"), wave(1, "h") * 0.5 + wave(7, "w") * 0.5
    out = mix_frequencies(low, high, low_pass_filter(kind, T, H, W, 0.25, 0.25), T)
    # 1 period passes (mostly), 7 periods stop (mostly), for every filter.
    assert (out * wave(1, "w")).mean() > 0.4 and abs((out * wave(7, "h")).mean()) < 0.05
    assert (out * wave(7, "w")).mean() > 0.2 and abs((out * wave(1, "h")).mean()) < 0.1


def test_zero_stop_frequency_restarts_from_the_noise():
    a, b = torch.randn(2 * T, 4, H, W), torch.randn(2 * T, 4, H, W)
    assert not low_pass_filter("butterworth", T, H, W, 0.0, 0.25).any()
    assert torch.allclose(mix_frequencies(a, b, low_pass_filter("gaussian", T, H, W, 0.25, 0.0), T), b, atol=1e-5)


def test_videos_are_filtered_separately():
    a, b = torch.randn(2 * T, 4, H, W), torch.randn(2 * T, 4, H, W)
    mask = low_pass_filter("butterworth", T, H, W, 0.25, 0.25)
    both = mix_frequencies(a, b, mask, T)
    assert torch.allclose(both[T:], mix_frequencies(a[T:], b[T:], mask, T), atol=1e-6)


def test_renoise_and_steps():
    x, n = torch.full((2,), 2.0), torch.full((2,), 1.0)
    assert torch.allclose(renoise(x, n, 0.25), torch.full((2,), 2 * 0.5 + (0.75 ** 0.5)))
    assert iteration_steps(20, 3, fast=False) == [20, 20, 20]
    assert iteration_steps(20, 3, fast=True) == [6, 13, 20]
    assert iteration_steps(2, 5, fast=True) == [1, 1, 1, 1, 2]


class Sampler:
    """A few deterministic denoising steps with the injected real ldm UNet."""

    def __init__(self, unet, c):
        self.unet, self.c, self.calls = unet, c, 0

    def __call__(self, noise, steps, last):
        x = noise
        for i in range(steps):
            t = torch.full((x.shape[0],), 999 - i * 100, dtype=torch.long)
            self.calls += 1
            x = x - 0.2 * self.unet(x, t, context=self.c)
        return x


def _loop(iterations, frames=4, **options):
    unet, model = unet_for("v2"), random_model("v2", channels=channels_for("v2"))
    x, _, c = inputs(videos=1, frames=frames, size=8)
    sampler = Sampler(unet, c)
    with torch.no_grad(), mm.inject(unet, model, frames=frames):
        off = sampler(x, 3, True)
        sampler.calls = 0
        result = sample_iterations(sampler, x, FreeInitOptions(iterations=iterations, **options), 3, frames, 0.005)
    return off, result, sampler.calls


def test_one_iteration_is_freeinit_off_bit_for_bit():
    off, result, calls = _loop(1)
    assert torch.equal(off, result) and calls == 3


def test_two_iterations_sample_twice_and_change_the_result():
    off, result, calls = _loop(2)
    assert calls == 6 and not torch.equal(off, result)
    _, fast, fast_calls = _loop(3, fast=True)
    assert fast_calls == 1 + 2 + 3


def test_an_interrupt_ends_the_loop_after_the_current_iteration():
    calls = []
    sample_iterations(lambda noise, steps, last: calls.append(steps) or noise, torch.randn(4, 4, 8, 8),
                      FreeInitOptions(iterations=4), 5, 4, 0.005, stop=lambda: len(calls) == 2)
    assert calls == [5, 5]
