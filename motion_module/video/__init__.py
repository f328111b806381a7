"""Video output writers: GIF, MP4, WEBP, WEBM, PNG frames, TXT (+ optional S3).

WebUI-independent: nothing here imports `modules`, `launch` or `gradio`.
The WebUI glue builds a `VideoOptions` (see `VideoOptions.from_settings`)
and calls `save_video` once per video:

    frames = add_reverse(frames)                       # closed loop 'A' only
    frames = interpolate(frames, x, "FILM", deforum_path)   # optional
    saved = save_video(frames, ["GIF", "MP4"], options, p.outpath_samples,
                       seed, request_id)
    saved.paths["GIF"], saved.errors, saved.video_paths

Files: `{out_dir}/AnimateDiff/{YYYY-MM-DD}/{seq:05}-{seed}[-{request_id}].{ext}`,
PNG frames in the folder `{stem}/`. Formats arrive validated (the request
model checks them); a format whose writer fails is reported in `errors` and
leaves no file behind, and the other formats are still written.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

from PIL import Image

from .formats import FILE_FORMATS, VIDEO_FORMATS
from .frames import add_reverse, normalize_frames
from .interpolation import interpolate
from .naming import allocate_name, video_folder
from .options import VideoOptions
from .s3 import S3UploadResult, upload_files

log = logging.getLogger(__name__)

__all__ = ["SavedVideo", "VideoOptions", "add_reverse", "interpolate", "save_video", "video_folder"]


@dataclass
class SavedVideo:
    """What one `save_video` call produced.

    paths        format -> written file (for PNG: the frames folder).
    png_frames   the individual PNG files, in order.
    errors       format -> message, for every requested format that failed.
    causes       format -> the exception behind each of `errors`.
    s3           one result per uploaded video file (empty if S3 is off).
    """

    folder: Path
    stem: str
    paths: dict[str, Path] = field(default_factory=dict)
    png_frames: list[Path] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    causes: dict[str, BaseException] = field(default_factory=dict)
    s3: list[S3UploadResult] = field(default_factory=list)

    @property
    def video_paths(self) -> list[Path]:
        """Written video files (GIF/MP4/WEBP/WEBM), in format order."""
        return [self.paths[f] for f in VIDEO_FORMATS if f in self.paths]

    @property
    def ok(self) -> bool:
        return not self.errors

    def fail(self, fmt: str, error: BaseException) -> None:
        self.errors[fmt] = f"{type(error).__name__}: {error}"
        self.causes[fmt] = error


def _writers() -> dict[str, Callable[[Sequence[Image.Image], Path, VideoOptions], Path]]:
    # Looked up at call time so tests (and callers) can swap an encoder.
    from . import ffmpeg, gif, txt, webp

    return {
        "GIF": gif.write_gif,
        "MP4": ffmpeg.write_mp4,
        "WEBP": webp.write_webp,
        "WEBM": ffmpeg.write_webm,
        "TXT": lambda frames, path, options: txt.write_txt(options.infotext, path),
    }


def save_video(
    frames: Sequence[Image.Image],
    formats: Iterable[str],
    options: VideoOptions,
    out_dir: str | os.PathLike,
    seed: int,
    request_id: str = "",
    *,
    day: _dt.date | _dt.datetime | None = None,
) -> SavedVideo:
    """Write one video in every requested format.

    formats       file formats (FILE_FORMATS names); anything else, such as
                  the API flag 'Frame', is not a file and is skipped.
    out_dir       the WebUI output path (`p.outpath_samples`); files go to
                  `{out_dir}/AnimateDiff/{YYYY-MM-DD}/`.
    seed          the first frame's seed (goes into the file name).
    request_id    API request id; sanitised before use in names.
    day           date for the folder and S3 key (default: today, local).
    """
    formats = set(formats)
    # Fixed order: videos first, so TXT/PNG never delay the files users see.
    wanted = [name for name in FILE_FORMATS if name in formats]
    frames = normalize_frames(frames)
    day = day or _dt.datetime.now()
    folder = video_folder(out_dir, day)
    try:
        name = allocate_name(folder, seed, request_id, extensions=[FILE_FORMATS[f] for f in wanted])
    except OSError as e:  # the folder cannot be made or read: every format fails alike
        result = SavedVideo(folder=folder, stem="")
        for fmt in wanted:
            result.fail(fmt, e)
        return result
    result = SavedVideo(folder=folder, stem=name.stem)

    writers = _writers()
    for fmt in wanted:
        try:
            if fmt == "PNG":
                from .png import write_png_frames

                result.png_frames = write_png_frames(frames, name.frames_folder, options.infotext)
                result.paths[fmt] = name.frames_folder
            else:
                result.paths[fmt] = writers[fmt](frames, name.path(FILE_FORMATS[fmt]), options)
        except Exception as e:  # one broken encoder must not cost the others
            # Reported by the caller, once, with the other formats' failures; the traceback only when debugging.
            result.fail(fmt, e)
            log.debug("writing %s for %s failed", fmt, name.stem, exc_info=True)

    if options.s3_enable and result.video_paths:
        result.s3 = upload_files(result.video_paths, options, day)
    return result
