"""What sd-webui-controlnet v1.1.455 imports from an AnimateDiff extension,
as aliases over our own code.

ControlNet imports `scripts.animatediff_utils`, `scripts.animatediff_i2ibatch`
and `scripts.animatediff_mm` lazily, by module name. The WebUI does not make
extension scripts importable, so these names exist only in `sys.modules`,
registered when our script loads. They are never files in `scripts/`: the
WebUI would run those as scripts of their own.
"""

import contextlib
import enum
import sys
import types

from ..motion_module.sparsectrl import SparseCtrlMotion

from . import i2ibatch
from .log import logger
from .view import get_animatediff_arg

_active = {"state": None}  # the RunState of the injection sampling now (SparseCtrl's frame count)


class MotionModuleType(enum.Enum):
    AnimateDiffV1 = "AnimateDiff V1, Yuwei Guo, Shanghai AI Lab"
    AnimateDiffV2 = "AnimateDiff V2, Yuwei Guo, Shanghai AI Lab"
    AnimateDiffV3 = "AnimateDiff V3, Yuwei Guo, Shanghai AI Lab"
    AnimateDiffXL = "AnimateDiff SDXL, Yuwei Guo, Shanghai AI Lab"
    SparseCtrl = "SparseCtrl, Yuwei Guo, Shanghai AI Lab"
    HotShotXL = "HotShot-XL, John Mullan, Natural Synthetics Inc"


def _frames_now(x):
    state = _active["state"]
    if state is None:
        raise RuntimeError("SparseCtrl needs AnimateDiff: enable AnimateDiff for this generation")
    return state.frames


def MotionWrapper(mm_name="", mm_hash="", mm_type=MotionModuleType.SparseCtrl):
    """ControlNet builds only SparseCtrl's temporal layers through this."""
    if mm_type is not MotionModuleType.SparseCtrl:
        raise ValueError(f"this AnimateDiff extension builds motion modules itself; {mm_type} is not built here")
    return SparseCtrlMotion(_frames_now)


@contextlib.contextmanager
def active(state):
    """While sampling: SparseCtrl layers take the frame count of the call."""
    previous, _active["state"] = _active["state"], state
    try:
        yield
    finally:
        _active["state"] = previous


def register():
    modules = {
        "scripts.animatediff_utils": {"get_animatediff_arg": get_animatediff_arg},
        "scripts.animatediff_i2ibatch": {"animatediff_i2i_batch": i2ibatch.animatediff_i2i_batch},
        "scripts.animatediff_mm": {"MotionWrapper": MotionWrapper, "MotionModuleType": MotionModuleType},
    }
    for name, values in modules.items():
        existing = sys.modules.get(name)
        if existing is not None and not getattr(existing, "animatediff_alias", False):
            logger.warning("%s is provided by another extension (%s); ControlNet will use that one. Install only "
                           "one AnimateDiff extension.", name, getattr(existing, "__file__", "?"))
            continue
        module = types.ModuleType(name, f"AnimateDiff for ControlNet: alias over {__name__}")
        module.__dict__.update(values, animatediff_alias=True)
        sys.modules[name] = module
