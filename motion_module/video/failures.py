"""One error for the requested files that could not be written.

`save_video` writes every format it can and reports the others; this turns
those reports into the error the user sees, saying what failed, why, what
was written all the same and where the frames are.
"""

from __future__ import annotations

import errno
import os
from typing import Iterable

from . import SavedVideo

# Answered with HTTP 507 (Insufficient Storage) rather than 500.
STORAGE_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})


class OutputError(RuntimeError):
    """Requested output files that were not written.

    `status_code` and `detail` are instance attributes because that is where
    the WebUI's API error handler looks for the answer's status and detail."""

    def __init__(self, message: str, status_code: int = 500):
        super().__init__(message)
        self.status_code = status_code
        self.detail = message


def output_error(saved: Iterable[SavedVideo], frames_folder: str | os.PathLike | None = None) -> OutputError | None:
    """None when every requested file was written.

    frames_folder  where the frames were saved as PNG by someone else (the
                   WebUI's own sample saving), to name in the message."""
    saved = list(saved)
    failed = [(video, fmt) for video in saved for fmt in video.errors]
    if not failed:
        return None
    parts = []
    for video, fmt in failed:
        parts.append(f"{fmt} into {video.folder}: {video.errors[fmt]}")
    message = "AnimateDiff could not write " + "; ".join(parts) + "."
    written = [str(path) for video in saved for fmt, path in video.paths.items() if fmt != "PNG"]
    if written:
        message += " Written: " + ", ".join(written) + "."
    png = [str(video.paths["PNG"]) for video in saved if "PNG" in video.paths]
    if frames_folder is not None:
        png.append(str(frames_folder))
    if png:
        message += " The frames are saved as PNG in " + ", ".join(png) + "."
    full = any(getattr(video.causes.get(fmt), "errno", None) in STORAGE_FULL for video, fmt in failed)
    return OutputError(message, 507 if full else 500)
