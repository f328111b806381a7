"""img2img: how the init image (and an optional last frame) fade along the video.

Frame i keeps alpha_i = max(0, 1 - i**power / scale) of the init image's
latent; with a last frame, beta_i is the same curve counted from the end.
Where alpha + beta exceed 1 both are scaled down, and the ends are pinned
(frame 0 is the image, the last frame is the last image). The rest of each
frame is its own seeded noise.
"""

from __future__ import annotations

import torch


def blend_weights(frames: int, power: float, scale: float, power_last: float | None = None,
                  scale_last: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(alpha, beta), float32 of shape [frames]; beta is zeros without a last frame."""
    idx = torch.arange(frames, dtype=torch.float32)
    alpha = (1 - idx ** power / scale).clamp(min=0)
    if power_last is None:
        return alpha, torch.zeros(frames)
    beta = (1 - (frames - 1 - idx) ** power_last / scale_last).clamp(min=0)
    total = alpha + beta
    norm = torch.where(total > 1, total, torch.ones_like(total))
    alpha, beta = alpha / norm, beta / norm
    alpha[0], beta[0] = 1.0, 0.0
    if frames > 1:
        alpha[-1], beta[-1] = 0.0, 1.0
    return alpha, beta


def batch_blend_weights(rows: int, frames: int, power: float, scale: float, power_last: float | None = None,
                        scale_last: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(alpha, beta) of shape [rows] for a video-major batch of `frames`-frame
    videos: every video fades from the init image in the same way. Rows that
    are not whole videos fade over all the rows, as one video."""
    if rows % frames:
        frames = rows
    alpha, beta = blend_weights(frames, power, scale, power_last, scale_last)
    return alpha.repeat(rows // frames), beta.repeat(rows // frames)


def first_video_rows(rows: torch.Tensor, frames: int, videos: int) -> torch.Tensor:
    """A video-major batch whose every video is the first one's `frames` rows.
    Anything else (a tensor shared by all rows, rows that are not whole
    videos) comes back unchanged."""
    if videos == 1 or rows.dim() == 0 or rows.shape[0] != frames * videos:
        return rows
    return rows[:frames].repeat((videos,) + (1,) * (rows.dim() - 1))


def blend(latent: torch.Tensor, noise: torch.Tensor, alpha: torch.Tensor, beta: torch.Tensor,
          last: torch.Tensor | None = None) -> torch.Tensor:
    """latent·alpha + last·beta + noise·(1 − alpha − beta), per frame (rows of dim 0)."""
    shape = (-1,) + (1,) * (latent.dim() - 1)
    alpha, beta = alpha.view(shape).to(latent), beta.view(shape).to(latent)
    out = latent * alpha + noise * (1 - alpha - beta)
    return out if last is None else out + last * beta
