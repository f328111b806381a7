"""Infotext beside the video: `{stem}.txt`, UTF-8, written atomically."""

from __future__ import annotations

import os
from pathlib import Path

from .atomic import write_bytes_atomic


def write_txt(infotext: str, path: str | os.PathLike) -> Path:
    return write_bytes_atomic(path, (infotext or "").encode("utf-8"))
