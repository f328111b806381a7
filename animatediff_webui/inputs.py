"""Request inputs, decoded in one place: the last frame's image, and the
video-to-video sources (video source, frames folder, mask folder, or the
img2img batch folder), for the UI, the API check and the run."""

import base64
import binascii
import dataclasses
import io
import os
import re
import tempfile

from ..motion_module.request.params import ParamError
from ..motion_module.video.ffmpeg import check_formats
from ..motion_module.video.source import (SourceFrames, check_allowed, extract, inside_roots, list_frames,
                                          probe_video)

from . import settings

I2I_BATCH_ATTR = "animatediff_i2i_batch"  # SourceFrames of the img2img batch input, set by i2ibatch.py


def decode_image(value, field="last_frame"):
    """A base64 string or data URL -> RGB PIL image; other values unchanged."""
    from PIL import Image

    if not isinstance(value, str):
        return value
    data = value.split(",", 1)[1] if value.startswith("data:") else value
    try:
        return Image.open(io.BytesIO(base64.b64decode(data, validate=False))).convert("RGB")
    except Exception as e:
        raise ParamError(field, f"'{field}' must be a base64-encoded image ({e})") from e


def checked(params):
    """The request checks that need this machine, shared by the API and the
    UI: an encoder for MP4/WEBM, and the last frame's image, decoded."""
    check_formats(params.format)
    return dataclasses.replace(params, last_frame=decode_image(params.last_frame))


def limit(params):
    """Frames worth decoding from a video: the requested count, or one past
    the maximum so that a too-long video is reported as such."""
    from ..motion_module.request.params import VIDEO_LENGTH_MAX

    return params.video_length or VIDEO_LENGTH_MAX + 1


def allowed_roots():
    return [r.strip() for r in re.split(r"[;\n]", settings.opt("animatediff_allowed_roots") or "") if r.strip()]


def _upload_folders():
    """Where gradio keeps files uploaded in the UI (always readable: the user sent them)."""
    from modules import shared

    folders = [os.environ.get("GRADIO_TEMP_DIR") or os.path.join(tempfile.gettempdir(), "gradio")]
    return folders + ([shared.opts.temp_dir] if getattr(shared.opts, "temp_dir", "") else [])


def work_folder():
    """Where decoded frames go while a run uses them."""
    from modules import paths

    return os.path.join(paths.data_path, "tmp", "animatediff-frames")


def _is_base64_video(value: str) -> bool:
    """A data URL, or a long string that is not a file (base64 has '/' in it, so it cannot be told by form)."""
    return value.startswith("data:") or (len(value) > 1024 and not os.path.exists(value))


@dataclasses.dataclass
class Sources:
    """What a request brings for video-to-video; `remove()` deletes what was
    decoded for it (never the user's own folders)."""
    frames: SourceFrames | None = None  # the control frames for units without their own input
    masks: SourceFrames | None = None
    count: int | None = None  # frames of a probed (not decoded) video
    _temp_files: list = dataclasses.field(default_factory=list)

    def remove(self):
        if self.frames is not None:
            self.frames.remove()
        for path in self._temp_files:
            try:
                os.remove(path)
            except OSError:
                pass
        self._temp_files.clear()


def _video_file(value: str, sources: Sources, from_ui: bool) -> str:
    """A path to the video: base64 is written to a temporary file first."""
    if _is_base64_video(value):
        data = value.split(",", 1)[1] if value.startswith("data:") else value
        try:
            raw = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError) as e:
            raise ParamError("video_source", f"'video_source' is neither a path nor base64 video data ({e})") from e
        os.makedirs(work_folder(), exist_ok=True)
        handle, path = tempfile.mkstemp(suffix=".video", dir=work_folder())
        sources._temp_files.append(path)
        with os.fdopen(handle, "wb") as f:
            f.write(raw)
        return path
    roots = allowed_roots()
    if roots and not (from_ui and inside_roots(value, _upload_folders())):
        check_allowed(value, "video_source", roots)
    return value


def open_sources(params, p=None, decode=True, limit=None) -> Sources:
    """The control frames by the specification's priority (the img2img batch
    folder, Video source, Video path) and the mask folder, checked. With
    `decode` false (the API check) a video is only probed and `frames` stays
    None; the frame count is then returned through `count`."""
    sources = Sources()
    try:
        batch = getattr(p, I2I_BATCH_ATTR, None) if p is not None else None
        from_ui = p is not None and not getattr(p, "is_api", False)
        if batch is not None:
            sources.frames = batch
        elif params.video_source:
            path = _video_file(params.video_source, sources, from_ui)
            if decode:
                sources.frames = extract(path, work_folder(), limit=limit)
            else:
                sources.count = probe_video(path)[0]
        elif params.video_path:
            sources.frames = list_frames(params.video_path, "video_path", allowed_roots())
        if params.mask_path:
            sources.masks = list_frames(params.mask_path, "mask_path", allowed_roots())
    except BaseException:
        sources.remove()
        raise
    return sources


def source_count(sources: Sources):
    return len(sources.frames) if sources.frames is not None else sources.count


def video_info(path):
    """(frames, fps) of a video file for the UI; (0, 0) when it cannot be read."""
    try:
        return probe_video(path)
    except ParamError:
        return 0, 0
