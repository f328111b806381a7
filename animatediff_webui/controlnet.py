"""ControlNet with AnimateDiff: units fed the source video, and each UNet
call given the hint rows of its frames.

On AUTOMATIC1111 that is sd-webui-controlnet (v1.1.455), which reads an
AnimateDiff run through the functions in `cn_compat.py`; on Forge it is the
built-in sd_forge_controlnet, whose units read a batch folder
(`batch_image_dir`) and give frame i of every video image i, and whose control
is computed per UNet call, so the context windows slice it with the call's
other rows (`RunControl` is A1111's only). Everything here works on
ControlNet's objects only through the attributes its units and hook expose,
and is a no-op when no ControlNet is there.
"""

import contextlib
import functools
import os
import sys

from ..motion_module.context.hints import hint_rows
from . import host
from .log import logger

MODULES = ("lib_controlnet.external_code",) if host.IS_FORGE else (
    "internal_controlnet.external_code", "scripts.external_code")


def installed() -> bool:
    return any(name in sys.modules for name in MODULES)


def find_script(p, title="controlnet"):
    """The always-on script of this request with that title (case-insensitive, as ControlNet matches)."""
    runner = getattr(p, "scripts", None)
    for script in getattr(runner, "alwayson_scripts", None) or ():
        if script.title().lower() == title:
            return script
    return None


def _unit_class():
    for name in MODULES:
        module = sys.modules.get(name)
        if module is not None and hasattr(module, "ControlNetUnit"):
            return module.ControlNetUnit
    return None


def enabled_units(p):
    """ControlNet's enabled units of this request, as unit objects written
    back into `p.script_args`: ControlNet rebuilds API dicts on every read, so
    flags set on a rebuilt copy would be lost."""
    script, unit_class = find_script(p), _unit_class()
    if script is None or unit_class is None:
        return []
    args = list(p.script_args)
    units = []
    for i in range(script.args_from, script.args_to):
        unit = args[i]
        if isinstance(unit, dict):
            unit = args[i] = unit_class.from_dict(unit)
        if getattr(unit, "enabled", False):
            units.append(unit)
    p.script_args = args if isinstance(p.script_args, list) else type(p.script_args)(args)
    return units


def _batch_lines(unit):
    # Forge's units take one folder and no "mask:" or "keyframe:" lines.
    value = getattr(unit, "batch_image_dir" if host.IS_FORGE else "batch_images", None)
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip().split("\n")


def _mode(unit) -> str:
    mode = getattr(unit, "input_mode", "simple")
    return str(getattr(mode, "value", mode)).lower()


def own_folder(unit):
    """The unit's own batch folder, or None."""
    lines = _batch_lines(unit)
    return lines[0].strip() if lines and _mode(unit) == "batch" else None


def has_keyframes(unit) -> bool:
    return any(line.strip().startswith("keyframe:") for line in _batch_lines(unit) or ())


def has_own_image(unit) -> bool:
    return _mode(unit) != "batch" and getattr(unit, "image", None) is not None


def _count_files(folder) -> int:
    # What ControlNet will read: every non-hidden entry (the WebUI's listfiles).
    try:
        return len([n for n in os.listdir(folder) if not n.startswith(".")])
    except OSError:
        return 0


def frame_cap(units, source_frames):
    """The frame count the inputs allow: the fewest files among the source
    folder and the units' own folders (keyframe units excepted, their images
    are placed, not streamed), or None when nothing limits it."""
    counts = [len(source_frames)] if source_frames is not None else []
    for unit in units:
        folder = own_folder(unit)
        if folder and not has_keyframes(unit):
            counts.append(_count_files(folder))
    return min(counts) if counts else None


def _first(files, p, length):
    return files[:length]  # ControlNet lists a folder in natural order, as list_frames does


def prepare_units(units, source_frames, mask_folder, video_length):
    """Video-to-video: a unit without input of its own takes the source
    frames (and masks); every unit reading a folder is marked as AnimateDiff
    batch, so ControlNet makes one hint row per frame, trimmed to the video."""
    for unit in units:
        if has_own_image(unit):
            continue  # one image controls every frame
        if own_folder(unit) is None:
            if source_frames is None:
                continue  # ControlNet reports the missing input itself
            _read_folder(unit, source_frames.folder, mask_folder)
        if host.IS_FORGE:
            # Forge keeps an API's "batch" as a str, which its check against
            # the enum reads as "simple": one image for every frame.
            unit.input_mode = _forge_input_mode().BATCH
        unit.animatediff_batch = True
        if not has_keyframes(unit):
            unit.batch_modifiers = [*getattr(unit, "batch_modifiers", []),
                                    functools.partial(_first, length=video_length)]
        logger.info("ControlNet unit %s: frames from %s", getattr(unit, "model", "?"), own_folder(unit))


def _read_folder(unit, folder, mask_folder):
    if host.IS_FORGE:  # its input mode is set by the caller, for every unit reading a folder
        unit.batch_image_dir = folder
        if mask_folder and not unit.batch_mask_dir:
            unit.batch_mask_dir = mask_folder
        return
    lines = [folder]
    if mask_folder and not getattr(unit, "batch_mask_dir", None):
        lines.append(f"mask:{mask_folder}")
    unit.input_mode = type(unit.input_mode)("batch")  # ControlNet's InputMode enum, or a plain str
    unit.batch_images = "\n".join(lines)


def _forge_input_mode():
    return sys.modules["lib_controlnet.external_code"].InputMode


def _device():
    from modules import devices

    return devices.get_device_for("controlnet")


class RunControl:
    """sd-webui-controlnet as one run sees it: its script, found once when the
    run is armed; the networks and per-frame hints its process() set up, read
    when sampling starts (`networks`) and at every UNet call (`hints_for`)."""

    def __init__(self, script):
        self.script = script

    @classmethod
    def of(cls, p):
        # Forge's built-in ControlNet has the same title but none of these attributes.
        script = find_script(p) if installed() and not host.IS_FORGE else None
        return None if script is None else cls(script)

    def _params(self):
        return getattr(getattr(self.script, "latest_network", None), "control_params", None) or ()

    def networks(self):
        """The units' networks (ControlNet's wrapper holds the network itself
        as `control_model`), for the step cache to skip their deep blocks."""
        models = [getattr(param, "control_model", None) for param in self._params()]
        return [getattr(model, "control_model", model) for model in models if model is not None]

    @contextlib.contextmanager
    def hints_for(self, frame_index, video_length):
        """During one UNet call (one per context window), every per-frame hint
        holds exactly the rows of that call's frames, on ControlNet's device;
        ControlNet's own tensors are put back after."""
        saved = []
        try:
            device = None
            for param in self._params():
                for name in ("hint_cond", "hr_hint_cond"):
                    value = getattr(param, name, None)
                    rows = hint_rows(value, frame_index, video_length)
                    if rows is not value:
                        device = device or _device()
                        saved.append((param, name, value))
                        setattr(param, name, rows.to(device))
            yield
        finally:
            for param, name, value in reversed(saved):
                setattr(param, name, value)  # ControlNet's setter also drops its per-hint caches
