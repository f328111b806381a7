"""Animated WebP writer (Pillow + libwebp).

Timing.  WebP stores milliseconds; per-frame durations are whole ms whose
running sum follows the exact timeline (fps=3 -> 333,334,333 ms).

Loop.  The WebP loop count is the number of times the animation is shown
(0 = forever), which is exactly `loop_number`, so it is stored unchanged.

Metadata.  The infotext is the EXIF UserComment (tag 0x9286 in the Exif
IFD), encoded as the EXIF spec's "UNICODE\\0" prefix + UTF-16 big-endian
inside a big-endian ("MM") TIFF block.  That is what the WebUI's PNG-info
reader (piexif.helper.UserComment.load) and exiftool decode; Pillow gives
the raw bytes via `im.getexif().get_ifd(0x8769)[0x9286]`, and
`decode_user_comment()` below turns them back into text.

A single-frame WebP is written as a still image (Pillow does that for one
frame): there is nothing to loop or time.  libwebp, like Pillow's GIF
writer, merges identical consecutive frames into one longer frame.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from PIL import ExifTags, Image, features

from .atomic import atomic_output
from .frames import frame_durations, normalize_frames
from .options import VideoOptions

USER_COMMENT_TAG = 0x9286
_UNICODE_PREFIX = b"UNICODE\x00"
_ASCII_PREFIX = b"ASCII\x00\x00\x00"
# libwebp's default effort; Pillow's animated default (0) gives visibly
# worse quality per byte for little speed gain on video-sized frames.
WEBP_METHOD = 4


def webp_supported() -> bool:
    return bool(features.check("webp"))


def encode_user_comment(text: str) -> bytes:
    return _UNICODE_PREFIX + text.encode("utf-16-be")


def decode_user_comment(data: bytes) -> str:
    prefix, body = data[:8], data[8:]
    if prefix == _UNICODE_PREFIX:
        # Some writers (little-endian files) use UTF-16LE with a BOM.
        if body[:2] == b"\xff\xfe":
            return body[2:].decode("utf-16-le", "replace")
        if body[:2] == b"\xfe\xff":
            body = body[2:]
        return body.decode("utf-16-be", "replace")
    if prefix == _ASCII_PREFIX:
        return body.decode("ascii", "replace")
    return body.decode("utf-8", "replace")


def infotext_exif(infotext: str) -> Image.Exif:
    exif = Image.Exif()
    exif.endian = ">"  # UTF-16BE text must sit in a big-endian TIFF block
    exif.get_ifd(ExifTags.IFD.Exif)[USER_COMMENT_TAG] = encode_user_comment(infotext)
    return exif


def read_infotext(im: Image.Image) -> str | None:
    data = im.getexif().get_ifd(ExifTags.IFD.Exif).get(USER_COMMENT_TAG)
    return None if data is None else decode_user_comment(data)


def write_webp(frames: Sequence[Image.Image], path: str | os.PathLike, options: VideoOptions) -> Path:
    """Write an animated WebP to `path` (atomically; never overwrites)."""
    if not webp_supported():
        raise RuntimeError("this Pillow build has no WebP support (features.check('webp') is False)")
    frames = normalize_frames(frames)
    durations = frame_durations(len(frames), options.fps, 1000)
    params: dict = {
        "format": "WEBP",
        "save_all": True,
        "append_images": frames[1:],
        "duration": durations if len(frames) > 1 else durations[0],
        "loop": options.loop_number,
        "quality": options.webp_quality,
        "lossless": options.webp_lossless,
        "method": WEBP_METHOD,
    }
    if options.infotext:
        exif = infotext_exif(options.infotext).tobytes()
        # The WebP EXIF chunk holds bare TIFF data; Pillow's tobytes() adds
        # the JPEG-style "Exif\0\0" marker, which its animated writer keeps.
        if exif.startswith(b"Exif\x00\x00"):
            exif = exif[6:]
        params["exif"] = exif
    with atomic_output(path) as tmp:
        frames[0].save(tmp, **params)
    return Path(path)
