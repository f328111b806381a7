"""MP4 (H.264) and WEBM (VP9) writers driven through an ffmpeg subprocess.

The ffmpeg binary is the one bundled with the `imageio-ffmpeg` wheel
(`imageio_ffmpeg.get_ffmpeg_exe()`), so neither a system ffmpeg nor PyAV
is needed.  Frames go to ffmpeg's stdin as raw rgb24 at an exact rational
frame rate (29.97 is passed as 2997/100, not as a rounded float).

Both formats use yuv420p, the only chroma layout every browser and phone
decodes.  H.264 in 4:2:0 needs even width and height, so an odd size is
padded by one column/row on the right/bottom that *repeats the edge
pixels* (no black line, no resampling blur); the video is then e.g.
64x48 for a 63x47 input.  VP9 handles odd sizes itself, so WEBM keeps the
exact size.

The infotext goes into the container's `comment` tag (MP4: the ©cmt
atom; WebM: a COMMENT tag), passed to ffmpeg as an FFMETADATA file so
newlines, quotes and long texts survive on every OS.  Read it back with
`ffmpeg -i video.mp4 -f ffmetadata -`.

Quality: CRF from the options; MP4 preset/tune only when not "".  WEBM
uses constant-quality mode (`-crf N -b:v 0`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import tempfile
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from PIL import Image

from ..errors import ParamError
from .atomic import atomic_output, remove_quietly
from .frames import normalize_frames
from .options import VideoOptions

log = logging.getLogger(__name__)

# Generous: VP9 on a CPU can take minutes for 200 large frames; the limit
# only exists so a wedged encoder cannot hang the WebUI forever.
ENCODE_TIMEOUT_S = 1800


def ffmpeg_exe() -> str:
    try:
        import imageio_ffmpeg
    except ImportError as e:  # pragma: no cover - depends on the install
        raise RuntimeError("MP4/WEBM need the 'imageio-ffmpeg' package (pip install imageio-ffmpeg)") from e
    return imageio_ffmpeg.get_ffmpeg_exe()


def escape_ffmetadata(value: str) -> str:
    # FFMETADATA escapes '=', ';', '#', '\' and newline with a backslash.
    out = []
    for ch in value:
        if ch in "=;#\\\n":
            out.append("\\")
        out.append(ch)
    return "".join(out)


def _even_padded(frame: Image.Image, width: int, height: int) -> bytes:
    arr = np.asarray(frame)
    h, w = arr.shape[:2]
    if (w, h) != (width, height):
        arr = np.pad(arr, ((0, height - h), (0, width - w), (0, 0)), mode="edge")
    return np.ascontiguousarray(arr).tobytes()


def _rate(fps: Fraction) -> str:
    return f"{fps.numerator}/{fps.denominator}"


def _codec_args(fmt: str, options: VideoOptions) -> list[str]:
    if fmt == "mp4":
        args = ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", str(options.mp4_crf)]
        if options.mp4_preset:
            args += ["-preset", options.mp4_preset]
        if options.mp4_tune:
            args += ["-tune", options.mp4_tune]
        # Index at the front so browsers can start playing before the end
        # has arrived (the API returns these files over HTTP).
        return args + ["-movflags", "+faststart", "-f", "mp4"]
    if fmt == "webm":
        return [
            "-c:v", "libvpx-vp9", "-pix_fmt", "yuv420p",
            "-crf", str(options.mp4_crf), "-b:v", "0",
            # Default libvpx speed is very slow; good/2 is the usual
            # quality-per-time compromise, row-mt uses all cores.
            "-deadline", "good", "-cpu-used", "2", "-row-mt", "1",
            "-f", "webm",
        ]
    raise ValueError(f"unknown ffmpeg format {fmt!r}: allowed 'mp4', 'webm'")


def build_command(
    fmt: str, width: int, height: int, options: VideoOptions, metadata_file: str | None, output: str,
) -> list[str]:
    cmd = [
        ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
        "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}",
        "-framerate", _rate(options.fps_fraction), "-i", "pipe:0",
    ]
    if metadata_file:
        cmd += ["-f", "ffmetadata", "-i", metadata_file, "-map_metadata", "1"]
    cmd += ["-map", "0:v", "-an"]
    cmd += _codec_args(fmt, options)
    cmd.append(output)
    return cmd


def frame_bytes(frames: Iterable[Image.Image], width: int, height: int) -> Iterable[bytes]:
    for frame in frames:
        yield _even_padded(frame, width, height)


def _encode(fmt: str, frames: Sequence[Image.Image], path: str | os.PathLike, options: VideoOptions) -> Path:
    frames = normalize_frames(frames)
    w, h = frames[0].size
    if fmt == "mp4":
        width, height = w + (w % 2), h + (h % 2)
    else:
        width, height = w, h

    meta_file = None
    with atomic_output(path) as tmp, tempfile.TemporaryFile() as errlog:
        try:
            if options.infotext:
                fd, meta_file = tempfile.mkstemp(prefix="animatediff-meta-", suffix=".txt")
                with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
                    f.write(";FFMETADATA1\n")
                    f.write("comment=" + escape_ffmetadata(options.infotext) + "\n")
            cmd = build_command(fmt, width, height, options, meta_file, str(tmp))
            # stderr to a file, not a pipe: a chatty ffmpeg can't fill a pipe
            # buffer and deadlock against our writes to stdin.
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=errlog)
            try:
                try:
                    for data in frame_bytes(frames, width, height):
                        proc.stdin.write(data)
                except BrokenPipeError:
                    pass  # ffmpeg exited early; its exit code/stderr say why
                finally:
                    with contextlib.suppress(OSError):
                        proc.stdin.close()
                rc = proc.wait(timeout=ENCODE_TIMEOUT_S)
            except BaseException:
                proc.kill()
                proc.wait()
                raise
            if rc != 0:
                errlog.seek(0)
                msg = errlog.read().decode("utf-8", "replace").strip()[-2000:]
                raise RuntimeError(f"ffmpeg ({fmt}) failed with exit code {rc}: {msg}")
        finally:
            if meta_file:
                remove_quietly(meta_file)
    return Path(path)


def write_mp4(frames: Sequence[Image.Image], path: str | os.PathLike, options: VideoOptions) -> Path:
    return _encode("mp4", frames, path, options)


def write_webm(frames: Sequence[Image.Image], path: str | os.PathLike, options: VideoOptions) -> Path:
    return _encode("webm", frames, path, options)


FFMPEG_FORMATS = ("MP4", "WEBM")


def check_formats(formats) -> None:
    """ParamError('format') when MP4 or WEBM is asked for and ffmpeg is not
    there, so the request is refused before it runs rather than failing after."""
    wanted = [name for name in FFMPEG_FORMATS if name in formats]
    if not wanted:
        return
    try:
        exe = ffmpeg_exe()
    except Exception as e:  # the package is missing, or has no binary for this platform
        reason = str(e)
    else:
        if os.path.isfile(exe):
            return
        reason = f"the ffmpeg binary {exe!r} is missing"
    raise ParamError("format", f"'format' {' and '.join(wanted)} cannot be written on this machine ({reason}); "
                               "choose GIF, WEBP or PNG, or install imageio-ffmpeg in the WebUI's environment")
