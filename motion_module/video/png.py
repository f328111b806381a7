"""PNG frame writer.

Each frame carries the infotext as the PNG text chunk `parameters`, the
key the WebUI's "PNG Info" tab and most image browsers read.  Pillow
writes it as tEXt when the text is Latin-1 and as iTXt (UTF-8) otherwise;
read it back with `Image.open(p).text["parameters"]`.

Frames go into the per-video folder `{stem}/00000.png ...`.  Each file
is written atomically and never overwrites; if any frame fails, the
frames already written by this call are removed (and the folder too if
this call created it and it is now empty), so a failed export never
leaves a partial frame sequence behind.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Sequence

from PIL import Image
from PIL.PngImagePlugin import PngInfo

from .atomic import atomic_output, remove_quietly
from .frames import normalize_frames

PNG_TEXT_KEY = "parameters"


def write_png_frames(frames: Sequence[Image.Image], folder: str | os.PathLike, infotext: str = "") -> list[Path]:
    """Write 00000.png, 00001.png, ... into `folder`; returns the paths in order."""
    frames = normalize_frames(frames)
    folder = Path(folder)
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    info = PngInfo()
    if infotext:
        info.add_text(PNG_TEXT_KEY, infotext)
    written: list[Path] = []
    try:
        for i, frame in enumerate(frames):
            target = folder / f"{i:05}.png"
            with atomic_output(target) as tmp:
                frame.save(tmp, format="PNG", pnginfo=info)
            written.append(target)
    except BaseException:
        for path in written:
            remove_quietly(path)
        if created:
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
    return written
