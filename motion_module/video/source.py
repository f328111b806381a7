"""Source frames for video-to-video: a video decoded into a folder of frames,
or a folder of frames checked before anything runs.

Frames stay at their own size: ControlNet (and the WebUI for img2img init
images) resizes each one to the generation size with the unit's resize mode.
Every error is a ParamError naming the request field, and nothing partial is
left behind: a folder this module creates is removed again when decoding
fails.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import tempfile

from ..errors import ParamError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")


def natural_key(name: str):
    """'frame2' before 'frame10', as the WebUI and ControlNet sort folders."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def inside_roots(path: str, roots) -> bool:
    """True when `path`, with symlinks and `..` resolved, is within one of
    `roots`; an empty list of roots allows every path."""
    roots = [r for r in roots if r]
    if not roots:
        return True
    real = os.path.realpath(path)
    for root in roots:
        root = os.path.realpath(root)
        if real == root or real.startswith(root.rstrip(os.sep) + os.sep):
            return True
    return False


def check_allowed(path: str, field: str, roots) -> None:
    if not inside_roots(path, roots):
        raise ParamError(field, f"'{field}' {path!r} is outside the folders this server allows for video input "
                                f"(setting animatediff_allowed_roots)")


@dataclasses.dataclass(frozen=True)
class SourceFrames:
    """Frames in order on disk; `folder` holds exactly these files (and
    nothing else) when `temporary` is true."""
    folder: str
    files: tuple[str, ...]
    size: tuple[int, int]
    fps: float | None = None
    temporary: bool = False

    def __len__(self):
        return len(self.files)

    def remove(self):
        if self.temporary:
            shutil.rmtree(self.folder, ignore_errors=True)


def list_frames(folder: str, field: str, roots=()) -> SourceFrames:
    """The images of a folder in natural order, checked: the folder exists, is
    allowed, holds at least one image, only images (hidden files aside), all of
    one size."""
    if not isinstance(folder, str) or not folder.strip():
        raise ParamError(field, f"'{field}' must name a folder of frames")
    check_allowed(folder, field, roots)
    if not os.path.isdir(folder):
        raise ParamError(field, f"'{field}' {folder!r} is not a folder on the server")
    names = sorted((n for n in os.listdir(folder) if not n.startswith(".")), key=natural_key)
    if not names:
        raise ParamError(field, f"'{field}' {folder!r} holds no frames")
    from PIL import Image, UnidentifiedImageError

    size, files = None, []
    for name in names:
        path = os.path.join(folder, name)
        if not os.path.isfile(path) or not name.lower().endswith(IMAGE_EXTENSIONS):
            raise ParamError(field, f"'{field}' {folder!r} holds {name!r}, which is not an image: a frames folder "
                                    f"may hold only {', '.join(IMAGE_EXTENSIONS)} files")
        try:
            with Image.open(path) as image:
                this = image.size
        except (OSError, UnidentifiedImageError) as e:
            raise ParamError(field, f"'{field}': {name!r} in {folder!r} cannot be read as an image ({e})") from e
        if size is not None and this != size:
            raise ParamError(field, f"'{field}' {folder!r} mixes image sizes: {names[0]!r} is {size[0]}x{size[1]}, "
                                    f"{name!r} is {this[0]}x{this[1]}; all frames must have one size")
        size = this
        files.append(path)
    return SourceFrames(folder, tuple(files), size)


def _open(path: str, field: str):
    import cv2

    capture = cv2.VideoCapture(path)
    if not capture.isOpened():
        capture.release()
        raise ParamError(field, f"'{field}' {os.path.basename(path)!r} cannot be read as a video")
    # Phone videos carry their rotation as metadata; apply it, as players do.
    capture.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)
    return capture


def probe_video(path: str, field: str = "video_source", roots=()) -> tuple[int, float]:
    """(frame count, FPS) from the container, checking that a frame decodes.
    The count may be approximate for variable frame rate files; `extract`
    decodes every frame."""
    import cv2

    check_allowed(path, field, roots)
    if not os.path.isfile(path):
        raise ParamError(field, f"'{field}' {path!r} is not a file on the server")
    capture = _open(path, field)
    try:
        ok, _ = capture.read()
        if not ok:
            raise ParamError(field, f"'{field}' {os.path.basename(path)!r} has no frame that can be decoded")
        return int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
    finally:
        capture.release()


def extract(path: str, parent: str | None = None, limit: int | None = None, field: str = "video_source",
            roots=()) -> SourceFrames:
    """Decode the video at `path`, one PNG per frame in order (at most
    `limit`), into a new folder under `parent`. FPS is the average over the
    frames' timestamps, so a variable frame rate gives its mean rate."""
    import cv2

    check_allowed(path, field, roots)
    if not os.path.isfile(path):
        raise ParamError(field, f"'{field}' {path!r} is not a file on the server")
    if parent:
        os.makedirs(parent, exist_ok=True)
    capture = _open(path, field)
    folder = tempfile.mkdtemp(prefix="animatediff-frames-", dir=parent)
    files, stamps, size = [], [], None
    try:
        while limit is None or len(files) < limit:
            ok, frame = capture.read()
            if not ok:
                break
            stamps.append(capture.get(cv2.CAP_PROP_POS_MSEC))
            size = (frame.shape[1], frame.shape[0])
            name = os.path.join(folder, f"{len(files):05d}.png")
            if not cv2.imwrite(name, frame):
                raise ParamError(field, f"could not write the decoded frames of '{field}' to {folder!r}")
            files.append(name)
        if not files:
            raise ParamError(field, f"'{field}' {os.path.basename(path)!r} has no frame that can be decoded")
        nominal = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    finally:
        capture.release()
    span = stamps[-1] - stamps[0] if len(stamps) > 1 else 0.0
    fps = (len(stamps) - 1) * 1000.0 / span if span > 0 else nominal
    return SourceFrames(folder, tuple(files), size, fps=fps or None, temporary=True)


def masks_for(frames: SourceFrames, masks: SourceFrames, field: str) -> list[str]:
    """One mask file per frame: the mask with the frame's file stem, else the
    mask at the same position; a single mask serves every frame."""
    if len(masks) == 1:
        return [masks.files[0]] * len(frames)
    by_stem = {os.path.splitext(os.path.basename(m))[0]: m for m in masks.files}
    stems = [os.path.splitext(os.path.basename(f))[0] for f in frames.files]
    if all(s in by_stem for s in stems):
        return [by_stem[s] for s in stems]
    if len(masks) >= len(frames):
        return list(masks.files[:len(frames)])
    raise ParamError(field, f"the {field} holds {len(masks)} masks for {len(frames)} images, and their names do "
                            f"not match; give one mask, or one per image")
