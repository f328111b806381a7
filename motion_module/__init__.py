"""AnimateDiff motion-module engine, independent of the WebUI.

    model = motion_module.load("mm_sd_v15_v2.ckpt")
    with motion_module.inject(unet, model, frames=16):
        eps = unet(x, t, context=c)

See README.md for the whole picture.
"""

from .context import ContextOptions
from .errors import (CheckpointError, FrameCountError, IncompatibleUNetError,
                     MotionModuleError)
from .injection import Injection, inject, is_injected, remove_any
from .kinds import KINDS, MotionKind, get_kind
from .loader import load
from .model import MotionModel
from .schedules import SCHEDULES, Schedule, schedule_for

__all__ = [
    "CheckpointError", "ContextOptions", "FrameCountError", "IncompatibleUNetError", "Injection", "KINDS",
    "MotionKind", "MotionModel", "MotionModuleError", "SCHEDULES", "Schedule", "get_kind",
    "inject", "is_injected", "load", "remove_any", "schedule_for",
]
