"""Request decoding, in one place: the last frame's image and the frame count
of a video source or frames folder, for the UI, the API check and the run."""

import base64
import dataclasses
import io
import os

from ..motion_module.request.params import ParamError

FRAME_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


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


def video_info(path):
    """(frames, fps) of a video file; (0, 0) when it cannot be read."""
    try:
        import cv2
        cap = cv2.VideoCapture(path)
        frames, fps = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), cap.get(cv2.CAP_PROP_FPS)
        cap.release()
        return frames, fps
    except Exception:
        return 0, 0


def source_frame_count(params) -> int | None:
    """Frames in the video source / frames folder, for the automatic frame count."""
    if params.video_source:
        frames, _ = video_info(params.video_source)
        return frames or None
    if params.video_path and os.path.isdir(params.video_path):
        return len([f for f in os.listdir(params.video_path) if f.lower().endswith(FRAME_EXTENSIONS)]) or None
    return None


def decode(params):
    """(params with the last frame decoded, source frame count)."""
    params = dataclasses.replace(params, last_frame=decode_image(params.last_frame))
    return params, source_frame_count(params)
