"""The motion-module kinds and what each one needs at inference time.

A kind bundles every behaviour that differs between the official releases, so
that the rest of the engine asks the kind instead of testing names.
"""

from dataclasses import dataclass

# Channel widths of the UNet levels that carry motion modules.
SD15_CHANNELS = (320, 640, 1280, 1280)
SDXL_CHANNELS = (320, 640, 1280)


@dataclass(frozen=True)
class MotionKind:
    name: str
    is_sdxl: bool
    has_mid: bool
    # ResBlock and final-output GroupNorms see all frames of a video at once.
    # The v1 and HotShot UNets ran those norms on 5-D tensors during training
    # (use_inflated_groupnorm=false); later releases normalise per frame.
    joint_groupnorm: bool
    # The motion module's own input GroupNorm: per frame in every SD1.5 release
    # and in HotShot; over all frames of the video in the official SDXL branch.
    module_norm_over_frames: bool
    default_max_frames: int
    schedule: str
    description: str

    @property
    def channels(self):
        return SDXL_CHANNELS if self.is_sdxl else SD15_CHANNELS


KINDS = {
    k.name: k
    for k in (
        MotionKind("v1", False, False, True, False, 24, "animatediff-linear",
                   "AnimateDiff v1 (mm_sd_v14/v15 and finetunes), SD1.5"),
        MotionKind("v2", False, True, False, False, 32, "animatediff-linear",
                   "AnimateDiff v2 (mm_sd_v15_v2), SD1.5"),
        MotionKind("v3", False, False, False, False, 32, "animatediff-linear",
                   "AnimateDiff v3 (v3_sd15_mm), SD1.5"),
        MotionKind("animatelcm", False, True, False, False, 64, "animatelcm-linear",
                   "AnimateLCM t2v, SD1.5"),
        MotionKind("sdxl", True, False, False, True, 32, "animatediff-sdxl",
                   "AnimateDiff-SDXL (mm_sdxl_v10_beta)"),
        MotionKind("hotshot", True, False, True, False, 24, "hotshot-xl",
                   "HotShot-XL temporal layers"),
    )
}


def get_kind(name: str) -> MotionKind:
    try:
        return KINDS[name]
    except KeyError:
        raise ValueError(f"unknown motion-module kind {name!r}; known kinds: {', '.join(KINDS)}") from None
