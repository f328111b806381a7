"""Animated GIF writer (Pillow).

Timing.  GIF stores each frame's delay in centiseconds, so 1000/fps ms is
often not representable (fps=8 -> 12.5 cs).  Pillow also *truncates* a
millisecond duration to centiseconds (125 ms -> 12 cs, 4% too fast).  We
therefore compute whole-centisecond delays whose running sum follows the
exact timeline (13,12,13,12,... for fps=8: 8 frames = exactly 1 s) and
hand Pillow multiples of 10 ms, which it stores without loss.  Browsers
treat delays below 2 cs as 10 cs, so delays are clamped to >= 2 cs; for
fps > 50 the GIF therefore plays slower than asked (a warning is logged).

Loop.  `loop_number` N is the number of times the animation is shown.
The NETSCAPE2.0 extension stores *repetitions* after the first play
(browsers play N+1 times for a stored N), so N=0 -> stored 0 (forever),
N=1 -> no loop extension (plays once), N>1 -> stored N-1.

Metadata.  The infotext is the GIF comment extension (UTF-8); Pillow reads
it back as `im.info["comment"]` (bytes), exiftool as "Comment".

Identical consecutive frames are merged by Pillow into one frame with the
summed delay: the animation looks and lasts the same, but a decoder then
reports fewer frames.

Palette option: one 256-colour palette for the whole animation, computed
from a mosaic of (sub-sampled) frames and applied to each frame without
dithering, so colours don't shimmer from frame to frame and the file has
a single global colour table.

gifsicle option: `gifsicle -O3` on the temporary file when the binary is on
PATH; without it (or if it fails) a warning is logged and the unoptimised
GIF is kept.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import subprocess
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from .atomic import atomic_output, remove_quietly, temp_path_for
from .frames import frame_durations, normalize_frames
from .options import VideoOptions

log = logging.getLogger(__name__)

MIN_DELAY_CS = 2
# Pixels fed to the quantizer; enough for a good palette, bounded so a
# 200-frame 1024x1024 video neither needs a 600 MB mosaic nor seconds of
# median cut (its time grows with the number of distinct colours).
PALETTE_SAMPLE_PIXELS = 300_000
GIFSICLE_TIMEOUT_S = 300


def gif_delays_cs(count: int, fps: float) -> list[int]:
    if fps > 100 / MIN_DELAY_CS:
        log.warning(
            "GIF cannot show %.3g fps (smallest usable delay is %d cs); frames are shown at %d fps",
            fps, MIN_DELAY_CS, 100 // MIN_DELAY_CS,
        )
    return frame_durations(count, fps, 100, minimum=MIN_DELAY_CS)


def gif_loop_value(loop_number: int) -> int | None:
    """NETSCAPE loop count to store for `loop_number` plays (None = omit)."""
    if loop_number == 0:
        return 0
    if loop_number == 1:
        return None
    return loop_number - 1


def global_palette(frames: Sequence[Image.Image], sample_pixels: int = PALETTE_SAMPLE_PIXELS) -> Image.Image:
    """A 'P' image whose palette suits every frame (for Image.quantize)."""
    w, h = frames[0].size
    total = w * h * len(frames)
    # Sub-sample by striding rather than resizing: resizing would blend
    # colours and the palette would miss the real ones.
    stride = max(1, math.ceil(math.sqrt(total / sample_pixels)))
    tiles = [np.asarray(f)[::stride, ::stride] for f in frames]
    mosaic = Image.fromarray(np.ascontiguousarray(np.concatenate(tiles, axis=0)), "RGB")
    return mosaic.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)


def apply_palette(frames: Sequence[Image.Image], palette_image: Image.Image) -> list[Image.Image]:
    return [f.quantize(palette=palette_image, dither=Image.Dither.NONE) for f in frames]


def write_gif(frames: Sequence[Image.Image], path: str | os.PathLike, options: VideoOptions) -> Path:
    """Write an animated GIF to `path` (atomically; never overwrites)."""
    frames = normalize_frames(frames)
    delays_ms = [cs * 10 for cs in gif_delays_cs(len(frames), options.fps)]
    params: dict = {
        "format": "GIF",
        "save_all": True,
        "append_images": frames[1:],
        "duration": delays_ms if len(frames) > 1 else delays_ms[0],
        # disposal 1 (keep): each delta frame is drawn over the previous one.
        "disposal": 1,
    }
    loop = gif_loop_value(options.loop_number)
    if loop is not None:
        params["loop"] = loop
    if options.infotext:
        params["comment"] = options.infotext.encode("utf-8")

    if options.gif_palette:
        pal = global_palette(frames)
        frames = apply_palette(frames, pal)
        params["append_images"] = frames[1:]
        # Passing the palette makes Pillow write it once as the global
        # colour table instead of a local table per frame.
        params["palette"] = pal.getpalette()
        params["optimize"] = False

    with atomic_output(path) as tmp:
        frames[0].save(tmp, **params)
        if options.gif_gifsicle:
            run_gifsicle(tmp)
    return Path(path)


def run_gifsicle(path: Path) -> bool:
    """Optimise `path` in place with gifsicle; False (and a warning) if not done."""
    exe = shutil.which("gifsicle")
    if not exe:
        log.warning(
            "GIF gifsicle optimisation is enabled but the 'gifsicle' program was not found on PATH "
            "(install it, e.g. 'apt install gifsicle'); the GIF is saved unoptimised"
        )
        return False
    out = temp_path_for(path)
    try:
        proc = subprocess.run(
            [exe, "-O3", "--no-warnings", str(path), "-o", str(out)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            timeout=GIFSICLE_TIMEOUT_S,
        )
        if proc.returncode != 0 or not out.exists() or out.stat().st_size == 0:
            err = proc.stderr.decode("utf-8", "replace").strip()
            log.warning("gifsicle failed (exit %s): %s; the GIF is saved unoptimised", proc.returncode, err)
            return False
        os.replace(out, path)
        return True
    except (OSError, subprocess.SubprocessError) as e:
        log.warning("gifsicle could not be run (%s); the GIF is saved unoptimised", e)
        return False
    finally:
        remove_quietly(out)
