"""The motion modules' noise schedules, pinned against ldm's own schedule code."""

import numpy as np
import pytest
import torch
from ldm.modules.diffusionmodules.util import make_beta_schedule

import motion_module as mm

# diffusers' names -> ldm's names for the same betas: ldm's "linear" is linear
# in sqrt(beta) (diffusers' scaled_linear); its "sqrt_linear" is plain linear.
LDM_NAME = {"linear": "sqrt_linear", "scaled_linear": "linear"}
# SD 1.x/2.x/XL configs: linear_start 0.00085, linear_end 0.012, ldm "linear".
SD_BETAS = make_beta_schedule("linear", 1000, linear_start=0.00085, linear_end=0.012)


@pytest.mark.parametrize("kind", sorted(mm.KINDS))
def test_schedule_betas_equal_ldm_make_beta_schedule(kind):
    schedule = mm.schedule_for(kind)
    ldm = make_beta_schedule(LDM_NAME[schedule.beta_schedule], 1000, linear_start=schedule.beta_start,
                             linear_end=schedule.beta_end)
    np.testing.assert_allclose(schedule.betas().numpy(), ldm, rtol=1e-6, atol=0)
    # alphas_cumprod as ldm's register_schedule builds it (float64 cumprod, stored float32).
    expected = torch.tensor(np.cumprod(1.0 - ldm), dtype=torch.float32)
    assert torch.allclose(schedule.alphas_cumprod(), expected, rtol=1e-6, atol=0)


def test_official_choices_against_stable_diffusions_own_schedule():
    # AnimateDiff SD1.5 kinds are plain linear, unlike the checkpoint: swapping matters.
    assert not np.allclose(mm.schedule_for("v2").betas().numpy(), SD_BETAS)
    # HotShot-XL was trained on SDXL's own schedule: nothing changes for it.
    np.testing.assert_allclose(mm.schedule_for("hotshot").betas().numpy(), SD_BETAS, rtol=1e-6)


def test_label_names_the_schedule():
    assert mm.schedule_for("v2").label == "linear 0.00085-0.012"
    assert mm.schedule_for("sdxl").label == "scaled_linear 0.00085-0.02"
