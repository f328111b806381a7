"""Frame-list helpers shared by the writers."""

from __future__ import annotations

from fractions import Fraction
from typing import Sequence, TypeVar

from PIL import Image

T = TypeVar("T")


def add_reverse(frames: Sequence[T]) -> list[T]:
    """Ping-pong for closed loop 'A': 0 1 2 3 -> 0 1 2 3 2 1.

    Neither end is repeated, so when the result loops the first and last
    frames are not shown twice in a row (no visible stall).
    """
    frames = list(frames)
    return frames + frames[-2:0:-1]


def normalize_frames(frames: Sequence[Image.Image]) -> list[Image.Image]:
    """RGB frames with empty `info`, all of the same size (copies if needed).

    Pillow's GIF writer adopts the first frame's `info` (loop, duration,
    comment, transparency...) as defaults, so frames that came from an
    opened file could silently change our output; fresh copies avoid that.
    """
    frames = list(frames)
    if not frames:
        raise ValueError("frames: at least one frame is required")
    size = frames[0].size
    out = []
    for i, frame in enumerate(frames):
        if not isinstance(frame, Image.Image):
            raise ValueError(f"frames[{i}] is {type(frame).__name__}, expected a PIL.Image.Image")
        if frame.size != size:
            raise ValueError(f"frames[{i}] has size {frame.size}, expected {size} like frames[0]")
        if frame.mode == "RGB" and not frame.info:
            # Already clean (e.g. normalised once by save_video): no need to
            # hold another full copy of a long video in memory.
            out.append(frame)
            continue
        rgb = frame.convert("RGB") if frame.mode != "RGB" else frame.copy()
        rgb.info = {}
        out.append(rgb)
    return out


def frame_durations(count: int, fps: float | Fraction, unit_per_second: int, minimum: int = 1) -> list[int]:
    """Integer per-frame durations (in 1/unit_per_second s) for `count` frames.

    Frame i ends at round((i+1) * unit / fps); durations are the differences,
    so rounding never accumulates: the total is the exact length rounded
    once.  E.g. fps=8 in centiseconds: 13,12,13,12,... (sum 100 per second).
    `minimum` clamps very short frames (players ignore tiny GIF delays).
    """
    step = Fraction(str(fps)).limit_denominator(1_000_000) if not isinstance(fps, Fraction) else fps
    per_frame = Fraction(unit_per_second) / step

    def end(i: int) -> int:
        # Round half up, deterministic (Python's round() is half-to-even).
        return int(per_frame * i + Fraction(1, 2))

    return [max(minimum, end(i + 1) - end(i)) for i in range(count)]
