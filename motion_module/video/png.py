"""PNG frame writer.

Each frame carries the infotext as the PNG text chunk `parameters`, the
key the WebUI's "PNG Info" tab and most image browsers read.  Pillow
writes it as tEXt when the text is Latin-1 and as iTXt (UTF-8) otherwise;
read it back with `Image.open(p).text["parameters"]`.

Frames go into a folder chosen by the caller: the per-video folder
`{stem}/00000.png ...` or the WebUI's sample folder with caller-given
names.  Each file is written atomically and never overwrites; if any
frame fails, the frames already written by this call are removed (and the
folder too if this call created it and it is now empty), so a failed
export never leaves a partial frame sequence behind.
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


def frame_file_names(count: int, prefix: str = "") -> list[str]:
    return [f"{prefix}{i:05}.png" for i in range(count)]


def write_png_frames(
    frames: Sequence[Image.Image],
    folder: str | os.PathLike,
    infotext: str | Sequence[str] = "",
    names: Sequence[str] | None = None,
) -> list[Path]:
    """Write one PNG per frame into `folder`; returns the paths in order.

    `infotext` is one text for all frames or one per frame (the WebUI gives
    every frame its own seed).  `names` defaults to 00000.png, 00001.png...
    """
    frames = normalize_frames(frames)
    names = list(names) if names is not None else frame_file_names(len(frames))
    if len(names) != len(frames):
        raise ValueError(f"names: {len(names)} names for {len(frames)} frames")
    for name in names:
        # Names come from the caller; still refuse anything that could leave
        # the folder.
        if not name or os.path.basename(name) != name or name in (".", "..") or "/" in name or "\\" in name:
            raise ValueError(f"names: {name!r} is not a plain file name")
    if isinstance(infotext, str):
        texts = [infotext] * len(frames)
    else:
        texts = list(infotext)
        if len(texts) != len(frames):
            raise ValueError(f"infotext: {len(texts)} texts for {len(frames)} frames")

    folder = Path(folder)
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    try:
        for frame, name, text in zip(frames, names, texts):
            target = folder / name
            info = PngInfo()
            if text:
                info.add_text(PNG_TEXT_KEY, text)
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
