"""The LCM sampling rule (motion_module/lcm.py)."""

import torch

from motion_module.lcm import sample_lcm


def test_each_step_jumps_to_the_prediction_and_renoises_to_the_next_sigma():
    seen = []

    def model(x, sigma):
        seen.append((x.clone(), sigma.clone()))
        return x * 0.5  # a stand-in prediction of the clean latent

    noise = [torch.full((2, 4), float(k + 1)) for k in range(3)]
    sigmas = torch.tensor([10.0, 4.0, 1.0, 0.0])
    x0 = torch.ones(2, 4)
    out = sample_lcm(model, x0, sigmas, noise_sampler=lambda s, s_next: noise.pop(0))
    expected = x0
    for i in range(3):
        assert torch.equal(seen[i][0], expected) and torch.equal(seen[i][1], torch.full((2,), float(sigmas[i])))
        expected = expected * 0.5 + (sigmas[i + 1] * (i + 1) if sigmas[i + 1] > 0 else 0)
    assert torch.equal(out, expected)
    assert len(noise) == 1  # no noise after the last step


def test_callback_sees_every_step():
    steps = []
    sample_lcm(lambda x, s: x, torch.zeros(1, 1), torch.tensor([2.0, 1.0, 0.0]), callback=steps.append)
    assert [s["i"] for s in steps] == [0, 1]
