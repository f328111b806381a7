"""img2img's init-latent blend curve (motion_module.init_latent)."""

import torch

from motion_module.init_latent import blend, blend_weights


def test_alpha_follows_the_formula_without_a_last_frame():
    alpha, beta = blend_weights(16, 1.0, 32.0)
    i = torch.arange(16, dtype=torch.float32)
    assert torch.allclose(alpha, 1 - i / 32) and torch.equal(beta, torch.zeros(16))
    assert alpha[0] == 1 and abs(alpha[15] - 0.53125) < 1e-7  # frame 15 keeps 53% (params.md section 7)
    alpha, _ = blend_weights(40, 2.0, 100.0)
    assert alpha[10] == 0 and alpha[9] > 0  # 1 - i^2/100 is clamped at 0


def test_last_frame_curve_is_normalised_and_ends_are_pinned():
    alpha, beta = blend_weights(8, 1.0, 4.0, 1.0, 4.0)
    assert (alpha[0], beta[0], alpha[-1], beta[-1]) == (1, 0, 0, 1)
    assert torch.all(alpha + beta <= 1 + 1e-6)
    assert torch.allclose(alpha.flip(0), beta)  # symmetric settings, symmetric curves
    # Where the raw weights add up above 1 both are scaled down by their sum.
    alpha, beta = blend_weights(5, 1.0, 100.0, 1.0, 100.0)
    raw_a, raw_b = 1 - 2 / 100, 1 - 2 / 100
    assert abs(alpha[2] - raw_a / (raw_a + raw_b)) < 1e-6 and abs(beta[2] - 0.5) < 1e-6


def test_blend_mixes_rows():
    latent, noise, last = torch.full((3, 2), 1.0), torch.full((3, 2), 10.0), torch.full((3, 2), 100.0)
    alpha, beta = torch.tensor([1.0, 0.5, 0.0]), torch.tensor([0.0, 0.25, 1.0])
    out = blend(latent, noise, alpha, beta, last)
    assert out[:, 0].tolist() == [1.0, 0.5 + 2.5 + 25.0, 100.0]
    assert blend(latent, noise, alpha, torch.zeros(3))[:, 0].tolist() == [1.0, 5.5, 10.0]
