"""What ControlNet and our img2img-batch path read of an AnimateDiff run: its view.

Both need it before our before_process has run (the img2img batch hook comes
first), so it is parsed here from the script's own arguments, once per run.
"""

import dataclasses

from ..motion_module.request.params import ParamError, from_script_args

from . import controlnet

VIEW_ATTR = "animatediff_controlnet_view"


@dataclasses.dataclass
class AnimateDiffView:
    """The fields ControlNet reads from an AnimateDiff run."""
    enable: bool
    video_length: int
    batch_size: int
    closed_loop: str
    is_i2i_batch: bool = False


def get_animatediff_arg(p):
    """ControlNet's view of this run, or None when AnimateDiff is off. Works
    before our before_process (the img2img batch hook calls it first) and
    returns the same object for the whole run."""
    view = p.__dict__.get(VIEW_ATTR)
    if view is None:
        script = controlnet.find_script(p, "animatediff")
        if script is None:
            return None
        try:
            params = from_script_args(p.script_args[script.args_from:script.args_to], warn=lambda msg: None)
        except ParamError:
            return None  # our before_process refuses the run with the reason
        view = AnimateDiffView(params.enable, params.video_length, params.batch_size, params.closed_loop)
        setattr(p, VIEW_ATTR, view)
    return view if view.enable else None


def set_video_length(p, video_length):
    view = get_animatediff_arg(p)
    if view is not None:
        view.video_length = video_length
