"""Noise schedules the motion modules were trained with.

Motion modules learnt motion under a specific DDPM schedule. Sampling them
under Stable Diffusion's own schedule gives grey, washed-out videos, so the
WebUI's `alphas_cumprod` is replaced for the run by the one returned here.

Naming: diffusers calls plain linear betas "linear" and linear-in-sqrt betas
"scaled_linear"; ldm calls the latter "linear". We use the diffusers names.
"""

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Schedule:
    name: str
    beta_schedule: str  # "linear" or "scaled_linear" (diffusers naming)
    beta_start: float
    beta_end: float

    @property
    def label(self) -> str:
        """Short, infotext-safe description (no ', ' or ': ')."""
        return f"{self.beta_schedule} {self.beta_start:g}-{self.beta_end:g}"

    def betas(self, num_timesteps: int = 1000) -> torch.Tensor:
        if self.beta_schedule == "linear":
            return torch.linspace(self.beta_start, self.beta_end, num_timesteps, dtype=torch.float64)
        root = torch.linspace(self.beta_start ** 0.5, self.beta_end ** 0.5, num_timesteps, dtype=torch.float64)
        return root * root

    def alphas_cumprod(self, num_timesteps: int = 1000) -> torch.Tensor:
        """float32, like the buffer ldm/sgm models hold; computed in float64."""
        return torch.cumprod(1.0 - self.betas(num_timesteps), dim=0).to(torch.float32)


SCHEDULES = {
    s.name: s
    for s in (
        # AnimateDiff v1/v2/v3 inference configs: beta_schedule "linear" 0.00085-0.012.
        Schedule("animatediff-linear", "linear", 0.00085, 0.012),
        # AnimateLCM is sampled with LCMScheduler(beta_schedule="linear") per its
        # README, so its 1000-step DDPM schedule is plain linear 0.00085-0.012.
        Schedule("animatelcm-linear", "linear", 0.00085, 0.012),
        # The AnimateDiff sdxl branch inference config: scaled_linear, beta_end 0.020.
        Schedule("animatediff-sdxl", "scaled_linear", 0.00085, 0.020),
        # HotShot-XL's fine_tune.py loads DDPMScheduler from the Hotshot-XL model
        # repo, whose config is SDXL's scaled_linear 0.00085-0.012: the schedule
        # the SDXL checkpoint already has, so nothing changes for HotShot.
        Schedule("hotshot-xl", "scaled_linear", 0.00085, 0.012),
    )
}


def schedule_for(kind) -> Schedule:
    """The schedule a MotionKind (or kind name, or loaded model) was trained with."""
    from .kinds import get_kind

    if hasattr(kind, "kind"):
        kind = kind.kind
    if isinstance(kind, str):
        kind = get_kind(kind)
    return SCHEDULES[kind.schedule]
