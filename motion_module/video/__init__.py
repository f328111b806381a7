"""Video output writers: GIF, MP4, WEBP, WEBM, PNG frames, TXT (+ optional S3).

WebUI-independent: nothing here imports `modules`, `launch` or `gradio`.
The WebUI glue builds a `VideoOptions` (see `VideoOptions.from_settings`)
and calls `save_video` once per video:

    frames = add_reverse(frames)                 # closed loop 'A' only
    frames = interpolate(frames, x, "FILM", deforum_path)   # optional
    saved = save_video(frames, ["GIF", "MP4"], options, p.outpath_samples,
                       seed, request_id)
    saved.paths["GIF"], saved.errors, saved.video_paths

Files: `{out_dir}/AnimateDiff/{YYYY-MM-DD}/{seq:05}-{seed}[-{request_id}].{ext}`
(PNG frames in the folder `{stem}/` unless `png_dir` is given).  A format
whose writer fails is reported in `errors` and leaves no file behind; the
other formats are still written.  'Frame' is an API flag (return the PIL
frames), not a file, and is ignored here.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

from PIL import Image

from .frames import add_reverse, normalize_frames
from .interpolation import frames_to_add, interpolate, linear_interpolate
from .naming import allocate_name, sanitize_request_id, video_folder
from .options import VideoOptions
from .s3 import S3UploadResult, upload_files

log = logging.getLogger(__name__)

__all__ = [
    "FORMATS", "VIDEO_FORMATS", "SavedVideo", "VideoOptions", "add_reverse", "frames_to_add",
    "interpolate", "linear_interpolate", "sanitize_request_id", "save_video", "video_folder",
]

# Extension per format; order here is the order files are listed in.
FORMATS = {"GIF": "gif", "MP4": "mp4", "WEBP": "webp", "WEBM": "webm", "PNG": "png", "TXT": "txt"}
VIDEO_FORMATS = ("GIF", "MP4", "WEBP", "WEBM")
API_FLAGS = ("FRAME",)


@dataclass
class SavedVideo:
    """What one `save_video` call produced.

    paths        format -> written file (for PNG: the frames folder, or the
                 first frame's folder when png_dir was given).
    png_frames   the individual PNG files, in order.
    errors       format -> message, for every requested format that failed
                 (unknown names included).
    s3           one result per uploaded video file (empty if S3 is off).
    """

    folder: Path
    stem: str
    paths: dict[str, Path] = field(default_factory=dict)
    png_frames: list[Path] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    s3: list[S3UploadResult] = field(default_factory=list)

    @property
    def video_paths(self) -> list[Path]:
        """Written video files (GIF/MP4/WEBP/WEBM), in format order."""
        return [self.paths[f] for f in VIDEO_FORMATS if f in self.paths]

    @property
    def ok(self) -> bool:
        return not self.errors


def _normalize_formats(formats: Iterable[str]) -> tuple[list[str], dict[str, str]]:
    if isinstance(formats, str):
        formats = [formats]
    wanted: list[str] = []
    errors: dict[str, str] = {}
    for raw in formats:
        name = str(raw).strip().upper()
        if name in API_FLAGS:
            continue
        if name not in FORMATS:
            errors[str(raw)] = f"unknown format {raw!r}: allowed {', '.join(FORMATS)} (and the API flag 'Frame')"
            continue
        if name not in wanted:
            wanted.append(name)
    # Fixed order: videos first, so TXT/PNG never delay the files users see.
    wanted.sort(key=list(FORMATS).index)
    return wanted, errors


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
    png_dir: str | os.PathLike | None = None,
    png_infotexts: Sequence[str] | None = None,
    day: _dt.date | _dt.datetime | None = None,
) -> SavedVideo:
    """Write one video in every requested format.

    out_dir       the WebUI output path (`p.outpath_samples`); files go to
                  `{out_dir}/AnimateDiff/{YYYY-MM-DD}/`.
    seed          the first frame's seed (goes into the file name).
    request_id    API request id; sanitised before use in names.
    png_dir       where PNG frames go; None = per-video folder `{stem}/`,
                  otherwise files `{stem}-{i:05}.png` in that folder.
    png_infotexts per-frame infotexts for PNGs (default: options.infotext).
    day           date for the folder and S3 key (default: today, local).
    """
    if not isinstance(options, VideoOptions):
        raise ValueError(f"options must be a VideoOptions, got {type(options).__name__}")
    wanted, errors = _normalize_formats(formats)
    frames = normalize_frames(frames)
    day = day or _dt.datetime.now()
    folder = video_folder(out_dir, day)
    name = allocate_name(folder, seed, request_id, extensions=[FORMATS[f] for f in wanted])
    result = SavedVideo(folder=folder, stem=name.stem, errors=errors)
    for msg in errors.values():
        log.warning("AnimateDiff output: %s", msg)

    writers = _writers()
    for fmt in wanted:
        try:
            if fmt == "PNG":
                from .png import write_png_frames

                texts = png_infotexts if png_infotexts is not None else options.infotext
                if png_dir is None:
                    target = name.frames_folder
                    written = write_png_frames(frames, target, texts)
                else:
                    target = Path(png_dir)
                    names = [f"{name.stem}-{i:05}.png" for i in range(len(frames))]
                    written = write_png_frames(frames, target, texts, names)
                result.paths[fmt] = target
                result.png_frames = written
            else:
                result.paths[fmt] = writers[fmt](frames, name.path(FORMATS[fmt]), options)
        except Exception as e:  # one broken encoder must not cost the others
            msg = f"{type(e).__name__}: {e}"
            result.errors[fmt] = msg
            log.error(
                "AnimateDiff output: writing %s for %s failed: %s", fmt, name.stem, msg,
                exc_info=log.isEnabledFor(logging.DEBUG),
            )

    if options.s3_enable and result.video_paths:
        result.s3 = upload_files(result.video_paths, options, day)
    return result
