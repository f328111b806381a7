"""The LCM sampling rule, for WebUI versions without an LCM sampler (1.6, 1.7).

A latent consistency model predicts the clean latent from any noise level in
one call, so each step jumps to that prediction and, unless it is the last,
noises it again to the next sigma with fresh noise. In k-diffusion's sampler
signature, so the WebUI's k-diffusion wrapper can run it.
"""

import torch


@torch.no_grad()
def sample_lcm(model, x, sigmas, extra_args=None, callback=None, disable=None, noise_sampler=None):
    extra_args = extra_args or {}
    if noise_sampler is None:
        def noise_sampler(sigma, sigma_next):
            return torch.randn_like(x)
    ones = x.new_ones([x.shape[0]])
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i] * ones, **extra_args)
        if callback is not None:
            callback({"x": x, "i": i, "sigma": sigmas[i], "sigma_hat": sigmas[i], "denoised": denoised})
        x = denoised
        if sigmas[i + 1] > 0:
            x = x + sigmas[i + 1] * noise_sampler(sigmas[i], sigmas[i + 1])
    return x
